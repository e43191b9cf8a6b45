"""Scheduled jobs: module-level functions with plain arguments.

APScheduler's persistent job store saves each job as a textual reference
(``alerts.jobs:crawl_job``) plus its arguments, so jobs take only names and
flags; the settings they need are installed once per process with
`configure` (secrets therefore never land in the job database).
"""

from __future__ import annotations

import functools
import logging
import os
import signal
import subprocess
import sys
import threading
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from alerts.engine import Engine, EngineConfig, TickReport, system_clock
from alerts.model import Alert
from alerts.notifiers import ChannelError, build_notifier, build_notifiers
from alerts.rules import DOWN_KINDS, RuleContext, evaluate
from alerts.state import AlertState
from govpulse.context import resolve_data_dir, resolve_store_url
from govpulse.schema import CrawlEvent, Source, Urgency
from govpulse.settings import Settings, registry
from govpulse.trends import rising_terms
from store.base import Filters, Sla, Store, StoreError

log = logging.getLogger(__name__)

#: Set on SIGTERM: running crawls are stopped and no new work starts.
STOP = threading.Event()
_settings: Settings | None = None
_lock = threading.Lock()
#: One engine round at a time in this process: a crawl failure triggers an
#: evaluation that could otherwise overlap the scheduled one and double-send.
_engine_lock = threading.RLock()


def _serialised(func: Callable[..., Any]) -> Callable[..., Any]:
    """Run under the engine lock (module-level functions stay importable by name)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        with _engine_lock:
            return func(*args, **kwargs)

    return wrapper


def configure(settings: Settings) -> None:
    """Install the settings the jobs of this process use."""
    global _settings
    with _lock:
        _settings = settings
        STOP.clear()


def _cfg() -> Settings:
    if _settings is None:
        raise RuntimeError("alerts.jobs used before configure(settings)")
    return _settings


def _data_dir() -> Path:
    return resolve_data_dir(_cfg())


def _open_store() -> Store:
    from store import open_store

    return open_store(resolve_store_url(_cfg()), _cfg())


def make_engine(state: AlertState, clock=system_clock) -> Engine:
    """The engine with every enabled channel; a broken channel falls back to the outbox.

    A mistyped robot URL must not swallow alerts: the error is logged and
    the outbox keeps them until the channel is fixed.
    """
    settings = _cfg()
    try:
        notifiers = build_notifiers(settings, _data_dir())
    except ChannelError as exc:
        log.error("alert channel misconfigured (%s); writing alerts to the outbox", exc)
        notifiers = {"outbox": build_notifier("outbox", settings, _data_dir())}
    return Engine(state, notifiers, EngineConfig.from_settings(settings), clock=clock)


# -- crawls -------------------------------------------------------------------------
@dataclass(slots=True)
class CrawlOutcome:
    spider: str
    kind: str  # finished | crashed | timeout | incomplete
    returncode: int | None
    seconds: float
    detail: str = ""


def source_of(spider: str) -> str:
    """The source a spider feeds (weibo_comments -> weibo); the name itself otherwise."""
    for src in Source:
        if spider == src.value or spider.startswith(src.value + "_"):
            return src.value
    return spider


def child_env(settings: Settings) -> dict[str, str]:
    """Environment passing every non-default setting to a child `govpulse` process.

    Environment variables rather than --set flags keep secrets out of the
    process list.
    """
    import json

    env = dict(os.environ)
    reg = registry()
    for key, value in settings.items():
        if settings.origin(key) == "default":
            continue
        if isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, list | dict):
            text = json.dumps(value, ensure_ascii=False)
        else:
            text = str(value)
        env[reg[key].env_var] = text
    return env


def crawl_command(settings: Settings, spider: str, revisit: bool) -> list[str]:
    base = list(settings["schedule.crawl_command"]) or [
        sys.executable,
        "-m",
        "govpulse.cli",
        "crawl",
    ]
    return [*base, spider, *(["--revisit"] if revisit else [])]


def crawl_job(spider: str, revisit: bool = False) -> CrawlOutcome:
    """Run one crawl in its own process (Scrapy's reactor cannot restart) with a timeout.

    A crash or a hang is recorded as a CrawlEvent and raised as a crawl-health
    alert at once; it never propagates to the scheduler.
    """
    settings = _cfg()
    cmd = crawl_command(settings, spider, revisit)
    timeout = timedelta(minutes=float(settings["schedule.crawl_timeout_min"]))
    logs = _data_dir() / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    log_path = logs / f"crawl-{spider}{'-revisit' if revisit else ''}.log"
    started = datetime.now()
    log.info("crawl %s%s starting: %s", spider, " (revisit)" if revisit else "", " ".join(cmd))
    with log_path.open("ab") as out:
        out.write(f"\n=== {started.isoformat()} {' '.join(cmd)}\n".encode())
        out.flush()
        try:
            proc = subprocess.Popen(
                cmd,
                stdout=out,
                stderr=subprocess.STDOUT,
                env=child_env(settings),
                start_new_session=True,  # its own process group: we can kill the whole tree
            )
        except OSError as exc:
            return _crawl_failed(spider, "crashed", None, started, f"cannot start {cmd[0]}: {exc}")
        deadline = started + timeout
        kind = "finished"
        while proc.poll() is None:
            if STOP.wait(0.2):
                kind = "incomplete"
                break
            if datetime.now() >= deadline:
                kind = "timeout"
                break
        if proc.poll() is None:
            _kill_tree(proc)
    rc = proc.returncode
    if kind == "finished" and rc != 0:
        kind = "crashed"
    if kind == "finished":
        secs = (datetime.now() - started).total_seconds()
        log.info("crawl %s finished in %.1fs", spider, secs)
        return CrawlOutcome(spider, kind, rc, secs)
    tail = _tail(log_path)
    detail = {
        "crashed": f"exit code {rc}",
        "timeout": f"killed after {timeout.total_seconds() / 60:g} min",
        "incomplete": "stopped because the scheduler shut down",
    }[kind]
    return _crawl_failed(spider, kind, rc, started, f"{detail}; log {log_path}: {tail}")


def _kill_tree(proc: subprocess.Popen) -> None:
    """SIGTERM the crawl's process group, then SIGKILL if it does not leave."""
    for sig, wait in ((signal.SIGTERM, 10), (signal.SIGKILL, 5)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait)
            return
        except subprocess.TimeoutExpired:
            continue


def _tail(path: Path, chars: int = 600) -> str:
    try:
        data = path.read_bytes()[-chars * 3 :]
    except OSError:
        return ""
    return " ".join(data.decode("utf-8", "replace").split())[-chars:]


def _crawl_failed(
    spider: str, kind: str, rc: int | None, started: datetime, detail: str
) -> CrawlOutcome:
    from govpulse.schema import TZ

    secs = (datetime.now() - started).total_seconds()
    log.error("crawl %s %s: %s", spider, kind, detail)
    event = CrawlEvent(
        source=source_of(spider),
        spider=spider,
        kind=kind,
        at=datetime.now(TZ).replace(microsecond=0),
        ok=kind == "incomplete",
        detail=detail,
    )
    recorded = False
    try:
        with _open_store() as store:
            store.add_crawl_event(event)
        recorded = True
    except (StoreError, OSError) as exc:
        log.error("could not record crawl event for %s (%s); alerting directly", spider, exc)
    if kind != "incomplete" and not STOP.is_set():
        if recorded:
            alerts_job()
        else:
            _alert_crawl_down_directly(event)
    return CrawlOutcome(spider, kind, rc, secs, detail)


@_serialised
def _alert_crawl_down_directly(event: CrawlEvent) -> None:
    """Raise the crawl-down alert without the store (it is what failed)."""
    state = AlertState.for_data_dir(_data_dir())
    try:
        alert = Alert(
            rule="crawl_health",
            severity=Urgency.URGENT,
            title=f"采集中断：{event.spider}（{DOWN_KINDS.get(event.kind, event.kind)}）",
            body=f"{event.detail[:300]}\n（存储不可用，事件未能写入）",
            labels={
                "group": event.source,
                "source": event.source,
                "spider": event.spider,
                "kind": "down",
            },
        )
        make_engine(state).tick([alert], evaluated_rules=())
    finally:
        state.close()


# -- alerts -----------------------------------------------------------------------------
@_serialised
def alerts_job(rules: list[str] | None = None) -> TickReport:
    """Evaluate the rules and run one engine round (record, decide, deliver)."""
    settings = _cfg()
    state = AlertState.for_data_dir(_data_dir())
    try:
        engine = make_engine(state)
        try:
            store = _open_store()
        except (StoreError, OSError) as exc:
            log.error("alert rules skipped, store unavailable: %s", exc)
            return engine.tick([], evaluated_rules=())
        with store:
            ctx = RuleContext(
                store=store,
                settings=settings,
                now=engine.clock(),
                active={"hot_topic": state.active_alerts("hot_topic")},
            )
            alerts, ok = evaluate(ctx, rules)
            report = engine.tick(alerts, ok)
        log.info("alerts: %s", report)
        return report
    finally:
        state.close()


@_serialised
def deliver_job() -> TickReport:
    """Send due and retried notifications (runs often so retries are timely)."""
    state = AlertState.for_data_dir(_data_dir())
    try:
        engine = make_engine(state)
        return engine.deliver(engine.flush())
    finally:
        state.close()


# -- digest and retention ------------------------------------------------------------------
def digest_text(store: Store, state: AlertState, settings: Any, now: datetime) -> tuple[str, str]:
    """Title and body of the daily digest (日报) for the 24 hours before `now`."""
    since = now - timedelta(days=1)
    window = Filters(since=since, until=now)
    total = store.count(filters=window)
    facets = store.facets(["source", "urgency", "topic"], filters=window, size=7)
    overdue = store.overdue(sla=Sla.from_settings(settings), now=now, limit=100000)
    trends = rising_terms(
        store, now, limit=5, min_count=int(settings["alerts.hot_min_count"]), only_rising=True
    )
    fired = Counter(
        a["rule"]
        for a in state.recent_alerts(limit=5000)
        if a["first_seen"] and a["first_seen"] >= since and a["rule"] != "digest"
    )
    failures = [e for e in store.crawl_events(since=since, limit=1000) if not e.ok]

    def fmt(pairs: list[tuple[str, int]]) -> str:
        return "、".join(f"{k} {v}" for k, v in pairs) or "无"

    from alerts.model import RULE_NAMES

    lines = [
        f"统计时段：{since:%m-%d %H:%M} 至 {now:%m-%d %H:%M}",
        f"新增信息 {total} 条；来源：{fmt(facets.get('source', []))}",
        f"紧急程度：{fmt(facets.get('urgency', []))}",
        f"主题分布：{fmt(facets.get('topic', []))}",
        f"超期未办留言：{len(overdue)} 件",
        "上升话题：" + ("、".join(f"{t.term}（{t.count}）" for t in trends) or "无"),
        "预警：" + (fmt([(RULE_NAMES.get(k, k), v) for k, v in fired.most_common()])),
        f"采集异常：{len(failures)} 次",
    ]
    base = str(settings["alerts.dashboard_url"]).rstrip("/")
    if base:
        lines.append(f"详情：{base}/")
    return f"{now:%Y-%m-%d} 舆情日报", "\n".join(lines)


@_serialised
def digest_job() -> None:
    """Compose and send the daily digest to every channel."""
    settings = _cfg()
    state = AlertState.for_data_dir(_data_dir())
    try:
        engine = make_engine(state)
        now = engine.clock()
        with _open_store() as store:
            title, body = digest_text(store, state, settings, now)
        engine.send_now("digest", Urgency.NORMAL.value, title, body, key=f"{now:%Y-%m-%d}")
        engine.deliver()
    finally:
        state.close()


def retention_job() -> int:
    """Delete messages older than schedule.retention_days (0 keeps everything)."""
    from govpulse.schema import TZ

    days = int(_cfg()["schedule.retention_days"])
    if days <= 0:
        return 0
    cutoff = datetime.now(TZ).replace(microsecond=0) - timedelta(days=days)
    with _open_store() as store:
        deleted = store.delete_before(cutoff)
    log.info("retention: deleted %d message(s) posted before %s", deleted, cutoff.isoformat())
    return deleted
