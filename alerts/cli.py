"""`govpulse run` and `govpulse alerts …` (test, list, evaluate, silence)."""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import click

from govpulse.context import AppContext
from govpulse.schema import TZ


@click.command("run")
@click.option("--once", is_flag=True, help="Run every job once and exit (for cron and tests).")
@click.pass_obj
def run_cmd(app: AppContext, once: bool) -> None:
    """Run the scheduler: crawls, re-visits, alert rules, daily digest, retention."""
    from alerts.scheduler import SchedulerLocked, run_forever, run_once

    try:
        if once:
            results = run_once(app.settings, app.data_dir)
            for r in results:
                click.echo(f"{'ok ' if r.ok else 'ERR'} {r.job:<24} {r.detail}")
            if not all(r.ok for r in results):
                raise SystemExit(1)
            return
        click.echo(f"scheduler running (data dir {app.data_dir}); stop with Ctrl-C or SIGTERM")
        run_forever(app.settings, app.data_dir)
    except SchedulerLocked as exc:
        raise click.ClickException(str(exc)) from None
    except ValueError as exc:  # bad schedule.* values
        raise click.ClickException(str(exc)) from None


@click.group("alerts")
def alerts_group() -> None:
    """Alert channels, history and silences."""


def _state(app: AppContext):
    from alerts.state import AlertState

    return AlertState.for_data_dir(app.data_dir)


@alerts_group.command("test")
@click.argument("channel")
@click.pass_obj
def test_cmd(app: AppContext, channel: str) -> None:
    """Send a test message to CHANNEL (email, webhook, dingtalk, wecom, feishu, apprise, outbox)."""
    from alerts.notifiers import ChannelError, DeliveryError, build_notifier

    try:
        notifier = build_notifier(channel, app.settings, app.data_dir)
    except ChannelError as exc:
        raise click.ClickException(str(exc)) from None
    now = datetime.now(TZ)
    base = str(app.settings["alerts.dashboard_url"]).rstrip("/")
    try:
        notifier.send(
            "【测试消息】govpulse 预警通道测试",
            f"这是一条测试消息，发送时间 {now:%Y-%m-%d %H:%M:%S}。\n"
            f"收到即表示 {channel} 通道配置正确。\n预警列表：{base}/alerts",
        )
    except DeliveryError as exc:
        raise click.ClickException(f"test message not delivered: {exc}") from None
    click.echo(f"test message sent to {channel} ({notifier.safe_target})")


@alerts_group.command("evaluate")
@click.option("--rule", "rules", multiple=True, help="Only these rules (repeatable).")
@click.pass_obj
def evaluate_cmd(app: AppContext, rules: tuple[str, ...]) -> None:
    """Evaluate the alert rules now and send what is due."""
    from alerts import jobs
    from alerts.rules import RULES

    unknown = [r for r in rules if r not in RULES]
    if unknown:
        raise click.BadParameter(f"unknown rule {unknown[0]}; choose from {', '.join(RULES)}")
    jobs.configure(app.settings)
    report = jobs.alerts_job(list(rules) or None)
    click.echo(
        f"firing {report.firing}, new {report.new}, resolved {report.resolved}, "
        f"held back {report.suppressed}, queued {report.queued}, sent {report.sent}, "
        f"failed {report.failed}, deferred {report.deferred}"
    )


@alerts_group.command("list")
@click.option("--limit", default=30, show_default=True)
@click.option("--deliveries", is_flag=True, help="Show delivery attempts instead of alerts.")
@click.pass_obj
def list_cmd(app: AppContext, limit: int, deliveries: bool) -> None:
    """Recent alerts (or delivery attempts) with their status."""
    state = _state(app)
    try:
        if deliveries:
            for d in state.recent_deliveries(limit):
                outcome = "ok" if d["ok"] else f"FAILED {d['error']}"
                click.echo(f"{d['at']:%m-%d %H:%M:%S} {d['channel']:<9} #{d['attempt']} {outcome}")
            pending = state.pending_notifications()
            if pending:
                click.echo(f"{len(pending)} message(s) waiting for delivery or retry")
            return
        for a in state.recent_alerts(limit):
            held = f" [{a['suppressed']}]" if a["suppressed"] else ""
            click.echo(
                f"{a['last_seen']:%m-%d %H:%M} {a['status']:<8} {a['severity']} "
                f"{a['rule']:<12} {a['title']}{held}"
            )
    finally:
        state.close()


_DURATION = re.compile(r"^(\d+(?:\.\d+)?)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_duration(text: str) -> timedelta:
    """'90m', '2h', '1d', '30s' -> timedelta."""
    match = _DURATION.match(text.strip().lower())
    if not match:
        raise click.BadParameter(f"{text!r}: use a number and s, m, h or d (e.g. 2h)")
    return timedelta(**{_UNITS[match.group(2)]: float(match.group(1))})


@alerts_group.group("silence")
def silence_group() -> None:
    """Time-boxed silences: matching alerts are recorded but not sent."""


@silence_group.command("add")
@click.option(
    "--match",
    "matchers",
    multiple=True,
    required=True,
    metavar="LABEL=VALUE",
    help="Label to match, e.g. rule=hot_topic or department=水务局 (repeatable; all must match).",
)
@click.option("--for", "duration", default="2h", show_default=True, help="Length: 30m, 2h, 1d …")
@click.option("--by", "created_by", required=True, help="Who silences (shown on the dashboard).")
@click.option("--comment", default="", help="Why.")
@click.pass_obj
def silence_add(
    app: AppContext, matchers: tuple[str, ...], duration: str, created_by: str, comment: str
) -> None:
    """Silence matching alerts from now for a while."""
    from alerts.state import StateError

    pairs = {}
    for item in matchers:
        if "=" not in item:
            raise click.BadParameter(f"{item!r}: use LABEL=VALUE", param_hint="--match")
        key, value = item.split("=", 1)
        pairs[key.strip()] = value.strip()
    start = datetime.now(TZ).replace(microsecond=0)
    end = start + parse_duration(duration)
    state = _state(app)
    try:
        sid = state.add_silence(pairs, start, end, created_by, comment)
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        state.close()
    click.echo(f"silence {sid} until {end:%Y-%m-%d %H:%M}")


@silence_group.command("list")
@click.option("--all", "show_all", is_flag=True, help="Include expired silences.")
@click.pass_obj
def silence_list(app: AppContext, show_all: bool) -> None:
    """Silences in force (or all)."""
    state = _state(app)
    try:
        for s in state.silences(active_only=not show_all):
            match = ",".join(f"{k}={v}" for k, v in s["matchers"].items())
            click.echo(
                f"{s['id']} {s['starts_at']:%m-%d %H:%M} → {s['ends_at']:%m-%d %H:%M} "
                f"{match} by {s['created_by']} {s['comment']}"
            )
    finally:
        state.close()


@silence_group.command("expire")
@click.argument("silence_id")
@click.pass_obj
def silence_expire(app: AppContext, silence_id: str) -> None:
    """End a silence now."""
    from alerts.state import StateError

    state = _state(app)
    try:
        state.expire_silence(silence_id)
    except StateError as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        state.close()
    click.echo(f"silence {silence_id} expired")
