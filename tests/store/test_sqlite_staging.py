"""Staged batches: index workers write finished rows to scratch files the writer copies.

Every way a batch can leave the staged path (too many files for one
transaction, a temp directory that vanished, a failing write) must store
exactly what a one-process import stores.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import tempfile
from pathlib import Path

from store.sqlite import SQLiteStore
from store.sqlite_workers import StageDir
from tests.store.test_sqlite_import import _stored, letters, traced


def _reference(tmp_path: Path, n: int) -> tuple[object, object]:
    """What one process stores for letters(n)."""
    store = SQLiteStore(tmp_path / "inline.db", batch_size=1000, index_workers=1)
    try:
        store.upsert_many(letters(n))
        return _stored(store)
    finally:
        store.close()


def _staging_files(store: SQLiteStore) -> list[str]:
    return sorted(os.listdir(store._stage.path)) if store._stage.path else []


def test_staged_batches_store_what_one_process_stores(tmp_path):
    store = SQLiteStore(tmp_path / "s.db", batch_size=1000, index_workers=2)
    try:
        seen = traced(store, lambda: store.upsert_many(letters(3000)))
        copies = [s for s in seen if s.startswith("INSERT INTO messages (") and "SELECT" in s]
        assert len(copies) == 6  # 3 batches x 2 workers, each one file
        assert not [s for s in seen if s.startswith("INSERT INTO messages (") and "VALUES" in s]
        assert store.check_summaries() == []
        assert _stored(store) == _reference(tmp_path, 3000)
        assert store.search("供暖", per_page=1).total == 3000
        assert _staging_files(store) == []  # removed when the transaction ended
        stage_dir = store._stage.path
        assert stage_dir is not None and os.path.isdir(stage_dir)
    finally:
        store.close()
    assert not os.path.exists(stage_dir)


def test_a_large_transaction_is_cut_into_batches_whose_files_all_fit(tmp_path):
    """6,000 messages in one transaction with 2 workers: 5 batches of 1,200, 10 files."""
    store = SQLiteStore(tmp_path / "s.db", batch_size=1000, transaction_size=6000, index_workers=2)
    try:
        seen = traced(store, lambda: store.upsert_many(letters(6000)))
        assert sum(s.startswith("ATTACH") for s in seen) == 10
        assert not [s for s in seen if s.startswith("INSERT INTO messages (") and "VALUES" in s]
        assert store.check_summaries() == []
    finally:
        store.close()


def test_batches_beyond_the_attach_limit_are_written_the_ordinary_way(tmp_path):
    """With room for 4 attached files, batches 3-5 (3,600 messages) fall back."""
    store = SQLiteStore(tmp_path / "s.db", batch_size=1000, transaction_size=6000, index_workers=2)
    try:
        store._conn().setlimit(sqlite3.SQLITE_LIMIT_ATTACHED, 4)
        seen = traced(store, lambda: store.upsert_many(letters(6000)))
        assert sum(s.startswith("ATTACH") for s in seen) == 4
        assert sum(s.startswith("INSERT INTO messages (") and "VALUES" in s for s in seen) == 3600
        assert store.check_summaries() == []
        assert _stored(store) == _reference(tmp_path, 6000)
        assert _staging_files(store) == []
    finally:
        store.close()


def test_a_vanished_staging_directory_costs_speed_not_messages(tmp_path):
    """A temp cleaner removed the directory mid-import: workers cannot stage, and hand
    their tokens and digests back instead."""
    store = SQLiteStore(tmp_path / "s.db", batch_size=1000, index_workers=2)
    try:
        store._stage.new_file()
        assert store._stage.path is not None
        shutil.rmtree(store._stage.path)
        seen = traced(store, lambda: store.upsert_many(letters(2000)))
        assert not [s for s in seen if s.startswith("ATTACH")]
        assert store.check_summaries() == []
        assert _stored(store) == _reference(tmp_path, 2000)
    finally:
        store.close()


def test_directories_left_by_dead_processes_are_swept(tmp_path, monkeypatch):
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    dead = tmp_path / "govpulse-stage-999999999-abc"  # no such pid
    mine = tmp_path / f"govpulse-stage-{os.getpid()}-xyz"
    other = tmp_path / "unrelated"
    for d in (dead, mine, other):
        d.mkdir()
        (d / "1.db").write_bytes(b"x")
    stage = StageDir()
    try:
        path = stage.new_file()
        assert Path(path).parent.parent == tmp_path
        assert not dead.exists() and mine.exists() and other.exists()
    finally:
        stage.close()
    assert not Path(path).parent.exists()
