"""Scoring fitted models without the scikit-learn meta-estimator machinery.

Why: at inference the shipped models spend a large part of their time not
in arithmetic but in scikit-learn's wrappers (``Pipeline``,
``FeatureUnion``, ``ColumnTransformer``, ``StackingClassifier``,
``CalibratedClassifierCV``): parameter and fitted checks, estimator tags,
``set_output`` wrapping, joblib's sequential dispatch, a pandas frame
for the rumour model's columns.  That is a fixed cost of several
milliseconds per call, about 15 us a letter in batches of 500 and most of
the time of a one-message call.

:func:`compile_model` walks a fitted model once, at load, and returns a
plain function of the prepared texts (and, for the rumour model, the
metadata columns) that performs *the same numerical operations in the same
order* on the same fitted arrays: the same ``HashedNgrams`` /
``HashedTfidf`` transforms (so the tagger's shared n-gram count is used),
the same sparse products ``X @ coef_.T + intercept_``, the same
``expit`` / ``softmax`` / Platt sigmoid calls, the same stacking of the
first layer's probabilities, so the probabilities are equal to the
Pipeline's (tested, bit for bit on the shipped models).  Leaf estimators
whose own ``predict_proba`` is cheap per batch (gradient boosting, the
stack's final logistic regression, ``LogCountScaler``) are called as they
are.

Only the shapes built by :mod:`classify.pipelines` are recognised (and
only where every detail matches: sigmoid calibration, no transformer
weights, sparse text output, ``drop`` remainders …); for anything else
(user-trained models of another shape, word-n-gram models, future
scikit-learn internals) it returns None and the caller keeps using the
model's own ``predict_proba``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp
from scipy.special import expit
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier, StackingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline
from sklearn.preprocessing import FunctionTransformer, LabelEncoder
from sklearn.svm import LinearSVC
from sklearn.utils.extmath import softmax

from classify.features import (
    _RUMOUR_GROUPS,
    LogCountScaler,
    _as_texts,
    _group_counts,
    rumour_cue_counts,
)
from classify.forward import ForwardCalibratedClassifier, _logit
from classify.hashing import (
    ColumnUnion,
    HashedNgrams,
    HashedTfidf,
    SharedCount,
    params_key,
    shared_count,
)
from classify.topic_head import HeadTfidf

try:  # private: another scikit-learn may lack it, and then nothing calibrated is compiled
    from sklearn.calibration import _SigmoidCalibration
except ImportError:  # pragma: no cover - depends on the installed scikit-learn
    _SigmoidCalibration = None

__all__ = ["FusedTfidf", "Scorer", "compile_model", "compile_models"]

#: Input of a compiled step: the prepared texts and the metadata columns by name.
Inputs = tuple[Sequence[str], Mapping[str, Sequence[Any]]]
Features = Callable[[Inputs], Any]
#: A compiled model: inputs -> probabilities (n_samples x n_classes), as predict_proba.
Scorer = Callable[[Sequence[str], Mapping[str, Sequence[Any]]], np.ndarray]

#: The column the pipelines read the prepared text from (``classify.pipelines``).
TEXT_COLUMN = "tokens"


class _Unsupported(Exception):
    """A part of the model this module does not reproduce exactly."""


def compile_model(model: Any, fused: FusedTfidf | None = None) -> Scorer | None:
    """A function giving ``model.predict_proba``'s result without the wrappers, or None.

    Text models (topic, urgency) read the texts alone; the rumour model also
    reads ``meta[name]`` for its metadata columns.  None means "use the
    model itself".  With ``fused`` (:func:`compile_models`) its hashed
    TF-IDF -> linear layers are scored with other models' in one product.
    """
    try:
        proba = _classifier(model, text_input=True, fused=fused)
    except (_Unsupported, AttributeError, TypeError):  # also internals of another version
        return None

    def score(texts: Sequence[str], meta: Mapping[str, Sequence[Any]] | None = None) -> np.ndarray:
        try:
            return proba((texts, meta or {}))
        except _Unsupported:  # an input it was not built for (checked before any result)
            if meta:
                return model.predict_proba(pd.DataFrame({TEXT_COLUMN: texts, **meta}))
            return model.predict_proba(list(texts))

    return score


def _require(ok: bool) -> None:
    if not ok:
        raise _Unsupported


def _steps(pipe: Pipeline) -> list[Any]:
    _require(type(pipe) is Pipeline)
    steps = [s for _, s in pipe.steps]
    _require(all(s is not None and not isinstance(s, str) for s in steps))
    return steps


# -- classifiers: inputs -> probabilities -----------------------------------------


def _classifier(model: Any, text_input: bool, fused: FusedTfidf | None = None) -> Features:
    if type(model) is ForwardCalibratedClassifier:
        return _forward(model, text_input, fused)
    if type(model) is Pipeline:
        steps = _steps(model)
        if len(steps) == 1:
            return _classifier(steps[0], text_input, fused)
        _require(len(steps) == 2)
        if fused is not None:
            try:
                blocks = _blocks(steps[0], text_input)
                return _on_matrix(steps[1], fused.decision(blocks))
            except _Unsupported:  # not TF-IDF blocks under a linear layer: as below
                pass
        features = _features(steps[0], text_input)
        head = _on_matrix(steps[1])
        return lambda x: head(features(x))
    if type(model) is StackingClassifier:
        return _stacking(model, text_input, fused)
    raise _Unsupported


def _forward(
    model: ForwardCalibratedClassifier, text_input: bool, fused: FusedTfidf | None
) -> Features:
    """``ForwardCalibratedClassifier.predict_proba``: the Platt map on the inner probability."""
    _require(hasattr(model, "estimator_") and len(model.classes_) == 2)
    inner = _classifier(model.estimator_, text_input, fused)
    a, b = model.a_, model.b_

    def proba(x: Inputs) -> np.ndarray:
        raw = inner(x)[:, 1]
        identity = a == 1.0 and b == 0.0
        pos = raw if identity else 1.0 / (1.0 + np.exp(-(a * _logit(raw) + b)))
        return np.column_stack([1.0 - pos, pos])

    return proba


def _stacking(model: StackingClassifier, text_input: bool, fused: FusedTfidf | None) -> Features:
    """``StackingClassifier.predict_proba`` for a binary stack of probability estimators."""
    _require(
        hasattr(model, "estimators_")
        and not model.passthrough
        and len(model.classes_) == 2
        and type(model._label_encoder) is LabelEncoder
        and all(m == "predict_proba" for m in model.stack_method_)
        and all(not isinstance(e, str) for e in model.estimators_)
    )
    first = [_classifier(e, text_input, fused) for e in model.estimators_]
    final = model.final_estimator_
    _require(type(final) in (LogisticRegression, HistGradientBoostingClassifier))

    def proba(x: Inputs) -> np.ndarray:
        # Binary probabilities: the first column is dropped (as _concatenate_predictions).
        meta = np.concatenate([f(x)[:, 1:] for f in first], axis=1)
        return final.predict_proba(meta)

    return proba


#: Builds a linear classifier's decision function: its input -> decision values.
DecisionOf = Callable[[Any], Callable[[Any], np.ndarray]]


def _on_matrix(clf: Any, decision_of: DecisionOf | None = None) -> Callable[[Any], np.ndarray]:
    """The final step of a pipeline: feature matrix -> probabilities.

    ``decision_of`` (default :func:`_linear`, reading the feature matrix)
    gives the linear layers' decision functions; :meth:`FusedTfidf.decision`
    gives ones that read the pipeline's inputs instead.
    """
    if type(clf) is LogisticRegression:
        decision = (decision_of or _linear)(clf)
        if len(clf.classes_) <= 2:

            def binary(X: Any) -> np.ndarray:
                prob = decision(X)
                prob = expit(prob, out=prob)
                _require(prob.ndim == 1)
                return np.stack([1 - prob, prob], axis=1)

            return binary
        return lambda X: softmax(decision(X), copy=False)
    if type(clf) is CalibratedClassifierCV:
        return _calibrated(clf, decision_of or _linear)
    if type(clf) is HistGradientBoostingClassifier:
        _require(decision_of is None and hasattr(clf, "_predictors"))
        return _boosted_trees(clf)
    raise _Unsupported


def _boosted_trees(clf: HistGradientBoostingClassifier) -> Callable[[Any], np.ndarray]:
    """``predict_proba`` of a binary gradient-boosting model on numeric features: every
    tree walked at once.

    Why: scikit-learn calls each tree's predictor on the batch in turn (100
    calls of the rumour model's metadata half, each with its own checks and
    thread set-up: ~5 us a letter).  Here the trees' nodes are stacked into
    one table (a leaf points to itself), all (row, tree) positions step down
    together, one level at a time, with the same comparisons (``x <=
    threshold`` goes left, NaN goes where the node says), and the leaf values
    are added in tree order after the baseline, as ``_raw_predict`` adds
    them: the same raw scores to the last bit, then the model's own link.
    """
    _require(
        clf.n_trees_per_iteration_ == 1
        and getattr(clf, "_preprocessor", None) is None
        and (clf.is_categorical_ is None or not np.any(clf.is_categorical_))
        and clf._baseline_prediction.shape == (1, 1)
        and all(len(it) == 1 for it in clf._predictors)
    )
    trees = [it[0].nodes for it in clf._predictors]
    _require(all(not t["is_categorical"].any() for t in trees))
    sizes = [len(t) for t in trees]
    starts = np.cumsum([0, *sizes])
    nodes = np.concatenate(trees)
    leaf = nodes["is_leaf"].astype(bool)
    own = np.arange(len(nodes))
    base = np.repeat(starts[:-1], sizes)
    # child[2 i] / child[2 i + 1]: where node i sends a row going left / right.
    child = np.empty(2 * len(nodes), dtype=np.intp)
    child[0::2] = np.where(leaf, own, nodes["left"].astype(np.intp) + base)
    child[1::2] = np.where(leaf, own, nodes["right"].astype(np.intp) + base)
    feature = np.where(leaf, 0, nodes["feature_idx"]).astype(np.intp)
    threshold = np.where(leaf, np.inf, nodes["num_threshold"])
    nan_right = ~nodes["missing_go_to_left"].astype(bool)
    value = nodes["value"].astype(np.float64)
    depth = int(nodes["depth"].max())
    roots = starts[:-1].astype(np.intp)
    n_features = int(clf.n_features_in_)
    baseline = float(clf._baseline_prediction[0, 0])
    link = clf._loss.predict_proba

    def proba(X: Any) -> np.ndarray:
        _require(
            isinstance(X, np.ndarray) and X.ndim == 2 and X.shape[1] == n_features
        )  # else the model's own checks and messages
        n = X.shape[0]
        flat = np.ascontiguousarray(X, dtype=np.float64).ravel()
        row = (np.arange(n, dtype=np.intp) * n_features)[:, None]
        node = np.repeat(roots[None, :], n, axis=0)
        for _ in range(depth):
            x = flat.take(row + feature.take(node))
            right = x > threshold.take(node)  # not (x <= threshold); NaN: below
            nan = np.isnan(x)
            if nan.any():
                right = np.where(nan, nan_right.take(node), right)
            node = child.take(2 * node + right)
        leaves = np.empty((n, len(trees) + 1))
        leaves[:, 0] = baseline
        value.take(node, out=leaves[:, 1:])
        # Sequential sums (add.accumulate), as _raw_predict adds one tree at a time.
        raw = np.add.accumulate(leaves, axis=1)[:, -1:]
        return link(np.asfortranarray(raw))

    return proba


def _linear(clf: Any) -> Callable[[Any], np.ndarray]:
    """``LinearClassifierMixin.decision_function`` on a CSR matrix (the shipped inputs)."""
    _require(hasattr(clf, "coef_") and clf.coef_.ndim == 2)
    # C-ordered once: scipy copies a transposed view into a contiguous array on
    # every product (5.6 MB for the topic SVM, per batch); same values, same sums.
    coef_t = np.ascontiguousarray(clf.coef_.T)
    intercept = clf.intercept_

    def decision(X: Any) -> np.ndarray:
        _require(sp.issparse(X) and X.format == "csr" and X.shape[1] == coef_t.shape[0])
        scores = X @ coef_t + intercept
        if isinstance(scores, np.matrix):  # pragma: no cover - sparse matrix @ ndarray
            scores = np.asarray(scores)
        return scores.reshape(-1) if scores.shape[1] == 1 else scores

    return decision


def _calibrated(
    model: CalibratedClassifierCV, decision_of: DecisionOf
) -> Callable[[Any], np.ndarray]:
    """``CalibratedClassifierCV.predict_proba`` with sigmoid calibrators over linear SVMs
    or logistic regressions (their decision function, as ``_get_response_values``)."""
    _require(hasattr(model, "calibrated_classifiers_"))
    members = []
    for cal in model.calibrated_classifiers_:
        _require(_SigmoidCalibration is not None and cal.method == "sigmoid")
        _require(type(cal.estimator) in (LinearSVC, LogisticRegression))
        _require(all(type(c) is _SigmoidCalibration for c in cal.calibrators))
        classes = np.asarray(cal.classes)
        positions = LabelEncoder().fit(classes).transform(cal.estimator.classes_)
        _require(np.array_equal(classes, model.classes_))
        members.append((decision_of(cal.estimator), positions, cal.calibrators, len(classes)))
    n_members = len(members)
    _require(n_members > 0)

    def proba(X: Any) -> np.ndarray:
        mean = None
        for decision, positions, calibrators, n_classes in members:
            pred = decision(X)
            if pred.ndim == 1:
                pred = pred.reshape(-1, 1)
            n = pred.shape[0]  # X may be the pipeline's inputs (FusedTfidf.decision)
            if mean is None:
                mean = np.zeros((n, len(model.classes_)))
            out = np.zeros((n, n_classes))
            for class_idx, this_pred, c in zip(positions, pred.T, calibrators, strict=False):
                if n_classes == 2:
                    class_idx += 1
                out[:, class_idx] = expit(-(c.a_ * this_pred + c.b_))
            if n_classes == 2:
                out[:, 0] = 1.0 - out[:, 1]
            else:
                denominator = np.sum(out, axis=1)[:, np.newaxis]
                uniform = np.full_like(out, 1 / n_classes)
                out = np.divide(out, denominator, out=uniform, where=denominator != 0)
            out[(out > 1.0) & (out <= 1.0 + 1e-5)] = 1.0
            mean += out
        assert mean is not None  # members is not empty (required above)
        mean /= n_members
        return mean

    return proba


# -- features: inputs -> matrix ---------------------------------------------------


def _features(step: Any, text_input: bool) -> Features:
    """A feature step fed the whole input (texts, or for ColumnTransformer the columns)."""
    if type(step) is ColumnTransformer:
        return _columns(step)
    _require(text_input)
    return _text_features(step)


def _text_features(step: Any) -> Features:
    """A step fed the texts: hashed TF-IDF, a FeatureUnion of such steps, a function."""
    if type(step) is Pipeline:
        ngrams, tfidf = _tfidf_steps(step)
        return lambda x: tfidf.transform(ngrams.transform(x[0]))
    if type(step) is FeatureUnion:
        _require(
            step.transformer_weights is None
            and all(not isinstance(t, str) for _, t in step.transformer_list)
        )
        parts = [_text_features(t) for _, t in step.transformer_list]

        def union(x: Inputs) -> Any:
            Xs = [f(x) for f in parts]
            if any(sp.issparse(f) for f in Xs):
                return sp.hstack(Xs).tocsr()
            return np.hstack(Xs)

        return union
    if type(step) is FunctionTransformer:
        func = _function(step)
        return lambda x: func(x[0])
    if type(step) is HeadTfidf:  # the topic model's title block: its own small count
        _require(hasattr(step, "tfidf_"))
        return lambda x: step.transform(x[0])
    raise _Unsupported


def _tfidf_steps(pipe: Pipeline) -> tuple[HashedNgrams, HashedTfidf]:
    """The two steps of a fitted hashed TF-IDF pipeline (``classify.pipelines.text_features``)."""
    steps = _steps(pipe)
    _require(
        len(steps) == 2
        and type(steps[0]) is HashedNgrams
        and type(steps[1]) is HashedTfidf
        and hasattr(steps[1], "columns_")
    )
    return steps[0], steps[1]


def _function(step: FunctionTransformer) -> Callable[[Any], Any]:
    """``FunctionTransformer.transform`` when it only calls its function."""
    _require(step.func is not None and not step.validate and step.feature_names_out is None)
    kw = dict(step.kw_args or {})
    if step.func is rumour_cue_counts and not kw:
        return _rumour_cue_counts
    return lambda X: step.func(X, **kw)


def _rumour_cue_counts(x: Any) -> sp.csr_matrix:
    """:func:`classify.features.rumour_cue_counts`, its '!'/'?' column's log1p taken once
    for the batch instead of one numpy call per text (~2 us a letter).  The same values:
    log1p of the same whole numbers, as float64 (tested)."""
    texts = _as_texts(x)
    base = _group_counts(texts, _RUMOUR_GROUPS).toarray()
    marks = np.array(
        [t.count("!") + t.count("！") + t.count("?") + t.count("？") for t in texts],
        dtype=np.float64,
    )
    return sp.csr_matrix(np.hstack([base, np.log1p(marks).reshape(len(texts), 1)]))


def _columns(ct: ColumnTransformer) -> Features:
    """``ColumnTransformer.transform`` for the rumour halves: the text column, metadata columns."""
    _require(hasattr(ct, "transformers_") and ct.transformer_weights is None)
    parts: list[Features] = []
    for _name, trans, cols in ct.transformers_:
        if isinstance(trans, str):
            _require(trans == "drop")
            continue
        if cols == TEXT_COLUMN:
            parts.append(_text_features(trans))
        elif isinstance(cols, list) and cols and all(isinstance(c, str) for c in cols):
            parts.append(_meta_features(trans, list(cols)))
        else:
            raise _Unsupported
    sparse_out = bool(ct.sparse_output_)

    def transform(x: Inputs) -> Any:
        Xs = [f(x) for f in parts]
        if sparse_out:
            if len(Xs) == 1 and sp.issparse(Xs[0]) and Xs[0].format == "csr":
                return Xs[0]  # hstack of one CSR matrix: the same matrix
            return sp.hstack([X if sp.issparse(X) else sp.csr_matrix(X) for X in Xs]).tocsr()
        return np.hstack([X.toarray() if sp.issparse(X) else X for X in Xs])

    return transform


def _meta_features(step: Any, cols: list[str]) -> Features:
    """to_float then LogCountScaler over the metadata columns (an object matrix of the cells,
    the values ``DataFrame.to_numpy`` gives ``to_float``)."""
    steps = _steps(step)
    _require(
        len(steps) == 2
        and type(steps[0]) is FunctionTransformer
        and type(steps[1]) is LogCountScaler
    )
    func = _function(steps[0])
    scaler = steps[1]

    def transform(x: Inputs) -> np.ndarray:
        texts, meta = x
        n = len(texts)
        cells = np.empty((n, len(cols)), dtype=object)
        for j, c in enumerate(cols):
            column = meta.get(c)
            cells[:, j] = [None] * n if column is None else list(column)
        return scaler.transform(func(cells))

    return transform


# -- several models' TF-IDF layers in one product ----------------------------------


def compile_models(
    models: Mapping[str, Any], unions: Mapping[tuple[tuple[str, object], ...], Any] | None = None
) -> dict[str, Scorer | None]:
    """:func:`compile_model` for each model, their hashed TF-IDF -> linear layers fused.

    Why: the three shipped models read the batch's one shared n-gram count,
    each through its own IDF, L2 row normalisation and linear layer: three
    new sparse matrices a batch (``HashedTfidf.transform``) and three sparse
    products.  A linear layer over a normalised IDF-weighted row is

        x @ W = (c * idf) @ W / ||c * idf|| = c @ (idf * W) / sqrt(c**2 @ idf**2),

    so one product of the shared count (in the union's column numbering,
    :class:`classify.hashing.ColumnUnion`) with the models' ``idf * W``
    stacked side by side, and one of its squares with their ``idf**2``,
    give every model's TF-IDF block at once (:class:`FusedTfidf`).  The
    other blocks beside it (the topic model's head block, the urgency cue
    counts) are multiplied by their own rows of the weights and added.
    Same probabilities up to the order of float summation (float64 here,
    float32 in the pipelines): within 1e-6, tested.  Outside a
    :func:`classify.hashing.shared_batch` of those unions (or for models of
    other shapes) each model is scored as :func:`compile_model` does.
    """
    fused = FusedTfidf(unions or {})
    return {task: compile_model(model, fused) for task, model in models.items()}


class _Block(NamedTuple):
    """One feature block of a FeatureUnion / ColumnTransformer, as the linear layer reads it."""

    width: int | None  # columns of the block (None: a function's, the rest of the weights)
    features: Features | None  # inputs -> matrix (None for a hashed TF-IDF block)
    tfidf: tuple[HashedNgrams, HashedTfidf] | None  # the hashed TF-IDF steps, or None


def _blocks(step: Any, text_input: bool) -> list[_Block]:
    """The feature blocks of a pipeline's feature step, in column order, if it is a
    FeatureUnion or ColumnTransformer over the texts (anything else: unsupported)."""
    if type(step) is FeatureUnion:
        _require(text_input and step.transformer_weights is None)
        parts = [t for _, t in step.transformer_list]
        _require(all(not isinstance(t, str) for t in parts))
    elif type(step) is ColumnTransformer:
        _require(hasattr(step, "transformers_") and step.transformer_weights is None)
        parts = []
        for _name, trans, cols in step.transformers_:
            if isinstance(trans, str):
                _require(trans == "drop")
                continue
            _require(cols == TEXT_COLUMN)  # metadata blocks: the ordinary path
            parts.append(trans)
    else:
        raise _Unsupported
    blocks = []
    for part in parts:
        if type(part) is Pipeline:
            ngrams, tfidf = _tfidf_steps(part)
            blocks.append(_Block(len(tfidf.idf_), None, (ngrams, tfidf)))
        elif type(part) is HeadTfidf:
            _require(hasattr(part, "tfidf_"))
            blocks.append(_Block(len(part.tfidf_.idf_), _text_features(part), None))
        else:
            blocks.append(_Block(None, _text_features(part), None))
    _require(bool(blocks) and sum(b.width is None for b in blocks) <= 1)
    return blocks


def _dot(X: Any, W: np.ndarray) -> np.ndarray:
    """A block's matrix times its rows of the weights (checked: else the model's own path)."""
    _require(X.ndim == 2 and X.shape[1] == W.shape[0])
    if sp.issparse(X):
        _require(X.format == "csr")
    out = X @ W
    return np.asarray(out) if isinstance(out, np.matrix) else out


#: Batches from this many rows are multiplied column-major (FusedTfidf._score): below
#: it, converting (a pass over the ~175k union columns) costs more than it saves.
_COLUMN_MAJOR_ROWS = 32


class FusedTfidf:
    """The hashed TF-IDF -> linear terms of several models, scored in one product a batch.

    Each term is a model's :class:`HashedTfidf` and the rows of its linear
    weights that read it.  Per HashedNgrams parameter set whose
    :class:`classify.hashing.ColumnUnion` holds every term's columns, a
    (union x all terms' outputs) matrix of ``idf * W`` and a (union x terms)
    matrix of ``idf**2`` are built at the first batch; within a
    :func:`classify.hashing.shared_batch` the batch's count (its entries'
    union numbers) is multiplied by both once, and each term divides its
    columns by its row norms.  Otherwise (no batch, other texts, a term
    outside the union) a term is computed as the pipeline does.
    """

    def __init__(self, unions: Mapping[tuple[tuple[str, object], ...], Any]) -> None:
        self._unions = unions
        # params key -> the terms (tfidf, weights) of that HashedNgrams parameter set.
        self._terms: dict[tuple[tuple[str, object], ...], list[tuple[HashedTfidf, np.ndarray]]] = {}
        # params key -> (number of terms it was built for, idf * W, idf**2, column offsets).
        self._tables: dict[tuple[tuple[str, object], ...], tuple[int, Any, Any, list[int]]] = {}

    def decision(self, blocks: list[_Block]) -> DecisionOf:
        """For :func:`_on_matrix`: a linear classifier -> decision values from the inputs."""

        def decision_of(clf: Any) -> Callable[[Any], np.ndarray]:
            _require(hasattr(clf, "coef_") and clf.coef_.ndim == 2)
            coef_t = clf.coef_.T
            known = sum(b.width for b in blocks if b.width is not None)
            _require(known <= coef_t.shape[0])
            parts: list[Callable[[Inputs], np.ndarray]] = []
            start = 0
            for block in blocks:
                width = coef_t.shape[0] - known if block.width is None else block.width
                W = np.ascontiguousarray(coef_t[start : start + width])
                start += width
                if block.tfidf is not None:
                    term = self.term(*block.tfidf, W)
                    parts.append(lambda x, term=term: term(x[0]))
                else:
                    features = block.features
                    assert features is not None
                    parts.append(lambda x, f=features, W=W: _dot(f(x), W))
            _require(start == coef_t.shape[0])
            intercept = clf.intercept_

            def decision(x: Inputs) -> np.ndarray:
                scores = parts[0](x)
                for part in parts[1:]:
                    scores = scores + part(x)
                scores = scores + intercept
                return scores.reshape(-1) if scores.shape[1] == 1 else scores

            return decision

        return decision_of

    def term(
        self, ngrams: HashedNgrams, tfidf: HashedTfidf, W: np.ndarray
    ) -> Callable[[Sequence[str]], np.ndarray]:
        """texts -> ``tfidf.transform(ngrams.transform(texts)) @ W`` (float64)."""

        def plain(texts: Sequence[str]) -> np.ndarray:
            return _dot(tfidf.transform(ngrams.transform(texts)), W).astype(np.float64)

        params = ngrams.params()
        key = params_key(params)
        union = self._unions.get(key)
        if (
            not isinstance(union, ColumnUnion)
            or len(tfidf.columns_) != len(union.mask)
            or not union.mask[tfidf.columns_ >= 0].all()
        ):
            return plain
        terms = self._terms.setdefault(key, [])
        index = len(terms)
        terms.append((tfidf, W))

        def fused(texts: Sequence[str]) -> np.ndarray:
            shared = shared_count(texts, params)
            if shared is None or shared.numbers is None or shared.numbers[0] is not union:
                return plain(texts)
            hit = shared.memo.get(id(self))
            if hit is None or hit[0] is not self:
                hit = shared.memo[id(self)] = (self, {})
            scored: dict = hit[1]  # type: ignore[assignment]
            if key not in scored:  # the first term of this parameter set in the batch
                scored[key] = self._score(key, union, shared)
            parts, norms, offsets = scored[key]
            out = parts[:, offsets[index] : offsets[index + 1]]
            norm = norms[:, index]
            if shared.rows is not None:
                out, norm = out[shared.rows], norm[shared.rows]
            return out / norm[:, None]

        return fused

    def _table(self, key: tuple[tuple[str, object], ...], union: ColumnUnion) -> tuple:
        """(terms, idf * W stacked, idf**2 stacked, column offsets), built once for the terms."""
        terms = self._terms[key]
        table = self._tables.get(key)
        if table is None or table[0] != len(terms):
            offsets = [0]
            for _, W in terms:
                offsets.append(offsets[-1] + W.shape[1])
            weights = np.zeros((len(union.cols), offsets[-1]), dtype=np.float64)
            squares = np.zeros((len(union.cols), len(terms)), dtype=np.float64)
            for j, (tfidf, W) in enumerate(terms):
                cols = union.table(tfidf)
                kept = np.flatnonzero(cols >= 0)
                idf = tfidf.idf_[cols[kept]].astype(np.float64)
                weights[kept, offsets[j] : offsets[j + 1]] = idf[:, None] * W[cols[kept]]
                squares[kept, j] = idf * idf
            table = self._tables[key] = (len(terms), weights, squares, offsets)
        return table

    def _score(
        self, key: tuple[tuple[str, object], ...], union: ColumnUnion, shared: SharedCount
    ) -> tuple[np.ndarray, np.ndarray, list[int]]:
        """(count @ idf*W for every term, L2 norm of every term's IDF-weighted rows (1 if 0),
        each term's first column in the former and one past its last)."""
        _, weights, squares, offsets = self._table(key, union)
        X = shared.matrix
        numbers = shared.numbers[1]  # type: ignore[index]
        shape = (X.shape[0], len(union.cols))
        data = X.data.astype(np.float64)
        # Column-major: each row of the (union x outputs) tables, ~17 MB, is then read
        # once, in order, for all the rows that have it, instead of at random once per
        # entry (a cache miss each).  Every output row still adds its entries in
        # column order, as the row-major product does: the same sums to the last bit.
        # The conversion costs a pass over the union's columns: not for a few rows.
        counts = sp.csr_matrix((data, numbers, X.indptr), shape=shape)
        if X.shape[0] >= _COLUMN_MAJOR_ROWS:
            counts = counts.tocsc()
        parts = counts @ weights
        counts.data *= counts.data
        norms = counts @ squares
        np.sqrt(norms, out=norms)
        norms[norms == 0] = 1.0  # no kept column: the block is empty, its product 0
        return parts, norms, offsets
