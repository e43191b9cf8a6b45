"""Hashed n-gram features: exact counts, stable across processes, shared per batch
without changing any model output."""

from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from classify import cues
from classify.hashing import (
    ColumnUnion,
    HashedNgrams,
    HashedTfidf,
    hashed_counts,
    ngram_keys,
    params_key,
    shared_batch,
    useful_columns,
)
from classify.pipelines import RUMOUR_META
from classify.tagger import Tagger
from classify.text import prepare

ROOT = Path(__file__).resolve().parents[2]
LETTERS = [
    ("小区燃气泄漏", "味道很大，请尽快处理。物业不管，居民很担心安全问题。"),
    ("学校收费问题", "孩子所在学校违规收取补课费，家长负担很重，希望教育局调查。"),
    ("公交线路建议", "建议增加公交班次，早高峰太挤，老人上不了车。Bus 12 路 wait 30 min"),
    ("工资拖欠", "公司拖欠农民工工资三个月，多次讨要无果，请劳动监察部门帮忙。"),
    ("", "網傳某地發生地震，轉發擴散！據說明天還有餘震？？"),
    ("医院", "医院排队时间太长，挂号难，看病贵。"),
    ("x", "a\tb  c\n\nd e"),
    ("单字", "水"),
]


def _texts() -> list[str]:
    return [t for t in (prepare(a, b) for a, b in LETTERS) if t]


def test_counts_every_ngram_once_per_occurrence():
    # "社保 补办 流程": 3 words + 2 word pairs + 5 char bigrams + 4 char trigrams.
    rows, _keys = ngram_keys(["社保 补办 流程", "公交 线路", "", "水"])
    assert np.bincount(rows, minlength=4).tolist() == [14, 8, 0, 1]
    X = hashed_counts(["社保 社保", "水"], sublinear_tf=False)
    # "社保" twice as a word, "社保" twice as a char bigram (different columns), "保社" once,
    # "社保社"/"保社保" once, the pair "社保 社保" once.
    assert sorted(X[0].data.tolist()) == [1, 1, 1, 1, 2, 2]
    assert X.has_canonical_format and X.shape == (2, 1 << 20)
    sub = hashed_counts(["社保 社保"])
    assert np.allclose(sorted(sub.data), sorted([1, 1, 1, 1, 1 + np.log(2), 1 + np.log(2)]))


def test_document_boundaries_and_odd_text():
    """No n-gram spans two texts; astral characters, lone surrogates and newlines are fine."""
    docs = ["甲乙", "丙丁", "𠀀𠀁 甲", "\ud800x", "a\nb", ""]
    X = hashed_counts(docs, sublinear_tf=False)
    alone = [hashed_counts([d], sublinear_tf=False) for d in docs]
    for k, one in enumerate(alone):
        assert (X[k] != one).nnz == 0


def test_hash_is_the_same_in_another_process():
    """No per-process salt (Python's str hash is salted): a model scores the same everywhere."""
    docs = _texts()
    here = hashed_counts(docs)
    code = (
        f"import sys, numpy as np; sys.path.insert(0, {str(ROOT)!r})\n"
        "from classify.hashing import hashed_counts\n"
        f"X = hashed_counts({docs!r})\n"
        "print(X.indices.tolist()); print(X.indptr.tolist())\n"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True
    ).stdout.splitlines()
    assert eval(out[0]) == here.indices.tolist() and eval(out[1]) == here.indptr.tolist()


def test_hashed_tfidf_prunes_and_normalises():
    docs = ["甲 乙", "甲 丙", "甲 丁", "戊"]
    counts = HashedNgrams(word_ngrams=(1, 1), char_ngrams=None).transform(docs)
    tf = HashedTfidf(min_df=2, max_df=1.0).fit(counts)
    assert len(tf.idf_) == 1  # only 甲 is in two or more documents
    out = tf.transform(counts)
    assert out.shape == (4, 1)
    assert out[:3].toarray().ravel().tolist() == [1.0, 1.0, 1.0] and out[3].nnz == 0
    capped = HashedTfidf(min_df=1, max_df=0.5).fit(counts)  # 甲 (3 of 4) is cut by max_df
    assert len(capped.idf_) == 4
    top = HashedTfidf(min_df=1, max_features=2).fit(counts)
    assert len(top.idf_) == 2
    norms = sp.linalg.norm(HashedTfidf(min_df=1).fit(counts).transform(counts), axis=1)
    assert np.allclose(norms, 1.0)


def test_idf_through_the_column_union_equals_the_plain_idf():
    """Inside a shared batch, IDF steps find their columns through a ColumnUnion:
    same matrices as outside it, for each model of the union and for one outside
    it (whose columns the union partly lacks: those entries were never counted)."""
    docs = ["社保 补办 流程", "公交 线路 太挤", "社保 公交", "水 电 气", "学校 收费", ""] * 3
    ngrams = HashedNgrams(word_ngrams=None, char_ngrams=(1, 3), drop_nonword=True)
    counts = ngrams.transform(docs)
    a = HashedTfidf(min_df=2).fit(counts[:9])
    b = HashedTfidf(min_df=1, max_features=20).fit(counts[6:])
    mask = (a.columns_ >= 0) | (b.columns_ >= 0)
    union = ColumnUnion(mask)
    stranger = HashedTfidf(min_df=1).fit(counts)
    with shared_batch(docs, {params_key(ngrams.params()): union}):
        shared = ngrams.transform(docs)
        for tfidf in (a, b, a):  # a again: its cached table
            got, want = tfidf.transform(shared), tfidf.transform(counts)
            assert (got != want).nnz == 0 and got.has_sorted_indices
        kept = counts.multiply(mask[None, :]).tocsr()
        assert (stranger.transform(shared) != stranger.transform(kept)).nnz == 0
        sub = shared[[1, 2]]  # a row subset is not the shared count: plain look-up
        assert (a.transform(sub) != a.transform(counts[[1, 2]])).nnz == 0


@pytest.fixture(scope="module", params=["tiny", "shipped"])
def any_tagger(request, tiny_model_dir):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        if request.param == "tiny":
            return Tagger.load(tiny_model_dir)
        return Tagger.load_default()


def test_shipped_shape_shares_one_count_per_batch(any_tagger):
    """All three models use the same HashedNgrams parameters, each followed by HashedTfidf."""
    assert len(useful_columns(list(any_tagger.models.values()))) == 1


def test_shared_batch_gives_the_plain_probabilities(any_tagger):
    texts = _texts()
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(
        {"tokens": texts, **{k: rng.integers(0, 5000, len(texts)) for k in RUMOUR_META}}
    )
    models = any_tagger.models
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = {t: models[t].predict_proba(texts) for t in ("topic", "urgency")}
        plain["rumour"] = models["rumour"].predict_proba(frame)
        rows = [0, 4, 5]
        sub = frame.iloc[rows].reset_index(drop=True)
        with shared_batch(texts, any_tagger._useful):
            for t in ("topic", "urgency"):
                np.testing.assert_allclose(models[t].predict_proba(texts), plain[t], rtol=1e-6)
            np.testing.assert_allclose(models["rumour"].predict_proba(frame), plain["rumour"])
            np.testing.assert_allclose(models["rumour"].predict_proba(sub), plain["rumour"][rows])
            # Texts from elsewhere (not the batch's str objects) are computed on their own.
            other = ["".join(t) for t in texts]
            assert any(o is not t for o, t in zip(other, texts, strict=True))
            np.testing.assert_allclose(models["topic"].predict_proba(other), plain["topic"])


def test_batch_and_one_by_one_tagging_agree(any_tagger):
    rows = [{"title": a, "body": b, "rumour": k % 2 == 0} for k, (a, b) in enumerate(LETTERS)]
    batch = any_tagger.tag_rows(rows)
    single = [any_tagger.tag_rows([r])[0] for r in rows]
    assert [b.topic for b in batch] == [s.topic for s in single]
    assert [b.urgency_reasons for b in batch] == [s.urgency_reasons for s in single]
    for b, s in zip(batch, single, strict=True):
        assert b.topic_score == pytest.approx(s.topic_score, abs=1e-4)
        assert (b.rumour_score is None) == (s.rumour_score is None)
        if b.rumour_score is not None:
            assert b.rumour_score == pytest.approx(s.rumour_score, abs=1e-4)


def test_empty_and_tiny_batches(any_tagger):
    assert any_tagger.tag_rows([{"title": "", "body": ""}])[0].topic is None
    assert any_tagger.tag_rows([{"title": "水", "body": ""}])[0].urgency is not None


def test_cue_hits_equal_substring_tests():
    """The Aho-Corasick pass finds exactly the cues a substring test finds, in lexicon order."""
    texts = [prepare(a, b) for a, b in LETTERS] + [
        "燃气泄漏气味拖欠工资停水停电",
        "辟谣不实转发扩散据说",
    ]
    for text in texts:
        flat = cues.flatten(text)
        for lex in cues.LEXICONS:
            assert cues.hits(flat, lex) == tuple(c for c in lex if c in flat)
            assert cues.counts(flat, (lex,)) == [len(cues.hits(flat, lex))]
        other = ("燃气", "不存在的词")
        assert cues.hits(flat, other) == tuple(c for c in other if c in flat)


def test_cut_without_equals_filtered_cut():
    from govpulse.tokenize import cut, cut_without, stopwords

    stop = stopwords()
    for a, b in LETTERS:
        text = f"{a}\n{b}"
        assert cut_without(text, stop) == [t for t in cut(text) if t not in stop]


def test_near_duplicate_groups_cluster_edited_copies_only():
    """A re-posted letter with a few characters changed shares its original's cluster
    (also through a chain of copies); different letters on the same subject do not."""
    from classify.hashing import near_duplicate_groups

    base = "小区物业违规收取停车费，业主多次反映无人处理，请相关部门督促整改。" * 2
    edited = base.replace("停车费", "停車费", 1) + "谢谢！"
    chained = edited.replace("业主", "居民", 1)
    other = "学校违规收取补课费，家长负担很重，希望教育局调查处理，给个说法。" * 2
    groups = near_duplicate_groups([base, other, edited, chained, "", "水"])
    assert groups[0] == groups[2] == groups[3]
    assert len({groups[0], groups[1], groups[4], groups[5]}) == 4


def test_precut_copies_finds_the_cut_form_of_a_raw_letter():
    """The raw topic letters reappear in the pre-cut training file, cut and without stop
    words, which trigram similarity misses; token containment finds them."""
    from classify.build_models import precut_copies
    from classify.text import prepare, prepare_chars

    letters = [
        ("物业违规收费", "我们小区的物业公司违规收取停车费，业主多次反映都没有人处理。"),
        ("学校补课", "孩子所在的学校违规收取补课费，家长的负担很重，希望教育局调查。"),
    ]
    raw = [prepare_chars(a, b) for a, b in letters]
    precut = [prepare(*letters[1]), prepare("公交线路", "早高峰公交太挤，建议增加班次。")]
    np.testing.assert_array_equal(precut_copies(raw, precut), [True, False])
    np.testing.assert_array_equal(precut_copies(raw[:1], precut), [False, False])


def test_counts_are_the_same_however_the_batch_is_chunked(monkeypatch):
    """Character n-grams are keyed in runs of about _CHAR_CHUNK_CHARS characters: any
    run length (one text per run, one run for all) gives the same matrix."""
    import classify.hashing as hashing

    docs = [t * k for k, (t, _) in enumerate(LETTERS * 4, start=1)] + ["", "水"]
    params = {"n_bits": 20, "word_ngrams": None, "char_ngrams": (1, 3), "drop_nonword": True}
    want = hashed_counts(docs, **params)
    for chars in (1, 50, 400, 10**9):
        monkeypatch.setattr(hashing, "_CHAR_CHUNK_CHARS", chars)
        got = hashed_counts(docs, **params)
        assert (got != want).nnz == 0 and np.array_equal(got.indptr, want.indptr)
    assert hashing._chunk_edges([], 5) == [0, 0]
    assert hashing._chunk_edges(["ab"] * 3, 1) == [0, 1, 2, 3]
