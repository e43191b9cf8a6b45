"""What callbacks need at run time: settings, the store, users, alerts, the clock.

The app may run in several worker processes (and threads).  Nothing here is
opened at import or shared across processes: the store is opened on first
use in each process/thread from its URL (or the Store object given to
`create_app` is used as is, for tests and embedding).
"""

from __future__ import annotations

import atexit
import contextlib
import dataclasses
import logging
import os
import threading
import time
from collections.abc import Callable, Hashable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from dashboard.cache import STALE_MIN_COST_S, SharedCache, key_text, store_marker
from govpulse.schema import TZ
from govpulse.term_index import TermIndex
from store.base import FILTER_FIELDS, Filters, Sla, Store

log = logging.getLogger(__name__)

#: A cached view: (validity marker, created (epoch s), value, seconds it took to compute).
Entry = tuple[str, float, Any, float]


@dataclass
class DashContext:
    """Settings plus lazily opened per-process resources."""

    settings: Mapping[str, Any]
    data_dir: Path
    store_source: Store | str
    clock: Callable[[], datetime] = field(default=lambda: datetime.now(TZ))
    _store: Store | None = field(default=None, repr=False)
    _store_pid: int = field(default=0, repr=False)
    _pool: Any = field(default=None, repr=False)
    _pool_pid: int = field(default=0, repr=False)
    _open_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _flights: dict[Any, threading.Lock] = field(default_factory=dict, repr=False)
    _memo: dict[str, Entry] = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _shared: SharedCache | None = field(default=None, repr=False)
    _refreshing: set[str] = field(default_factory=set, repr=False)
    _refresher: Any = field(default=None, repr=False)
    _refresher_pid: int = field(default=0, repr=False)
    _terms: TermIndex | None = field(default=None, repr=False)
    _terms_pid: int = field(default=0, repr=False)
    _warmer_pid: int = field(default=0, repr=False)
    _tl: threading.local = field(default_factory=threading.local, repr=False)

    def store(self) -> Store:
        """The store of this process (opened on first use after a fork).

        One per process, not per thread: the SQLite backend already keeps a
        connection per thread, and the server runs a fixed thread pool.
        """
        if isinstance(self.store_source, Store):
            return self.store_source
        with self._open_lock:
            if self._store is None or self._store_pid != os.getpid():
                from store import open_store

                self._store = open_store(self.store_source, self.settings)
                self._store_pid = os.getpid()
            return self._store

    def run_parallel(self, *calls: Callable[[], Any]) -> list[Any]:
        """Run independent store reads at once (SQLite reads release the GIL).

        A small pool per process, kept between calls so its threads (and the
        store connections they hold) are reused, not leaked per request.
        """
        if len(calls) < 2:
            return [call() for call in calls]
        if getattr(self._tl, "fresh", False):  # the warmer's "never serve stale" holds in the pool
            calls = tuple(self._in_fresh(call) for call in calls)
        with self._open_lock:
            if self._pool is None or self._pool_pid != os.getpid():
                from concurrent.futures import ThreadPoolExecutor

                self._pool = ThreadPoolExecutor(max_workers=3, thread_name_prefix="gp-query")
                self._pool_pid = os.getpid()
            pool = self._pool
        futures = [pool.submit(call) for call in calls]
        return [f.result() for f in futures]

    def now(self) -> datetime:
        return self.clock()

    def cached(self, key: Hashable, compute: Callable[[], Any], clocked: bool = False) -> Any:
        """`compute()`, shared by all worker processes until the store or the clock moves on.

        The key names the query and its normalised arguments (not the
        time).  The result is fresh while the store's change marker (and,
        with `clocked`, the ``dashboard.cache_seconds`` step of the clock)
        is what it was when computed and it is younger than
        ``cache_seconds``.  A stale result younger than
        ``dashboard.cache_stale_seconds`` is returned at once while a
        background thread recomputes it.  See `dashboard.cache`.
        """
        ttl = float(self.settings["dashboard.cache_seconds"])
        if ttl <= 0:
            return compute()
        k = key_text(key)
        marker = self.marker(clocked)
        hit = self._lookup(k, marker, ttl)
        if hit is not None:
            age = time.time() - hit[1]
            if hit[0] == marker and age < ttl:
                return hit[2]
            stale = float(self.settings["dashboard.cache_stale_seconds"])
            slow = hit[3] >= STALE_MIN_COST_S  # cheap views are recomputed, never stale
            if age < stale and slow and not getattr(self._tl, "fresh", False):
                self._refresh_later(k, marker, compute)
                return hit[2]
        with self._memo_lock:
            # One computation per key at a time: the table and chart callbacks
            # of a page fire together and would otherwise both run the query.
            flight = self._flights.setdefault(k, threading.Lock())
        try:
            with flight:
                hit = self._lookup(k, marker, ttl)
                if hit is not None and hit[0] == marker and time.time() - hit[1] < ttl:
                    return hit[2]
                return self._compute_shared(k, marker, compute, ttl)
        finally:
            with self._memo_lock:
                if not flight.locked() and self._flights.get(k) is flight:
                    del self._flights[k]  # keep the dict small; the file claim still dedups

    def query(
        self, fn: Callable[..., Any], *args: Any, clocked: bool = False, **kwargs: Any
    ) -> Any:
        """``fn(store, *args, **kwargs)`` through `cached`, keyed by fn and normalised arguments.

        Pass ``clocked=True`` when an argument is `time_bucket()` (the
        result depends on the clock); the bucket is then part of the
        validity marker, not of the key, so an answer from the previous
        step can be served while the new one is computed.
        """
        key = (
            self.store_name(),  # two stores may share one data dir (and cache file)
            fn.__module__,
            fn.__qualname__,
            tuple(_normalised(a, clocked) for a in args),
            tuple(sorted((k, _normalised(v, clocked)) for k, v in kwargs.items())),
        )
        return self.cached(key, lambda: fn(self.store(), *args, **kwargs), clocked=clocked)

    def marker(self, clocked: bool = False) -> str:
        """The current validity marker: store change marker, plus the clock step if `clocked`."""
        bucket = self.time_bucket().isoformat() if clocked else ""
        return repr((store_marker(self.store()), bucket))

    def shared_cache(self) -> SharedCache:
        with self._open_lock:
            if self._shared is None:
                self._shared = SharedCache(self.cache_path())
            return self._shared

    def cache_path(self) -> Path:
        configured = self.settings["dashboard.cache_db"]
        return Path(configured).expanduser() if configured else self.data_dir / "dashboard_cache.db"

    def _lookup(self, k: str, marker: str, ttl: float) -> Entry | None:
        """This process's copy if fresh, else the newer of it and the shared file's row.

        A fresh copy in memory skips the file (and unpickling) altogether.
        """
        with self._memo_lock:
            mine = self._memo.get(k)
        if mine is not None and mine[0] == marker and time.time() - mine[1] < ttl:
            return mine
        shared = self.shared_cache().get(k)
        if shared is not None and (mine is None or shared[1] > mine[1]):
            self._remember(k, shared)
            return shared
        return mine

    def _remember(self, k: str, entry: Entry) -> None:
        with self._memo_lock:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[k] = entry

    def _compute_shared(self, k: str, marker: str, compute: Callable[[], Any], ttl: float) -> Any:
        """Compute once across processes: wait while another process holds the claim."""
        shared = self.shared_cache()
        deadline = time.monotonic() + 120
        while not shared.claim(k, 120):
            time.sleep(0.05)
            got = shared.get(k)
            if got is not None and got[0] == marker and time.time() - got[1] < ttl:
                self._remember(k, got)
                return got[2]
            if time.monotonic() > deadline:
                break  # the other process is stuck or gone: compute here
        try:
            created, started = time.time(), time.perf_counter()
            value = compute()
            cost = time.perf_counter() - started
            self._remember(k, (marker, created, value, cost))
            keep = 2 * max(ttl, float(self.settings["dashboard.cache_stale_seconds"]))
            shared.put(k, marker, created, value, cost, keep)
            return value
        finally:
            shared.release(k)

    def _refresh_later(self, k: str, marker: str, compute: Callable[[], Any]) -> None:
        """Recompute a stale entry in one background thread (skipped if already under way)."""
        with self._memo_lock:
            if k in self._refreshing:
                return
            self._refreshing.add(k)
            if self._refresher is None or self._refresher_pid != os.getpid():
                from concurrent.futures import ThreadPoolExecutor

                self._refresher = ThreadPoolExecutor(1, thread_name_prefix="gp-refresh")
                self._refresher_pid = os.getpid()
            refresher = self._refresher

        def run() -> None:
            try:
                shared = self.shared_cache()
                if shared.claim(k, 120):  # else another process is refreshing it
                    try:
                        created, started = time.time(), time.perf_counter()
                        value = compute()
                        cost = time.perf_counter() - started
                        self._remember(k, (marker, created, value, cost))
                        ttl = float(self.settings["dashboard.cache_seconds"])
                        stale = float(self.settings["dashboard.cache_stale_seconds"])
                        shared.put(k, marker, created, value, cost, 2 * max(ttl, stale))
                    finally:
                        shared.release(k)
            except Exception:  # a failed refresh leaves the stale entry; the next miss retries
                log.exception("background refresh failed")
            finally:
                with self._memo_lock:
                    self._refreshing.discard(k)

        refresher.submit(run)

    def _in_fresh(self, call: Callable[[], Any]) -> Callable[[], Any]:
        def run() -> Any:
            with self.fresh():
                return call()

        return run

    @contextlib.contextmanager
    def fresh(self) -> Iterator[None]:
        """Within this block (this thread), stale results are recomputed, never served."""
        self._tl.fresh = True
        try:
            yield
        finally:
            self._tl.fresh = False

    def terms(self) -> TermIndex:
        """This process's rising-terms index (per-day terms kept in the cache file)."""
        with self._open_lock:
            if self._terms is None or self._terms_pid != os.getpid():
                # Where this process runs the warmer, it re-reads days for age
                # (`refresh`), never a user's request (they would all come due at
                # once); start_warmer switches that off.
                self._terms = TermIndex(
                    self.cache_path(),
                    namespace=self.store_name(),
                    age_in_queries=self._warmer_pid != os.getpid(),
                )
                self._terms_pid = os.getpid()
            return self._terms

    def store_name(self) -> str:
        """Which store this is, for keys in the shared cache file (its URL)."""
        source = self.store_source
        name = source if isinstance(source, str) else getattr(source, "url", "")
        return str(name or f"{type(source).__name__}@{id(source)}")

    def start_warmer(self, warm: Callable[[DashContext], None]) -> None:
        """Keep the default views computed: at start, and after the store or clock moves on.

        One thread per process, checking every ``dashboard.warm_seconds``;
        a claim in the shared cache file lets one process warm per change,
        not all of them.  Called on every request; cheap after the first.
        """
        interval = float(self.settings["dashboard.warm_seconds"])
        if interval <= 0 or float(self.settings["dashboard.cache_seconds"]) <= 0:
            return
        if self._warmer_pid == os.getpid():
            return
        with self._open_lock:
            if self._warmer_pid == os.getpid():
                return
            self._warmer_pid = os.getpid()
        self.terms().age_in_queries = False

        stop = threading.Event()

        def loop() -> None:
            # Below the request threads on the CPU (Linux threads have their own
            # nice value): warming must not slow the users it is warming for.
            with contextlib.suppress(AttributeError, OSError):
                os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)
            last = None
            while not stop.is_set():
                try:
                    current = self.marker(clocked=True)
                    if current != last and self.shared_cache().claim(
                        "warm:" + key_text(current), 3600
                    ):
                        with self.fresh():
                            warm(self)
                    last = current
                except Exception:
                    log.exception("warming the default views failed")
                stop.wait(interval)

        thread = threading.Thread(target=loop, name="gp-warm", daemon=True)
        thread.start()

        def _stop() -> None:
            # Let a warm-up in progress finish its store read before the
            # interpreter tears down (a daemon thread inside SQLite at exit can crash).
            stop.set()
            thread.join(10)

        atexit.register(_stop)

    def time_bucket(self) -> datetime:
        """Now, floored to ``dashboard.cache_seconds`` (the clock cached views use)."""
        now = self.now()
        step = max(1, int(float(self.settings["dashboard.cache_seconds"])))
        return datetime.fromtimestamp(int(now.timestamp()) // step * step, now.tzinfo)

    def sla(self, working_days: bool | None = None) -> Sla:
        sla = Sla.from_settings(self.settings)
        if working_days is not None and working_days != sla.working_days:
            sla = Sla(days=sla.days, by_source=sla.by_source, working_days=working_days)
        return sla

    @property
    def page_size(self) -> int:
        return max(1, int(self.settings["dashboard.page_size"]))

    @property
    def rumour_threshold(self) -> float:
        return float(self.settings["dashboard.rumour_threshold"])

    def users_path(self) -> Path:
        configured = self.settings["dashboard.users_db"]
        return Path(configured).expanduser() if configured else self.data_dir / "users.db"

    def users(self):
        from dashboard.users import UserStore

        return UserStore(self.users_path(), int(self.settings["dashboard.login_max_failures"]))


def _normalised(value: Any, clocked: bool) -> Any:
    """A cache-key form of an argument: filter values sorted (they are OR-ed), the clock dropped.

    In a ``clocked`` query a datetime argument is the clock step
    (`time_bucket`); it stays out of the key so the previous step's answer
    can be found and served while stale.
    """
    if isinstance(value, Filters):
        return dataclasses.replace(
            value, **{f: tuple(sorted(getattr(value, f))) for f in (*FILTER_FIELDS, "ids")}
        )
    if isinstance(value, Sla):
        return (value.days, tuple(sorted(value.by_source.items())), value.working_days)
    if clocked and isinstance(value, datetime):
        return "<clock>"
    return value
