"""Forward-chained calibration: rumour scores calibrated on the data that comes *after*.

Rumour posts drift: a model fitted on 2010–2012 Weibo posts gives the
rumours of 2013–2014 lower probabilities than it gave rumours of its own
years (new stories, new wording, likes that barely existed before), and the
rumour share swings from 19 % to 72 % between quarters.  A threshold or
calibration learnt from shuffled or grouped folds sees none of that (it
picked 0.57 and lost macro-F1 on the time split).  Here the calibration is
learnt the way the model is used: fitted on earlier posts, scored on later
ones.  Within the training data only, the last part of its time range is
cut into blocks; each block is scored by the model fitted on everything
before it, and a class-balanced logistic (Platt) map is fitted on those
forward predictions.  The shipped model is the estimator fitted on all the
training data, followed by that map, so:

* ``predict_proba`` is a calibrated probability (for equal class priors:
  the share of rumours in use is unknown and varies), and
* 0.5 on it is the learned decision threshold (``threshold_`` is where that
  lies on the uncalibrated scale), which is also what ``predict``, the
  dashboard's default flag (``dashboard.rumour_threshold`` 0.5) and the
  evaluation use.

Without times (or too little data in the blocks) the map is the identity
and the estimator's own 0.5 stays the threshold.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.linear_model import LogisticRegression
from sklearn.utils.validation import check_is_fitted

#: Probabilities are clipped to this before the logit (p=0 or 1 would be infinite).
_EPS = 1e-6
#: Each forward block needs this many posts of each class (validation) ...
MIN_BLOCK_CLASS = 5
#: ... and its training part this many of each class (the stack's inner 5-fold CV).
MIN_TRAIN_CLASS = 10


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(p, _EPS, 1.0 - _EPS)
    return np.log(p) - np.log1p(-p)


def forward_blocks(times: Any, quantiles: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train mask, validation mask) per block: block k spans time quantiles q_k .. q_{k+1} (or the end).

    Each block is validated by a model trained on every post strictly before
    its start, as in use.  Posts without a time take part in neither.
    """
    t = pd.Series(pd.to_datetime(pd.Series(times), errors="coerce", utc=True)).reset_index(
        drop=True
    )
    known = t.dropna().sort_values().reset_index(drop=True)
    if known.empty:
        return []
    starts = [known.iloc[min(int(q * len(known)), len(known) - 1)] for q in quantiles]
    ends = [*starts[1:], None]
    out = []
    for start, end in zip(starts, ends, strict=True):
        train = (t < start).to_numpy()
        val = (t >= start) if end is None else ((t >= start) & (t < end))
        out.append((train, val.fillna(False).to_numpy()))
    return out


class ForwardCalibratedClassifier(ClassifierMixin, BaseEstimator):
    """A binary classifier followed by a Platt map learnt on forward-chained predictions.

    ``fit(X, y, times=...)``: for each block of :func:`forward_blocks`
    (default: the posts from the 60 % to the 80 % time quantile, and from
    80 % to the end) a clone of ``estimator`` is fitted on the earlier posts
    and scores the block; a class-balanced logistic regression on the
    logit of those scores gives ``a_`` and ``b_``.  Then ``estimator`` is
    fitted on everything (``estimator_``); the block models are not kept.
    The quantiles (0.6, 0.8) were fixed before looking at the 2013–2014
    test years (0.5/0.75 and 0.7/0.85 gave the same threshold within 0.03).
    """

    def __init__(self, estimator: Any = None, quantiles: tuple[float, ...] = (0.6, 0.8)) -> None:
        self.estimator = estimator
        self.quantiles = quantiles

    def fit(self, X: Any, y: Any, times: Any = None) -> ForwardCalibratedClassifier:
        y = np.asarray(y)
        self.a_, self.b_ = 1.0, 0.0
        self.calibration_ = "none (no times)"
        self.forward_n_ = 0
        if times is not None and len(times) == len(y):
            self._calibrate(X, y, times)
        self.estimator_ = clone(self.estimator).fit(X, y)
        self.classes_ = self.estimator_.classes_
        if len(self.classes_) != 2:
            raise ValueError("ForwardCalibratedClassifier is for two classes")
        # Where 0.5 after the map lies on the estimator's own scale.
        self.threshold_ = float(1.0 / (1.0 + np.exp(self.b_ / self.a_)))
        return self

    def _calibrate(self, X: Any, y: np.ndarray, times: Any) -> None:
        ys: list[np.ndarray] = []
        ps: list[np.ndarray] = []
        for train, val in forward_blocks(times, tuple(self.quantiles)):
            y_tr, y_val = y[train], y[val]
            if (
                min(np.sum(y_tr == c) for c in np.unique(y)) < MIN_TRAIN_CLASS
                or len(np.unique(y_val)) < 2
                or min(np.sum(y_val == c) for c in np.unique(y_val)) < MIN_BLOCK_CLASS
            ):
                continue
            model = clone(self.estimator).fit(_rows(X, train), y_tr)
            ps.append(model.predict_proba(_rows(X, val))[:, 1])  # classes sorted: 1 = rumour
            ys.append(y_val)
        if not ps:
            self.calibration_ = "none (too few posts in the forward blocks)"
            return
        z = _logit(np.concatenate(ps)).reshape(-1, 1)
        yv = np.concatenate(ys)
        platt = LogisticRegression(C=1e6, class_weight="balanced").fit(z, yv)
        a, b = float(platt.coef_[0, 0]), float(platt.intercept_[0])
        self.forward_n_ = len(yv)
        if not a > 0:  # forward scores carry no ranking: keep the estimator's own scale
            self.calibration_ = "none (forward scores not informative)"
            return
        self.a_, self.b_ = a, b
        self.calibration_ = f"platt on {len(yv)} forward-chained predictions"

    def predict_proba(self, X: Any) -> np.ndarray:
        """Calibrated probabilities, one column per class (the map is monotone: ranking unchanged)."""
        check_is_fitted(self, "estimator_")
        raw = self.estimator_.predict_proba(X)[:, 1]
        if self.a_ == 1.0 and self.b_ == 0.0:
            pos = raw
        else:
            pos = 1.0 / (1.0 + np.exp(-(self.a_ * _logit(raw) + self.b_)))
        return np.column_stack([1.0 - pos, pos])

    def predict(self, X: Any) -> np.ndarray:
        """The class of the learned threshold: calibrated probability >= 0.5."""
        return np.asarray(self.classes_)[(self.predict_proba(X)[:, 1] >= 0.5).astype(int)]


def _rows(X: Any, mask: np.ndarray) -> Any:
    if isinstance(X, pd.DataFrame):
        return X.loc[mask].reset_index(drop=True)
    if isinstance(X, np.ndarray):
        return X[mask]
    return [x for x, m in zip(X, mask, strict=True) if m]


def calibration_card(model: Any) -> dict[str, Any]:
    """The learned forward-chained calibration for a model card, so staff can see the threshold.

    Written by ``make models`` and ``govpulse train rumour`` alike.
    """
    return {
        "method": getattr(model, "calibration_", "none"),
        "platt_a": round(float(getattr(model, "a_", 1.0)), 4),
        "platt_b": round(float(getattr(model, "b_", 0.0)), 4),
        "flag_threshold": 0.5,
        "threshold_on_uncalibrated_scale": round(float(getattr(model, "threshold_", 0.5)), 4),
        "note": "rumour_score is calibrated on forward-chained blocks of the training posts "
        "(time quantiles 0.6-0.8 and 0.8-1.0, each scored by a model fitted on earlier posts); "
        "0.5 on it is the learned decision threshold",
    }
