"""Character-form models: prepared without a jieba cut, and older word models still fed tokens."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from classify import pipelines as P
from classify import training as T
from classify.hashing import hashed_counts, ngram_keys
from classify.pipelines import RUMOUR_META, build_topic, input_form, task_form
from classify.tagger import Tagger
from classify.text import MAX_CLASSIFY_CHARS, clip, prepare, prepare_chars, strip_html
from govpulse.tokenize import normalise


def test_prepare_chars_is_the_normalised_text_without_a_cut():
    out = prepare_chars(
        "小区燃气泄漏！", "楼道里闻到<b>很浓的</b>燃气味，ＡＢＣ１２３ https://x.cn/a 😀"
    )
    assert out == "小区燃气泄漏! 楼道里闻到 很浓的 燃气味,ABC123"  # tags become spaces
    # No cut: stop words and word boundaries stay as written.
    assert prepare_chars("", "您好，请问社保卡丢了怎么补办？") == "您好,请问社保卡丢了怎么补办?"


def test_prepare_chars_equals_normalise_of_the_clipped_text():
    """The full-width replacements done before ``normalise`` change nothing in its result."""
    texts = [
        "网传，某地！发生？地震：（据说）；转发　扩散\xa0…",
        "ｈｔｔｐ://ａ.ｃｏｍ，ｅ\u0301 ① ㎡ ０１２，",
        "臺灣，後來…" * 3,
        "<p>停水&nbsp;三天，</p>" + "长" * (MAX_CLASSIFY_CHARS + 10),
    ]
    for text in texts:
        assert prepare_chars("", text) == normalise(clip(strip_html(text)))


def test_char_ngrams_skip_punctuation_and_spaces():
    with_punct = ngram_keys(["燃气,泄漏! 楼道"], None, (1, 3), drop_nonword=True)[1]
    plain = ngram_keys(["燃气泄漏楼道"], None, (1, 3))[1]
    assert sorted(with_punct.tolist()) == sorted(plain.tolist())


def test_prepare_chars_empty_emoji_and_traditional():
    assert prepare_chars(None, None) == ""
    assert prepare_chars("", "   \n\t ") == ""
    assert prepare_chars("", "😀😀🙏[微笑]") == ""
    assert prepare_chars("", ",,, !!") == ""
    assert prepare_chars("", "臺灣 後來") == prepare_chars("", "台湾 后来")


def test_input_forms():
    assert {task_form(t) for t in P.TASKS} == {"chars"}
    assert input_form(Tagger.load_default().models["topic"]) == "chars"
    words = build_topic()
    words.set_params(features__text__ngrams__word_ngrams=(1, 2))
    assert input_form(words) == "tokens"
    assert input_form(object()) == "tokens"  # no hashed n-grams: a model from before them


def test_training_reads_raw_text_in_the_pipelines_form(fixtures_dir):
    ds = T.load_dataset("urgency", str(fixtures_dir / "urgency_small.csv"))
    frame = pd.read_csv(fixtures_dir / "urgency_small.csv", dtype=str)
    assert ds.X[0] == prepare_chars(frame["title"][0], frame["text"][0])
    older = T.load_dataset("urgency", str(fixtures_dir / "urgency_small.csv"), form="tokens")
    assert older.X[0] == prepare(frame["title"][0], frame["text"][0])


def test_a_word_model_beside_char_models_gets_tokens(fixtures_dir, tiny_model_dir, monkeypatch):
    """A topic model trained on jieba words (as before) keeps getting jieba tokens."""
    monkeypatch.setattr(P, "NGRAMS", {"n_bits": 20, "word_ngrams": (1, 2), "char_ngrams": (2, 3)})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds = T.load_dataset("topic", str(fixtures_dir / "topic_small.csv"))
        word_topic = T.fit("topic", ds)
    monkeypatch.undo()
    assert input_form(word_topic) == "tokens"
    tiny = Tagger.load(tiny_model_dir)
    mixed = Tagger({**tiny.models, "topic": word_topic}, config=tiny.config)
    letters = [
        ("小区燃气泄漏", "味道很大，请尽快处理。"),
        ("工资拖欠", "公司拖欠农民工工资三个月，请劳动监察部门帮忙。"),
        ("", "😀"),
        ("公交线路建议", "建议增加公交班次，早高峰太挤。"),
    ]
    rows = [{"title": a, "body": b, "rumour": True, "reposts": 3} for a, b in letters]
    got = mixed.tag_rows(rows)
    assert got[2].topic is None and got[2].urgency is None
    live = [0, 1, 3]
    tokens = [prepare(*letters[i]) for i in live]
    chars = [prepare_chars(*letters[i]) for i in live]
    frame = pd.DataFrame(
        {"tokens": chars, **{k: [3 if k == "reposts" else None] * 3 for k in RUMOUR_META}}
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        topic_p = word_topic.predict_proba(tokens).max(axis=1)
        rumour_p = tiny.models["rumour"].predict_proba(frame)[:, 1]
    assert [got[i].topic_score for i in live] == pytest.approx(np.round(topic_p, 4), abs=1e-4)
    assert [got[i].urgency for i in live] == [tiny.tag_rows([rows[i]])[0].urgency for i in live]
    # The rumour score before the reply/refutation discounts (none here).
    assert [got[i].rumour_score for i in live] == pytest.approx(np.round(rumour_p, 4), abs=1e-4)


def test_block_sort_gives_the_one_sort_counts(monkeypatch):
    """Sorting the keys by blocks of rows is only faster: the counts are the same."""
    from classify import hashing as H

    texts = ["社保 补办 流程", "", "水", "公交线路，太挤！" * 40, "网传 地震 转发扩散" * 7] * 60
    for params in (
        {"word_ngrams": (1, 2), "char_ngrams": (2, 3)},
        {"word_ngrams": None, "char_ngrams": (1, 3), "drop_nonword": True},
    ):
        monkeypatch.setattr(H, "_SORT_BLOCK", 64)
        monkeypatch.setattr(H, "_CHAR_SORT_BLOCK", 64)
        blocks = H.hashed_counts(texts, **params)
        monkeypatch.setattr(H, "_SORT_BLOCK", 1 << 40)
        monkeypatch.setattr(H, "_CHAR_SORT_BLOCK", 1 << 40)
        whole = H.hashed_counts(texts, **params)
        assert blocks.has_canonical_format
        np.testing.assert_array_equal(blocks.indptr, whole.indptr)
        np.testing.assert_array_equal(blocks.indices, whole.indices)
        np.testing.assert_array_equal(blocks.data, whole.data)


# 20 copies: 120 rows, keyed in chunks; 700: > 4096 rows, 64-bit keys
@pytest.mark.parametrize("copies", [2, 20, 700])
def test_char_ngram_counts_equal_a_plain_count_of_ngram_keys(copies):
    """The character-only fast path counts exactly the (row, column) pairs of
    ``ngram_keys``, with or without a mask of useful columns."""
    texts = ["社保补办流程，怎么办？", "", "水", "公交线路太挤" * 30, "a b", "網傳地震"] * copies
    params = {"word_ngrams": None, "char_ngrams": (1, 3), "drop_nonword": True}
    rows, keys = ngram_keys(texts, **params)
    cols = (keys >> np.uint64(44)).astype(np.int64)
    useful = np.zeros(1 << 20, dtype=bool)
    useful[cols[::3]] = True  # every third n-gram's column, and only those
    for mask in (None, useful):
        sel = np.ones(len(cols), dtype=bool) if mask is None else mask[cols]
        ref = sp.csr_matrix(
            (np.ones(sel.sum()), (rows[sel], cols[sel])), shape=(len(texts), 1 << 20)
        )
        ref.sum_duplicates()
        got = hashed_counts(texts, useful=mask, sublinear_tf=False, **params)
        assert got.has_canonical_format
        np.testing.assert_array_equal(got.indptr, ref.indptr)
        np.testing.assert_array_equal(got.indices, ref.indices)
        np.testing.assert_array_equal(got.data, ref.data)
