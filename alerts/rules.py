"""Alert rules: each reads the Store and returns the alerts that hold *now*.

Rules are stateless functions of (store, settings, now); the engine keeps
state.  An alert a rule stops reporting is resolved by the engine, so a
rule only has to describe the present.  The one exception is the hot-topic
rule, which looks at the hot-topic alerts already firing so a growing event
keeps its identity (one alert per event, updated as it grows) even when its
strongest term changes.
"""

from __future__ import annotations

import logging
import math
import statistics
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import quote

from alerts.model import Alert
from govpulse.schema import CrawlEvent, Message, Status, Urgency
from govpulse.trends import merge_events, rising_terms
from store.base import Filters, Sla, Store

log = logging.getLogger(__name__)

#: Crawl event kinds that mean the spider could not do its job.
DOWN_KINDS = {
    "crashed": "进程崩溃",
    "timeout": "运行超时",
    "blocked": "被封禁",
    "captcha": "出现验证码",
    "login_expired": "登录失效",
    "layout_changed": "页面结构变化",
}


#: Overdue letters whose department the source did not name.
UNKNOWN_DEPT = "未指定部门"


@dataclass(slots=True)
class RuleContext:
    """What every rule receives."""

    store: Store
    settings: Mapping[str, Any]
    now: datetime
    #: Firing alerts by rule (from AlertState), for rules that keep identity.
    active: Mapping[str, list[dict[str, Any]]]

    def link(self, path: str) -> str:
        base = str(self.settings["alerts.dashboard_url"]).rstrip("/")
        return f"{base}{path}"


def _excerpt(text: str, n: int = 80) -> str:
    text = " ".join((text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def _fmt(at: datetime | None) -> str:
    return at.strftime("%m-%d %H:%M") if at else "时间未知"


# -- hot topic --------------------------------------------------------------
def hot_topic(ctx: RuleContext) -> list[Alert]:
    """Terms rising against their own baseline, merged into events."""
    s = ctx.settings
    window = timedelta(hours=int(s["alerts.hot_window_hours"]))
    trends = rising_terms(
        ctx.store,
        ctx.now,
        window=window,
        baseline=timedelta(days=int(s["alerts.hot_baseline_days"])),
        limit=50,
        k=float(s["alerts.hot_k"]),
        min_count=int(s["alerts.hot_min_count"]),
        only_rising=True,
    )
    min_sources = int(s["alerts.hot_min_sources"])
    trends = [t for t in trends if len([v for v in t.sources.values() if v]) >= min_sources]
    firing = ctx.active.get("hot_topic", [])
    out: list[Alert] = []
    used: set[str] = set()
    for event in merge_events(trends):
        terms = [t.term for t in event]
        lead = event[0]
        # Keep the identity of an event already alerted on: its topic term is among ours.
        topic = next(
            (
                a["labels"]["topic"]
                for a in firing
                if a["labels"].get("topic") in terms and a["labels"]["topic"] not in used
            ),
            lead.term,
        )
        used.add(topic)
        count = max(t.count for t in event)
        sources = "、".join(f"{k} {v}" for k, v in lead.sources.items())
        severity = (
            Urgency.URGENT if count >= 10 * int(s["alerts.hot_min_count"]) else Urgency.NORMAL
        )
        out.append(
            Alert(
                rule="hot_topic",
                severity=severity,
                title=f"热点话题「{topic}」上升：{count} 条（基线均值 {lead.baseline_mean:g}）",
                body=(
                    f"相关词：{'、'.join(terms[:8])}\n"
                    f"近 {window.total_seconds() / 3600:g} 小时 {count} 条，得分 {lead.score:g}；"
                    f"来源：{sources}\n走势：{' '.join(map(str, lead.sparkline))}"
                ),
                labels={"group": topic, "topic": topic},
                url=ctx.link(f"/search?q={quote(topic)}"),
                # News when the event doubles, not at every extra message.
                update_key=str(int(math.log2(max(count, 1)))),
            )
        )
    return out


# -- urgent messages -----------------------------------------------------------
def urgent(ctx: RuleContext) -> list[Alert]:
    """Open 特急 messages (sent at once) and 紧急 ones (batched by the engine)."""
    hours = int(ctx.settings["alerts.urgent_lookback_hours"])
    filters = Filters(
        urgency=(Urgency.CRITICAL.value, Urgency.URGENT.value),
        status=(Status.OPEN.value,),
        since=ctx.now - timedelta(hours=hours),
        until=ctx.now + timedelta(seconds=1),
    )
    out = []
    for m in ctx.store.iter_messages(filters=filters):
        level = m.urgency.value if m.urgency else Urgency.URGENT.value
        reasons = "；".join(m.urgency_reasons[:3])
        out.append(
            Alert(
                rule="urgent",
                severity=level,
                title=f"{level}留言：{_excerpt(m.title or m.body, 40)}",
                body=(
                    f"{m.channel}（{m.source.value}）{_fmt(m.posted_at)}"
                    f"{'，部门：' + m.department if m.department else ''}\n"
                    f"{_excerpt(m.body, 160)}"
                    f"{chr(10) + '判定依据：' + reasons if reasons else ''}"
                ),
                labels={"group": level, "message_id": m.id},
                url=ctx.link(f"/message?id={m.id}"),
            )
        )
    return out


# -- overdue letters -------------------------------------------------------------
def overdue(ctx: RuleContext) -> list[Alert]:
    """Letters past their deadline, one alert per department, repeated once a day."""
    # Only sources that owe a reply: an unanswered Weibo comment is not an overdue letter.
    sources = Filters.make(source=list(ctx.settings["alerts.overdue_sources"]))
    letters = ctx.store.overdue(
        sources, sla=Sla.from_settings(ctx.settings), now=ctx.now, limit=5000
    )
    by_dept: dict[str, list[Message]] = defaultdict(list)
    for m in letters:
        by_dept[m.department or UNKNOWN_DEPT].append(m)
    minimum = int(ctx.settings["alerts.overdue_min"])
    out = []
    for dept, msgs in sorted(by_dept.items()):
        if len(msgs) < minimum:
            continue
        oldest = msgs[0]
        lines = [f"· {_fmt(m.posted_at)} {_excerpt(m.title or m.body, 40)}" for m in msgs[:10]]
        more = f"\n… 另有 {len(msgs) - 10} 件" if len(msgs) > 10 else ""
        out.append(
            Alert(
                rule="overdue",
                severity=Urgency.NORMAL,
                title=f"{dept}：{len(msgs)} 件留言超期未办（最早 {_fmt(oldest.posted_at)}）",
                body="\n".join(lines) + more,
                labels={"group": dept, "department": dept},
                url=ctx.link(
                    "/timeliness"
                    if dept == UNKNOWN_DEPT
                    else f"/timeliness?department={quote(dept)}"
                ),
                repeat_s=86400,
            )
        )
    return out


# -- rumours ---------------------------------------------------------------------
def rumour(ctx: RuleContext) -> list[Alert]:
    """Suspected rumours that spread and have no official reply yet."""
    s = ctx.settings
    filters = Filters(
        min_rumour=float(s["alerts.rumour_threshold"]),
        since=ctx.now - timedelta(hours=int(s["alerts.rumour_lookback_hours"])),
        until=ctx.now + timedelta(seconds=1),
    )
    min_spread = int(s["alerts.rumour_min_spread"])
    out = []
    for m in ctx.store.iter_messages(filters=filters):
        spread = m.reposts + m.comments + m.likes
        if spread < min_spread or m.reply_body or m.status is not Status.OPEN:
            continue
        out.append(
            Alert(
                rule="rumour",
                severity=Urgency.URGENT,
                title=f"疑似谣言（{m.rumour_score:.2f}）：{_excerpt(m.title or m.body, 40)}",
                body=(
                    f"{m.channel} {_fmt(m.posted_at)}，转发 {m.reposts} / 评论 {m.comments}"
                    f" / 点赞 {m.likes}，尚无官方回应\n{_excerpt(m.body, 160)}"
                    + (f"\n依据：{'；'.join(m.rumour_reasons[:3])}" if m.rumour_reasons else "")
                ),
                labels={"group": "rumour", "message_id": m.id},
                url=ctx.link(f"/message?id={m.id}"),
            )
        )
    return out


# -- crawl health ------------------------------------------------------------------
def crawl_health(ctx: RuleContext) -> list[Alert]:
    """Spiders that are down, suddenly empty, or failing many requests."""
    s = ctx.settings
    events = ctx.store.crawl_events(
        since=ctx.now - timedelta(hours=int(s["alerts.crawl_lookback_hours"])), limit=1000
    )
    by_spider: dict[str, list[CrawlEvent]] = defaultdict(list)
    for e in events:  # newest first
        by_spider[e.spider].append(e)
    min_items = int(s["alerts.crawl_min_items"])
    max_ratio = float(s["alerts.crawl_error_ratio"])
    out = []
    for spider, evs in sorted(by_spider.items()):
        latest = evs[0]
        labels = {"group": latest.source, "source": latest.source, "spider": spider}
        if latest.kind in DOWN_KINDS or not latest.ok:
            what = DOWN_KINDS.get(latest.kind, latest.kind)
            out.append(
                Alert(
                    rule="crawl_health",
                    severity=Urgency.URGENT,
                    title=f"采集中断：{spider}（{what}）",
                    body=f"{_fmt(latest.at)} {latest.kind}：{_excerpt(latest.detail, 300)}",
                    labels={**labels, "kind": "down"},
                    url=ctx.link("/alerts"),
                )
            )
        finished = [e for e in evs if e.kind == "finished" and e.ok]
        if finished and finished[0].items == 0:
            before = [e.items for e in finished[1:6]]
            if before and statistics.median(before) >= min_items:
                out.append(
                    Alert(
                        rule="crawl_health",
                        severity=Urgency.NORMAL,
                        title=f"采集量骤降：{spider} 本次 0 条（此前中位数 {statistics.median(before):g}）",
                        body=f"{_fmt(finished[0].at)} 结束的采集没有得到任何条目，请检查站点或登录状态。",
                        labels={**labels, "kind": "volume_drop"},
                        url=ctx.link("/alerts"),
                    )
                )
        spike = latest.pages >= 5 and latest.errors / latest.pages > max_ratio
        if spike or latest.kind == "error_rate":
            out.append(
                Alert(
                    rule="crawl_health",
                    severity=Urgency.NORMAL,
                    title=f"采集错误率高：{spider} {latest.errors}/{latest.pages} 个页面出错",
                    body=f"{_fmt(latest.at)} {_excerpt(latest.detail, 300)}",
                    labels={**labels, "kind": "error_spike"},
                    url=ctx.link("/alerts"),
                )
            )
    return out


RULES: dict[str, Callable[[RuleContext], list[Alert]]] = {
    "hot_topic": hot_topic,
    "urgent": urgent,
    "overdue": overdue,
    "rumour": rumour,
    "crawl_health": crawl_health,
}


def evaluate(ctx: RuleContext, names: list[str] | None = None) -> tuple[list[Alert], set[str]]:
    """Run rules; return their alerts and the names of rules that ran cleanly.

    A rule that raises is logged and left out of the second set, so its
    firing alerts are kept (not resolved) until it works again.
    """
    alerts: list[Alert] = []
    ok: set[str] = set()
    for name in names or list(RULES):
        try:
            alerts.extend(RULES[name](ctx))
        except Exception:
            log.exception("alert rule %s failed; its alerts stay as they were", name)
            continue
        ok.add(name)
    return alerts, ok
