"""A local durable queue for writes the cluster could not take.

When the cluster is unreachable or refuses writes (429, 5xx, read-only
block), `ElasticStore` appends the messages, crawl events and labels here
and replays them in order once it answers again.  It is a SQLite file
under the data dir: each append is one committed transaction, so a crash
right after ``upsert_many`` returns loses nothing.

Documents the cluster rejects for good (a mapping error on one document)
go to the ``rejected`` table instead: kept for inspection and never
replayed automatically, because replaying cannot make them succeed.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_SCHEMA = """
CREATE TABLE IF NOT EXISTS spool (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,          -- message | crawl_event | label
    payload TEXT NOT NULL,       -- JSON
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS rejected (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL,
    item_id TEXT,
    payload TEXT NOT NULL,
    reason TEXT NOT NULL,
    at INTEGER NOT NULL
);
"""


@dataclass(frozen=True, slots=True)
class SpoolEntry:
    seq: int
    kind: str
    payload: dict[str, Any]


class Spool:
    """Append-only FIFO of pending writes in one SQLite file."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        # One connection guarded by a lock: the spool is small and rarely hot.
        self._conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=30
        )
        self._conn.execute("PRAGMA journal_mode = WAL")
        # FULL: a spooled write is the only copy of the data until it is replayed.
        self._conn.execute("PRAGMA synchronous = FULL")
        self._conn.executescript(_SCHEMA)

    def append(self, kind: str, payloads: Iterable[dict[str, Any]], reason: str) -> int:
        """Add items at the tail, in one transaction; return how many."""
        now = int(time.time())
        rows = [(kind, json.dumps(p, ensure_ascii=False), reason[:500], now) for p in payloads]
        if not rows:
            return 0
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                self._conn.executemany(
                    "INSERT INTO spool (kind, payload, reason, at) VALUES (?, ?, ?, ?)", rows
                )
                self._conn.execute("COMMIT")
            except BaseException:
                self._conn.execute("ROLLBACK")
                raise
        return len(rows)

    def head(self, limit: int) -> list[SpoolEntry]:
        """The oldest `limit` entries, in order."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT seq, kind, payload FROM spool ORDER BY seq LIMIT ?", (limit,)
            ).fetchall()
        return [SpoolEntry(seq, kind, json.loads(payload)) for seq, kind, payload in rows]

    def remove_through(self, seq: int) -> None:
        """Drop every entry up to and including `seq` (they were written)."""
        with self._lock:
            self._conn.execute("DELETE FROM spool WHERE seq <= ?", (seq,))

    def pending(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM spool").fetchone()[0]

    def reject(self, kind: str, item_id: str | None, payload: dict[str, Any], reason: str) -> None:
        """Keep a document the cluster refused for good."""
        with self._lock:
            self._conn.execute(
                "INSERT INTO rejected (kind, item_id, payload, reason, at) VALUES (?, ?, ?, ?, ?)",
                (
                    kind,
                    item_id,
                    json.dumps(payload, ensure_ascii=False),
                    reason[:2000],
                    int(time.time()),
                ),
            )

    def rejected(self, limit: int = 100) -> list[tuple[str, str | None, str]]:
        """(kind, id, reason) of refused documents, newest first."""
        with self._lock:
            return self._conn.execute(
                "SELECT kind, item_id, reason FROM rejected ORDER BY seq DESC LIMIT ?", (limit,)
            ).fetchall()

    def rejected_count(self) -> int:
        with self._lock:
            return self._conn.execute("SELECT COUNT(*) FROM rejected").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._conn.close()
