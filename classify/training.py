"""Datasets, fitting, cross-validation and evaluation reports for the three tasks.

Validation follows what each task has to survive in use:

* topic: stratified 5-fold CV on the 8,242 pre-cut letters, plus a check on
  the 448 raw letters cut by our own tokeniser (train/serve skew);
* urgency: a fixed 30 % hash-held-out part of the hand labels that no rule
  or setting was tuned on (``data.is_holdout``);
* rumour: a time split (train up to 2012, test 2013-2014) and a grouped
  split by author, never a random split, because cross-collection accuracy
  is what collapses in practice.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import clone
from sklearn.metrics import (
    classification_report,
    confusion_matrix,
    f1_score,
    roc_auc_score,
)
from sklearn.model_selection import GroupKFold, StratifiedKFold

from classify import data as D
from classify.decide import decide_urgency_many
from classify.pipelines import BUILDERS, RUMOUR_META, TASKS, task_form
from classify.text import PREPARE
from govpulse.schema import Label, Topic, Urgency

RUMOUR_TRUE = {"1", "1.0", "true", "yes", "rumour", "谣言", "是"}
RUMOUR_FALSE = {"0", "0.0", "false", "no", "not", "non-rumour", "非谣言", "否"}


@dataclass
class Dataset:
    """Prepared inputs (token strings; a frame for rumour), labels and split keys."""

    task: str
    X: Any
    y: np.ndarray
    source: str
    times: pd.Series | None = None
    groups: np.ndarray | None = None
    holdout: np.ndarray | None = None
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.y)

    def subset(self, mask: np.ndarray) -> Dataset:
        X = (
            self.X.loc[mask].reset_index(drop=True)
            if isinstance(self.X, pd.DataFrame)
            else [x for x, m in zip(self.X, mask, strict=True) if m]
        )
        return Dataset(
            self.task,
            X,
            self.y[mask],
            self.source,
            None if self.times is None else self.times[mask].reset_index(drop=True),
            None if self.groups is None else self.groups[mask],
            None if self.holdout is None else self.holdout[mask],
        )


def _label_value(task: str, raw: object) -> Any:
    text = "" if raw is None or (isinstance(raw, float) and raw != raw) else str(raw).strip()
    if task == "rumour":
        low = text.lower()
        if low in RUMOUR_TRUE:
            return 1
        if low in RUMOUR_FALSE:
            return 0
        return None
    return text or None


def _user_group(file_name: object) -> str:
    """CED file names end with the author id: <n>_<post>_<user>.json."""
    m = re.search(r"_(\d+)\.json$", str(file_name))
    return m.group(1) if m else str(file_name)


def load_dataset(
    task: str,
    path: str,
    text_col: str | None = None,
    title_col: str | None = None,
    label_col: str | None = None,
    progress: Callable[[Iterable[Any], int], Iterable[Any]] | None = None,
    form: str | None = None,
) -> Dataset:
    """Read a labelled file for one task and prepare its model inputs.

    ``form`` is the input form (``classify.text.PREPARE``) of the model the
    data is for: by default the one the task's current pipeline trains on;
    evaluating an older model passes that model's form
    (``classify.pipelines.input_form``).
    """
    if task not in TASKS:
        raise D.DataError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
    frame = D.read_table(path)
    if (
        task == "urgency"
        and {"source_file", "id"} <= set(frame.columns)
        and not (text_col or set(frame.columns) & set(D.TEXT_COLUMNS))
    ):
        frame = D.resolve_label_ids(frame, D.shared_data_dir() / "mailbox")
    label = D.pick_column(frame, label_col, D.LABEL_COLUMNS[task], "label", required=True)
    title, text = D.text_columns(frame, text_col, title_col)
    y_raw = [_label_value(task, v) for v in frame[label]]
    keep = np.array([v is not None for v in y_raw])
    dropped = int((~keep).sum())
    frame = frame.loc[keep].reset_index(drop=True)
    y = np.array([v for v in y_raw if v is not None], dtype=object if task != "rumour" else int)
    if len(frame) == 0:
        raise D.DataError(f"{path}: no rows with a {label!r} label")
    form = form or task_form(task)
    tokens = (
        D.prepared_tokens(frame, title, text, form)
        if progress is None
        else list(progress(D.prepared_tokens(frame, title, text, form), len(frame)))
    )
    ds_notes = [f"{dropped} rows without a label skipped"] if dropped else []
    times = None
    time_col = D.pick_column(frame, None, D.TIME_COLUMNS, "time", required=False)
    if time_col:
        times = pd.to_datetime(frame[time_col], errors="coerce", utc=True)
    if task == "rumour":
        X = pd.DataFrame({"tokens": tokens})
        for col in RUMOUR_META:
            X[col] = frame[col].to_numpy() if col in frame.columns else None
        groups = frame["file"].map(_user_group).to_numpy() if "file" in frame.columns else None
        return Dataset(task, X, y, str(path), times, groups, None, ds_notes)
    holdout = None
    if {"source_file", "id"} <= set(frame.columns):
        holdout = np.array(
            [
                D.is_holdout(str(s), D._norm_id(i))
                for s, i in zip(frame["source_file"], frame["id"], strict=True)
            ]
        )
    return Dataset(task, tokens, y, str(path), times, None, holdout, ds_notes)


def corrections_dataset(task: str, store: Any) -> Dataset | None:
    """Staff corrections (``store.labels(task=...)``) as a dataset; newest label per message wins."""
    labels: list[Label] = store.labels(task=task)
    latest: dict[str, Label] = {}
    for lab in labels:  # newest first
        latest.setdefault(lab.message_id, lab)
    if not latest:
        return None
    messages = {m.id: m for m in store.get_many(list(latest))}
    tokens, ys, meta = [], [], []
    allowed = {
        "topic": None,  # user topics allowed: retraining is how new topics are added
        "urgency": {u.value for u in Urgency},
    }.get(task)
    prepare = PREPARE[task_form(task)]
    for mid, lab in latest.items():
        msg = messages.get(mid)
        value = _label_value(task, lab.value)
        if msg is None or value is None or (allowed is not None and value not in allowed):
            continue
        tok = prepare(msg.title, msg.body)
        if not tok:
            continue
        tokens.append(tok)
        ys.append(value)
        meta.append(
            {
                "reposts": msg.reposts,
                "comments": msg.comments,
                "likes": msg.likes or msg.votes,
                "followers": msg.extra.get("followers") if msg.extra else None,
                "verified": msg.extra.get("verified") if msg.extra else None,
            }
        )
    if not tokens:
        return None
    y = np.array(ys, dtype=int if task == "rumour" else object)
    if task == "rumour":
        X = pd.DataFrame({"tokens": tokens, **{k: [m[k] for m in meta] for k in RUMOUR_META}})
        return Dataset(task, X, y, "store corrections")
    return Dataset(task, tokens, y, "store corrections")


def merge(a: Dataset, b: Dataset | None) -> Dataset:
    """Training data plus corrections (corrections have no split keys)."""
    if b is None:
        return a
    if isinstance(a.X, pd.DataFrame):
        X: Any = pd.concat([a.X, b.X], ignore_index=True)
    else:
        X = list(a.X) + list(b.X)
    # Keep the training posts' times (the rumour calibration's forward blocks
    # need them); corrections have none and only join the final fit.
    times = (
        None
        if a.times is None
        else pd.concat(
            [a.times, pd.Series(pd.NaT, index=range(len(b)), dtype=a.times.dtype)],
            ignore_index=True,
        )
    )
    return Dataset(a.task, X, np.concatenate([a.y, b.y]), f"{a.source} + {b.source}", times)


# -- fitting and scoring ---------------------------------------------------------


def fit(task: str, ds: Dataset, **params: Any) -> Any:
    """Fit the task's pipeline on a whole dataset (compacted for shipping)."""
    _check_classes(ds)
    return compact(BUILDERS[task](**params).fit(ds.X, ds.y, **fit_params(task, ds)))


def fit_params(task: str, ds: Dataset) -> dict[str, Any]:
    """Extra ``fit`` arguments: the rumour model learns its calibration from post times.

    (``classify.forward.ForwardCalibratedClassifier``: forward-chained blocks
    of the training data, so the decision threshold is learnt under drift.)
    """
    if task == "rumour" and ds.times is not None:
        return {"times": ds.times.reset_index(drop=True)}
    return {}


def compact(model: Any) -> Any:
    """Shrink a fitted pipeline without changing its predictions (beyond float32 rounding).

    TfidfVectorizer keeps ``stop_words_`` (every term cut by min_df/max_df),
    which is only introspection and often larger than the vocabulary; linear
    coefficients do not need float64.  Together this keeps a shipped model
    a few MB instead of tens.
    """
    from sklearn.feature_extraction.text import TfidfVectorizer

    from classify.features import CompactTfidfVectorizer

    seen: set[int] = set()

    def walk(obj: Any) -> None:
        if (
            id(obj) in seen
            or obj is None
            or isinstance(obj, str | bytes | int | float | np.ndarray)
        ):
            return
        seen.add(id(obj))
        if isinstance(obj, TfidfVectorizer):
            obj.__dict__.pop("stop_words_", None)
            if type(obj) is TfidfVectorizer:  # models trained before CompactTfidfVectorizer
                obj.__class__ = CompactTfidfVectorizer
        for attr in ("coef_",):
            value = getattr(obj, attr, None)
            if isinstance(value, np.ndarray) and value.ndim == 2 and value.size > 10_000:
                # float32, and column-major so that ``X @ coef_.T`` (what linear
                # models compute) reads a C-contiguous matrix: otherwise scipy
                # copies the whole (2**20 x classes) matrix on every call.
                setattr(obj, attr, np.asfortranarray(value, dtype=np.float32))
        children: list[Any] = []
        if isinstance(obj, list | tuple):
            children = list(obj)
        elif isinstance(obj, dict):
            children = list(obj.values())
        elif hasattr(obj, "__dict__"):
            children = list(vars(obj).values())
        for child in children:
            walk(child)

    walk(model)
    return model


def _check_classes(ds: Dataset) -> None:
    classes, counts = np.unique(ds.y, return_counts=True)
    if len(classes) < 2:
        raise D.DataError(f"{ds.source}: need at least two classes, found {list(classes)}")
    if counts.min() < 3:
        rare = [str(c) for c, n in zip(classes, counts, strict=True) if n < 3]
        raise D.DataError(f"{ds.source}: classes with fewer than 3 examples: {', '.join(rare)}")


def predict(
    task: str, model: Any, X: Any, rule_min_p: float = 0.0
) -> tuple[np.ndarray, np.ndarray]:
    """(predicted labels, probabilities) as the tagger would decide them."""
    proba = model.predict_proba(X)
    classes = [c for c in model.classes_]
    if task == "urgency":
        pred = np.array(
            decide_urgency_many(proba, [str(c) for c in classes], list(X), rule_min_p), dtype=object
        )
    else:
        pred = np.asarray(classes, dtype=object if task != "rumour" else int)[proba.argmax(axis=1)]
    return pred, proba


def score(
    task: str, y: np.ndarray, pred: np.ndarray, proba: np.ndarray | None, classes: list[Any]
) -> dict[str, Any]:
    """Per-class P/R/F1, confusion matrix, macro-F1 (and ROC-AUC for rumour)."""
    labels = _ordered_labels(task, sorted(set(y) | set(pred), key=str))
    report = classification_report(y, pred, labels=labels, output_dict=True, zero_division=0)
    out: dict[str, Any] = {
        "n": len(y),
        "macro_f1": round(
            float(f1_score(y, pred, labels=labels, average="macro", zero_division=0)), 4
        ),
        "accuracy": round(float(np.mean(np.asarray(y) == np.asarray(pred))), 4),
        "per_class": {
            str(k): {
                m: round(float(v[m]), 4) for m in ("precision", "recall", "f1-score", "support")
            }
            for k, v in report.items()
            if k in {str(lab) for lab in labels}
        },
        "labels": [str(lab) for lab in labels],
        "confusion": confusion_matrix(y, pred, labels=labels).tolist(),
    }
    if task == "rumour" and proba is not None and len(set(y)) == 2:
        pos = list(classes).index(1)
        out["roc_auc"] = round(float(roc_auc_score(y, proba[:, pos])), 4)
    return out


def _ordered_labels(task: str, labels: list[Any]) -> list[Any]:
    order = {
        "topic": [t.value for t in Topic],
        "urgency": [u.value for u in Urgency],
        "rumour": [1, 0],
    }[task]
    known = [lab for lab in order if lab in labels]
    return known + [lab for lab in labels if lab not in known]


def evaluate(task: str, model: Any, ds: Dataset, rule_min_p: float = 0.0) -> dict[str, Any]:
    pred, proba = predict(task, model, ds.X, rule_min_p)
    return score(task, ds.y, pred, proba, list(model.classes_))


def cross_validate(
    task: str,
    ds: Dataset,
    folds: int = 5,
    seed: int = 0,
    progress: Callable[[str], None] | None = None,
    predictions: bool = False,
    **params: Any,
) -> dict[str, Any]:
    """Stratified k-fold (or grouped when the dataset has groups): pooled out-of-fold scores.

    With ``predictions`` the out-of-fold labels are returned too, under
    ``"predictions"`` (one per example, in the dataset's order), for
    comparisons on a subset such as the blind readings' letters.
    """
    _check_classes(ds)
    smallest = int(np.unique(ds.y, return_counts=True)[1].min())
    if smallest * (folds - 1) // folds < 3:
        raise D.DataError(
            f"{ds.source}: the smallest class has {smallest} examples, too few for {folds}-fold "
            "cross-validation (each training fold needs 3); use fewer folds, --folds 0, or more data"
        )
    if ds.groups is not None:
        splits = list(GroupKFold(n_splits=folds).split(np.zeros(len(ds)), ds.y, ds.groups))
        kind = f"grouped {folds}-fold (by author)"
    else:
        splits = list(
            StratifiedKFold(folds, shuffle=True, random_state=seed).split(np.zeros(len(ds)), ds.y)
        )
        kind = f"stratified {folds}-fold"
    pred = np.empty(len(ds), dtype=object)
    proba_pos = np.zeros(len(ds))
    classes: list[Any] = []
    for k, (tr, te) in enumerate(splits, 1):
        if progress:
            progress(f"fold {k}/{folds}")
        mask_tr = np.zeros(len(ds), bool)
        mask_tr[tr] = True
        train = ds.subset(mask_tr)
        model = clone(BUILDERS[task](**params)).fit(train.X, train.y, **fit_params(task, train))
        test = ds.subset(~mask_tr)
        p, proba = predict(task, model, test.X)
        pred[te] = p
        classes = list(model.classes_)
        if task == "rumour":
            proba_pos[te] = proba[:, classes.index(1)]
    y = ds.y
    if task == "rumour":
        pred = pred.astype(int)
        full = np.column_stack([1 - proba_pos, proba_pos])
        out = score(task, y, pred, full, [0, 1])
    else:
        out = score(task, y, pred, None, classes)
    out["validation"] = kind
    if predictions:
        out["predictions"] = pred
    return out


def split_evaluate(
    task: str, train: Dataset, test: Dataset, kind: str, **params: Any
) -> dict[str, Any]:
    """Fit on one part and score another (time split, held-out labels, raw letters)."""
    model = fit(task, train, **params)
    out = evaluate(task, model, test)
    out["validation"] = kind
    out["n_train"] = len(train)
    return out


def time_split(ds: Dataset, before_year: int) -> tuple[Dataset, Dataset]:
    """Train on posts before `before_year`, test on the later ones."""
    if ds.times is None:
        raise D.DataError(f"{ds.source}: no time column for a time split")
    early = (ds.times.dt.year < before_year).fillna(False).to_numpy()
    return ds.subset(early), ds.subset(~early)


def format_report(metrics: dict[str, Any], title: str = "") -> str:
    """Plain-text per-class table, confusion matrix and headline figures."""
    lines = [title] if title else []
    if "validation" in metrics:
        lines.append(f"validation: {metrics['validation']}  (n={metrics['n']})")
    lines.append(f"{'class':<14}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>10}")
    for name, row in metrics["per_class"].items():
        label = {"1": "rumour(1)", "0": "not(0)"}.get(name, name)
        lines.append(
            f"{label:<14}{row['precision']:>10.3f}{row['recall']:>10.3f}{row['f1-score']:>10.3f}{int(row['support']):>10d}"
        )
    lines.append("confusion matrix (rows = true, columns = predicted):")
    labels = metrics["labels"]
    width = max(8, *(len(str(lab)) * 2 + 1 for lab in labels))
    lines.append(" " * 14 + "".join(f"{lab:>{width}}" for lab in labels))
    for lab, row in zip(labels, metrics["confusion"], strict=True):
        lines.append(f"{lab:<14}" + "".join(f"{v:>{width}d}" for v in row))
    head = f"macro-F1 {metrics['macro_f1']:.4f}  accuracy {metrics['accuracy']:.4f}"
    if "roc_auc" in metrics:
        head += f"  ROC-AUC {metrics['roc_auc']:.4f}"
    lines.append(head)
    return "\n".join(lines)
