"""Saving and loading models with skops (never pickle) against a trusted-type list.

``skops.io.load`` refuses any type that is neither in skops' own safe set nor
in :data:`TRUSTED`, so a tampered file cannot make us import or call
arbitrary code.  Each model file has a card beside it (``<task>.card.json``:
data, date, metrics, SHA-256 of the model file); a file whose checksum does
not match its card is refused before skops even opens it.
"""

from __future__ import annotations

import hashlib
import json
import zipfile
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import skops.io as sio

#: Types (beyond skops' defaults) our pipelines are made of.  Keep this list in
#: step with classify.pipelines; tests/classify/test_modelio.py checks that a
#: freshly trained model needs nothing outside it.
TRUSTED: tuple[str, ...] = (
    "classify.features.CompactTfidfVectorizer",
    "classify.features.LogCountScaler",
    "classify.features.rumour_cue_counts",
    "classify.features.to_float",
    "classify.features.urgency_cue_counts",
    "classify.forward.ForwardCalibratedClassifier",
    "classify.hashing.HashedNgrams",
    "classify.hashing.HashedTfidf",
    "classify.text.join_chars",
    "classify.text.split_tokens",
    "classify.topic_head.HeadTfidf",
    "builtins.float",
    "builtins.int",
    "builtins.str",
    "collections.defaultdict",
    "numpy.dtype",
    "numpy.float32",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "scipy.sparse._csr.csr_matrix",
    "sklearn.calibration.CalibratedClassifierCV",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._SigmoidCalibration",
    "sklearn.compose._column_transformer.ColumnTransformer",
    "sklearn.ensemble._hist_gradient_boosting.predictor.TreePredictor",
    "sklearn.feature_extraction.text.TfidfTransformer",
    "sklearn.feature_extraction.text.TfidfVectorizer",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.FeatureUnion",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._function_transformer.FunctionTransformer",
    "sklearn.svm._classes.LinearSVC",
    "sklearn.utils._bunch.Bunch",
)


class ModelUnavailable(RuntimeError):
    """A model file is missing, unreadable, tampered with, or needs untrusted types."""


def model_path(model_dir: Path | str, task: str) -> Path:
    return Path(model_dir) / f"{task}.skops"


def card_path(model_dir: Path | str, task: str) -> Path:
    return Path(model_dir) / f"{task}.card.json"


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def save_model(model: Any, model_dir: Path | str, task: str, card: dict[str, Any]) -> Path:
    """Write ``<task>.skops`` and its card (with checksum and date) into model_dir."""
    out_dir = Path(model_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    path = model_path(out_dir, task)
    tmp = path.with_suffix(".skops.tmp")
    sio.dump(model, tmp, compression=zipfile.ZIP_DEFLATED, compresslevel=9)
    untrusted = set(sio.get_untrusted_types(file=tmp)) - set(TRUSTED)
    if untrusted:
        tmp.unlink()
        raise ModelUnavailable(
            f"{task} model uses types missing from classify.modelio.TRUSTED: {sorted(untrusted)}"
        )
    tmp.replace(path)
    full = {
        "task": task,
        "created": datetime.now(UTC).replace(microsecond=0).isoformat(),
        **card,
        "file": path.name,
        "sha256": sha256(path),
        "bytes": path.stat().st_size,
    }
    card_path(out_dir, task).write_text(
        json.dumps(full, ensure_ascii=False, indent=2) + "\n", encoding="utf-8"
    )
    return path


def read_card(model_dir: Path | str, task: str) -> dict[str, Any]:
    path = card_path(model_dir, task)
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelUnavailable(f"{task} model card missing: {path}") from None
    except (OSError, ValueError) as exc:
        raise ModelUnavailable(f"{task} model card unreadable: {path} ({exc})") from None


def load_model(model_dir: Path | str, task: str) -> tuple[Any, dict[str, Any]]:
    """Load one task's model after checking its card checksum and its types."""
    path = model_path(model_dir, task)
    if not path.is_file():
        raise ModelUnavailable(
            f"{task} model file missing: {path} (run `make models` or `govpulse train {task}`)"
        )
    card = read_card(model_dir, task)
    if card.get("sha256") != sha256(path):
        raise ModelUnavailable(
            f"{task} model file {path} does not match the checksum in its card; "
            "refusing to load a modified model (retrain it)"
        )
    try:
        untrusted = set(sio.get_untrusted_types(file=path)) - set(TRUSTED)
        if untrusted:
            raise ModelUnavailable(
                f"{task} model {path} contains untrusted types {sorted(untrusted)}; not loaded"
            )
        model = sio.load(path, trusted=list(TRUSTED))
    except ModelUnavailable:
        raise
    except Exception as exc:  # skops raises many kinds on a corrupt archive
        raise ModelUnavailable(f"{task} model {path} cannot be read: {exc}") from exc
    return model, card
