"""`govpulse run`: one APScheduler per deployment running crawls, alerts, digest, retention.

* Persistent job store (SQLAlchemy on ``<data_dir>/scheduler.db``): a job
  whose trigger did not change keeps its next run time across restarts, so
  a digest missed while the scheduler was down still runs (within the
  misfire grace time).
* Exactly one scheduler per data dir: an exclusive ``fcntl`` lock on
  ``<data_dir>/scheduler.lock``; a second `govpulse run` fails with a clear
  message instead of crawling everything twice.
* Every job: ``max_instances=1`` and ``coalesce`` (a slow crawl is never
  stacked), misfire grace from settings.
* SIGTERM / SIGINT: running crawls are terminated, the scheduler shuts down
  and waits for jobs to return.
"""

from __future__ import annotations

import fcntl
import logging
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, time
from pathlib import Path
from typing import Any

from govpulse.schema import TZ
from govpulse.settings import Settings

log = logging.getLogger(__name__)

LOCK_NAME = "scheduler.lock"
JOBS_DB = "scheduler.db"
#: Seconds between delivery rounds (retries and group timers are checked this often).
DELIVER_EVERY_S = 30


class SchedulerLocked(RuntimeError):
    """Another scheduler already runs for this data dir."""


class SchedulerLock:
    """An exclusive, non-blocking flock; released when the process ends, even on a crash."""

    def __init__(self, data_dir: str | Path) -> None:
        self.path = Path(data_dir) / LOCK_NAME
        self._fh: Any = None

    def acquire(self) -> SchedulerLock:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fh = self.path.open("a+")
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            fh.seek(0)
            holder = fh.read().strip() or "unknown"
            fh.close()
            raise SchedulerLocked(
                f"another `govpulse run` (pid {holder}) is already running for this "
                f"deployment (lock {self.path}); only one scheduler may run at a time"
            ) from None
        fh.seek(0)
        fh.truncate()
        fh.write(str(os.getpid()))
        fh.flush()
        self._fh = fh
        return self

    def release(self) -> None:
        if self._fh is not None:
            fcntl.flock(self._fh, fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def __enter__(self) -> SchedulerLock:
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


@dataclass(slots=True)
class JobSpec:
    """One job: a textual function reference, its arguments and its trigger."""

    id: str
    func: str
    trigger: str  # interval | cron
    trigger_args: dict[str, Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: Run right after being (re)added, not one interval later.
    run_at_start: bool = False


def _hhmm(text: str, key: str) -> time | None:
    text = (text or "").strip()
    if not text:
        return None
    try:
        return time.fromisoformat(text)
    except ValueError:
        raise ValueError(f"{key}: {text!r} is not HH:MM") from None


def job_specs(settings: Settings) -> list[JobSpec]:
    """Every job the settings ask for, in the order `--once` runs them."""
    from alerts.engine import EngineConfig

    EngineConfig.from_settings(settings)  # fail at start, not at 3 am, on bad alerts.* values
    specs: list[JobSpec] = []
    spiders = settings["schedule.spiders"] or {}
    if not isinstance(spiders, dict):
        raise ValueError("schedule.spiders must be a JSON object: spider name -> minutes")
    for name, minutes in sorted(spiders.items()):
        if float(minutes) <= 0:
            raise ValueError(f"schedule.spiders: interval of {name} must be positive")
        specs.append(
            JobSpec(
                f"crawl:{name}",
                "alerts.jobs:crawl_job",
                "interval",
                {"minutes": float(minutes)},
                {"spider": name},
                run_at_start=True,
            )
        )
    for name in settings["schedule.revisit_spiders"]:
        specs.append(
            JobSpec(
                f"revisit:{name}",
                "alerts.jobs:crawl_job",
                "interval",
                {"minutes": float(settings["schedule.revisit_interval_min"])},
                {"spider": name, "revisit": True},
            )
        )
    specs.append(
        JobSpec("retention", "alerts.jobs:retention_job", "cron", {"hour": 3, "minute": 30})
    )
    specs.append(
        JobSpec(
            "alerts",
            "alerts.jobs:alerts_job",
            "interval",
            {"minutes": float(settings["schedule.alerts_interval_min"])},
            run_at_start=True,
        )
    )
    digest_at = _hhmm(settings["schedule.digest_time"], "schedule.digest_time")
    if digest_at is not None:
        specs.append(
            JobSpec(
                "digest",
                "alerts.jobs:digest_job",
                "cron",
                {"hour": digest_at.hour, "minute": digest_at.minute},
            )
        )
    specs.append(
        JobSpec("deliver", "alerts.jobs:deliver_job", "interval", {"seconds": DELIVER_EVERY_S})
    )
    return specs


def _resolve(ref: str) -> Callable[..., Any]:
    import importlib

    module, attr = ref.split(":")
    return getattr(importlib.import_module(module), attr)


@dataclass(slots=True)
class OnceResult:
    job: str
    ok: bool
    detail: str


def run_once(settings: Settings, data_dir: Path) -> list[OnceResult]:
    """Run every job once, in order, under the deployment lock (for cron and tests)."""
    from alerts import jobs

    results: list[OnceResult] = []
    with SchedulerLock(data_dir):
        jobs.configure(settings)
        for spec in job_specs(settings):
            try:
                value = _resolve(spec.func)(**spec.kwargs)
            except Exception as exc:  # one broken job must not stop the others
                log.exception("job %s failed", spec.id)
                results.append(OnceResult(spec.id, False, f"{type(exc).__name__}: {exc}"))
                continue
            results.append(OnceResult(spec.id, True, _describe(value)))
    return results


def _describe(value: Any) -> str:
    if value is None:
        return "done"
    kind = getattr(value, "kind", None)
    if kind is not None:
        return f"{kind} ({value.seconds:.1f}s){': ' + value.detail if value.detail else ''}"
    return str(value)


def build_scheduler(settings: Settings, data_dir: Path):  # -> BackgroundScheduler
    """A BackgroundScheduler on the persistent SQLite job store, jobs synchronised."""
    from apscheduler.jobstores.sqlalchemy import SQLAlchemyJobStore
    from apscheduler.schedulers.background import BackgroundScheduler
    from apscheduler.triggers.cron import CronTrigger
    from apscheduler.triggers.interval import IntervalTrigger

    url = f"sqlite:///{(Path(data_dir) / JOBS_DB).resolve()}"
    scheduler = BackgroundScheduler(
        jobstores={"default": SQLAlchemyJobStore(url=url)},
        job_defaults={
            "coalesce": True,
            "max_instances": 1,
            "misfire_grace_time": int(settings["schedule.misfire_grace_s"]),
        },
        timezone=TZ,
    )
    scheduler.start(paused=True)  # loads the stored jobs without running any
    wanted = {spec.id: spec for spec in job_specs(settings)}
    for job in scheduler.get_jobs():
        if job.id not in wanted:
            log.info("removing job %s (no longer configured)", job.id)
            job.remove()
    for spec in wanted.values():
        if spec.trigger == "interval":
            trigger = IntervalTrigger(timezone=TZ, **spec.trigger_args)
        else:
            trigger = CronTrigger(timezone=TZ, **spec.trigger_args)
        existing = scheduler.get_job(spec.id)
        if (
            existing is not None
            and str(existing.trigger) == str(trigger)
            and existing.func_ref == spec.func
            and dict(existing.kwargs) == spec.kwargs
        ):
            continue  # keep its stored next run time
        extra = {"next_run_time": datetime.now(TZ)} if spec.run_at_start else {}
        scheduler.add_job(
            spec.func,
            trigger,
            id=spec.id,
            name=spec.id,
            kwargs=spec.kwargs,
            replace_existing=True,
            **extra,
        )
    return scheduler


def run_forever(settings: Settings, data_dir: Path, stop: threading.Event | None = None) -> None:
    """Run the scheduler until SIGTERM/SIGINT (or `stop` is set)."""
    from alerts import jobs

    stop = stop or threading.Event()
    with SchedulerLock(data_dir):
        jobs.configure(settings)

        def _on_signal(signum: int, _frame: object) -> None:
            log.info("received %s, shutting down", signal.Signals(signum).name)
            stop.set()

        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, _on_signal)
            signal.signal(signal.SIGINT, _on_signal)
        scheduler = build_scheduler(settings, data_dir)
        scheduler.resume()
        for job in scheduler.get_jobs():
            log.info("job %s next run %s", job.id, job.next_run_time)
        try:
            while not stop.wait(1.0):  # short waits keep signal handling prompt
                pass
        finally:
            jobs.STOP.set()  # crawls in flight terminate their subprocesses
            scheduler.shutdown(wait=True)
            log.info("scheduler stopped")
