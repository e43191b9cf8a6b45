"""The tagger's shared-features fast path gives exactly what the plain pipelines give."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from classify.pipelines import RUMOUR_META
from classify.shared import FeatureCache, SharedFeatures, fast_models
from classify.tagger import Tagger
from classify.text import prepare

LETTERS = [
    ("小区燃气泄漏", "味道很大，请尽快处理。物业不管，居民很担心安全问题。"),
    ("学校收费问题", "孩子所在学校违规收取补课费，家长负担很重，希望教育局调查。"),
    ("公交线路建议", "建议增加公交班次，早高峰太挤，老人上不了车。Bus 12 路 wait 30 min"),
    ("工资拖欠", "公司拖欠农民工工资三个月，多次讨要无果，请劳动监察部门帮忙。"),
    ("", "網傳某地發生地震，轉發擴散！據說明天還有餘震？？"),
    ("医院", "医院排队时间太长，挂号难，看病贵。"),
    ("x", "a\tb  c\n\nd e"),  # whitespace runs and ASCII
    ("单字", "水"),
]


def _texts() -> list[str]:
    return [t for t in (prepare(a, b) for a, b in LETTERS) if t]


def _models(tagger: Tagger) -> dict:
    return tagger.models


@pytest.fixture(scope="module", params=["tiny", "shipped"])
def any_tagger(request, tiny_model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if request.param == "tiny":
            return Tagger.load(tiny_model_dir)
        return Tagger.load_default()


def test_fast_path_is_used_for_built_pipelines(any_tagger):
    assert {task: m.kind for task, m in any_tagger._fast.items()} == {
        "topic": "union",
        "urgency": "union",
        "rumour": "stack",
    }


def test_vectorizer_matrices_equal_plain_transform(any_tagger):
    texts = _texts()
    cache = any_tagger._shared.transform(texts)
    for task in ("topic", "urgency"):
        for _, vec in any_tagger.models[task].steps[0][1].transformer_list:
            if hasattr(vec, "vocabulary_"):
                plain = vec.transform(texts)
                fast = cache.tfidf(vec)
                assert fast.shape == plain.shape and fast.dtype == plain.dtype
                assert (fast != plain).nnz == 0


def test_probabilities_equal_plain_pipelines(any_tagger):
    texts = _texts()
    cache = any_tagger._shared.transform(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task in ("topic", "urgency"):
            plain = any_tagger.models[task].predict_proba(texts)
            fast = any_tagger._fast[task].predict_proba(cache, texts)
            np.testing.assert_array_equal(plain, fast)
        rng = np.random.default_rng(0)
        frame = pd.DataFrame(
            {"tokens": texts, **{k: rng.integers(0, 5000, len(texts)) for k in RUMOUR_META}}
        )
        plain = any_tagger.models["rumour"].predict_proba(frame)
        fast = any_tagger._fast["rumour"].predict_proba(cache, texts, frame)
        np.testing.assert_array_equal(plain, fast)
        rows = [0, 4, 5]
        sub = any_tagger._fast["rumour"].predict_proba(
            cache.subset(rows), [texts[i] for i in rows], frame.iloc[rows].reset_index(drop=True)
        )
        np.testing.assert_array_equal(plain[rows], sub)


def test_batch_and_one_by_one_tagging_agree(any_tagger):
    rows = [{"title": a, "body": b, "rumour": k % 2 == 0} for k, (a, b) in enumerate(LETTERS)]
    batch = any_tagger.tag_rows(rows)
    single = [any_tagger.tag_rows([r])[0] for r in rows]
    assert batch == single


def test_unsupported_model_shape_falls_back_to_plain_pipeline(tiny_model_dir):
    from sklearn.pipeline import Pipeline

    tagger = Tagger.load(tiny_model_dir)
    topic = tagger.models["topic"]
    odd = Pipeline([("only", topic)])  # a shape the fast path does not know
    shared, fast = fast_models({"topic": odd})
    assert shared is None and fast["topic"].kind == "plain"
    texts = _texts()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        np.testing.assert_array_equal(
            fast["topic"].predict_proba(None, texts), topic.predict_proba(texts)
        )


def test_shared_features_generic_analyzer(tiny_model_dir):
    """Vectorizers the integer fast path does not handle still share one string analysis."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts = _texts()
    a = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4)).fit(texts)
    b = TfidfVectorizer(analyzer="char_wb", ngram_range=(1, 4), min_df=2).fit(texts)
    shared = SharedFeatures([a, b])
    cache: FeatureCache = shared.transform(texts)
    for vec in (a, b):
        assert (cache.tfidf(vec) != vec.transform(texts)).nnz == 0


def test_char_keys_match_sklearn_on_odd_text():
    """Integer character n-grams equal sklearn's, for astral, surrogate and whitespace text."""
    from classify.pipelines import char_vectorizer

    train = ["甲乙 丙丁", "𠀀𠀁 甲乙", "a\tb  c", "\ud800x 甲", "戊"]
    vec = char_vectorizer(ngram_range=(1, 3), min_df=1).set_params(max_df=1.0).fit(train)
    shared = SharedFeatures([vec])
    assert shared._groups[0].fast is not None
    docs = [*train, "", "甲", "乙丙丁戊 𠀀𠀁\n\n甲乙"]
    assert (shared.transform(docs).tfidf(vec) != vec.transform(docs)).nnz == 0


def test_empty_and_tiny_batches(any_tagger):
    cache = any_tagger._shared.transform(["水"])
    vec = any_tagger.models["topic"].steps[0][1].transformer_list[1][1]
    assert cache.tfidf(vec).shape == (1, len(vec.vocabulary_))
    assert any_tagger.tag_rows([{"title": "", "body": ""}])[0].topic is None


def test_cached_cue_hits_equal_plain_search():
    import re

    from classify import cues

    groups = [
        cues.CRITICAL_CUES,
        cues.URGENT_CUES,
        cues.LOW_CUES,
        cues.RUMOUR_CUES,
        cues.REFUTATION_CUES,
        ("燃气", "燃气泄漏", "泄漏"),  # overlapping cues all count
    ]
    texts = [prepare(a, b) for a, b in LETTERS] + [
        "燃气泄漏 燃气",
        "a\u3000b\xa0c\u2028d \t\ne",
        "",
    ]
    cues.clear_caches()
    for text in texts:
        flat = cues.flatten(text)
        assert flat == re.sub(r"\s+", "", text)
        for group in groups:
            assert cues.hits(flat, group) == tuple(c for c in group if c in flat)
    assert cues.hits("燃气泄漏", groups[-1]) == ("燃气", "燃气泄漏", "泄漏")
