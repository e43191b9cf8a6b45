"""Durable alert state: alerts, notification queue, delivery attempts, silences.

One SQLite file (``<data_dir>/alerts.db``) shared by the scheduler (which
writes) and the dashboard's 预警 page (which reads and adds silences).
Keeping the queue here, rather than in memory, is what makes "failed
deliveries are retried and never silently dropped" hold across restarts.

Times are stored as epoch seconds and returned as aware Asia/Shanghai
datetimes.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from govpulse.schema import TZ

DB_NAME = "alerts.db"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS alerts (
    id TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    rule TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    url TEXT NOT NULL DEFAULT '',
    group_key TEXT NOT NULL,
    status TEXT NOT NULL,            -- firing | resolved
    suppressed TEXT NOT NULL DEFAULT '',  -- '', silenced:<id>, inhibited, quiet_hours
    labels TEXT NOT NULL,
    update_key TEXT NOT NULL DEFAULT '',
    notified_key TEXT,               -- update_key at the last notification (NULL: never)
    first_seen INTEGER NOT NULL,
    last_seen INTEGER NOT NULL,
    resolved_at INTEGER,
    last_notified INTEGER,
    repeat_s INTEGER                 -- per-alert repeat interval (NULL: engine default)
);
CREATE INDEX IF NOT EXISTS alerts_fp ON alerts (fingerprint, status);
CREATE INDEX IF NOT EXISTS alerts_seen ON alerts (last_seen);
CREATE TABLE IF NOT EXISTS groups (
    group_key TEXT PRIMARY KEY,
    first_seen INTEGER NOT NULL,
    last_sent INTEGER
);
CREATE TABLE IF NOT EXISTS notifications (
    id TEXT PRIMARY KEY,
    group_key TEXT NOT NULL,
    channel TEXT NOT NULL,
    severity TEXT NOT NULL,
    title TEXT NOT NULL,
    body TEXT NOT NULL,
    alert_ids TEXT NOT NULL,
    created INTEGER NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_try INTEGER NOT NULL,
    status TEXT NOT NULL,            -- pending | sent
    last_error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS notifications_due ON notifications (status, next_try);
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    notification_id TEXT NOT NULL,
    alert_id TEXT NOT NULL,
    alert_ids TEXT NOT NULL,
    channel TEXT NOT NULL,
    attempt INTEGER NOT NULL,
    at INTEGER NOT NULL,
    ok INTEGER NOT NULL,
    parts INTEGER NOT NULL DEFAULT 0,
    error TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS deliveries_channel ON deliveries (channel, at);
CREATE TABLE IF NOT EXISTS silences (
    id TEXT PRIMARY KEY,
    matchers TEXT NOT NULL,
    starts_at INTEGER NOT NULL,
    ends_at INTEGER NOT NULL,
    created_by TEXT NOT NULL,
    comment TEXT NOT NULL,
    created_at INTEGER NOT NULL
);
"""


class StateError(ValueError):
    """A bad request to the alert state (unknown silence, empty matchers …)."""


def _ts(value: datetime) -> int:
    if value.tzinfo is None:
        raise StateError("naive datetime; attach Asia/Shanghai first")
    return int(value.timestamp())


def _dt(value: int | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, TZ)


class AlertState:
    """The alerts database.  Thread-safe: one connection guarded by a lock."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self._db = sqlite3.connect(
            self.path, check_same_thread=False, timeout=30, isolation_level=None
        )
        self._db.row_factory = sqlite3.Row
        with self._lock:
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.executescript(_SCHEMA)

    @classmethod
    def for_data_dir(cls, data_dir: str | Path) -> AlertState:
        """The state file of a deployment: ``<data_dir>/alerts.db``."""
        return cls(Path(data_dir) / DB_NAME)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (other processes wait on SQLite's lock)."""
        with self._lock:
            try:
                self._db.execute("BEGIN IMMEDIATE")
                yield self._db
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[sqlite3.Row]:
        with self._lock:
            return self._db.execute(sql, args).fetchall()

    # -- alerts -------------------------------------------------------------
    @staticmethod
    def _alert_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        out["labels"] = json.loads(out["labels"])
        for key in ("first_seen", "last_seen", "resolved_at", "last_notified"):
            out[key] = _dt(out[key])
        return out

    def recent_alerts(self, limit: int = 200) -> list[dict[str, Any]]:
        """Latest alerts (firing and resolved), most recently seen first."""
        rows = self._query(
            "SELECT * FROM alerts ORDER BY last_seen DESC, first_seen DESC LIMIT ?", (limit,)
        )
        return [self._alert_dict(r) for r in rows]

    def active_alerts(self, rule: str | None = None) -> list[dict[str, Any]]:
        """Firing alerts, optionally of one rule."""
        sql = "SELECT * FROM alerts WHERE status = 'firing'"
        args: tuple[Any, ...] = ()
        if rule:
            sql += " AND rule = ?"
            args = (rule,)
        return [self._alert_dict(r) for r in self._query(sql + " ORDER BY first_seen", args)]

    def get_alert(self, alert_id: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM alerts WHERE id = ?", (alert_id,))
        return self._alert_dict(rows[0]) if rows else None

    def upsert_firing(
        self,
        *,
        fingerprint: str,
        rule: str,
        severity: str,
        title: str,
        body: str,
        url: str,
        group_key: str,
        labels: Mapping[str, str],
        update_key: str,
        now: datetime,
        repeat_s: int | None = None,
    ) -> tuple[str, bool]:
        """Record that an alert fires now; return (alert id, created).

        The first alert of a group with nothing else firing (re)starts the
        group, so group_wait applies again after everything resolved.
        """
        at = _ts(now)
        with self.transaction() as db:
            row = db.execute(
                "SELECT id FROM alerts WHERE fingerprint = ? AND status = 'firing'",
                (fingerprint,),
            ).fetchone()
            if row is not None:
                db.execute(
                    "UPDATE alerts SET severity=?, title=?, body=?, url=?, group_key=?, labels=?,"
                    " update_key=?, last_seen=?, repeat_s=? WHERE id=?",
                    (
                        severity,
                        title,
                        body,
                        url,
                        group_key,
                        json.dumps(labels, ensure_ascii=False),
                        update_key,
                        at,
                        repeat_s,
                        row["id"],
                    ),
                )
                return row["id"], False
            others = db.execute(
                "SELECT COUNT(*) FROM alerts WHERE group_key = ? AND status = 'firing'",
                (group_key,),
            ).fetchone()[0]
            alert_id = uuid.uuid4().hex[:16]
            db.execute(
                "INSERT INTO alerts (id, fingerprint, rule, severity, title, body, url, group_key,"
                " status, labels, update_key, first_seen, last_seen, repeat_s)"
                " VALUES (?,?,?,?,?,?,?,?,'firing',?,?,?,?,?)",
                (
                    alert_id,
                    fingerprint,
                    rule,
                    severity,
                    title,
                    body,
                    url,
                    group_key,
                    json.dumps(labels, ensure_ascii=False),
                    update_key,
                    at,
                    at,
                    repeat_s,
                ),
            )
            if others == 0:
                db.execute(
                    "INSERT INTO groups (group_key, first_seen, last_sent) VALUES (?, ?, NULL)"
                    " ON CONFLICT(group_key) DO UPDATE SET first_seen=excluded.first_seen,"
                    " last_sent=NULL",
                    (group_key, at),
                )
            return alert_id, True

    def resolve(self, alert_ids: Sequence[str], now: datetime) -> None:
        """Mark alerts resolved (their rule no longer reports them)."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE alerts SET status='resolved', resolved_at=? WHERE id=? AND status='firing'",
                [(_ts(now), i) for i in alert_ids],
            )

    def set_suppressed(self, alert_id: str, reason: str) -> None:
        with self.transaction() as db:
            db.execute("UPDATE alerts SET suppressed=? WHERE id=?", (reason, alert_id))

    def mark_notified(self, alert_ids: Sequence[str], now: datetime) -> None:
        """Remember what was announced, so only news triggers the next message."""
        with self.transaction() as db:
            db.executemany(
                "UPDATE alerts SET notified_key=update_key, last_notified=? WHERE id=?",
                [(_ts(now), i) for i in alert_ids],
            )

    # -- groups -------------------------------------------------------------
    def group(self, group_key: str) -> dict[str, Any] | None:
        rows = self._query("SELECT * FROM groups WHERE group_key = ?", (group_key,))
        if not rows:
            return None
        return {
            "group_key": group_key,
            "first_seen": _dt(rows[0]["first_seen"]),
            "last_sent": _dt(rows[0]["last_sent"]),
        }

    def mark_group_sent(self, group_key: str, now: datetime) -> None:
        with self.transaction() as db:
            db.execute("UPDATE groups SET last_sent=? WHERE group_key=?", (_ts(now), group_key))

    # -- notification queue ---------------------------------------------------
    def enqueue(
        self,
        *,
        group_key: str,
        channel: str,
        severity: str,
        title: str,
        body: str,
        alert_ids: Sequence[str],
        now: datetime,
    ) -> str:
        """Queue one message for one channel; it stays until delivered."""
        nid = uuid.uuid4().hex[:16]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO notifications (id, group_key, channel, severity, title, body,"
                " alert_ids, created, next_try, status) VALUES (?,?,?,?,?,?,?,?,?,'pending')",
                (
                    nid,
                    group_key,
                    channel,
                    severity,
                    title,
                    body,
                    json.dumps(list(alert_ids)),
                    _ts(now),
                    _ts(now),
                ),
            )
        return nid

    @staticmethod
    def _notification_dict(row: sqlite3.Row) -> dict[str, Any]:
        out = dict(row)
        out["alert_ids"] = json.loads(out["alert_ids"])
        out["created"] = _dt(out["created"])
        out["next_try"] = _dt(out["next_try"])
        return out

    def due_notifications(self, now: datetime) -> list[dict[str, Any]]:
        """Pending messages whose next attempt is due, oldest first."""
        rows = self._query(
            "SELECT * FROM notifications WHERE status='pending' AND next_try <= ?"
            " ORDER BY created, id",
            (_ts(now),),
        )
        return [self._notification_dict(r) for r in rows]

    def pending_notifications(self) -> list[dict[str, Any]]:
        rows = self._query("SELECT * FROM notifications WHERE status='pending' ORDER BY created")
        return [self._notification_dict(r) for r in rows]

    def record_delivery(
        self,
        notification: Mapping[str, Any],
        *,
        ok: bool,
        error: str,
        now: datetime,
        parts: int = 0,
        next_try: datetime | None = None,
    ) -> int:
        """Store one delivery attempt and update the queue entry; return the attempt number."""
        attempt = int(notification["attempts"]) + 1
        ids = list(notification["alert_ids"])
        with self.transaction() as db:
            db.execute(
                "INSERT INTO deliveries (notification_id, alert_id, alert_ids, channel, attempt,"
                " at, ok, parts, error) VALUES (?,?,?,?,?,?,?,?,?)",
                (
                    notification["id"],
                    ids[0] if ids else "",
                    json.dumps(ids),
                    notification["channel"],
                    attempt,
                    _ts(now),
                    int(ok),
                    parts,
                    error,
                ),
            )
            db.execute(
                "UPDATE notifications SET attempts=?, status=?, next_try=?, last_error=?"
                " WHERE id=?",
                (
                    attempt,
                    "sent" if ok else "pending",
                    _ts(next_try or now),
                    error,
                    notification["id"],
                ),
            )
        return attempt

    def sent_parts_since(self, channel: str, since: datetime) -> int:
        """Messages (parts) a channel accepted or was sent since a time: for rate limits."""
        rows = self._query(
            "SELECT COALESCE(SUM(MAX(parts, 1)), 0) FROM deliveries WHERE channel=? AND at>=?",
            (channel, _ts(since)),
        )
        return int(rows[0][0])

    def recent_deliveries(self, limit: int = 200) -> list[dict[str, Any]]:
        """Latest delivery attempts, newest first (ok False rows carry the error)."""
        rows = self._query("SELECT * FROM deliveries ORDER BY at DESC, id DESC LIMIT ?", (limit,))
        out = []
        for row in rows:
            item = dict(row)
            item["at"] = _dt(item["at"])
            item["ok"] = bool(item["ok"])
            item["alert_ids"] = json.loads(item["alert_ids"])
            out.append(item)
        return out

    # -- silences -------------------------------------------------------------
    def add_silence(
        self,
        matchers: Mapping[str, str],
        starts_at: datetime,
        ends_at: datetime,
        created_by: str,
        comment: str,
    ) -> str:
        """Silence alerts whose labels equal all matchers during [starts_at, ends_at)."""
        clean = {str(k).strip(): str(v) for k, v in (matchers or {}).items() if str(k).strip()}
        if not clean:
            raise StateError("a silence needs at least one matcher (label=value)")
        if ends_at <= starts_at:
            raise StateError("a silence must end after it starts")
        if not str(created_by).strip():
            raise StateError("a silence needs its author (created_by)")
        sid = uuid.uuid4().hex[:12]
        with self.transaction() as db:
            db.execute(
                "INSERT INTO silences (id, matchers, starts_at, ends_at, created_by, comment,"
                " created_at) VALUES (?,?,?,?,?,?,?)",
                (
                    sid,
                    json.dumps(clean, ensure_ascii=False),
                    _ts(starts_at),
                    _ts(ends_at),
                    created_by,
                    comment or "",
                    _ts(datetime.now(TZ)),
                ),
            )
        return sid

    def expire_silence(self, silence_id: str, now: datetime | None = None) -> None:
        """End a silence now (kept in history)."""
        at = _ts(now or datetime.now(TZ))
        with self.transaction() as db:
            cur = db.execute(
                "UPDATE silences SET ends_at=MIN(ends_at, ?) WHERE id=?", (at, silence_id)
            )
            if cur.rowcount == 0:
                raise StateError(f"no silence with id {silence_id!r}")

    def silences(
        self, active_only: bool = True, now: datetime | None = None
    ) -> list[dict[str, Any]]:
        """Silences (by default only those in force now), latest start first."""
        sql = "SELECT * FROM silences"
        args: tuple[Any, ...] = ()
        if active_only:
            at = _ts(now or datetime.now(TZ))
            sql += " WHERE starts_at <= ? AND ends_at > ?"
            args = (at, at)
        out = []
        for row in self._query(sql + " ORDER BY starts_at DESC, id", args):
            item = dict(row)
            item["matchers"] = json.loads(item["matchers"])
            for key in ("starts_at", "ends_at", "created_at"):
                item[key] = _dt(item[key])
            out.append(item)
        return out
