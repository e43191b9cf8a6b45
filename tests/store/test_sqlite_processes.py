"""The embedded store under several processes: the demo's three crawls open a new file at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3

import pytest

from govpulse.schema import Message, make_id
from store.base import StoreUnavailable
from store.sqlite import SQLiteStore
from store.sqlite_schema import LATEST_VERSION


def _open_and_write(path: str, worker: int) -> int:
    store = SQLiteStore(path)
    stats = store.upsert_many(
        Message(id=make_id("forum", f"{worker}-{i}"), source="forum", channel="问政", title=f"帖子{i}", body="内容")
        for i in range(50)
    )  # fmt: skip
    store.close()
    return stats.inserted


def test_many_processes_create_and_write_one_new_store(tmp_path):
    path = str(tmp_path / "new.db")
    with mp.get_context("fork").Pool(6) as pool:
        inserted = pool.starmap(_open_and_write, [(path, w) for w in range(6)])
    assert inserted == [50] * 6
    store = SQLiteStore(path)
    assert store.schema_version() == LATEST_VERSION and store.count() == 300
    versions = store._read("SELECT version FROM schema_version ORDER BY version")
    assert [v for (v,) in versions] == list(range(1, LATEST_VERSION + 1))


def test_a_held_write_lock_raises_store_unavailable(tmp_path):
    path = tmp_path / "locked.db"
    SQLiteStore(path).close()
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    store = SQLiteStore(path, busy_timeout_ms=200)
    msg = Message(id=make_id("forum", "x"), source="forum", channel="问政", title="t", body="b")
    with pytest.raises(StoreUnavailable, match="locked"):
        store.upsert(msg)
    holder.execute("ROLLBACK")
    assert store.upsert(msg).inserted == 1
