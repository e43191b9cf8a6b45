"""The embedded store: one SQLite file, WAL mode, FTS5 over jieba tokens.

One writer and many readers: WAL lets dashboard workers read while a
crawl writes; each thread gets its own connection; writes in this process
are serialised by a lock and across processes by SQLite's own lock (with a
busy timeout, after which `StoreUnavailable` is raised so callers can spool).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import itertools
import json
import math
import operator
import sqlite3
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from govpulse import tokenize
from govpulse.schema import TZ, CrawlEvent, Label, Message, Source, Status, Topic, Urgency
from govpulse.workdays import workday_ordinal
from store.base import (
    FILTER_FIELDS,
    GROUP_FIELDS,
    INTERVALS,
    SORT_FIELDS,
    Filters,
    SearchResult,
    Sla,
    Store,
    StoreError,
    StoreUnavailable,
    TimelinessRow,
    UpsertStats,
)
from store.common import (
    UTC_OFFSET_S,
    from_epoch,
    merge,
    quantile,
    quantile_from_counts,
    to_epoch,
)
from store.sqlite_agg import (
    CONTRIB_COLUMNS,
    DAY_DIMS,
    DELAY_DIMS,
    MONTH_DIMS,
    OPEN_DIMS,
    TABLES,
    Deltas,
    local_day,
    rebuild_from_rows,
    split_range,
)
from store.sqlite_schema import LATEST_VERSION, MIGRATIONS, POPULATE

_COLUMNS = (
    "id", "source", "channel", "url", "title", "body", "author", "region", "department",
    "posted_at", "reply_body", "replied_at", "replier", "status", "likes", "reposts",
    "comments", "votes", "parent_id", "topic", "topic_score", "urgency", "urgency_reasons",
    "rumour_score", "rumour_reasons", "duplicate_of", "extra", "fetched_at", "updated_at",
)  # fmt: skip
_WRITE_COLUMNS = (*_COLUMNS, "content_hash", "posted_wd", "replied_wd")
_HASH_IDX = len(_COLUMNS)
_SELECT = ", ".join(_COLUMNS)
_TIME_COLS = {"posted_at", "replied_at", "fetched_at", "updated_at"}
_JSON_LIST_COLS = {"urgency_reasons", "rumour_reasons"}


def _row_to_message(row: Sequence[Any]) -> Message:
    data = dict(zip(_COLUMNS, row, strict=True))
    for name in _TIME_COLS:
        data[name] = from_epoch(data[name])
    for name in _JSON_LIST_COLS:
        data[name] = json.loads(data[name]) if data[name] else []
    data["extra"] = json.loads(data["extra"]) if data["extra"] else {}
    msg = Message(**data)
    # Stored rows were validated on the way in; coerce enums without re-checking.
    msg.source = Source(msg.source)
    msg.status = Status(msg.status)
    if msg.topic:
        msg.topic = Topic(msg.topic)
    if msg.urgency:
        msg.urgency = Urgency(msg.urgency)
    return msg


_ANALYZE_AFTER = 10_000  # inserted rows that make fresh planner statistics worth it
_FETCHED_IDX = _COLUMNS.index("fetched_at")
_UPDATED_IDX = _COLUMNS.index("updated_at")
_VOLATILE_IDX = (_FETCHED_IDX, _UPDATED_IDX)
_CONTRIB = operator.itemgetter(*(_WRITE_COLUMNS.index(c) for c in CONTRIB_COLUMNS))


_GET_COLUMNS = operator.attrgetter(*_COLUMNS)
_TIME_IDX = tuple(i for i, c in enumerate(_COLUMNS) if c in _TIME_COLS)
_LIST_IDX = tuple(i for i, c in enumerate(_COLUMNS) if c in _JSON_LIST_COLS)
_EXTRA_IDX = _COLUMNS.index("extra")
_PLAIN_IDX = tuple(i for i in range(len(_COLUMNS)) if i not in (*_TIME_IDX, *_LIST_IDX, _EXTRA_IDX))
_KEPT_IDX = tuple(i for i in range(len(_COLUMNS)) if i not in _VOLATILE_IDX)
_KEPT = operator.itemgetter(*_KEPT_IDX)
_PLAIN_TYPES = frozenset({str, int, float, bool})


def _row_digest(row: Sequence[Any]) -> str:
    """Content hash of a row minus re-crawl bookkeeping: equal digest = unchanged.

    The repr of the kept cells as a list: stored digests were made this way,
    so it must not change (a re-import would count every row as updated).
    """
    kept = list(_KEPT(row))
    return hashlib.blake2b(repr(kept).encode(), digest_size=16).hexdigest()


def _message_to_row(msg: Message) -> tuple[Any, ...]:
    """The row to write: columns, index-only derived values, content digest.

    One attrgetter call and per-kind fix-ups by position: this runs once
    per imported message, so it is written for speed.
    """
    out = list(_GET_COLUMNS(msg))
    for i in _TIME_IDX:
        value = out[i]
        if value is not None:
            out[i] = int(value.timestamp())
    for i in _LIST_IDX:
        value = out[i]
        out[i] = json.dumps(value, ensure_ascii=False) if value else None
    extra = out[_EXTRA_IDX]
    out[_EXTRA_IDX] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
    for i in _PLAIN_IDX:
        value = out[i]
        # Enums (StrEnum is a str too) are stored by value; plain types pass.
        if value is not None and type(value) not in _PLAIN_TYPES and hasattr(value, "value"):
            out[i] = value.value
    out.append(_row_digest(out))
    out.append(workday_ordinal(msg.posted_at) if msg.posted_at else None)
    out.append(workday_ordinal(msg.replied_at) if msg.replied_at else None)
    return tuple(out)


_AGG_TABLES = TABLES
#: Sort keys that are never NULL: no "NULLs last" term needed in either direction.
_NOT_NULL_SORT = {"likes", "reposts", "comments", "votes"}
#: Above this many full-text matches, a time-sorted page walks the time index.
_WALK_INDEX_ABOVE = 2000
#: Above this many best-scored candidates a relevance page joins every match instead.
_RELEVANCE_MAX = 50_000


def _no_filters(filters: Filters | None) -> bool:
    return filters is None or filters == Filters()


def _covered(filters: Filters, unit: str) -> tuple[float, float]:
    """The [lo, hi) epoch range a summary serves for `filters` (infinite when unbounded)."""
    covered, _ = split_range(to_epoch(filters.since), to_epoch(filters.until), unit)
    lo, hi = covered if covered is not None else (0, 0)
    return (-math.inf if lo is None else lo), (math.inf if hi is None else hi)


def _locate(pairs: Sequence[tuple[int, int]], rank: int) -> tuple[int, int]:
    """(value, position among the letters with that value) of the rank-th (0-based) letter."""
    seen = 0
    for value, count in pairs:
        if rank < seen + count:
            return value, rank - seen
        seen += count
    raise IndexError(rank)


def fts_query(query: str) -> str | None:
    """FTS5 MATCH expression: every query token as a quoted term (AND)."""
    tokens = tokenize.cut_query(query)
    if not tokens:
        return None
    return " ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def _snapshot(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a read method in one read transaction: one snapshot for all its queries.

    An aggregate adds summary rows, edge rows and (for calendar quantiles)
    rows read back by rank; a write committed between those queries would
    make them disagree.  In WAL mode a read transaction never blocks writers.
    """

    @functools.wraps(method)
    def wrapper(self: SQLiteStore, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn()
        if conn.in_transaction:
            return method(self, *args, **kwargs)
        conn.execute("BEGIN")
        try:
            return method(self, *args, **kwargs)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("COMMIT")

    return wrapper


@dataclass(slots=True)
class _Prepared:
    """A batch made ready outside the write lock (see SQLiteStore._prepare)."""

    stats: UpsertStats
    unique: dict[str, Message]
    rows: dict[str, tuple[Any, ...]]  # of messages not stored when prepared
    token_ids: list[str]
    tokens: Callable[[], list[str]]
    deltas: Deltas  # summary counts of `rows`, made while the previous batch is written


class SQLiteStore(Store):
    """The embedded default store (see module docstring)."""

    def __init__(
        self,
        path: str | Path,
        busy_timeout_ms: int = 30000,
        batch_size: int = 2000,
        index_workers: int = 1,
        search_total_cap: int = 10_000,
        use_summaries: bool = True,
    ):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout_ms = busy_timeout_ms
        self.batch_size = batch_size
        self.index_workers = index_workers
        #: Search totals above this are reported as "at least" (SearchResult.total_relation).
        self.search_total_cap = search_total_cap
        #: False answers every aggregate from the rows (tests, and the benchmark's baseline).
        self.use_summaries = use_summaries
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all_conns: list[sqlite3.Connection] = []
        self._conns_lock = threading.Lock()
        if str(path) != ":memory:":
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._migrate()

    @classmethod
    def from_url(cls, url: str, settings: Mapping[str, Any] | None = None) -> SQLiteStore:
        # SQLAlchemy's convention: sqlite:///relative.db, sqlite:////absolute/path.db
        if not url.startswith("sqlite:///") or len(url) <= len("sqlite:///"):
            raise StoreError(f"no database path in {url!r}: use sqlite:///path/to/govpulse.db")
        path = unquote(url[len("sqlite:///") :])
        settings = settings or {}
        return cls(
            path,
            busy_timeout_ms=int(settings.get("store.sqlite_busy_timeout_ms", 30000)),
            batch_size=int(settings.get("store.batch_size", 2000)),
            index_workers=int(settings.get("store.index_workers", 1)),
            search_total_cap=int(settings.get("store.search_total_cap", 10_000)),
        )

    # -- connections -----------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is None:
            try:
                conn = sqlite3.connect(
                    self.path, timeout=self.busy_timeout_ms / 1000, isolation_level=None,
                    check_same_thread=False,
                )  # fmt: skip
                conn.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_ms)}")
                if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                    self._retry_locked(lambda: conn.execute("PRAGMA journal_mode = WAL"))
                conn.execute("PRAGMA synchronous = NORMAL")
                conn.execute("PRAGMA foreign_keys = ON")
                conn.execute("PRAGMA cache_size = -65536")  # 64 MiB page cache per connection
                conn.execute("PRAGMA mmap_size = 268435456")
                conn.execute("PRAGMA temp_store = MEMORY")
            except sqlite3.Error as exc:
                raise StoreUnavailable(f"cannot open {self.path}: {exc}") from exc
            self._local.conn = conn
            with self._conns_lock:
                self._all_conns.append(conn)
        return conn

    def _read(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        try:
            return self._conn().execute(sql, params).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                raise StoreUnavailable(f"store busy: {exc}") from exc
            raise StoreError(f"query failed: {exc}") from exc

    def _migrate(self) -> None:
        """Bring the schema up to date; safe when several processes open a new file at once."""
        conn = self._conn()
        if self._version(conn) == LATEST_VERSION:
            return  # the common case: no write lock needed just to open
        with self._write_lock:
            # BEGIN IMMEDIATE serialises migrating processes; re-read the version inside it.
            self._retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_version ("
                    "version INTEGER PRIMARY KEY, description TEXT, applied_at INTEGER)"
                )
                current = self._version(conn)
                if current > LATEST_VERSION:
                    raise StoreError(
                        f"{self.path} has schema version {current}, newer than this "
                        f"govpulse ({LATEST_VERSION}); upgrade govpulse"
                    )
                for version, description, sql in MIGRATIONS:
                    if version <= current:
                        continue
                    for statement in sql.split(";"):
                        if statement.strip():
                            conn.execute(statement)
                    if version in POPULATE:
                        POPULATE[version](conn)
                    conn.execute(
                        "INSERT INTO schema_version VALUES (?, ?, ?)",
                        (version, description, int(time.time())),
                    )
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _version(conn: sqlite3.Connection) -> int:
        try:
            return conn.execute("SELECT MAX(version) FROM schema_version").fetchone()[0] or 0
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):
                return 0
            raise

    def _retry_locked(self, action: Callable[[], Any]) -> Any:
        """Run `action`, retrying while another process holds a lock SQLite won't wait for.

        Switching a new file to WAL needs an exclusive lock and fails at once
        (no busy handler) while another process does the same.
        """
        deadline = time.monotonic() + self.busy_timeout_ms / 1000
        delay = 0.01
        while True:
            try:
                return action()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(delay)
                delay = min(delay * 2, 0.5)

    def schema_version(self) -> int:
        return self._read("SELECT MAX(version) FROM schema_version")[0][0]

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            # SQLite's advice: let it refresh statistics that drifted, cheaply.
            with contextlib.suppress(sqlite3.Error):
                conn.execute("PRAGMA analysis_limit = 400")
                conn.execute("PRAGMA optimize")
        with self._conns_lock:
            for conn in self._all_conns:
                with contextlib.suppress(sqlite3.Error):
                    conn.close()
            self._all_conns.clear()
        self._local = threading.local()

    # -- writing ---------------------------------------------------------
    def upsert_many(self, messages: Iterable[Message]) -> UpsertStats:
        """Upsert in batches, one transaction each, preparing one batch ahead.

        Batch N+1 is validated, turned into rows and handed to the index
        workers before batch N is written, so its text is cut while SQLite
        writes (with index_workers > 1).  A writer thread for SQLite was
        measured too: on 2 shared cores it was slower (GIL hand-offs), so
        the writes stay on the caller's thread.
        """
        stats = UpsertStats()
        held: _Prepared | None = None
        batch: list[Message] = []
        for msg in itertools.chain(messages, [None]):
            if msg is not None:
                batch.append(msg)
                if len(batch) < self.batch_size:
                    continue
            if not batch:
                break
            prepared = self._prepare(batch)
            batch = []
            if held is not None:
                stats += self._write_batch(held)
            held = prepared
        if held is not None:
            stats += self._write_batch(held)
        if stats.inserted >= _ANALYZE_AFTER:
            self._analyze()
        return stats

    def _analyze(self) -> None:
        """Refresh the planner's statistics after a bulk load.

        Without them SQLite picks e.g. the source index for a date-bounded
        facet query and scans every row (10x slower at 1M messages).
        """
        with self._write_lock:
            conn = self._conn()
            conn.execute("PRAGMA analysis_limit = 1000")
            conn.execute("ANALYZE")

    def _prepare(self, batch: list[Message]) -> _Prepared:
        """Everything about a batch that needs no write lock: validation, rows, tokens.

        Rows and tokens are made for the messages not yet stored (a read,
        outside the transaction); `_write_batch` checks again inside it and
        builds what a concurrent writer made stale.
        """
        stats = UpsertStats()
        # Last one wins inside a batch, like sequential upserts would.
        unique: dict[str, Message] = {}
        for msg in batch:
            try:
                msg.validate()
            except ValueError as exc:
                stats.failed.append((getattr(msg, "id", "?") or "?", str(exc)))
                continue
            if msg.id in unique:
                # A repeat inside one batch counts as sequential upserts would.
                earlier = unique[msg.id]
                msg = merge(earlier, msg)
                if _message_to_row(msg)[_HASH_IDX] == _message_to_row(earlier)[_HASH_IDX]:
                    stats.unchanged += 1
                else:
                    stats.updated += 1
            unique[msg.id] = msg
        stored = self._stored_ids(list(unique))
        new = [m for i, m in unique.items() if i not in stored]
        # Cut new documents in worker processes while rows are built here.
        tokens = tokenize.index_texts_async(
            [(m.title, m.body, m.reply_body) for m in new], self.index_workers
        )
        now = from_epoch(int(time.time()))
        rows: dict[str, tuple[Any, ...]] = {}
        deltas = Deltas()
        for msg in new:
            if msg.updated_at is None:
                msg.updated_at = now
            row = rows[msg.id] = _message_to_row(msg)
            deltas.add(_CONTRIB(row))
        return _Prepared(stats, unique, rows, [m.id for m in new], tokens, deltas)

    def _stored_ids(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            out.update(
                r[0] for r in self._read(f"SELECT id FROM messages WHERE id IN ({marks})", chunk)
            )
        return out

    def _write_batch(self, prepared: _Prepared) -> UpsertStats:
        stats, unique = prepared.stats, prepared.unique
        if not unique:
            return stats
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                raise StoreUnavailable(f"store is locked by another writer: {exc}") from exc
            try:
                existing = self._load_existing(conn, list(unique))
                # The prepared counts hold when every prepared row is still new.
                fresh = not any(i in existing for i in prepared.rows)
                deltas = prepared.deltas if fresh else Deltas()
                tokens = dict(zip(prepared.token_ids, prepared.tokens(), strict=True))
                now = int(time.time())
                inserts: list[tuple[Any, ...]] = []
                new_tokens: list[str] = []
                for msg_id, msg in unique.items():
                    if msg_id in existing:
                        continue
                    row = prepared.rows.get(msg_id)
                    if row is None:  # stored when prepared, deleted since
                        if msg.updated_at is None:
                            msg.updated_at = from_epoch(now)
                        row = _message_to_row(msg)
                        deltas.add(_CONTRIB(row))
                    elif not fresh:
                        deltas.add(_CONTRIB(row))
                    inserts.append(row)
                    tok = tokens.get(msg_id)
                    new_tokens.append(
                        tok
                        if tok is not None
                        else tokenize.index_text(msg.title, msg.body, msg.reply_body)
                    )
                stats.inserted = len(inserts)
                for rowid, old_msg, old_hash, old_contrib in existing.values():
                    msg = unique[old_msg.id]
                    merged = merge(old_msg, msg).validate()
                    row = _message_to_row(merged)
                    if row[_HASH_IDX] == old_hash:
                        stats.unchanged += 1
                        continue
                    # Only bookkeeping columns change now; they are outside the digest.
                    fetched = msg.fetched_at or old_msg.fetched_at
                    cells = list(row)
                    cells[_FETCHED_IDX] = to_epoch(fetched)
                    cells[_UPDATED_IDX] = now
                    row = tuple(cells)
                    deltas.add(old_contrib, -1)
                    deltas.add(_CONTRIB(row))
                    conn.execute(
                        f"UPDATE messages SET {', '.join(c + ' = ?' for c in _WRITE_COLUMNS[1:])}"
                        " WHERE rowid = ?",
                        (*row[1:], rowid),
                    )
                    old_text = (old_msg.title, old_msg.body, old_msg.reply_body)
                    new_text = (merged.title, merged.body, merged.reply_body)
                    if old_text != new_text:
                        conn.execute("DELETE FROM messages_fts WHERE rowid = ?", (rowid,))
                        conn.execute(
                            "INSERT INTO messages_fts(rowid, tokens) VALUES (?, ?)",
                            (rowid, tokenize.index_text(*new_text)),
                        )
                    stats.updated += 1
                if inserts:
                    placeholders = ", ".join("?" * len(_WRITE_COLUMNS))
                    first = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM messages").fetchone()[
                        0
                    ]
                    rows = [(first + i + 1, *row) for i, row in enumerate(inserts)]
                    conn.executemany(
                        f"INSERT INTO messages (rowid, {', '.join(_WRITE_COLUMNS)}) "
                        f"VALUES (?, {placeholders})",
                        rows,
                    )
                    conn.executemany(
                        "INSERT INTO messages_fts(rowid, tokens) VALUES (?, ?)",
                        [(first + i + 1, tok) for i, tok in enumerate(new_tokens)],
                    )
                deltas.apply(conn)
                conn.execute("COMMIT")
            except BaseException as exc:
                conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                    raise StoreUnavailable(f"store is locked: {exc}") from exc
                raise
        return stats

    def _load_existing(
        self, conn: sqlite3.Connection, ids: list[str]
    ) -> dict[str, tuple[int, Message, str, tuple[Any, ...]]]:
        """Stored rows by id: rowid, message, content hash and summary-table values.

        The summary values are read as stored (not recomputed) so an update
        takes back exactly what the insert added, even if the working-day
        calendar changed in between.
        """
        out: dict[str, tuple[int, Message, str, tuple[Any, ...]]] = {}
        contrib = ", ".join(CONTRIB_COLUMNS)
        width = len(CONTRIB_COLUMNS)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT rowid, content_hash, {contrib}, {_SELECT} FROM messages "
                f"WHERE id IN ({marks})",
                chunk,
            ):
                msg = _row_to_message(row[2 + width :])
                out[msg.id] = (row[0], msg, row[1], tuple(row[2 : 2 + width]))
        return out

    def delete_before(self, cutoff: datetime) -> int:
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                ts = to_epoch(cutoff)
                rebuild_from_rows(conn, "WHERE posted_at < ?", (ts,), sign=-1)
                conn.execute(
                    "DELETE FROM messages_fts WHERE rowid IN "
                    "(SELECT rowid FROM messages WHERE posted_at < ?)",
                    (ts,),
                )
                deleted = conn.execute("DELETE FROM messages WHERE posted_at < ?", (ts,)).rowcount
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
        return deleted

    # -- filters ---------------------------------------------------------
    def _where(self, query: str, filters: Filters | None) -> tuple[str, list[Any]]:
        filters = filters or Filters()
        clauses: list[str] = []
        params: list[Any] = []
        for name in FILTER_FIELDS:
            values = getattr(filters, name)
            if values:
                clauses.append(f"m.{name} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        if filters.ids:
            clauses.append(f"m.id IN ({', '.join('?' * len(filters.ids))})")
            params.extend(filters.ids)
        if filters.since is not None:
            clauses.append("m.posted_at >= ?")
            params.append(to_epoch(filters.since))
        if filters.until is not None:
            clauses.append("m.posted_at < ?")
            params.append(to_epoch(filters.until))
        if filters.min_rumour is not None:
            clauses.append("m.rumour_score >= ?")
            params.append(filters.min_rumour)
        if filters.parent_id is not None:
            clauses.append("m.parent_id = ?")
            params.append(filters.parent_id)
        if not filters.include_duplicates:
            clauses.append("m.duplicate_of IS NULL")
        if query and query.strip():
            match = fts_query(query)
            if match is None:
                clauses.append("0")
            else:
                clauses.append(
                    "m.rowid IN (SELECT rowid FROM messages_fts WHERE messages_fts MATCH ?)"
                )
                params.append(match)
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    # -- reading ---------------------------------------------------------
    def get(self, message_id: str) -> Message | None:
        rows = self._read(f"SELECT {_SELECT} FROM messages WHERE id = ?", (message_id,))
        return _row_to_message(rows[0]) if rows else None

    def get_many(self, ids: Sequence[str]) -> list[Message]:
        found: dict[str, Message] = {}
        ids = list(ids)
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for row in self._read(f"SELECT {_SELECT} FROM messages WHERE id IN ({marks})", chunk):
                msg = _row_to_message(row)
                found[msg.id] = msg
        return [found[i] for i in ids if i in found]

    @_snapshot
    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = "-posted_at",
        page: int = 1,
        per_page: int = 20,
        exact_total: bool = False,
    ) -> SearchResult:
        page = max(1, int(page))
        per_page = max(1, min(int(per_page), 10_000))
        where, params = self._where(query, filters)
        hint = self._rumour_hint(query, filters)
        total, relation, matches = self._search_total(
            query, filters, where, params, exact_total, hint
        )
        order = self._order_by(sort, query)
        offset = (page - 1) * per_page
        if order is None:  # relevance
            rows = self._relevance_page(query, filters, per_page, offset)
        else:
            # Many full-text matches sorted by time: walking the time index and
            # probing the match set stops after one page; sorting every match
            # (what the planner picks without statistics on FTS) reads them all.
            if not hint and matches is not None and matches > _WALK_INDEX_ABOVE:
                key = sort.lstrip("-+")
                if key == "posted_at" or (key == "relevance" and not fts_query(query)):
                    hint = " INDEXED BY ix_messages_posted"
            sql = (
                f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{hint}{where} "
                f"ORDER BY {order} LIMIT ? OFFSET ?"
            )
            rows = self._read(sql, [*params, per_page, offset])
        return SearchResult(total, [_row_to_message(r) for r in rows], page, per_page, relation)

    def _relevance_page(
        self, query: str, filters: Filters | None, per_page: int, offset: int
    ) -> list[tuple[Any, ...]]:
        """One page by bm25 then id, joining only the best-scored matches to their rows.

        Scoring every match is unavoidable (FTS5 has no top-k pruning), but
        joining every match to its row to break ties by id doubled the cost
        for common words.  The best `limit` scores are taken from the
        full-text index alone; the last score's tie group is dropped (it may
        continue past the limit), so what remains is exactly the head of the
        global order.  If too few of those pass the filters, the limit grows;
        past _RELEVANCE_MAX it is the one joined query, as before.
        """
        match = fts_query(query)
        need = offset + per_page
        cols = ", ".join("m." + c for c in _COLUMNS)
        where, params = self._where("", filters)  # candidates already match the query
        limit = max(4 * need, 200)
        while limit <= _RELEVANCE_MAX:
            cands = self._read(
                "SELECT rowid, bm25(messages_fts) AS s FROM messages_fts "
                "WHERE messages_fts MATCH ? ORDER BY s LIMIT ?",
                [match, limit],
            )
            complete = len(cands) < limit
            if not complete:
                cut = cands[-1][1]
                cands = [c for c in cands if c[1] < cut]
            score = dict(cands)
            found: list[tuple[float, str, tuple[Any, ...]]] = []
            joiner = " AND " if where else " WHERE "
            for start in range(0, len(cands), 500):
                chunk = [r for r, _ in cands[start : start + 500]]
                marks = ", ".join("?" * len(chunk))
                for row in self._read(
                    f"SELECT m.rowid, {cols} FROM messages m{where}{joiner}m.rowid IN ({marks})",
                    [*params, *chunk],
                ):
                    found.append((score[row[0]], row[1], row[1:]))
            if complete or len(found) >= need:
                found.sort(key=lambda f: (f[0], f[1]))
                return [f[2] for f in found[offset:need]]
            limit *= 8
        where, params = self._where(query, filters)
        return self._relevance_full(query, where, params, per_page, offset)

    def _relevance_full(
        self, query: str, where: str, params: list[Any], per_page: int, offset: int
    ) -> list[tuple[Any, ...]]:
        """The page by bm25 then id in one joined query (every match joined to its row)."""
        sql = (
            f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m "
            "JOIN (SELECT rowid AS r, bm25(messages_fts) AS score FROM messages_fts "
            "WHERE messages_fts MATCH ?) f ON f.r = m.rowid"
            f"{where} ORDER BY f.score, m.id LIMIT ? OFFSET ?"
        )
        return self._read(sql, [fts_query(query), *params, per_page, offset])

    def _search_total(
        self,
        query: str,
        filters: Filters | None,
        where: str,
        params: list[Any],
        exact: bool,
        hint: str = "",
    ) -> tuple[int, str, int | None]:
        """(total, "eq" or "gte", full-text match count or None) for a search page.

        Exact where it is cheap: a summary-table count, or a full-text count
        with no other filter (FTS counts its own index, ~10 ms for 200,000
        matches).  Otherwise matches are counted only up to
        ``search_total_cap`` and the total is reported as a lower bound
        ("gte", as Elasticsearch does), because an exact count of a common
        word under a filter reads every matching row.
        """
        matches = None
        match = fts_query(query) if query and query.strip() else None
        if query and query.strip() and match is None:
            return 0, "eq", 0  # nothing searchable in the query (punctuation only): no hits
        if match is not None:
            matches = self._read(
                "SELECT COUNT(*) FROM messages_fts WHERE messages_fts MATCH ?", [match]
            )[0][0]
            if _no_filters(filters):
                return matches, "eq", matches
        elif self._plan("", filters, MONTH_DIMS, "month") is not None:
            return self.count("", filters), "eq", None
        cap = self.search_total_cap
        if exact or cap <= 0 or (matches is not None and matches <= cap):
            n = self._read(f"SELECT COUNT(*) FROM messages m{where}", params)[0][0]
            return n, "eq", matches
        n = self._read(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM messages m{hint}{where} LIMIT ?)",
            [*params, cap + 1],
        )[0][0]
        if n > cap:
            return cap, "gte", matches
        return n, "eq", matches

    def _rumour_hint(self, query: str, filters: Filters | None) -> str:
        """Read a rumour-score range by its index when it is smaller than the date range.

        Without statistics on how scores and dates combine, SQLite takes the
        date index for "score >= t in the last 30 days" and looks up every
        message of the month (0.3 s at a million) although only a few
        thousand score that high.  Both ranges are counted on their own
        indexes, stopping at the smaller one, and the smaller one is read.
        """
        f = filters or Filters()
        if f.min_rumour is None or (f.since is None and f.until is None) or query.strip():
            return ""
        limit = 50_000
        rumour = self._read(
            "SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE rumour_score >= ? LIMIT ?)",
            [f.min_rumour, limit],
        )[0][0]
        clauses, params = [], []
        if f.since is not None:
            clauses.append("posted_at >= ?")
            params.append(to_epoch(f.since))
        if f.until is not None:
            clauses.append("posted_at < ?")
            params.append(to_epoch(f.until))
        dated = self._read(
            f"SELECT COUNT(*) FROM (SELECT 1 FROM messages WHERE {' AND '.join(clauses)} LIMIT ?)",
            [*params, limit],
        )[0][0]
        if rumour >= dated:
            return ""
        if f.source:
            return " INDEXED BY ix_messages_source_rumour"
        return " INDEXED BY ix_messages_rumour"

    @staticmethod
    def _order_by(sort: str, query: str) -> str | None:
        desc = sort.startswith("-")
        key = sort.lstrip("-+")
        if key not in SORT_FIELDS:
            raise StoreError(f"cannot sort by {key!r}; use one of {', '.join(SORT_FIELDS)}")
        if key == "relevance":
            if fts_query(query or ""):
                return None
            key, desc = "posted_at", True
        # NULLs last in both directions, then id for a stable order.  SQLite
        # already puts NULLs last when descending; saying so with "IS NULL"
        # would stop it from reading the column's index in order.
        if desc or key in _NOT_NULL_SORT:
            return f"m.{key} {'DESC' if desc else 'ASC'}, m.id ASC"
        return f"m.{key} IS NULL, m.{key} ASC, m.id ASC"

    def iter_messages(
        self, query: str = "", filters: Filters | None = None, batch_size: int = 1000
    ) -> Iterator[Message]:
        where, params = self._where(query, filters)
        last_id = ""
        joiner = " AND " if where else " WHERE "
        while True:
            rows = self._read(
                f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{where}"
                f"{joiner}m.id > ? ORDER BY m.id LIMIT ?",
                [*params, last_id, batch_size],
            )
            if not rows:
                return
            for row in rows:
                yield _row_to_message(row)
            last_id = rows[-1][0]

    # -- summaries -------------------------------------------------------
    def _plan(
        self, query: str, filters: Filters | None, dims: Sequence[str], unit: str
    ) -> tuple[str, list[Any], list[Filters]] | None:
        """How a summary table serves a query: (WHERE over it, params, raw edge filters).

        None when it cannot (a full-text query, a filter on a field the
        table does not keep, or no whole month/day inside the date range):
        the caller then runs its raw-row query alone.
        """
        if not self.use_summaries or (query and query.strip()):
            return None
        f = filters or Filters()
        if f.ids or f.min_rumour is not None or f.parent_id is not None:
            return None
        if not f.include_duplicates:
            return None
        clauses: list[str] = []
        params: list[Any] = []
        for name in FILTER_FIELDS:
            values = getattr(f, name)
            if values:
                if name not in dims:
                    return None
                clauses.append(f"{name} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        covered, edges = split_range(to_epoch(f.since), to_epoch(f.until), unit)
        if covered is None:
            return None
        col = "month" if unit == "month" else "day"
        for bound, op in zip(covered, (">=", "<"), strict=True):
            if bound is not None:
                local = bound + UTC_OFFSET_S
                clauses.append(f"{col} {op} ?")
                params.append(local if unit == "month" else local // 86400)
        raw = [dataclasses.replace(f, since=from_epoch(a), until=from_epoch(b)) for a, b in edges]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params, raw

    def check_summaries(self) -> list[str]:
        """Differences between the summary tables and a recount from the rows ([] = consistent).

        For tests and for an operator who suspects a summary drifted
        (`rebuild_summaries` repairs it).  Recounts inside a transaction
        that is rolled back, so nothing changes.
        """
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = {t: self._table_rows(conn, t) for t in _AGG_TABLES}
                for table in _AGG_TABLES:
                    conn.execute(f"DELETE FROM {table}")
                rebuild_from_rows(conn)
                after = {t: self._table_rows(conn, t) for t in _AGG_TABLES}
            finally:
                conn.execute("ROLLBACK")
        problems = []
        for table in _AGG_TABLES:
            for key in sorted(set(before[table]) | set(after[table])):
                if before[table].get(key) != after[table].get(key):
                    problems.append(
                        f"{table} {key}: stored {before[table].get(key)}, "
                        f"recounted {after[table].get(key)}"
                    )
        return problems

    def rebuild_summaries(self) -> None:
        """Recount the summary tables from the rows (repair; the v4 migration does the same)."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in _AGG_TABLES:
                    conn.execute(f"DELETE FROM {table}")
                rebuild_from_rows(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _table_rows(conn: sqlite3.Connection, table: str) -> dict[str, tuple[Any, ...]]:
        return {row[0]: tuple(row[1:]) for row in conn.execute(f"SELECT * FROM {table}")}

    # -- counts, facets, histograms ------------------------------------------
    @_snapshot
    def count(self, query: str = "", filters: Filters | None = None) -> int:
        plan = self._plan(query, filters, MONTH_DIMS, "month")
        if plan is None:
            return self._count_raw(query, filters)
        where, params, edges = plan
        n = self._read(f"SELECT COALESCE(SUM(n), 0) FROM agg_month{where}", params)[0][0]
        return int(n) + sum(self._count_raw("", e) for e in edges)

    def _count_raw(self, query: str, filters: Filters | None) -> int:
        where, params = self._where(query, filters)
        return self._read(f"SELECT COUNT(*) FROM messages m{where}", params)[0][0]

    @_snapshot
    def facets(
        self,
        fields: Sequence[str],
        query: str = "",
        filters: Filters | None = None,
        size: int = 20,
    ) -> dict[str, list[tuple[str, int]]]:
        for name in fields:
            if name not in GROUP_FIELDS:
                raise StoreError(f"cannot facet on {name!r}")
        names = list(dict.fromkeys(fields))
        served = [n for n in names if n in MONTH_DIMS]
        plan = self._plan(query, filters, MONTH_DIMS, "month") if served else None
        counts: dict[str, dict[str, int]] = {n: defaultdict(int) for n in served}
        if plan is not None:
            # One pass over the summary for every field: grouping by just the
            # wanted fields folds the months away in SQL.
            where, params, edges = plan
            cols = ", ".join(served)
            for row in self._read(
                f"SELECT {cols}, SUM(n) FROM agg_month{where} GROUP BY {cols}", params
            ):
                n = int(row[-1])
                for name, value in zip(served, row, strict=False):
                    if value is not None:
                        counts[name][str(value)] += n
            for edge in edges:
                for name in served:
                    for value, n in self._facet_raw(name, "", edge, -1):
                        counts[name][value] += n
        out: dict[str, list[tuple[str, int]]] = {}
        for name in fields:
            if plan is None or name not in counts:
                out[name] = self._facet_raw(name, query, filters, size)
                continue
            ranked = sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))
            out[name] = ranked if size < 0 else ranked[:size]
        return out

    def _facet_raw(
        self, name: str, query: str, filters: Filters | None, size: int
    ) -> list[tuple[str, int]]:
        where, params = self._where(query, filters)
        cond = f"{where} AND" if where else " WHERE"
        rows = self._read(
            f"SELECT m.{name}, COUNT(*) AS n FROM messages m{cond} m.{name} IS NOT NULL "
            f"GROUP BY m.{name} ORDER BY n DESC, m.{name} ASC LIMIT ?",
            [*params, size],
        )
        return [(str(v), int(n)) for v, n in rows]

    @_snapshot
    def histogram(
        self,
        interval: str = "day",
        query: str = "",
        filters: Filters | None = None,
        split_by: str | None = None,
        date_field: str = "posted_at",
    ) -> list[tuple[datetime, str | None, int]]:
        if interval not in INTERVALS:
            raise StoreError(f"interval must be one of {', '.join(INTERVALS)}")
        if date_field not in ("posted_at", "replied_at", "fetched_at", "updated_at"):
            raise StoreError(f"cannot bucket on {date_field!r}")
        if split_by is not None and split_by not in GROUP_FIELDS:
            raise StoreError(f"cannot split by {split_by!r}")
        plan = None
        if date_field == "posted_at":
            if interval == "month" and split_by in (None, *MONTH_DIMS):
                plan = self._plan(query, filters, MONTH_DIMS, "month")
                table, bucket = "agg_month", "month"
            elif interval in ("day", "week") and split_by in (None, *DAY_DIMS):
                plan = self._plan(query, filters, DAY_DIMS, "day")
                table = "agg_day"
                bucket = "day * 86400" if interval == "day" else "((day + 3) / 7 * 7 - 3) * 86400"
        if plan is None:
            rows = self._histogram_raw(interval, query, filters, split_by, date_field)
        else:
            where, params, edges = plan
            cond = f"{where} AND" if where else " WHERE"
            key = "month" if table == "agg_month" else "day"
            counts: dict[tuple[int, Any], int] = defaultdict(int)
            for b, s, n in self._read(
                f"SELECT {bucket} AS b, {split_by or 'NULL'} AS s, SUM(n) FROM {table}{cond} "
                f"{key} IS NOT NULL GROUP BY b, s",
                params,
            ):
                counts[(b, s)] += int(n)
            for edge in edges:
                for b, s, n in self._histogram_raw(interval, "", edge, split_by, date_field):
                    counts[(b, s)] += n
            rows = sorted(
                ((b, s, n) for (b, s), n in counts.items()),
                key=lambda r: (r[0], r[1] is not None, r[1] or ""),
            )
        return [
            (from_epoch(b - UTC_OFFSET_S), None if s is None else str(s), int(n))  # type: ignore[misc]
            for b, s, n in rows
        ]

    def _histogram_raw(
        self,
        interval: str,
        query: str,
        filters: Filters | None,
        split_by: str | None,
        date_field: str,
    ) -> list[tuple[int, Any, int]]:
        """(local bucket start in epoch seconds, split value, count) from the rows."""
        local = f"(m.{date_field} + {UTC_OFFSET_S})"
        bucket = {
            "hour": f"({local} / 3600) * 3600",
            "day": f"({local} / 86400) * 86400",
            # 1970-01-01 was a Thursday: shift so weeks start on Monday.
            "week": f"((({local} / 86400) + 3) / 7 * 7 - 3) * 86400",
            "month": f"CAST(strftime('%s', strftime('%Y-%m-01', {local}, 'unixepoch')) AS INTEGER)",
        }[interval]
        where, params = self._where(query, filters)
        cond = f"{where} AND" if where else " WHERE"
        split = f"m.{split_by}" if split_by else "NULL"
        return self._read(
            f"SELECT {bucket} AS b, {split} AS s, COUNT(*) FROM messages m{cond} "
            f"m.{date_field} IS NOT NULL GROUP BY b, s ORDER BY b, s",
            params,
        )

    # -- timeliness ------------------------------------------------------
    @staticmethod
    def _sla_case(sla: Sla, column: str = "m.source") -> tuple[str, list[Any]]:
        if not sla.by_source:
            return "?", [sla.days]
        parts = " ".join("WHEN ? THEN ?" for _ in sla.by_source)
        params: list[Any] = []
        for source, days in sla.by_source.items():
            params.extend([source, int(days)])
        return f"(CASE {column} {parts} ELSE ? END)", [*params, sla.days]

    @staticmethod
    def _now_terms(now: datetime, sla: Sla) -> tuple[str, str, int]:
        """SQL for a letter's delay (answered) and age (open), in the SLA's unit."""
        if sla.working_days:
            return "(m.replied_wd - m.posted_wd)", "(? - m.posted_wd)", workday_ordinal(now)
        # replied_at - posted_at rather than the generated delay_s: the planner
        # then reads both from the covering index instead of every row.
        return (
            "((m.replied_at - m.posted_at) / 86400.0)",
            "((? - m.posted_at) / 86400.0)",
            int(now.timestamp()),
        )

    @_snapshot
    def timeliness(
        self,
        group_by: str = "department",
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
    ) -> list[TimelinessRow]:
        if group_by not in GROUP_FIELDS:
            raise StoreError(f"cannot group by {group_by!r}")
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        plan = self._plan("", filters, DELAY_DIMS, "month") if group_by in DELAY_DIMS else None
        if plan is None:
            return self._timeliness_raw(group_by, filters, sla, now)
        where, params, edges = plan
        working = sla.working_days
        # Answered letters: per (group, source, delay bucket) from the summary and the edges.
        parts = self._answered_summary(group_by, where, params, working)
        for edge in edges:
            parts += self._answered_raw(group_by, edge, working)
        answered: dict[str, int] = defaultdict(int)
        within: dict[str, int] = defaultdict(int)
        delay_n: dict[str, int] = defaultdict(int)
        delay_sum: dict[str, int] = defaultdict(int)
        freq: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for g, source, d, exact, n, total in parts:
            answered[g] += n
            if d is None:
                continue
            days = sla.for_source(source)
            if d < days or (d == days and (working or exact)):
                within[g] += n
            delay_n[g] += n
            delay_sum[g] += total
            freq[g][d] += n
        opened = self._open_stats(group_by, filters, sla, now)
        if working:
            quantiles = {
                g: (
                    quantile_from_counts(sorted(f.items()), 0.5),
                    quantile_from_counts(sorted(f.items()), 0.9),
                )
                for g, f in freq.items()
            }
        else:
            quantiles = self._calendar_quantiles(group_by, filters, freq)
        out = []
        for g in set(answered) | set(opened):
            open_, overdue = opened.get(g, (0, 0))
            med, p90 = quantiles.get(g, (None, None))
            mean = None
            if delay_n[g]:
                mean = delay_sum[g] / delay_n[g] if working else delay_sum[g] / 86400 / delay_n[g]
            out.append(
                TimelinessRow(
                    group=g,
                    letters=answered[g] + open_,
                    answered=answered[g],
                    open=open_,
                    overdue=overdue,
                    within_sla=within[g],
                    median_delay=med,
                    p90_delay=p90,
                    mean_delay=mean,
                )
            )
        out.sort(key=lambda r: (-r.letters, r.group))
        return out

    def _answered_summary(
        self, group_by: str, where: str, params: list[Any], working: bool
    ) -> list[tuple[Any, ...]]:
        """(group, source, delay bucket, exact, letters, delay sum) of answered letters, summarised.

        Working days: the bucket is the delay itself and the sum is in
        working days.  Calendar: the bucket is whole days (floor), ``exact``
        says the delay is exactly that many days, and the sum is in seconds.
        """
        g = f"COALESCE({group_by}, '(未知)')"
        if working:
            rows = self._read(
                f"SELECT {g}, source, d, SUM(n) FROM agg_delay_wd{where} GROUP BY 1, 2, 3", params
            )
            return [(gv, s, d, 1, n, 0 if d is None else d * n) for gv, s, d, n in rows]
        return self._read(
            f"SELECT {g}, source, d, exact, SUM(n), SUM(sum_s) FROM agg_delay_cd{where} "
            "GROUP BY 1, 2, 3, 4",
            params,
        )

    def _answered_raw(
        self, group_by: str, filters: Filters, working: bool
    ) -> list[tuple[Any, ...]]:
        """The tuples of `_answered_summary`, counted from the rows (for partial months)."""
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        g = f"COALESCE(m.{group_by}, '(未知)')"
        if working:
            rows = self._read(
                f"SELECT {g}, m.source, m.replied_wd - m.posted_wd AS d, COUNT(*) "
                f"FROM messages m{cond} m.status != 'open' GROUP BY 1, 2, 3",
                params,
            )
            return [(gv, s, d, 1, n, 0 if d is None else d * n) for gv, s, d, n in rows]
        delay = "(m.replied_at - m.posted_at)"  # not delay_s: see _now_terms
        rem = f"(({delay} % 86400 + 86400) % 86400)"
        return self._read(
            f"SELECT {g}, m.source, ({delay} - {rem}) / 86400 AS d, "
            f"CASE WHEN {delay} IS NULL THEN 0 ELSE {rem} = 0 END AS e, COUNT(*), "
            f"COALESCE(SUM({delay}), 0) FROM messages m{cond} m.status != 'open' "
            "GROUP BY 1, 2, 3, 4",
            params,
        )

    def _open_filters(self, filters: Filters | None) -> Filters | None:
        """Filters for a query over open letters only, or None when none can match."""
        f = filters or Filters()
        if f.status:
            if "open" not in f.status:
                return None
            f = dataclasses.replace(f, status=())
        return f

    def _open_stats(
        self, group_by: str, filters: Filters | None, sla: Sla, now: datetime
    ) -> dict[str, tuple[int, int]]:
        """Open letters and overdue ones per group: whole days from agg_open, edges from rows.

        A calendar deadline falls inside a day; the letters of that day
        posted before it are counted from the rows (a one-day range read).
        """
        f = self._open_filters(filters)
        if f is None:
            return {}
        plan = self._plan("", f, OPEN_DIMS, "day") if group_by in DELAY_DIMS else None
        if plan is None:
            return self._open_stats_raw(group_by, f, sla, now)
        where, params, edges = plan
        g = "'open'" if group_by == "status" else f"COALESCE({group_by}, '(未知)')"
        sla_sql, sla_params = self._sla_case(sla, "source")
        if sla.working_days:
            over = f"wd IS NOT NULL AND (? - wd) > {sla_sql}"
            over_params: list[Any] = [workday_ordinal(now), *sla_params]
        else:
            # Every letter of the day is past the deadline when the day ended by then.
            over = (
                f"day IS NOT NULL AND (day + 1) * 86400 - {UTC_OFFSET_S} <= ? - {sla_sql} * 86400"
            )
            over_params = [int(now.timestamp()), *sla_params]
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for gv, n, o in self._read(
            f"SELECT {g}, SUM(n), SUM(CASE WHEN {over} THEN n ELSE 0 END) FROM agg_open{where} "
            "GROUP BY 1",
            [*over_params, *params],
        ):
            out[str(gv)][0] += int(n)
            out[str(gv)][1] += int(o)
        for edge in edges:
            for gv, (n, o) in self._open_stats_raw(group_by, edge, sla, now).items():
                out[gv][0] += n
                out[gv][1] += o
        if not sla.working_days:
            lo, hi = _covered(f, "day")
            stamp = int(now.timestamp())
            for source in Source:
                if f.source and source.value not in f.source:
                    continue
                cutoff = stamp - sla.for_source(source.value) * 86400
                start = local_day(cutoff) * 86400 - UTC_OFFSET_S
                start, end = max(start, lo), min(cutoff, hi)
                if start >= end:
                    continue
                part = dataclasses.replace(
                    f, source=(source.value,), since=from_epoch(start), until=from_epoch(end)
                )
                for gv, (n, _) in self._open_stats_raw(group_by, part, sla, now).items():
                    out[gv][1] += n
        return {gv: (n, o) for gv, (n, o) in out.items()}

    def _open_stats_raw(
        self, group_by: str, filters: Filters, sla: Sla, now: datetime
    ) -> dict[str, tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        g = "'open'" if group_by == "status" else f"COALESCE(m.{group_by}, '(未知)')"
        hint = " INDEXED BY ix_messages_status_posted" if group_by in DELAY_DIMS else ""
        rows = self._read(
            f"SELECT {g}, COUNT(*), SUM(m.posted_at IS NOT NULL AND {age} > {sla_sql}) "
            f"FROM messages m{hint}{cond} m.status = 'open' GROUP BY 1",
            [now_value, *sla_params, *params],
        )
        return {str(gv): (int(n), int(o or 0)) for gv, n, o in rows}

    def _calendar_quantiles(
        self, group_by: str, filters: Filters | None, freq: dict[str, dict[int, int]]
    ) -> dict[str, tuple[float | None, float | None]]:
        """Exact median and p90 of calendar delays from whole-day counts.

        The counts say which whole day holds each wanted rank; only the
        letters of that day are read back (partial index on delay_s), so a
        million letters cost a few small range reads instead of a sort.
        """
        wanted: dict[str, list[tuple[int, int, int, int, float]]] = {}
        days_needed: dict[int, set[str]] = defaultdict(set)
        for g, counts in freq.items():
            pairs = sorted(counts.items())
            total = sum(n for _, n in pairs)
            picks = []
            for q in (0.5, 0.9):
                pos = (total - 1) * q
                lo = math.floor(pos)
                hi = min(lo + 1, total - 1)
                (d_lo, off_lo), (d_hi, off_hi) = _locate(pairs, lo), _locate(pairs, hi)
                days_needed[d_lo].add(g)
                days_needed[d_hi].add(g)
                picks.append((d_lo, off_lo, d_hi, off_hi, pos - lo))
            wanted[g] = picks
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        expr = f"COALESCE(m.{group_by}, '(未知)')"
        values: dict[tuple[int, str], list[int]] = defaultdict(list)
        for day, groups in days_needed.items():
            for gv, v in self._read(
                f"SELECT {expr}, m.delay_s FROM messages m INDEXED BY ix_messages_delay{cond} "
                "m.status != 'open' AND m.delay_s >= ? AND m.delay_s < ?",
                [*params, day * 86400, (day + 1) * 86400],
            ):
                if gv in groups:
                    values[(day, gv)].append(v)
        for vals in values.values():
            vals.sort()
        out: dict[str, tuple[float | None, float | None]] = {}
        for g, picks in wanted.items():
            result = []
            for d_lo, off_lo, d_hi, off_hi, frac in picks:
                lo_val = values[(d_lo, g)][off_lo] / 86400.0
                hi_val = values[(d_hi, g)][off_hi] / 86400.0
                result.append(float(lo_val) + (float(hi_val) - float(lo_val)) * frac)
            out[g] = (result[0], result[1])
        return out

    def _timeliness_raw(
        self, group_by: str, filters: Filters | None, sla: Sla, now: datetime
    ) -> list[TimelinessRow]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        delay, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        answered = "m.status != 'open'"
        rows = self._read(
            f"SELECT COALESCE(m.{group_by}, '(未知)') AS g, COUNT(*), "
            f"SUM({answered}), SUM(m.status = 'open'), "
            f"SUM(m.status = 'open' AND m.posted_at IS NOT NULL AND {age} > {sla_sql}), "
            f"SUM({answered} AND {delay} IS NOT NULL AND {delay} <= {sla_sql}), "
            f"AVG(CASE WHEN {answered} THEN {delay} END) "
            f"FROM messages m{cond} 1 GROUP BY g",
            [now_value, *sla_params, *sla_params, *params],
        )
        quantiles = self._delay_quantiles(group_by, delay, cond, params, sla.working_days)
        out = []
        for g, letters, ans, open_, overdue, within, mean in rows:
            med, p90 = quantiles.get(g, (None, None))
            out.append(
                TimelinessRow(
                    group=str(g),
                    letters=int(letters),
                    answered=int(ans or 0),
                    open=int(open_ or 0),
                    overdue=int(overdue or 0),
                    within_sla=int(within or 0),
                    median_delay=med,
                    p90_delay=p90,
                    mean_delay=None if mean is None else float(mean),
                )
            )
        out.sort(key=lambda r: (-r.letters, r.group))
        return out

    def _delay_quantiles(
        self, group_by: str, delay: str, cond: str, params: list[Any], working: bool
    ) -> dict[str, tuple[float | None, float | None]]:
        base = f"FROM messages m{cond} m.status != 'open' AND {delay} IS NOT NULL"
        group = f"COALESCE(m.{group_by}, '(未知)')"
        out: dict[str, tuple[float | None, float | None]] = {}
        if working:
            # Whole working days: a frequency table per group is small and exact.
            freq: dict[str, list[tuple[float, int]]] = defaultdict(list)
            for g, d, n in self._read(
                f"SELECT {group} AS g, {delay} AS d, COUNT(*) {base} GROUP BY g, d ORDER BY g, d",
                params,
            ):
                freq[g].append((d, n))
            for g, pairs in freq.items():
                out[g] = (quantile_from_counts(pairs, 0.5), quantile_from_counts(pairs, 0.9))
            return out
        values: dict[str, list[float]] = defaultdict(list)
        for g, d in self._read(f"SELECT {group} AS g, {delay} AS d {base} ORDER BY g, d", params):
            values[g].append(d)
        for g, vals in values.items():
            out[g] = (quantile(vals, 0.5), quantile(vals, 0.9))
        return out

    @_snapshot
    def delay_distribution(
        self, filters: Filters | None = None, sla: Sla | None = None, now: datetime | None = None
    ) -> list[tuple[int, int, int]]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        plan = self._plan("", filters, DELAY_DIMS, "month")
        if plan is None:
            answered = self._answered_days_raw(filters, sla, now)
        else:
            where, params, edges = plan
            table = "agg_delay_wd" if sla.working_days else "agg_delay_cd"
            cond = f"{where} AND" if where else " WHERE"
            answered = self._read(
                f"SELECT d, SUM(n) FROM {table}{cond} d IS NOT NULL GROUP BY d", params
            )
            for edge in edges:
                answered += self._answered_days_raw(edge, sla, now)
        for d, n in answered:
            counts[max(0, int(d))][0] += n
        open_filters = self._open_filters(filters)
        if open_filters is not None:
            # Ages in working days follow from the posted day; calendar ages
            # need the time of day, so those are counted from the rows.
            oplan = self._plan("", open_filters, OPEN_DIMS, "day") if sla.working_days else None
            if oplan is None:
                opened = self._open_ages_raw(open_filters, sla, now, plan is not None)
            else:
                where, params, edges = oplan
                cond = f"{where} AND" if where else " WHERE"
                opened = self._read(
                    f"SELECT ? - wd AS d, SUM(n) FROM agg_open{cond} wd IS NOT NULL GROUP BY d",
                    [workday_ordinal(now), *params],
                )
                for edge in edges:
                    opened += self._open_ages_raw(edge, sla, now, True)
            for d, n in opened:
                counts[max(0, int(d))][1] += n
        return [(d, a, c) for d, (a, c) in sorted(counts.items())]

    def _open_ages_raw(
        self, filters: Filters, sla: Sla, now: datetime, indexed: bool
    ) -> list[tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        hint = " INDEXED BY ix_messages_status_posted" if indexed else ""
        return self._read(
            f"SELECT CAST({age} AS INTEGER) AS d, COUNT(*) FROM messages m{hint}{cond} "
            "m.status = 'open' AND m.posted_at IS NOT NULL GROUP BY d",
            [now_value, *params],
        )

    def _answered_days_raw(
        self, filters: Filters | None, sla: Sla, now: datetime
    ) -> list[tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        delay, _, _ = self._now_terms(now, sla)
        return self._read(
            f"SELECT CAST({delay} AS INTEGER) AS d, COUNT(*) FROM messages m{cond} "
            f"m.status != 'open' AND {delay} IS NOT NULL GROUP BY d",
            params,
        )

    def overdue(
        self,
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
        limit: int = 100,
    ) -> list[Message]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        rows = self._read(
            f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{cond} "
            f"m.status = 'open' AND m.posted_at IS NOT NULL AND {age} > {sla_sql} "
            "ORDER BY m.posted_at ASC, m.id ASC LIMIT ?",
            [*params, now_value, *sla_params, limit],
        )
        return [_row_to_message(r) for r in rows]

    # -- crawl events and labels -------------------------------------------
    def _write(self, sql: str, params: Sequence[Any]) -> None:
        conn = self._conn()
        with self._write_lock:
            try:
                conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if "locked" in str(exc):
                    raise StoreUnavailable(f"store is locked: {exc}") from exc
                raise

    def add_crawl_event(self, event: CrawlEvent) -> None:
        self._write(
            "INSERT INTO crawl_events (source, spider, kind, at, ok, items, pages, errors, detail) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                event.source, event.spider, event.kind, to_epoch(event.at), int(event.ok),
                event.items, event.pages, event.errors, event.detail,
            ),
        )  # fmt: skip

    def crawl_events(
        self, source: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[CrawlEvent]:
        clauses, params = [], []
        if source:
            clauses.append("source = ?")
            params.append(source)
        if since:
            clauses.append("at >= ?")
            params.append(to_epoch(since))
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._read(
            "SELECT source, spider, kind, at, ok, items, pages, errors, detail FROM crawl_events"
            f"{where} ORDER BY at DESC, rowid DESC LIMIT ?",
            [*params, limit],
        )
        return [
            CrawlEvent(s, sp, k, from_epoch(at), bool(ok), i, p, e, d)  # type: ignore[arg-type]
            for s, sp, k, at, ok, i, p, e, d in rows
        ]

    def add_label(self, label: Label) -> None:
        self._write(
            "INSERT INTO labels (message_id, task, value, user, at, note) VALUES (?, ?, ?, ?, ?, ?)",
            (label.message_id, label.task, label.value, label.user, to_epoch(label.at), label.note),
        )

    def labels(self, task: str | None = None, message_id: str | None = None) -> list[Label]:
        clauses, params = [], []
        if task:
            clauses.append("task = ?")
            params.append(task)
        if message_id:
            clauses.append("message_id = ?")
            params.append(message_id)
        where = (" WHERE " + " AND ".join(clauses)) if clauses else ""
        rows = self._read(
            f"SELECT message_id, task, value, user, at, note FROM labels{where} "
            "ORDER BY at DESC, rowid DESC",
            params,
        )
        return [Label(m, t, v, u, from_epoch(at), n) for m, t, v, u, at, n in rows]  # type: ignore[arg-type]
