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
from typing import Any

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

from classify.features import LogCountScaler
from classify.forward import ForwardCalibratedClassifier, _logit
from classify.hashing import HashedNgrams, HashedTfidf
from classify.topic_head import HeadTfidf

try:  # private: another scikit-learn may lack it, and then nothing calibrated is compiled
    from sklearn.calibration import _SigmoidCalibration
except ImportError:  # pragma: no cover - depends on the installed scikit-learn
    _SigmoidCalibration = None

__all__ = ["Scorer", "compile_model"]

#: Input of a compiled step: the prepared texts and the metadata columns by name.
Inputs = tuple[Sequence[str], Mapping[str, Sequence[Any]]]
Features = Callable[[Inputs], Any]
#: A compiled model: inputs -> probabilities (n_samples x n_classes), as predict_proba.
Scorer = Callable[[Sequence[str], Mapping[str, Sequence[Any]]], np.ndarray]

#: The column the pipelines read the prepared text from (``classify.pipelines``).
TEXT_COLUMN = "tokens"


class _Unsupported(Exception):
    """A part of the model this module does not reproduce exactly."""


def compile_model(model: Any) -> Scorer | None:
    """A function giving ``model.predict_proba``'s result without the wrappers, or None.

    Text models (topic, urgency) read the texts alone; the rumour model also
    reads ``meta[name]`` for its metadata columns.  None means "use the
    model itself".
    """
    try:
        proba = _classifier(model, text_input=True)
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


def _classifier(model: Any, text_input: bool) -> Features:
    if type(model) is ForwardCalibratedClassifier:
        return _forward(model, text_input)
    if type(model) is Pipeline:
        steps = _steps(model)
        if len(steps) == 1:
            return _classifier(steps[0], text_input)
        _require(len(steps) == 2)
        features = _features(steps[0], text_input)
        head = _on_matrix(steps[1])
        return lambda x: head(features(x))
    if type(model) is StackingClassifier:
        return _stacking(model, text_input)
    raise _Unsupported


def _forward(model: ForwardCalibratedClassifier, text_input: bool) -> Features:
    """``ForwardCalibratedClassifier.predict_proba``: the Platt map on the inner probability."""
    _require(hasattr(model, "estimator_") and len(model.classes_) == 2)
    inner = _classifier(model.estimator_, text_input)
    a, b = model.a_, model.b_

    def proba(x: Inputs) -> np.ndarray:
        raw = inner(x)[:, 1]
        identity = a == 1.0 and b == 0.0
        pos = raw if identity else 1.0 / (1.0 + np.exp(-(a * _logit(raw) + b)))
        return np.column_stack([1.0 - pos, pos])

    return proba


def _stacking(model: StackingClassifier, text_input: bool) -> Features:
    """``StackingClassifier.predict_proba`` for a binary stack of probability estimators."""
    _require(
        hasattr(model, "estimators_")
        and not model.passthrough
        and len(model.classes_) == 2
        and type(model._label_encoder) is LabelEncoder
        and all(m == "predict_proba" for m in model.stack_method_)
        and all(not isinstance(e, str) for e in model.estimators_)
    )
    first = [_classifier(e, text_input) for e in model.estimators_]
    final = model.final_estimator_
    _require(type(final) in (LogisticRegression, HistGradientBoostingClassifier))

    def proba(x: Inputs) -> np.ndarray:
        # Binary probabilities: the first column is dropped (as _concatenate_predictions).
        meta = np.concatenate([f(x)[:, 1:] for f in first], axis=1)
        return final.predict_proba(meta)

    return proba


def _on_matrix(clf: Any) -> Callable[[Any], np.ndarray]:
    """The final step of a pipeline: feature matrix -> probabilities."""
    if type(clf) is LogisticRegression:
        decision = _linear(clf)
        if len(clf.classes_) <= 2:

            def binary(X: Any) -> np.ndarray:
                prob = decision(X)
                prob = expit(prob, out=prob)
                _require(prob.ndim == 1)
                return np.stack([1 - prob, prob], axis=1)

            return binary
        return lambda X: softmax(decision(X), copy=False)
    if type(clf) is CalibratedClassifierCV:
        return _calibrated(clf)
    if type(clf) is HistGradientBoostingClassifier:
        _require(hasattr(clf, "_predictors"))
        return clf.predict_proba
    raise _Unsupported


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


def _calibrated(model: CalibratedClassifierCV) -> Callable[[Any], np.ndarray]:
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
        members.append((_linear(cal.estimator), positions, cal.calibrators, len(classes)))
    n_members = len(members)

    def proba(X: Any) -> np.ndarray:
        mean = np.zeros((X.shape[0], len(model.classes_)))
        for decision, positions, calibrators, n_classes in members:
            pred = decision(X)
            if pred.ndim == 1:
                pred = pred.reshape(-1, 1)
            out = np.zeros((X.shape[0], n_classes))
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
        steps = _steps(step)
        _require(
            len(steps) == 2
            and type(steps[0]) is HashedNgrams
            and type(steps[1]) is HashedTfidf
            and hasattr(steps[1], "columns_")
        )
        ngrams, tfidf = steps
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


def _function(step: FunctionTransformer) -> Callable[[Any], Any]:
    """``FunctionTransformer.transform`` when it only calls its function."""
    _require(step.func is not None and not step.validate and step.feature_names_out is None)
    kw = dict(step.kw_args or {})
    return lambda X: step.func(X, **kw)


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
