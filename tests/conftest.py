"""Shared fixtures: the ../shared/data folder (skip when absent) and temp stores."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SHARED_DATA = Path(os.environ.get("GOVPULSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """The real public data beside the checkout; skips the test when absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data not found at {SHARED_DATA}")
    return SHARED_DATA


@pytest.fixture
def sqlite_store(tmp_path):
    """A fresh embedded store in a temp folder."""
    from store.sqlite import SQLiteStore

    store = SQLiteStore(tmp_path / "govpulse.db")
    yield store
    store.close()
