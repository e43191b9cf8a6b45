"""Query results shared by every worker process: a small SQLite file in the data dir.

Why: the slow part of a page is its store queries (seconds for some views
at 1M messages), and `govpulse serve --workers N` runs N processes, so a
per-process cache makes each worker pay for the same view again.  One
SQLite file (WAL, a row per result) lets a result computed by any worker
serve all of them, and survives restarts.

Validity.  Each entry carries a *marker*: the store's change marker (for
the SQLite store, the modification time and size of the database and its
WAL file, so any write by any process changes it; other backends have
none, and rely on the TTL alone) plus, for views that depend on the clock,
the ``dashboard.cache_seconds`` step the clock is in.  An entry is fresh
while its marker is current and it is younger than ``cache_seconds``.  A
stale entry younger than ``dashboard.cache_stale_seconds`` is still shown
while one background thread recomputes it (stale-while-revalidate), so a
crawl writing every few seconds does not make every view cold -- but only
when the view took at least `STALE_MIN_COST_S` to compute: a view that is
cheap to recompute is recomputed, never shown stale (a view computed while
the store was still empty or small is cheap, and must not outlive the data
that arrives next).  Label writes that a user must see at once are read
outside this cache.

Values are pickled: the file lives in the data dir, which also holds the
cookie key, so it is as trusted as the code.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

#: Bump when cached value types change shape: older rows are then ignored.
FORMAT = 1

#: A stale view is served (while recomputed) only if computing it took this long.
STALE_MIN_COST_S = 0.1


def key_text(key: Any) -> str:
    """A stable text key: sha1 of the key's repr (filters are frozen dataclasses)."""
    return hashlib.sha1(repr((FORMAT, key)).encode("utf-8")).hexdigest()


def store_marker(store: Any) -> tuple[int, ...] | None:
    """A value that changes whenever the store is written, or None when there is none cheap.

    For SQLite (a ``path`` attribute): mtime and size of the file and its
    WAL -- two ``stat`` calls, ~10 us -- which every commit by any process
    changes.  A checkpoint changes it too, which only costs a recompute.
    """
    path = getattr(store, "path", None)
    if not isinstance(path, Path):
        return None
    out: list[int] = []
    for p in (path, path.with_name(path.name + "-wal")):
        try:
            st = os.stat(p)
        except OSError:
            out += [0, 0]
        else:
            out += [st.st_mtime_ns, st.st_size]
    return tuple(out)


class SharedCache:
    """get/put/claim on one SQLite file; every failure degrades to "not cached"."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._local = threading.local()
        self._puts = 0

    def _conn(self) -> sqlite3.Connection | None:
        conn = getattr(self._local, "conn", None)
        if conn is None or getattr(self._local, "pid", 0) != os.getpid():
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                conn = sqlite3.connect(
                    self.path, timeout=5, isolation_level=None, check_same_thread=False
                )
                conn.execute("PRAGMA journal_mode = WAL")
                conn.execute("PRAGMA synchronous = OFF")  # a cache: losing a row is harmless
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS views (key TEXT PRIMARY KEY, marker TEXT, "
                    "created REAL, value BLOB, cost REAL)"
                )
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS flights (key TEXT PRIMARY KEY, until REAL)"
                )
            except sqlite3.Error:
                return None
            self._local.conn = conn
            self._local.pid = os.getpid()
        return conn

    def get(self, key: str) -> tuple[str, float, Any, float] | None:
        """(marker text, created, value, seconds it took to compute) or None."""
        conn = self._conn()
        if conn is None:
            return None
        try:
            row = conn.execute(
                "SELECT marker, created, value, cost FROM views WHERE key = ?", (key,)
            ).fetchone()
            return None if row is None else (row[0], row[1], pickle.loads(row[2]), row[3])
        except (sqlite3.Error, pickle.UnpicklingError, EOFError, AttributeError, ImportError):
            return None

    def put(
        self, key: str, marker: str, created: float, value: Any, cost: float, keep: float
    ) -> None:
        conn = self._conn()
        if conn is None:
            return
        try:
            blob = pickle.dumps(value, protocol=pickle.HIGHEST_PROTOCOL)
            conn.execute(
                "INSERT OR REPLACE INTO views VALUES (?, ?, ?, ?, ?)",
                (key, marker, created, blob, cost),
            )
            self._puts += 1
            if self._puts % 200 == 0:  # keep the file small: drop what nobody can use
                conn.execute("DELETE FROM views WHERE created < ?", (time.time() - keep,))
        except (sqlite3.Error, pickle.PicklingError, TypeError, AttributeError):
            pass

    def claim(self, key: str, seconds: float) -> bool:
        """Take the right to compute `key` for `seconds` (one process at a time)."""
        conn = self._conn()
        if conn is None:
            return True
        now = time.time()
        try:
            conn.execute("DELETE FROM flights WHERE key = ? AND until < ?", (key, now))
            cur = conn.execute("INSERT OR IGNORE INTO flights VALUES (?, ?)", (key, now + seconds))
            return cur.rowcount == 1
        except sqlite3.Error:
            return True

    def claimed(self, key: str) -> bool:
        conn = self._conn()
        if conn is None:
            return False
        try:
            row = conn.execute("SELECT until FROM flights WHERE key = ?", (key,)).fetchone()
        except sqlite3.Error:
            return False
        return row is not None and row[0] >= time.time()

    def release(self, key: str) -> None:
        conn = self._conn()
        if conn is None:
            return
        with contextlib.suppress(sqlite3.Error):
            conn.execute("DELETE FROM flights WHERE key = ?", (key,))
