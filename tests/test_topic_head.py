"""The topic model's head (title) block: what it reads, and that it ships like the rest."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import skops.io as sio

from classify import training as T
from classify.compiled import compile_model
from classify.hashing import shared_batch
from classify.modelio import TRUSTED
from classify.pipelines import build_topic, input_form
from classify.text import prepare_chars
from classify.topic_head import HEAD_CHARS, HeadTfidf, heads

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "classify"


def test_heads_count_word_characters_only():
    text = prepare_chars(
        "小区物业乱收停车费！", "尊敬的领导：我们小区的物业公司未经业主同意收取停车费。"
    )
    head = heads([text], 12)[0]
    assert sum(ch.isalnum() for ch in head) == 12
    assert head.startswith("小区物业乱收停车费")
    # pre-cut training letters: the spaces between tokens are skipped as well
    assert heads(["小区 物业 乱收 停车费 尊敬 领导"], 8)[0] == "小区 物业 乱收 停车"
    assert heads(["短", "", "！！"], HEAD_CHARS) == ["短", "", ""]


def test_head_tfidf_rows_are_scaled_by_weight():
    texts = ["学校 食堂 强制 消费", "公交 线路 太挤", "小区 物业 收费", "医院 排队 太久"] * 3
    for weight in (0.5, 1.0):
        X = HeadTfidf(weight=weight, min_df=1, max_df=1.0).fit(texts).transform(texts)
        assert sp.issparse(X) and X.shape[0] == len(texts)
        norms = np.sqrt(np.asarray(X.multiply(X).sum(axis=1)).ravel())
        np.testing.assert_allclose(norms, weight, rtol=1e-5)


def test_topic_model_with_head_compiles_and_round_trips(tmp_path):
    ds = T.load_dataset("topic", str(FIXTURES / "topic_small.csv"))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = T.fit("topic", ds)
    assert input_form(build_topic()) == "chars"
    assert any(isinstance(t, HeadTfidf) for _, t in model.named_steps["features"].transformer_list)
    texts = list(ds.X)
    expected = model.predict_proba(texts)
    scorer = compile_model(model)
    assert scorer is not None
    with shared_batch(texts):
        assert np.array_equal(scorer(texts, {}), expected)
    path = tmp_path / "topic.skops"
    sio.dump(model, path)
    assert set(sio.get_untrusted_types(file=path)) <= set(TRUSTED)
    loaded = sio.load(path, trusted=list(TRUSTED))
    assert np.array_equal(loaded.predict_proba(texts), expected)
