"""Tiny real models trained on the hand-written fixtures (no shared data needed)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "classify"


@pytest.fixture(scope="session")
def fixtures_dir() -> Path:
    return FIXTURES


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> Path:
    """Train all three pipelines on the fixtures and save them with skops + cards."""
    from classify import training as T
    from classify.modelio import save_model

    out = tmp_path_factory.mktemp("models")
    files = {
        "topic": "topic_small.csv",
        "urgency": "urgency_small.csv",
        "rumour": "rumour_small.csv",
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for task, name in files.items():
            ds = T.load_dataset(task, str(FIXTURES / name))
            save_model(T.fit(task, ds), out, task, {"data": {"file": name}, "metrics": {}})
    return out
