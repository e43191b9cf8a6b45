"""The alert engine: Alertmanager's semantics on top of AlertState.

``process`` records what the rules see (de-duplicated by fingerprint;
alerts a rule no longer reports are resolved).  ``flush`` decides which
groups to announce: a new group waits ``group_wait`` for related alerts,
news in an announced group waits ``group_interval``, an unchanged group
repeats after ``repeat_interval``; silenced, inhibited and (below 特急)
quiet-hour alerts are held back.  ``deliver`` sends the queue, respecting
per-channel rate limits and size limits, and retries failures with
exponential back-off: nothing is dropped.

Time comes from a clock argument, so tests move time without sleeping.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

from alerts.model import RULE_NAMES, Alert, severity_rank
from alerts.notifiers import DeliveryError, Notifier, split_text
from alerts.state import AlertState
from govpulse.schema import TZ, Urgency

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]


def system_clock() -> datetime:
    return datetime.now(TZ).replace(microsecond=0)


def parse_quiet_hours(text: str) -> tuple[time, time] | None:
    """'22:00-07:00' -> (22:00, 07:00); empty -> None; ValueError if malformed."""
    text = (text or "").strip()
    if not text:
        return None
    try:
        start, end = (time.fromisoformat(p.strip()) for p in text.split("-"))
    except ValueError:
        raise ValueError(f"quiet hours {text!r}: use HH:MM-HH:MM") from None
    return start, end


def in_quiet_hours(now: datetime, quiet: tuple[time, time] | None) -> bool:
    if quiet is None:
        return False
    start, end = quiet
    t = now.astimezone(TZ).time()
    return start <= t < end if start <= end else (t >= start or t < end)


@dataclass(slots=True)
class EngineConfig:
    """Timers and policies (see the alerts.* settings)."""

    group_by: tuple[str, ...] = ("rule", "group")
    group_wait: timedelta = timedelta(seconds=60)
    group_interval: timedelta = timedelta(minutes=10)
    repeat_interval: timedelta = timedelta(hours=4)
    quiet_hours: tuple[time, time] | None = None
    inhibit_rules: list[dict[str, Any]] = field(default_factory=list)
    retry_base: timedelta = timedelta(seconds=30)
    retry_max: timedelta = timedelta(hours=1)
    rate_limits: dict[str, int] = field(default_factory=dict)
    dashboard_url: str = ""

    @classmethod
    def from_settings(cls, s: Mapping[str, Any]) -> EngineConfig:
        """Build from settings; ValueError names the setting that is malformed."""
        rules = s["alerts.inhibit_rules"] or []
        if not isinstance(rules, list) or not all(
            isinstance(r, dict) and isinstance(r.get("target", {}), dict) for r in rules
        ):
            raise ValueError("alerts.inhibit_rules must be a JSON list of {source, target, equal}")
        limits = s["alerts.rate_limits"] or {}
        if not isinstance(limits, dict):
            raise ValueError("alerts.rate_limits must be a JSON object: channel -> per minute")
        return cls(
            group_by=tuple(s["alerts.group_by"]),
            group_wait=timedelta(seconds=int(s["alerts.group_wait_s"])),
            group_interval=timedelta(seconds=int(s["alerts.group_interval_s"])),
            repeat_interval=timedelta(seconds=int(s["alerts.repeat_interval_s"])),
            quiet_hours=parse_quiet_hours(s["alerts.quiet_hours"]),
            inhibit_rules=list(s["alerts.inhibit_rules"] or []),
            retry_base=timedelta(seconds=int(s["alerts.retry_base_s"])),
            retry_max=timedelta(seconds=int(s["alerts.retry_max_s"])),
            rate_limits={str(k): int(v) for k, v in (s["alerts.rate_limits"] or {}).items()},
            dashboard_url=str(s["alerts.dashboard_url"]).rstrip("/"),
        )


@dataclass(slots=True)
class TickReport:
    """What one engine round did (for logs and `govpulse run --once`)."""

    firing: int = 0
    new: int = 0
    resolved: int = 0
    suppressed: int = 0
    queued: int = 0
    sent: int = 0
    failed: int = 0
    deferred: int = 0


def _matches(labels: Mapping[str, str], matchers: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in matchers.items())


class Engine:
    """Groups, de-duplicates, silences, inhibits, schedules and delivers alerts."""

    def __init__(
        self,
        state: AlertState,
        notifiers: Mapping[str, Notifier],
        config: EngineConfig | None = None,
        clock: Clock = system_clock,
    ) -> None:
        self.state = state
        self.notifiers = dict(notifiers)
        self.config = config or EngineConfig()
        self.clock = clock

    # -- 1. record --------------------------------------------------------------
    def group_key(self, labels: Mapping[str, str]) -> str:
        return "|".join(f"{k}={labels.get(k, '')}" for k in self.config.group_by)

    def process(
        self,
        alerts: Iterable[Alert],
        evaluated_rules: Iterable[str],
        report: TickReport | None = None,
    ) -> TickReport:
        """Record the alerts rules see now; resolve the ones they stopped reporting."""
        now = self.clock()
        report = report or TickReport()
        seen: set[str] = set()
        for alert in alerts:
            fp = alert.fingerprint
            if fp in seen:  # two rules' outputs collide: first one wins
                continue
            seen.add(fp)
            _, created = self.state.upsert_firing(
                fingerprint=fp,
                rule=alert.rule,
                severity=alert.severity,
                title=alert.title,
                body=alert.body,
                url=alert.url,
                group_key=self.group_key(alert.labels),
                labels=alert.labels,
                update_key=alert.update_key,
                now=now,
                repeat_s=alert.repeat_s,
            )
            report.new += int(created)
        rules = set(evaluated_rules)
        gone = [
            a["id"]
            for a in self.state.active_alerts()
            if a["rule"] in rules and a["fingerprint"] not in seen
        ]
        self.state.resolve(gone, now)
        report.resolved += len(gone)
        report.firing = len(seen)
        return report

    # -- 2. decide -----------------------------------------------------------------
    def _suppression(self, active: list[dict[str, Any]], now: datetime) -> dict[str, str]:
        """Alert id -> why it is held back ('' when it may be sent)."""
        silences = self.state.silences(active_only=True, now=now)
        quiet = in_quiet_hours(now, self.config.quiet_hours)
        out: dict[str, str] = {}
        for a in active:
            labels = {**a["labels"], "severity": a["severity"]}
            reason = ""
            for s in silences:
                if _matches(labels, s["matchers"]):
                    reason = f"silenced:{s['id']}"
                    break
            if not reason:
                for rule in self.config.inhibit_rules:
                    if not _matches(labels, rule.get("target", {})):
                        continue
                    equal = rule.get("equal", [])
                    if any(
                        src["id"] != a["id"]
                        and _matches(src["labels"], rule.get("source", {}))
                        and all(src["labels"].get(k) == a["labels"].get(k) for k in equal)
                        for src in active
                    ):
                        reason = "inhibited"
                        break
            if not reason and quiet and a["severity"] != Urgency.CRITICAL.value:
                reason = "quiet_hours"
            out[a["id"]] = reason
        return out

    def flush(self, report: TickReport | None = None) -> TickReport:
        """Queue one message per due group for every channel."""
        now = self.clock()
        report = report or TickReport()
        active = self.state.active_alerts()
        held = self._suppression(active, now)
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for a in active:
            if held[a["id"]] != a["suppressed"]:
                self.state.set_suppressed(a["id"], held[a["id"]])
            if held[a["id"]]:
                report.suppressed += 1
                continue
            groups[a["group_key"]].append(a)
        for key, members in sorted(groups.items()):
            if self._group_due(key, members, now):
                self._announce(key, members, now)
                report.queued += len(self.notifiers)
        return report

    def _group_due(self, key: str, members: list[dict[str, Any]], now: datetime) -> bool:
        group = self.state.group(key)
        critical = any(a["severity"] == Urgency.CRITICAL.value for a in members)
        if group is None or group["last_sent"] is None:
            # 特急 goes at once; others wait for their siblings to arrive.
            first = group["first_seen"] if group else now
            wait = timedelta(0) if critical else self.config.group_wait
            return now >= first + wait
        news = any(a["notified_key"] != a["update_key"] for a in members)
        if news:
            interval = timedelta(0) if critical else self.config.group_interval
            return now >= group["last_sent"] + interval
        repeats = [timedelta(seconds=a["repeat_s"]) for a in members if a["repeat_s"]]
        repeat = max(repeats) if repeats else self.config.repeat_interval
        return now >= group["last_sent"] + repeat

    def _announce(self, key: str, members: list[dict[str, Any]], now: datetime) -> None:
        title, body = self.render(members)
        severity = min((a["severity"] for a in members), key=severity_rank)
        ids = [a["id"] for a in members]
        for channel in self.notifiers:
            self.state.enqueue(
                group_key=key,
                channel=channel,
                severity=severity,
                title=title,
                body=body,
                alert_ids=ids,
                now=now,
            )
        self.state.mark_notified(ids, now)
        self.state.mark_group_sent(key, now)
        log.info(
            "alert group %s: queued %d alert(s) for %s", key, len(ids), ", ".join(self.notifiers)
        )

    def render(self, members: Sequence[Mapping[str, Any]]) -> tuple[str, str]:
        """Chinese title and body of one group's message (new and grown alerts marked)."""
        members = sorted(members, key=lambda a: (severity_rank(a["severity"]), a["first_seen"]))
        rule = RULE_NAMES.get(members[0]["rule"], members[0]["rule"])
        if len(members) == 1:
            title = f"【{members[0]['severity']}】{members[0]['title']}"
        else:
            title = f"【{members[0]['severity']}】{rule}：{len(members)} 条预警"
        blocks = []
        for a in members:
            mark = (
                "【新】"
                if a["notified_key"] is None
                else ("【更新】" if a["notified_key"] != a["update_key"] else "")
            )
            lines = [f"{mark}[{a['severity']}] {a['title']}", a["body"]]
            if a["url"]:
                lines.append(f"查看：{a['url']}")
            blocks.append("\n".join(line for line in lines if line))
        footer = (
            f"预警列表：{self.config.dashboard_url}/alerts" if self.config.dashboard_url else ""
        )
        return title, "\n\n".join([*blocks, footer]).strip()

    # -- 3. deliver --------------------------------------------------------------------
    def backoff(self, attempt: int) -> timedelta:
        """Delay before retry number `attempt` (1, 2 …): doubling, capped."""
        delay = self.config.retry_base * (2 ** max(attempt - 1, 0))
        return min(delay, self.config.retry_max)

    def deliver(self, report: TickReport | None = None) -> TickReport:
        """Send due queue entries; failures are recorded and rescheduled, never dropped."""
        now = self.clock()
        report = report or TickReport()
        for note in self.state.due_notifications(now):
            notifier = self.notifiers.get(note["channel"])
            if notifier is None:
                # Channel removed from the config: keep the message for when it returns,
                # and make the reason visible on the 预警 page.
                attempt = int(note["attempts"]) + 1
                self.state.record_delivery(
                    note,
                    ok=False,
                    error=f"channel {note['channel']} is not configured",
                    now=now,
                    next_try=now + self.backoff(attempt),
                )
                report.failed += 1
                continue
            parts = split_text(note["body"], notifier.max_bytes)
            limit = self.config.rate_limits.get(note["channel"])
            if limit:
                used = self.state.sent_parts_since(note["channel"], now - timedelta(minutes=1))
                if used and used + len(parts) > limit:
                    report.deferred += 1
                    continue  # stays due; the next round sends it
            try:
                for i, part in enumerate(parts, 1):
                    suffix = f"（{i}/{len(parts)}）" if len(parts) > 1 else ""
                    notifier.send(note["title"] + suffix, part)
            except DeliveryError as exc:
                attempt = int(note["attempts"]) + 1
                retry_at = now + self.backoff(attempt)
                self.state.record_delivery(
                    note, ok=False, error=str(exc), now=now, parts=len(parts), next_try=retry_at
                )
                log.warning(
                    "delivery to %s failed (attempt %d), retrying at %s: %s",
                    note["channel"],
                    attempt,
                    retry_at.isoformat(),
                    exc,
                )
                report.failed += 1
                continue
            self.state.record_delivery(note, ok=True, error="", now=now, parts=len(parts))
            report.sent += 1
        return report

    def tick(self, alerts: Iterable[Alert], evaluated_rules: Iterable[str]) -> TickReport:
        """One full round: record, decide, deliver."""
        report = self.process(alerts, evaluated_rules)
        self.flush(report)
        self.deliver(report)
        return report

    def send_now(self, rule: str, severity: str, title: str, body: str, key: str) -> None:
        """Queue a one-off message (digest, test) to every channel, bypassing grouping.

        It is still stored as an alert and its deliveries are tracked and retried.
        """
        now = self.clock()
        alert = Alert(rule=rule, severity=severity, title=title, body=body, labels={"group": key})
        alert_id, _ = self.state.upsert_firing(
            fingerprint=alert.fingerprint + now.strftime("%Y%m%d%H%M%S"),
            rule=rule,
            severity=alert.severity,
            title=title,
            body=body,
            url="",
            group_key=f"{rule}|{key}",
            labels=alert.labels,
            update_key="",
            now=now,
        )
        for channel in self.notifiers:
            self.state.enqueue(
                group_key=f"{rule}|{key}",
                channel=channel,
                severity=alert.severity,
                title=f"【{RULE_NAMES.get(rule, rule)}】{title}",
                body=body,
                alert_ids=[alert_id],
                now=now,
            )
        self.state.mark_notified([alert_id], now)
        self.state.resolve([alert_id], now)  # a one-off: nothing keeps firing
