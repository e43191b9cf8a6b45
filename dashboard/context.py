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
    _local: threading.local = field(default_factory=threading.local, repr=False)
    _memo: dict[Any, tuple[float, Any]] = field(default_factory=dict, repr=False)
    _memo_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def store(self) -> Store:
        """The store for this process and thread."""
        if isinstance(self.store_source, Store):
            return self.store_source
        local = self._local
        if getattr(local, "pid", None) != os.getpid() or getattr(local, "store", None) is None:
            from store import open_store

            local.store = open_store(self.store_source, self.settings)
            local.pid = os.getpid()
        return local.store

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
        now = time.monotonic()
        with self._memo_lock:
            hit = self._memo.get(key)
            if hit is not None and now - hit[0] < ttl:
                return hit[1]
        value = compute()
        with self._memo_lock:
            if len(self._memo) > 256:
                self._memo.clear()
            self._memo[key] = (now, value)
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
