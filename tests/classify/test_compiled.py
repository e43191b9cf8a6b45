"""The compiled scorers give exactly the probabilities of the models' own predict_proba."""

from __future__ import annotations

import csv
import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from classify.compiled import compile_model
from classify.hashing import shared_batch
from classify.pipelines import RUMOUR_META, text_features
from classify.tagger import Tagger, Tagging
from classify.text import prepare_chars

LETTERS = [
    ("小区燃气泄漏", "今天早上闻到很浓的燃气味，楼道里有人晕倒，请尽快派人处理！"),
    ("公交线路建议", "建议增加 12 路公交车的班次，早高峰太挤了。谢谢！"),
    ("工资拖欠", "我们在工地干了半年，老板拖欠工资三个月，至今没有发放，请劳动部门帮忙。"),
    ("", "据说明天自来水有毒，千万不要喝，转发扩散！！"),
    ("辟谣", "网传超市鸡蛋是假的，经核实为不实信息。"),
    ("ＡＢＣ１２３", "全角字母和数字？http://example.com @某人 [哈哈] 😀"),
    ("學校食堂", "孩子在學校食堂吃飯後腹瀉，希望衛生部門檢查。"),
    ("短", "哈"),
]


def _prepared(row: dict[str, str]) -> str:
    title = row.get("留言主题") or row.get("title")
    return prepare_chars(title, row.get("留言详情") or row.get("text") or row.get("body"))


def _texts(fixtures_dir) -> list[str]:
    out = [prepare_chars(a, b) for a, b in LETTERS]
    for name in ("topic_small.csv", "urgency_small.csv", "rumour_small.csv"):
        with open(fixtures_dir / name, encoding="utf-8") as fh:
            out.extend(_prepared(row) for row in csv.DictReader(fh))
    assert len(out) > 80
    return [t for t in out if t]


def _meta(n: int) -> dict[str, list[object]]:
    """Metadata cells as callers give them: ints, None, numeric and boolean strings, bools."""
    rng = np.random.default_rng(1)
    return {
        "reposts": [int(v) for v in rng.integers(0, 50_000, n)],
        "comments": [None if i % 3 == 0 else i for i in range(n)],
        "likes": [0] * n,
        "followers": [str(i * 37) if i % 4 else "" for i in range(n)],
        "verified": [["true", False, True, None][i % 4] for i in range(n)],
    }


def _assert_same(models: dict, texts: list[str]) -> None:
    meta = _meta(len(texts))
    for task, model in models.items():
        scorer = compile_model(model)
        assert scorer is not None, task
        if task == "rumour":
            ref = model.predict_proba(pd.DataFrame({"tokens": texts, **meta}))
            got = scorer(texts, meta)
        else:
            ref = model.predict_proba(texts)
            got = scorer(texts, {})
        assert got.shape == ref.shape
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
        # Same operations in the same order: equal to the last bit.
        assert np.array_equal(got, ref), task


def test_tiny_models_score_the_same(tiny_model_dir, fixtures_dir):
    _assert_same(Tagger.load(tiny_model_dir).models, _texts(fixtures_dir))


def test_shipped_models_score_the_same(fixtures_dir):
    _assert_same(Tagger.load_default().models, _texts(fixtures_dir))


def test_same_inside_a_shared_batch(fixtures_dir):
    """Inside the tagger the n-gram count is shared; the result must not change."""
    tagger = Tagger.load_default()
    texts = _texts(fixtures_dir)
    ref = tagger.models["urgency"].predict_proba(texts)
    with shared_batch(texts, tagger._useful):
        got = compile_model(tagger.models["urgency"])(texts, {})  # type: ignore[misc]
    assert np.array_equal(got, ref)


def _tag_both(tagger: Tagger, rows: list[dict]) -> tuple[list[Tagging], list[Tagging]]:
    fast = tagger.tag_rows(rows)
    saved = tagger._compiled
    tagger._compiled = dict.fromkeys(saved)  # every model through its own predict_proba
    try:
        slow = tagger.tag_rows(rows)
    finally:
        tagger._compiled = saved
    return fast, slow


@pytest.mark.parametrize("shipped", [True, False])
def test_tagger_outputs_equal_pipeline_path(shipped, tiny_model_dir, fixtures_dir):
    tagger = Tagger.load_default() if shipped else Tagger.load(tiny_model_dir)
    assert all(c is not None for c in tagger._compiled.values())
    meta = _meta(len(LETTERS) * 3)
    rows = [
        {
            "title": a,
            "body": b,
            "rumour": k % 3 != 0,
            "has_reply": k % 5 == 0,
            **{key: meta[key][k] for key in RUMOUR_META},
        }
        for k, (a, b) in enumerate(LETTERS * 3)
    ]
    fast, slow = _tag_both(tagger, rows)
    assert fast == slow
    assert any(t.rumour_score is not None for t in fast)


def _fit_texts(fixtures_dir) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    with open(fixtures_dir / "topic_small.csv", encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            texts.append(_prepared(row))
            labels.append(row["一级标签"])
    return texts, labels


def test_other_shapes_fall_back(fixtures_dir):
    """Models the compiler does not know give None, and the tagger uses predict_proba."""
    from sklearn.feature_extraction.text import TfidfVectorizer

    texts, labels = _fit_texts(fixtures_dir)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        vocab = Pipeline([("v", TfidfVectorizer(analyzer="char")), ("clf", LogisticRegression())])
        isotonic = Pipeline(
            [
                ("features", text_features(min_df=1, max_df=1.0)),
                ("clf", CalibratedClassifierCV(LinearSVC(), method="isotonic", cv=2)),
            ]
        )
        for model in (vocab, isotonic):
            model.fit(texts, labels)
            assert compile_model(model) is None
    tagger = Tagger.load_default()
    tagger.models["topic"] = vocab
    tagger._compiled["topic"] = compile_model(vocab)
    out = tagger.tag_rows([{"title": "公交", "body": "公交车太挤了"}])
    assert out[0].topic in set(labels) | {None}
    assert out[0].topic_score is not None


def test_sigmoid_calibration_of_logistic_regression_is_compiled(fixtures_dir):
    texts, labels = _fit_texts(fixtures_dir)
    model = Pipeline(
        [
            ("features", text_features(min_df=1, max_df=1.0)),
            (
                "clf",
                CalibratedClassifierCV(LogisticRegression(), method="sigmoid", cv=2, ensemble=True),
            ),
        ]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model.fit(texts, labels)
    scorer = compile_model(model)
    assert scorer is not None
    assert np.array_equal(scorer(texts, {}), model.predict_proba(texts))


def test_input_it_was_not_built_for_falls_back_at_call_time(fixtures_dir):
    """A compiled linear step given a dense matrix hands the call to the model itself."""
    from sklearn.preprocessing import FunctionTransformer

    from classify.features import to_float

    texts, labels = _fit_texts(fixtures_dir)
    texts = [str(len(t) % 7) for t in texts]  # numeric strings: to_float reads them
    model = Pipeline([("f", FunctionTransformer(to_float)), ("clf", LogisticRegression())])
    model.fit(texts, labels)
    scorer = compile_model(model)
    assert scorer is not None
    assert np.array_equal(scorer(texts, {}), model.predict_proba(texts))


def _fused_scores(tagger: Tagger, texts: list[str], meta: dict, rows: list[int]) -> dict:
    """The tagger's fused scorers inside a shared batch (rumour: a subset of the rows)."""
    sub = [texts[i] for i in rows]
    sub_meta = {k: [v[i] for i in rows] for k, v in meta.items()}
    with shared_batch(texts, tagger._useful):
        return {
            "topic": tagger._compiled["topic"](texts, {}),  # type: ignore[misc]
            "urgency": tagger._compiled["urgency"](texts, {}),  # type: ignore[misc]
            "rumour": tagger._compiled["rumour"](sub, sub_meta),  # type: ignore[misc]
        }


@pytest.mark.parametrize("shipped", [True, False])
def test_fused_tfidf_layers_equal_each_pipeline(shipped, tiny_model_dir, fixtures_dir):
    """The three TF-IDF -> linear layers scored in one product (compile_models) give each
    pipeline's predict_proba within 1e-6 (only the order of float summation differs),
    the same most likely class, inside the batch and outside it."""
    tagger = Tagger.load_default() if shipped else Tagger.load(tiny_model_dir)
    texts = _texts(fixtures_dir)
    meta = _meta(len(texts))
    rows = list(range(0, len(texts), 3))
    models = tagger.models
    ref = {t: models[t].predict_proba(texts) for t in ("topic", "urgency")}
    frame = pd.DataFrame({"tokens": texts, **meta}).iloc[rows].reset_index(drop=True)
    ref["rumour"] = models["rumour"].predict_proba(frame)
    got = _fused_scores(tagger, texts, meta, rows)
    for task in ref:
        assert got[task].shape == ref[task].shape
        np.testing.assert_allclose(got[task], ref[task], rtol=0, atol=1e-6, err_msg=task)
        assert np.array_equal(got[task].argmax(axis=1), ref[task].argmax(axis=1)), task
    # Outside a batch every term is computed as its pipeline does.
    alone = tagger._compiled["urgency"](texts, {})  # type: ignore[misc]
    np.testing.assert_allclose(alone, ref["urgency"], rtol=0, atol=1e-6)


def test_fused_scoring_runs_one_product_per_batch(fixtures_dir, monkeypatch):
    """Inside the tagger no model builds its own TF-IDF matrix: the fused product serves all."""
    from classify.compiled import FusedTfidf
    from classify.hashing import HashedTfidf

    tagger = Tagger.load_default()
    texts = _texts(fixtures_dir)
    calls = {"score": 0, "tfidf": 0}
    score, transform = FusedTfidf._score, HashedTfidf.transform

    def counted_score(self, *a, **k):
        calls["score"] += 1
        return score(self, *a, **k)

    def counted_transform(self, X):
        calls["tfidf"] += 1
        return transform(self, X)

    monkeypatch.setattr(FusedTfidf, "_score", counted_score)
    monkeypatch.setattr(HashedTfidf, "transform", counted_transform)
    rows = [{"title": "", "body": t, "rumour": True} for t in texts]
    tagger.tag_rows(rows)
    assert calls["score"] == 1
    assert calls["tfidf"] == 1  # the topic model's head block (its own small count)


def test_boosted_trees_walked_at_once_equal_predict_proba():
    """All trees stepped down together give scikit-learn's probabilities to the last bit,
    missing values (NaN, sent where each node learnt) and deep trees included."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    from classify.compiled import _boosted_trees

    rng = np.random.default_rng(3)
    X = rng.normal(size=(600, 5))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(scale=0.5, size=600) > 0).astype(int)
    X[rng.random(X.shape) < 0.1] = np.nan
    for depth in (3, None):
        model = HistGradientBoostingClassifier(max_iter=30, max_depth=depth, random_state=0)
        model.fit(X, y)
        test = rng.normal(size=(300, 5))
        test[rng.random(test.shape) < 0.1] = np.nan
        assert np.array_equal(_boosted_trees(model)(test), model.predict_proba(test))


def test_rumour_cue_counts_batch_log_equals_features(fixtures_dir):
    """The compiled rumour cue features equal classify.features.rumour_cue_counts exactly,
    for texts with none to many '!'/'?' marks (full- and half-width)."""
    from classify.compiled import _rumour_cue_counts
    from classify.features import rumour_cue_counts

    texts = _texts(fixtures_dir) + ["!" * k + "？" * (k // 2) + "据说辟谣" for k in range(300)]
    want, got = rumour_cue_counts(texts), _rumour_cue_counts(texts)
    assert got.shape == want.shape and got.format == want.format == "csr"
    assert np.array_equal(got.toarray(), want.toarray())


def test_fused_product_row_and_column_major_agree(fixtures_dir, monkeypatch):
    """Small batches multiply the count row-major, large ones column-major: both add each
    row's entries in column order, so the probabilities are equal to the last bit."""
    import classify.compiled as compiled

    tagger = Tagger.load_default()
    texts = _texts(fixtures_dir)
    meta = _meta(len(texts))
    rows = list(range(0, len(texts), 2))
    assert len(texts) >= compiled._COLUMN_MAJOR_ROWS
    column_major = _fused_scores(tagger, texts, meta, rows)
    monkeypatch.setattr(compiled, "_COLUMN_MAJOR_ROWS", len(texts) + 1)
    row_major = _fused_scores(tagger, texts, meta, rows)
    for task, got in column_major.items():
        assert np.array_equal(got, row_major[task]), task
