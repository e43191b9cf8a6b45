"""The embedded store: one SQLite file, WAL mode, FTS5 over jieba tokens.

One writer and many readers: WAL lets dashboard workers read while a
crawl writes; each thread gets its own connection; writes in this process
are serialised by a lock and across processes by SQLite's own lock (with a
busy timeout, after which `StoreUnavailable` is raised so callers can spool).
"""

from __future__ import annotations

import contextlib
import itertools
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from govpulse import tokenize
from govpulse.gcpause import cycle_collection_paused, freeze_survivors, survivors_frozen
from govpulse.schema import CrawlEvent, Label, Message
from store.base import (
    FILTER_FIELDS,
    Filters,
    Store,
    StoreError,
    StoreUnavailable,
    UpsertStats,
)
from store.common import (
    epoch_of,
    from_epoch,
    merge,
    to_epoch,
)
from store.sqlite_agg import (
    CONTRIB_COLUMNS,
    Deltas,
    rebuild_from_rows,
)
from store.sqlite_aggregates import AggregateQueries
from store.sqlite_rows import (
    _ANALYZE_AFTER,
    _CONTRIB,
    _FETCHED_IDX,
    _HASH_IDX,
    _SELECT,
    _UPDATED_IDX,
    _WRITE_COLUMNS,
    _bare_row,
    _finish_rows,
    _message_to_row,
    _row_to_message,
    fts_query,
)
from store.sqlite_schema import LATEST_VERSION, MIGRATIONS, POPULATE
from store.sqlite_search import SearchQueries
from store.sqlite_workers import RowIndexer, StageDir, copy_staged, run_in_thread


@dataclass(slots=True)
class _Prepared:
    """A batch made ready outside the write lock (see SQLiteStore._prepare)."""

    stats: UpsertStats
    unique: dict[str, Message]
    #: Bare rows (digest cell None) of the messages not stored when prepared.
    rows: dict[str, list[Any]]
    #: Their FTS tokens and content digests, cut in the index workers (and
    #: staging files holding the finished rows, see _copy_staged).
    indexer: RowIndexer
    #: Ids found stored when prepared, and the writes seen before looking
    #: (see SQLiteStore._ids_to_load).
    stored: set[str]
    writes_seen: tuple[int, int]
    #: Ids also in an earlier batch of the same transaction.
    repeats: set[str] = field(default_factory=set)


@dataclass(slots=True)
class _Transaction:
    """An open write transaction of upsert_many: it holds the write lock until it ends."""

    conn: sqlite3.Connection
    deltas: Deltas  # summary changes of every batch written in it, applied before COMMIT
    ended: bool = False  # committed or rolled back, lock released
    #: Staging files attached in it (detachable only once it has ended).
    attached: list[str] = field(default_factory=list)


#: Staging files one transaction can attach: SQLite's default SQLITE_MAX_ATTACHED.
_STAGE_FILES_PER_TRANSACTION = 10
#: SQLite's default automatic checkpoint (pages of WAL), restored after a bulk write.
_WAL_AUTOCHECKPOINT = 1000


def _discard(batches: list[_Prepared]) -> None:
    """Drop prepared batches' worker results and staging files (no-op once written)."""
    for prepared in batches:
        prepared.indexer.discard()


def _valid(messages: list[Message], stats: UpsertStats) -> list[Message]:
    """The messages that validate (coerced in place); the others go to `stats.failed`."""
    out: list[Message] = []
    for msg in messages:
        try:
            msg.validate()
        except ValueError as exc:
            stats.failed.append((getattr(msg, "id", "?") or "?", str(exc)))
            continue
        out.append(msg)
    return out


def _in_posted_order(messages: list[Message]) -> list[Message]:
    """`messages` in the order of their posting time, every id's copies kept in order.

    Why: seven of the table's indexes lead with, or end in, `posted_at`
    after a few distinct values (source, status, topic ...).  Written in
    posting order, each index takes a transaction's rows in a few runs of
    neighbouring keys instead of at random pages, so each page is read and
    rewritten once per transaction.  A 100,000-message import of the
    benchmark's messages (random over two years) ran ~16 % faster.
    Rowids follow this order; nothing reads them as arrival order.

    The sort is stable and keyed by each id's *first* copy, so repeated
    ids keep their relative order (the last still wins, merged as
    sequential upserts would); messages without a time come first.
    """
    first: dict[str, int] = {}
    for msg in messages:
        if msg.id not in first:
            first[msg.id] = epoch_of(msg.posted_at) if msg.posted_at else -(2**63)
    return sorted(messages, key=lambda msg: first[msg.id])


class SQLiteStore(SearchQueries, AggregateQueries, Store):
    """The embedded default store (see module docstring)."""

    def __init__(
        self,
        path: str | Path,
        busy_timeout_ms: int = 30000,
        batch_size: int = 2000,
        index_workers: int = 1,
        transaction_size: int = 50_000,
        search_total_cap: int = 10_000,
        use_summaries: bool = True,
    ):
        self.path = Path(path)
        self.url = f"sqlite:///{self.path}"
        self.busy_timeout_ms = busy_timeout_ms
        self.batch_size = batch_size
        self.index_workers = index_workers
        #: Messages per write transaction of upsert_many (several batches; see there).
        self.transaction_size = max(1, transaction_size)
        #: Search totals above this are reported as "at least" (SearchResult.total_relation).
        self.search_total_cap = search_total_cap
        #: False answers every aggregate from the rows (tests, and the benchmark's baseline).
        self.use_summaries = use_summaries
        self._local = threading.local()
        self._write_lock = threading.Lock()
        self._all_conns: list[sqlite3.Connection] = []
        self._checkpoint_thread: ThreadPoolExecutor | None = None
        #: Bulk writes from this many messages a transaction checkpoint in a thread.
        self.bulk_checkpoint_min = 2_000
        #: Commits of messages by this store (see _writes_seen).
        self._message_commits = 0
        self._stage = StageDir()  # scratch files of staged batches (store/sqlite_workers.py)
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
            transaction_size=int(settings.get("store.transaction_size", 50_000)),
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
        if self._checkpoint_thread is not None:
            # First: a checkpoint still running uses a connection closed below.
            self._checkpoint_thread.shutdown()
            self._checkpoint_thread = None
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
        self._stage.close()

    # -- writing ---------------------------------------------------------
    def upsert_many(self, messages: Iterable[Message]) -> UpsertStats:
        """Upsert in transactions of up to `transaction_size` messages, each written in
        batches (at least `batch_size`, see `_step`), all prepared before the first is written.

        Preparing (validation, rows, handing the rows to the index workers)
        is cheap next to writing, so the whole transaction is prepared first:
        the workers then cut, hash and stage every batch while this thread
        writes the earlier ones, and the first write rarely waits.  The next
        transaction is prepared while another thread checkpoints this one
        (`_commit_then_prepare`).  A writer thread for SQLite was measured
        too: on 2 shared cores it was slower (GIL hand-offs), so the writes
        stay on the caller's thread; so was preparing in a thread while
        SQLite writes (1.2x the CPU, slower).

        Why several batches share a transaction: each commit writes every
        page it touched to the WAL (and checkpoints), and the summary
        tables take one upsert per distinct key per commit; at 2,000
        messages a commit, commits and summary upkeep were a third of the
        import.  As the store grows, a commit rewrites more index pages, so
        larger transactions keep long imports fast: a 100,000-message import
        ran at ~9.5-11.8k messages/s with 10,000 per transaction and
        ~12.6-14.8k with 50,000.  The price: a failure rolls back up to
        `transaction_size` messages, and other writers wait for the lock up
        to a few seconds.

        The caller's iterator never runs while a transaction is open (a slow
        producer, or one that itself writes to the store, never meets the
        lock): the next transaction's messages are read before this one is
        written, so up to two transactions' messages are held at once.  If
        the iterator fails, what was read before is written and committed,
        then the error is raised.
        """
        stats = UpsertStats()
        source = iter(messages)
        ready: list[_Prepared] = []
        conn = self._conn()
        bulk = False  # checkpoints in the store's thread (see _commit_then_prepare)
        try:
            chunk = list(itertools.islice(source, self.transaction_size))
            if len(chunk) >= self.bulk_checkpoint_min:
                bulk = True
                conn.execute("PRAGMA wal_autocheckpoint = 0")
            # Paused only in here: the caller's iterator may make garbage cycles.
            # What a step leaves alive (the prepared rows) is frozen, not walked
            # by the collections while the iterator runs (govpulse/gcpause.py).
            with survivors_frozen() as freeze:
                with cycle_collection_paused():
                    ready = self._prepare_transaction(chunk, stats)
                    if freeze:
                        freeze_survivors()
                while chunk:
                    failed: BaseException | None = None
                    try:
                        chunk = list(itertools.islice(source, self.transaction_size))
                    except BaseException as exc:  # write what was read before, then raise
                        failed, chunk = exc, []
                    written, ready = ready, []
                    with cycle_collection_paused():
                        ready = self._commit_then_prepare(written, chunk, stats, bulk)
                        if freeze:
                            freeze_survivors()
                    if failed is not None:
                        raise failed
        finally:
            _discard(ready)
            if bulk:
                conn.execute(f"PRAGMA wal_autocheckpoint = {_WAL_AUTOCHECKPOINT}")
        if stats.inserted >= _ANALYZE_AFTER:
            self._analyze()
        return stats

    def _commit_then_prepare(
        self, written: list[_Prepared], chunk: list[Message], stats: UpsertStats, bulk: bool
    ) -> list[_Prepared]:
        """Write and commit `written`, then prepare `chunk` while another thread checkpoints.

        Why: a commit's checkpoint (copying the transaction's pages from the
        WAL into the database file) was about half of the commit, on the
        writing thread.  It is SQLite C code that releases the GIL, and
        preparing is Python, so the two run side by side; the next
        transaction starts once both are done.  Waiting for the checkpoint
        keeps the WAL from growing: SQLite starts it over only when a new
        write transaction finds every frame copied back.  The writing
        connection's own automatic checkpoints are off meanwhile.  The last
        transaction's checkpoint is not waited for: a checkpoint never
        blocks readers or a writer, and one still running when the next
        write starts only delays the WAL's restart by a transaction.

        Only for bulk writes (`bulk`: the first transaction held at least
        `bulk_checkpoint_min` messages).  Small ones, such as a crawl's
        store batches, leave checkpoints to SQLite, which runs one only
        when the WAL has grown past 1,000 pages, not after every call.
        """
        try:
            txn = self._write_transaction(written, stats)
            if txn is not None:
                self._end_transaction(txn, commit=True)
        finally:
            _discard(written)
        pending = None
        if bulk and txn is not None:
            pending = run_in_thread(self._checkpointer(), self._checkpoint)
        if not chunk:
            # The last transaction: its checkpoint goes on after the call returns
            # (the rows are committed and readable; `close` waits for it).
            return []
        try:
            return self._prepare_transaction(chunk, stats)
        finally:
            if pending is not None:
                pending.result()

    def _checkpointer(self) -> ThreadPoolExecutor:
        """The store's one thread for checkpoints during bulk writes (made on first use)."""
        if self._checkpoint_thread is None:
            self._checkpoint_thread = ThreadPoolExecutor(1, thread_name_prefix="govpulse-wal")
        return self._checkpoint_thread

    def _checkpoint(self) -> None:
        """Copy committed WAL frames into the database (PASSIVE: never waits for a lock).

        Best effort, as SQLite's own automatic checkpoint is: what a busy
        reader keeps it from copying is copied by a later checkpoint.
        """
        with contextlib.suppress(sqlite3.Error):
            self._conn().execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()

    def _prepare_transaction(self, messages: list[Message], stats: UpsertStats) -> list[_Prepared]:
        """Validate `messages`, put them in posting order and prepare them in batches."""
        ordered = _in_posted_order(_valid(messages, stats))
        batches: list[_Prepared] = []
        try:
            step = self._step(len(ordered))
            seen: set[str] = set()
            for start in range(0, len(ordered), step):
                prepared = self._prepare(ordered[start : start + step])
                prepared.repeats = seen.intersection(prepared.unique)
                seen.update(prepared.unique)
                batches.append(prepared)
        except BaseException:
            _discard(batches)
            raise
        return batches

    def _write_transaction(
        self, batches: list[_Prepared], stats: UpsertStats
    ) -> _Transaction | None:
        """Write prepared batches in one transaction, left open for the caller to commit.

        None when no batch had anything to write; rolled back on failure.
        """
        txn: _Transaction | None = None
        try:
            for prepared in batches:
                txn = self._write_prepared(txn, prepared, stats)
        except BaseException:
            if txn is not None:
                self._end_transaction(txn, commit=False)  # no-op when it ended
            raise
        return txn

    def _step(self, n: int) -> int:
        """Messages per preparation batch of an `n`-message transaction.

        At least `batch_size`, and few enough batches that every batch's
        staging files (one per index worker) can stay attached until the
        transaction ends: a 50,000-message transaction with 2 workers is 5
        batches of 10,000.  Beyond that SQLite's limit of attached files
        would send the later batches down the slower ordinary path.
        """
        batches = max(1, _STAGE_FILES_PER_TRANSACTION // max(1, self.index_workers))
        return max(self.batch_size, -(-n // batches))

    def _write_prepared(
        self, txn: _Transaction | None, prepared: _Prepared, stats: UpsertStats
    ) -> _Transaction | None:
        """Write one prepared batch, opening the transaction if none is open yet."""
        if not prepared.unique:
            stats += prepared.stats
            return txn
        if txn is None:
            txn = self._begin_transaction()
        try:
            stats += self._write_batch(txn, prepared)
        except BaseException:
            self._end_transaction(txn, commit=False)
            raise
        return txn

    def _begin_transaction(self) -> _Transaction:
        conn = self._conn()
        self._write_lock.acquire()
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            self._write_lock.release()
            raise StoreUnavailable(f"store is locked by another writer: {exc}") from exc
        except BaseException:
            self._write_lock.release()
            raise
        return _Transaction(conn, Deltas())

    def _end_transaction(self, txn: _Transaction, commit: bool) -> None:
        """Apply the transaction's summary deltas and commit, or roll back; release the lock."""
        if txn.ended:
            return
        txn.ended = True
        conn = txn.conn
        try:
            if commit:
                try:
                    txn.deltas.apply(conn)
                    conn.execute("COMMIT")
                    self._message_commits += 1
                except BaseException as exc:
                    conn.execute("ROLLBACK")
                    if isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc):
                        raise StoreUnavailable(f"store is locked: {exc}") from exc
                    raise
            elif conn.in_transaction:
                conn.execute("ROLLBACK")
        finally:
            for alias in txn.attached:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute(f"DETACH DATABASE {alias}")
            self._write_lock.release()

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
        """Everything about a (validated) batch that needs no write lock: rows, tokens.

        Rows and tokens are made for the messages not yet stored (a read,
        outside the transaction); `_write_batch` checks again inside it and
        builds what a concurrent writer made stale.
        """
        stats = UpsertStats()
        # Last one wins inside a batch, like sequential upserts would.
        unique: dict[str, Message] = {}
        for msg in batch:  # validated by _prepare_transaction
            if msg.id in unique:
                # A repeat inside one batch counts as sequential upserts would.
                earlier = unique[msg.id]
                msg = merge(earlier, msg)
                if _message_to_row(msg)[_HASH_IDX] == _message_to_row(earlier)[_HASH_IDX]:
                    stats.unchanged += 1
                else:
                    stats.updated += 1
            unique[msg.id] = msg
        writes_seen = self._writes_seen()
        stored = self._stored_ids(list(unique))
        epoch = int(time.time())
        now = from_epoch(epoch)
        rows: dict[str, list[Any]] = {}
        # Tokens and digests are made in the index workers, which need the texts
        # anyway: the digest's repr of those texts was 7 % of this thread's time.
        indexer = RowIndexer(self.index_workers, len(unique) - len(stored), self._stage.new_file)
        piece: list[list[Any]] = []
        for msg_id, msg in unique.items():
            if msg_id in stored:
                continue
            if msg.updated_at is None:
                msg.updated_at = now
            row = rows[msg_id] = _bare_row(msg, now, epoch)
            piece.append(row)
            if len(piece) == indexer.piece:
                indexer.add(piece)
                piece = []
        indexer.add(piece)
        return _Prepared(stats, unique, rows, indexer, stored, writes_seen)

    def _writes_seen(self) -> tuple[int, int]:
        """Changes with every commit: by other connections (SQLite's data_version of
        this thread's connection) and of messages by this store."""
        return self._read("PRAGMA data_version")[0][0], self._message_commits

    def _ids_to_load(self, prepared: _Prepared) -> list[str]:
        """The batch's ids that may be stored now, inside the write transaction.

        Every id, unless nothing has committed since the batch was prepared
        (no other connection, nor this store: a producer that writes to it
        between two transactions): then only the ids found stored then, and
        those of earlier batches of this transaction, can be.  Why: looking
        up every id of a new batch again was ~4 % of a bulk import's writing
        thread, and finds nothing there.
        """
        if self._writes_seen() != prepared.writes_seen:
            return list(prepared.unique)
        return [i for i in prepared.unique if i in prepared.stored or i in prepared.repeats]

    def _stored_ids(self, ids: list[str]) -> set[str]:
        out: set[str] = set()
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            out.update(
                r[0] for r in self._read(f"SELECT id FROM messages WHERE id IN ({marks})", chunk)
            )
        return out

    def _write_batch(self, txn: _Transaction, prepared: _Prepared) -> UpsertStats:
        """Write one prepared batch inside `txn`; its summary changes go to `txn.deltas`."""
        stats, unique = prepared.stats, prepared.unique
        conn = txn.conn
        try:
            existing = self._load_existing(conn, self._ids_to_load(prepared))
            deltas = txn.deltas
            now = int(time.time())
            if not existing and len(prepared.rows) == len(unique):
                # A bulk import's usual batch: every message new, as prepared.
                if self._copy_staged(txn, prepared.indexer):
                    stats.inserted = len(prepared.rows)
                    return stats
                new_tokens, digests = prepared.indexer.wait()
                inserts = _finish_rows(list(prepared.rows.values()), digests)
            else:
                inserts, new_tokens = self._new_rows(prepared, existing, now)
            # Counted here, not when prepared: the same thread does both, and here
            # the rows that are really inserted are known.
            deltas.add_rows(map(_CONTRIB, inserts))
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
                first = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM messages").fetchone()[0]
                # The prepared tuples go in as they are (no per-row copy to prepend a
                # rowid): without AUTOINCREMENT SQLite gives each row MAX(rowid) + 1,
                # so the batch holds first+1 .. first+n, checked before FTS uses them.
                conn.executemany(
                    f"INSERT INTO messages ({', '.join(_WRITE_COLUMNS)}) VALUES ({placeholders})",
                    inserts,
                )
                last = conn.execute("SELECT MAX(rowid) FROM messages").fetchone()[0]
                if last != first + len(inserts):
                    raise StoreError(f"rowids {first + 1}..{last} for {len(inserts)} new messages")
                conn.executemany(
                    "INSERT INTO messages_fts(rowid, tokens) VALUES (?, ?)",
                    zip(range(first + 1, last + 1), new_tokens, strict=True),
                )
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc):
                raise StoreUnavailable(f"store is locked: {exc}") from exc
            raise
        return stats

    def _copy_staged(self, txn: _Transaction, indexer: RowIndexer) -> bool:
        """Write a batch from its staging files (rows, tokens, summary deltas) if it can.

        False, with nothing written, when the batch was not wholly staged
        or the connection has too few attach slots left in this transaction
        (a file stays attached until the transaction ends): the caller then
        writes the batch the ordinary way.
        """
        limit = txn.conn.getlimit(sqlite3.SQLITE_LIMIT_ATTACHED)
        if len(txn.attached) + len(indexer.staged) > limit or not indexer.all_staged():
            return False
        copy_staged(txn.conn, txn.attached, indexer.staged)
        return True

    @staticmethod
    def _new_rows(
        prepared: _Prepared, existing: Mapping[str, Any], now: int
    ) -> tuple[list[Sequence[Any]], list[str]]:
        """Rows and index tokens of the batch's messages not in `existing`, in batch order.

        Rows prepared before an earlier batch (or another writer) stored some
        of the ids are used as they are; a message stored when prepared and
        deleted since gets its row and tokens made now.
        """
        cut, digests = prepared.indexer.wait()
        _finish_rows(list(prepared.rows.values()), digests)
        tokens = dict(zip(prepared.rows, cut, strict=True))
        inserts: list[Sequence[Any]] = []
        new_tokens: list[str] = []
        for msg_id, msg in prepared.unique.items():
            if msg_id in existing:
                continue
            row: Sequence[Any] | None = prepared.rows.get(msg_id)
            if row is None:  # stored when prepared, deleted since
                if msg.updated_at is None:
                    msg.updated_at = from_epoch(now)
                row = _message_to_row(msg)
            inserts.append(row)
            tok = tokens.get(msg_id)
            new_tokens.append(
                tok if tok is not None else tokenize.index_text(msg.title, msg.body, msg.reply_body)
            )
        return inserts, new_tokens

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
                self._message_commits += 1
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
