"""What callbacks need at run time: settings, the store, users, alerts, the clock.

The app may run in several worker processes (and threads).  Nothing here is
opened at import or shared across processes: the store is opened on first
use in each process/thread from its URL (or the Store object given to
`create_app` is used as is, for tests and embedding).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from govpulse.schema import TZ
from store.base import Sla, Store


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
    _memo: dict[Any, tuple[float, Any]] = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

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

    def cached(self, key: Hashable, compute: Callable[[], Any]) -> Any:
        """`compute()` memoised for ``dashboard.cache_seconds`` in this process.

        Only for slow, slowly-changing views (rising terms read and cut every
        message of the last days).  Callers put the time bucket they computed
        for in the key, so a cached answer is at most one bucket old.  Each
        process keeps its own small cache; nothing is shared or required for
        correctness.
        """
        ttl = float(self.settings["dashboard.cache_seconds"])
        if ttl <= 0:
            return compute()
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None and time.monotonic() - hit[0] < ttl:
                return hit[1]
            # One computation per key at a time: the table and chart callbacks
            # of a page fire together and would otherwise both run the query.
            flight = self._flights.setdefault(key, threading.Lock())
        with flight:
            with self._memo_lock:
                hit = self._memo.get(key)
                if hit is not None and time.monotonic() - hit[0] < ttl:
                    return hit[1]
            value = compute()
            with self._memo_lock:
                if len(self._memo) > 256:
                    self._memo.clear()
                    self._flights = {key: flight}
                self._memo[key] = (time.monotonic(), value)
                self._flights.pop(key, None)
        return value

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
