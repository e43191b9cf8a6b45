"""The embedded store under several processes: the demo's three crawls open a new file at once."""

from __future__ import annotations

import multiprocessing as mp
import sqlite3
from datetime import datetime, timedelta

import pytest

from govpulse.schema import TZ, Message, make_id
from store.base import StoreUnavailable
from store.sqlite import SQLiteStore
from store.sqlite_schema import LATEST_VERSION
from tests.core.test_demo_children import _alive


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


_BULK_IMPORT = """
import sys
from datetime import datetime, timedelta
from govpulse.schema import TZ, Message, make_id
from store.sqlite import SQLiteStore

start = datetime(2024, 1, 1, tzinfo=TZ)
messages = [
    Message(id=make_id("mailbox", f"k{i}"), source="mailbox", channel="市长信箱",
            title=f"来信{i}", body=f"小区供暖温度不达标第{i}栋", department="住建局",
            posted_at=start + timedelta(minutes=7 * i), status="open")
    for i in range(int(sys.argv[2]))
]
store = SQLiteStore(sys.argv[1], index_workers=2, batch_size=1000, transaction_size=4000)
store.upsert_many(messages)
store.close()
"""


def _children(pid: int) -> list[int]:
    """Process ids whose parent is `pid` (from /proc)."""
    import os

    out = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            if ppid == pid:
                out.append(int(entry))
    return out


def test_a_bulk_import_killed_midway_keeps_every_committed_transaction(tmp_path):
    """SIGKILL while a bulk import runs (WAL checkpoints in the store's thread, the
    connection's own automatic checkpoints off): the committed transactions are all
    there and consistent, and importing again completes the store."""
    import os
    import signal
    import subprocess
    import sys
    import time

    path = tmp_path / "killed.db"
    n = 60_000
    proc = subprocess.Popen(
        [sys.executable, "-c", _BULK_IMPORT, str(path), str(n)],
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while seen < 8000 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
            if path.exists():
                try:
                    with sqlite3.connect(path, timeout=1) as conn:
                        seen = conn.execute("SELECT COUNT(*) FROM messages").fetchone()[0]
                except sqlite3.Error:
                    seen = 0
        assert proc.poll() is None, "the import ended before it could be killed"
        workers = _children(proc.pid)
        assert len(workers) >= 2  # the index workers
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(30)
    # The index workers die with the writer instead of waiting on their queue forever.
    deadline = time.monotonic() + 10
    while any(_alive(pid) for pid in workers) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _alive(pid)]
    store = SQLiteStore(path)
    try:
        count = store.count()
        assert count >= 8000 and count % 4000 == 0  # whole transactions only
        assert store._read("PRAGMA integrity_check") == [("ok",)]
        assert store.check_summaries() == []
        assert store.search("供暖", per_page=1).total == count
        again = store.upsert_many(
            Message(id=make_id("mailbox", f"k{i}"), source="mailbox", channel="市长信箱",
                    title=f"来信{i}", body=f"小区供暖温度不达标第{i}栋", department="住建局",
                    posted_at=datetime(2024, 1, 1, tzinfo=TZ) + timedelta(minutes=7 * i),
                    status="open")
            for i in range(n)
        )  # fmt: skip
        assert (again.inserted, again.unchanged) == (n - count, count)
        assert store.count() == n and store.check_summaries() == []
    finally:
        store.close()
