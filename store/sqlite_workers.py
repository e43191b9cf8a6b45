"""Index workers of the embedded store's bulk writes: tokens, digests and staging files.

Why other processes: cutting FTS tokens (jieba-rs holds the GIL) and
hashing rows are most of an import's Python work, and the writing thread
is the import's bottleneck.  With ``index_workers > 1`` the writer builds
"bare" rows and hands them over in pieces; each worker cuts the tokens,
makes the content digests and, when the writer asked for it, *stages* the
piece: writes the finished rows, their tokens and their summary-table
deltas to a scratch SQLite file.  The writer then copies a staged piece
into the store with one ``INSERT .. SELECT`` per table (`copy_staged`),
so SQLite reads the values in C instead of the writer binding 33 values
per message from Python and counting summaries itself.  Measured with
`bench/store.py`: the writing thread's CPU per 10,000 messages fell from
~500 to ~370 ms.

A piece that could not be staged (a full or vanished temp directory)
comes back through the pool as tokens and digests, and its batch is
written the ordinary way; nothing is lost either way.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import re
import shutil
import sqlite3
import tempfile
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor, wait
from pathlib import Path
from typing import Any

from govpulse.parent_watch import watch_parent
from store.base import StoreError
from store.sqlite_agg import TABLES, UPSERT, WIDTHS, Deltas
from store.sqlite_rows import _CONTRIB, _WRITE_COLUMNS, _finish_rows, _index_rows

_COLUMN_LIST = ", ".join(_WRITE_COLUMNS)
_STAGE_INSERT = (
    f"INSERT INTO st ({_COLUMN_LIST}, tokens) VALUES ({', '.join('?' * (len(_WRITE_COLUMNS) + 1))})"
)

#: Result of a piece: None when staged, else its (tokens, digests).
Indexed = tuple[list[str], list[str]]


def stage_rows(rows: list[list[Any]], path: str) -> Indexed | None:
    """Index `rows` and write them finished, with tokens and summary deltas, to `path`.

    Runs in an index worker.  The file is scratch (no journal, no syncing)
    and complete before the writer opens it.  Returns None when staged;
    on any SQLite or OS failure the partial file is removed and the tokens
    and digests are returned instead, for the writer's ordinary path.
    """
    tokens, digests = _index_rows(rows)
    deltas = Deltas()
    deltas.add_rows(map(_CONTRIB, rows))
    try:
        conn = sqlite3.connect(path, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode = OFF")
            conn.execute("PRAGMA synchronous = OFF")
            conn.execute(f"CREATE TABLE st (seq INTEGER PRIMARY KEY, {_COLUMN_LIST}, tokens)")
            conn.execute("BEGIN")
            _finish_rows(rows, digests)  # this process's copies of the rows
            for row, tok in zip(rows, tokens, strict=True):
                row.append(tok)
            conn.executemany(_STAGE_INSERT, rows)
            for table in TABLES:
                width = WIDTHS[table]
                conn.execute(f"CREATE TABLE {table} ({', '.join(f'c{i}' for i in range(width))})")
                conn.executemany(
                    f"INSERT INTO {table} VALUES ({', '.join('?' * width)})",
                    deltas.table_rows(table),
                )
            conn.execute("COMMIT")
        finally:
            conn.close()
    except (sqlite3.Error, OSError):
        with contextlib.suppress(OSError):
            Path(path).unlink(missing_ok=True)
        return tokens, digests
    return None


def read_staged(path: str) -> Indexed:
    """Tokens and digests of a staging file's rows, in order."""
    conn = sqlite3.connect(path)
    try:
        rows = conn.execute("SELECT tokens, content_hash FROM st ORDER BY seq").fetchall()
    finally:
        conn.close()
    return [r[0] for r in rows], [r[1] for r in rows]


def copy_staged(
    conn: sqlite3.Connection, attached: list[str], staged: list[tuple[str, int]]
) -> None:
    """Copy staged pieces into the store inside the writer's open transaction.

    Each file is attached (its alias appended to `attached`: SQLite can
    detach only after the transaction ends) and copied in order: rows
    (rowids MAX(rowid) + 1 .., checked before the tokens use them), FTS
    tokens, summary deltas.
    """
    last = conn.execute("SELECT COALESCE(MAX(rowid), 0) FROM messages").fetchone()[0]
    for path, count in staged:
        alias = f"stage{len(attached)}"
        conn.execute(f"ATTACH DATABASE ? AS {alias}", (path,))
        attached.append(alias)
        conn.execute(
            f"INSERT INTO messages ({_COLUMN_LIST}) SELECT {_COLUMN_LIST} FROM {alias}.st "
            "ORDER BY seq"
        )
        first, last = last, conn.execute("SELECT MAX(rowid) FROM messages").fetchone()[0]
        if last != first + count:
            raise StoreError(f"rowids {first + 1}..{last} for {count} new messages")
        conn.execute(
            "INSERT INTO messages_fts(rowid, tokens) "
            f"SELECT ? + seq, tokens FROM {alias}.st ORDER BY seq",
            (first,),
        )
        for table in TABLES:
            conn.execute(
                f"INSERT INTO {table} SELECT * FROM {alias}.{table} WHERE true {UPSERT[table]}"
            )


_STAGE_PREFIX = "govpulse-stage-"
_STAGE_DIR_RE = re.compile(rf"{_STAGE_PREFIX}(\d+)-")


class StageDir:
    """A scratch directory for one store's staging files, made on first use.

    Named after the process, so a directory left by a process that died
    mid-import is swept when the next one is made.  Removed when the store
    is closed or collected.
    """

    def __init__(self) -> None:
        self.path: str | None = None
        self._seq = 0
        self._finalizer: weakref.finalize | None = None

    def new_file(self) -> str:
        if self.path is None:
            _sweep_stale(tempfile.gettempdir())
            self.path = tempfile.mkdtemp(prefix=f"{_STAGE_PREFIX}{os.getpid()}-")
            self._finalizer = weakref.finalize(self, shutil.rmtree, self.path, True)
        self._seq += 1
        return os.path.join(self.path, f"{self._seq}.db")

    def close(self) -> None:
        if self._finalizer is not None:
            self._finalizer()
        self.path = None


def _sweep_stale(base: str) -> None:
    """Remove staging directories whose process is gone (a crash mid-import)."""
    with contextlib.suppress(OSError):
        for entry in os.scandir(base):
            match = _STAGE_DIR_RE.match(entry.name)
            if match is None or not entry.is_dir(follow_symlinks=False):
                continue
            pid = int(match.group(1))
            if pid == os.getpid() or _alive(pid):
                continue
            shutil.rmtree(entry.path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


#: The index worker pool, by its size (one at a time: a new size replaces it).
_POOLS: dict[int, ProcessPoolExecutor] = {}
_PARALLEL_MIN = 1000  # below this, the process hand-off costs more than it saves


#: SQLite work running in threads of this process (the stores' checkpoints).
_IN_THREADS: set[Future[Any]] = set()


def run_in_thread(executor: ThreadPoolExecutor, work: Callable[[], Any]) -> Future[Any]:
    """Submit SQLite `work` to `executor`, known to `_worker_pool` until it is done."""
    future = executor.submit(work)
    _IN_THREADS.add(future)
    future.add_done_callback(_IN_THREADS.discard)
    return future


def _die_with_parent(parent: int) -> None:
    """Worker initializer: end this worker soon after the process that forked it dies.

    Why: a pool's workers wait on a queue whose write end they themselves
    inherited, so a writer killed mid-import (SIGKILL, the OOM killer) left
    them blocked forever, each holding ~140 MB and the store's files open.
    """
    watch_parent(parent, lambda: os._exit(1), every=0.5)


def _worker_pool(workers: int) -> ProcessPoolExecutor:
    """The forked pool of `workers` processes (jieba-rs holds the GIL: threads won't do).

    Forked only while no thread of this process runs SQLite code: a child
    forked while a thread holds one of SQLite's mutexes would wait for it
    forever when it opens its staging file.
    """
    pool = _POOLS.get(workers)
    if pool is None:
        wait(list(_IN_THREADS))
        for old in _POOLS.values():
            old.shutdown(wait=False, cancel_futures=True)
        _POOLS.clear()
        ctx = multiprocessing.get_context("fork")
        pool = _POOLS[workers] = ProcessPoolExecutor(
            workers, mp_context=ctx, initializer=_die_with_parent, initargs=(os.getpid(),)
        )
    return pool


class RowIndexer:
    """Tokens and digests of one batch's bare rows, made as rows come (and maybe staged).

    With ``workers > 1`` and at least `_PARALLEL_MIN` rows expected, every
    `piece` rows go to the worker pool as soon as they are built, so the
    workers cut while the caller builds the rest and writes earlier
    batches.  Given `stage` (a source of new file names), each piece is
    staged to its own file: one piece per worker and batch, since the
    writer attaches every file.  Otherwise the rows are indexed inline
    when waited for.
    """

    def __init__(self, workers: int, expected: int, stage: Callable[[], str] | None = None) -> None:
        self.parallel = workers > 1 and expected >= _PARALLEL_MIN
        per_worker = 1 if stage is not None else 2
        #: Rows per hand-off.
        self.piece = (
            max(1, -(-expected // (per_worker * workers))) if self.parallel else expected + 1
        )
        self._pool = _worker_pool(workers) if self.parallel else None
        self._stage = stage if self.parallel else None
        self._parts: list[Future[Indexed | None]] = []
        self._inline: list[list[Any]] = []
        #: Staging files of the pieces, in order, with their row counts.
        self.staged: list[tuple[str, int]] = []

    def add(self, rows: list[list[Any]]) -> None:
        """Hand over `rows` (not to be changed until `wait` returns)."""
        if self._pool is None:
            self._inline += rows
        elif rows:
            if self._stage is not None:
                path = self._stage()
                self.staged.append((path, len(rows)))
                self._parts.append(self._pool.submit(stage_rows, rows, path))
            else:
                self._parts.append(self._pool.submit(_index_rows, rows))

    def all_staged(self) -> bool:
        """Wait for every piece; True if each one is in its staging file."""
        results = [part.result() for part in self._parts]
        return bool(self.staged) and all(r is None for r in results)

    def wait(self) -> Indexed:
        """Tokens and digests of every row added, in order."""
        if self._pool is None:
            return _index_rows(self._inline)
        tokens: list[str] = []
        digests: list[str] = []
        for i, part in enumerate(self._parts):
            result = part.result()
            part_tokens, part_digests = read_staged(self.staged[i][0]) if result is None else result
            tokens += part_tokens
            digests += part_digests
        return tokens, digests

    def discard(self) -> None:
        """Remove the staging files (after waiting: a worker may still be writing one)."""
        for part in self._parts:
            with contextlib.suppress(Exception):
                part.result()
        for path, _ in self.staged:
            with contextlib.suppress(OSError):
                Path(path).unlink(missing_ok=True)
