"""Pure query functions: store (+ filters, clock) -> tables (pandas DataFrames).

Callbacks stay thin by calling these; tests and bench/dashboard.py call
them directly.  None of them keeps state between calls.  Column names are
English; pages translate headings.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from datetime import datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from govpulse.schema import TZ, Message, Status, Urgency
from store.base import Filters, SearchResult, Sla, Store

if TYPE_CHECKING:
    from govpulse.term_index import TermIndex

#: Columns of search results, tables and exports, in order.
MESSAGE_COLUMNS = (
    "id",
    "source",
    "channel",
    "title",
    "region",
    "department",
    "posted_at",
    "status",
    "replied_at",
    "reply_delay_days",
    "topic",
    "urgency",
    "rumour_score",
    "likes",
    "reposts",
    "comments",
    "url",
)
EXPORT_COLUMNS = (*MESSAGE_COLUMNS[:4], "body", *MESSAGE_COLUMNS[4:], "reply_body", "replier")
PROBLEM_KINDS = (
    "blocked",
    "captcha",
    "login_expired",
    "layout_changed",
    "error_rate",
    "incomplete",
    "crashed",
    "timeout",
)


def _fmt_time(value: datetime | None) -> str:
    return value.astimezone(TZ).strftime("%Y-%m-%d %H:%M") if value else ""


def message_row(m: Message, full: bool = False) -> dict[str, Any]:
    """A flat, JSON-ready row for tables and exports."""
    delay = m.reply_delay_days
    row: dict[str, Any] = {
        "id": m.id,
        "source": str(m.source),
        "channel": m.channel,
        "title": m.title or m.body[:60],
        "region": m.region or "",
        "department": m.department or "",
        "posted_at": _fmt_time(m.posted_at),
        "status": str(m.status),
        "replied_at": _fmt_time(m.replied_at),
        "reply_delay_days": None if delay is None else round(delay, 1),
        "topic": str(m.topic) if m.topic else "",
        "urgency": str(m.urgency) if m.urgency else "",
        "rumour_score": None if m.rumour_score is None else round(m.rumour_score, 3),
        "likes": m.likes,
        "reposts": m.reposts,
        "comments": m.comments,
        "url": m.url or "",
    }
    if full:
        row["body"] = m.body
        row["reply_body"] = m.reply_body or ""
        row["replier"] = m.replier or ""
    return row


def messages_frame(messages: list[Message]) -> pd.DataFrame:
    return pd.DataFrame([message_row(m) for m in messages], columns=list(MESSAGE_COLUMNS))


# -- 总览 overview ---------------------------------------------------------------
def volume(
    store: Store, filters: Filters, split_by: str = "source", interval: str = "day"
) -> pd.DataFrame:
    """Messages per time bucket split by a field: columns bucket, key, count."""
    rows = store.histogram(interval=interval, filters=filters, split_by=split_by)
    df = pd.DataFrame(rows, columns=["bucket", "key", "count"])
    df["key"] = df["key"].fillna("未分类")
    return df


def status_counts(store: Store, filters: Filters) -> dict[str, int]:
    """Open / answered / closed counts.

    With a date range the day histogram split by status is summed instead
    of asking for a status facet: the same counts (the range already
    excludes undated messages), but the SQLite store answers it from its
    per-day summary (~3 ms at 1M messages) where a facet under a source
    filter reads the rows (~110 ms).
    """
    if filters.since is not None or filters.until is not None:
        found: dict[str, int] = {}
        for _bucket, status, n in store.histogram("day", filters=filters, split_by="status"):
            if status is not None:
                found[status] = found.get(status, 0) + n
    else:
        found = dict(store.facets(["status"], filters=filters, size=10).get("status", []))
    return {s.value: int(found.get(s.value, 0)) for s in Status}


def today_counts(
    store: Store, filters: Filters, now: datetime, rumour_threshold: float
) -> dict[str, int]:
    """Today's total, urgent (特急/紧急) and rumour-flagged counts (Asia/Shanghai day)."""
    start = datetime.combine(now.astimezone(TZ).date(), time(), TZ)
    today = dataclasses.replace(filters, since=start, until=start + timedelta(days=1))
    urgent = dataclasses.replace(today, urgency=(Urgency.CRITICAL.value, Urgency.URGENT.value))
    rumour = dataclasses.replace(today, min_rumour=rumour_threshold)
    return {
        "total": store.count(filters=today),
        "urgent": store.count(filters=urgent),
        "rumour": store.count(filters=rumour),
    }


def crawl_health(
    store: Store, now: datetime, stale_after: timedelta = timedelta(days=1)
) -> pd.DataFrame:
    """Per source and spider: last successful crawl, last problem, and a warning flag."""
    events = store.crawl_events(limit=500)
    out: dict[tuple[str, str], dict[str, Any]] = {}
    for ev in events:  # newest first
        row = out.setdefault(
            (ev.source, ev.spider),
            {
                "source": ev.source,
                "spider": ev.spider,
                "last_ok": None,
                "last_problem": "",
                "problem_at": None,
                "last_items": None,
            },
        )
        if ev.ok and ev.kind == "finished" and row["last_ok"] is None:
            row["last_ok"] = ev.at
            row["last_items"] = ev.items
        if (not ev.ok or ev.kind in PROBLEM_KINDS) and row["problem_at"] is None:
            row["problem_at"] = ev.at
            row["last_problem"] = f"{ev.kind}: {ev.detail}".strip(": ")
    rows = []
    for row in out.values():
        problem_newer = row["problem_at"] is not None and (
            row["last_ok"] is None or row["problem_at"] > row["last_ok"]
        )
        stale = row["last_ok"] is None or now - row["last_ok"] > stale_after
        rows.append(
            {
                "source": row["source"],
                "spider": row["spider"],
                "last_ok": _fmt_time(row["last_ok"]),
                "last_items": row["last_items"],
                "last_problem": row["last_problem"] if problem_newer else "",
                "warning": bool(problem_newer or stale),
            }
        )
    columns = ["source", "spider", "last_ok", "last_items", "last_problem", "warning"]
    return pd.DataFrame(rows, columns=columns).sort_values(["source", "spider"], ignore_index=True)


def hot_terms(
    store: Store,
    now: datetime,
    filters: Filters | None = None,
    limit: int = 20,
    window_hours: int = 24,
    baseline_days: int = 7,
    only_rising: bool = False,
    index: TermIndex | None = None,
) -> pd.DataFrame:
    """Rising terms (govpulse.trends): term, count, baseline, score, sparkline, sources, samples.

    With `index` (a `TermIndex`) past days' terms are reused instead of
    re-read and re-cut; the result is the same.
    """
    from govpulse.trends import rising_terms

    args = {
        "window": timedelta(hours=window_hours),
        "baseline": timedelta(days=baseline_days),
        "limit": limit,
        "filters": filters,
        "only_rising": only_rising,
    }
    if index is not None:
        from dashboard.cache import store_marker

        trends = index.rising(store, now, marker=store_marker(store), **args)
    else:
        trends = rising_terms(store, now, **args)
    columns = [
        "term",
        "count",
        "baseline_mean",
        "score",
        "rising",
        "sparkline",
        "sources",
        "sample_ids",
    ]
    return pd.DataFrame(
        [
            {
                "term": t.term,
                "count": t.count,
                "baseline_mean": round(t.baseline_mean, 2),
                "score": round(t.score, 2) if t.score == t.score else None,
                "rising": bool(t.rising),
                "sparkline": list(t.sparkline),
                "sources": dict(t.sources),
                "sample_ids": list(t.sample_ids),
            }
            for t in trends
        ],
        columns=columns,
    )


# -- 回复时效 timeliness -----------------------------------------------------------
TIMELINESS_COLUMNS = [
    "group",
    "letters",
    "answered",
    "answer_rate",
    "median_delay",
    "p90_delay",
    "within_sla_rate",
    "open",
    "overdue",
]


def timeliness(
    store: Store, filters: Filters, sla: Sla, now: datetime, group_by: str = "department"
) -> pd.DataFrame:
    """Per group: letters, answer rate, median/p90 delay, share within SLA, open, overdue."""
    rows = store.timeliness(group_by=group_by, filters=filters, sla=sla, now=now)
    return pd.DataFrame(
        [
            {
                "group": r.group,
                "letters": r.letters,
                "answered": r.answered,
                "answer_rate": round(r.answer_rate, 4),
                "median_delay": None if r.median_delay is None else round(r.median_delay, 1),
                "p90_delay": None if r.p90_delay is None else round(r.p90_delay, 1),
                "within_sla_rate": round(r.within_sla_rate, 4),
                "open": r.open,
                "overdue": r.overdue,
            }
            for r in rows
        ],
        columns=TIMELINESS_COLUMNS,
    )


def sort_and_page(
    df: pd.DataFrame, sort_by: list[dict[str, str]] | None, page: int, per_page: int
) -> tuple[pd.DataFrame, int]:
    """Sort a table by DataTable's ``sort_by`` and cut one page (pages from 0).

    Returns the page and the page count.
    """
    if sort_by:
        cols = [s["column_id"] for s in sort_by if s.get("column_id") in df.columns]
        if cols:
            asc = [
                s.get("direction", "asc") == "asc"
                for s in sort_by
                if s.get("column_id") in df.columns
            ]
            df = df.sort_values(cols, ascending=asc, na_position="last", kind="stable")
    pages = max(1, -(-len(df) // per_page))
    page = min(max(page, 0), pages - 1)
    return df.iloc[page * per_page : (page + 1) * per_page].reset_index(drop=True), pages


def answer_trend(store: Store, filters: Filters) -> pd.DataFrame:
    """Per month: letters, answered (answered or closed) and answer rate."""
    rows = store.histogram(interval="month", filters=filters, split_by="status")
    df = pd.DataFrame(rows, columns=["month", "status", "count"])
    if df.empty:
        return pd.DataFrame(columns=["month", "letters", "answered", "answer_rate"])
    df["answered"] = df["count"].where(df["status"] != Status.OPEN.value, 0)
    out = df.groupby("month", as_index=False).agg(
        letters=("count", "sum"), answered=("answered", "sum")
    )
    out["answer_rate"] = (out["answered"] / out["letters"]).round(4)
    return out


def survival(store: Store, filters: Filters, sla: Sla, now: datetime) -> pd.DataFrame:
    """Kaplan–Meier share still unanswered after N days (open letters censored)."""
    from govpulse.analytics import survival_curve

    curve = survival_curve(store.delay_distribution(filters=filters, sla=sla, now=now))
    return pd.DataFrame(curve, columns=["days", "unanswered"])


def overdue(
    store: Store, filters: Filters, sla: Sla, now: datetime, limit: int = 100
) -> pd.DataFrame:
    """Open letters past their deadline, oldest first, with their age in days."""
    messages = store.overdue(filters=filters, sla=sla, now=now, limit=limit)
    df = messages_frame(messages)
    df["age_days"] = [
        round((now - m.posted_at).total_seconds() / 86400, 1) if m.posted_at else None
        for m in messages
    ]
    return df


# -- 谣言 rumours ------------------------------------------------------------------
def rumours(
    store: Store,
    filters: Filters,
    threshold: float,
    sort: str,
    page: int,
    per_page: int,
    fetch: Callable[..., SearchResult] | None = None,
) -> tuple[pd.DataFrame, int]:
    """Flagged posts (rumour score >= threshold) with reasons, spread and reply/review state.

    Returns one page and the total count.  `fetch` replaces `rumour_page`
    (the dashboard passes its cached version); reviews are always read
    from the store, so a review just stored shows at once.
    """
    if fetch is None:
        result = rumour_page(store, filters, threshold, sort, page, per_page)
    else:
        result = fetch(filters, threshold, sort, page, per_page)
    ids = [m.id for m in result.hits]
    reviews: dict[str, str] = {}
    for mid in ids:
        labels = store.labels(task="rumour", message_id=mid)
        if labels:
            reviews[mid] = labels[0].value
    rows = []
    for m in result.hits:
        row = message_row(m)
        row["reasons"] = "；".join(m.rumour_reasons)
        row["spread"] = m.reposts + m.comments
        row["official_reply"] = bool(m.reply_body) or m.status != Status.OPEN
        row["review"] = reviews.get(m.id, "")
        rows.append(row)
    columns = [*MESSAGE_COLUMNS, "reasons", "spread", "official_reply", "review"]
    return pd.DataFrame(rows, columns=columns), result.total


def rumour_page(
    store: Store, filters: Filters, threshold: float, sort: str, page: int, per_page: int
) -> SearchResult:
    """One page of flagged posts (the cacheable part of `rumours`: reviews are read fresh)."""
    flagged = dataclasses.replace(filters, min_rumour=threshold)
    return store.search(filters=flagged, sort=sort or "-rumour_score", page=page, per_page=per_page)


# -- 检索 search -------------------------------------------------------------------
def search(
    store: Store, query: str, filters: Filters, sort: str, page: int, per_page: int
) -> SearchResult:
    """One page of search hits; relevance sort only when there is a query."""
    if not sort:
        sort = "relevance" if query else "-posted_at"
    if sort.lstrip("-") == "relevance" and not query:
        sort = "-posted_at"
    return store.search(query=query, filters=filters, sort=sort, page=page, per_page=per_page)


def facet_options(
    store: Store,
    fields: tuple[str, ...] = ("source", "region", "department", "topic", "urgency", "status"),
    size: int = 50,
) -> dict[str, list[str]]:
    """Values offered in filter dropdowns (most frequent first)."""
    found = store.facets(list(fields), size=size)
    return {f: [value for value, _ in found.get(f, [])] for f in fields}


def iter_export_rows(
    store: Store, query: str, filters: Filters, max_rows: int
) -> Iterator[dict[str, Any]]:
    """Rows for CSV/Excel export, streamed (no result-size ceiling below max_rows)."""
    for n, m in enumerate(store.iter_messages(query=query, filters=filters)):
        if n >= max_rows:
            return
        yield message_row(m, full=True)


# -- 消息详情 message detail ---------------------------------------------------------
def message_detail(store: Store, message_id: str) -> dict[str, Any] | None:
    """The message, the one it duplicates, its labels and a timeline."""
    m = store.get(message_id)
    if m is None:
        return None
    original = store.get(m.duplicate_of) if m.duplicate_of else None
    parent = store.get(m.parent_id) if m.parent_id else None
    labels = store.labels(message_id=message_id)
    timeline: list[tuple[datetime, str]] = []
    if m.posted_at:
        timeline.append((m.posted_at, "发布"))
    if m.fetched_at:
        timeline.append((m.fetched_at, "采集"))
    if m.replied_at:
        timeline.append((m.replied_at, f"答复（{m.replier or '官方'}）"))
    for label in labels:
        timeline.append((label.at, f"{label.user} 标注 {label.task} = {label.value}"))
    timeline.sort(key=lambda pair: pair[0])
    return {
        "message": m,
        "original": original,
        "parent": parent,
        "labels": labels,
        "timeline": timeline,
    }


# -- 预警 alerts -------------------------------------------------------------------
def alert_log(
    data_dir: Path, limit: int = 200, now: datetime | None = None
) -> dict[str, pd.DataFrame]:
    """Alert log, deliveries and active silences; empty tables when no alerts db exists."""
    from alerts.state import DB_NAME, AlertState

    empty = {
        "alerts": pd.DataFrame(
            columns=[
                "id",
                "severity",
                "rule",
                "title",
                "status",
                "first_seen",
                "last_seen",
                "group_key",
            ]
        ),
        "deliveries": pd.DataFrame(columns=["alert_id", "channel", "attempt", "at", "ok", "error"]),
        "silences": pd.DataFrame(
            columns=["id", "matchers", "starts_at", "ends_at", "created_by", "comment"]
        ),
    }
    if not (Path(data_dir) / DB_NAME).exists():
        return empty
    state = AlertState.for_data_dir(data_dir)
    try:
        alerts = state.recent_alerts(limit)
        deliveries = state.recent_deliveries(limit)
        silences = state.silences(active_only=True, now=now)
    finally:
        state.close()
    out = dict(empty)
    if alerts:
        out["alerts"] = pd.DataFrame(
            [{k: _fmt_cell(a.get(k)) for k in empty["alerts"].columns} for a in alerts]
        )
    if deliveries:
        out["deliveries"] = pd.DataFrame(
            [{k: _fmt_cell(d.get(k)) for k in empty["deliveries"].columns} for d in deliveries]
        )
    if silences:
        out["silences"] = pd.DataFrame(
            [{k: _fmt_cell(s.get(k)) for k in empty["silences"].columns} for s in silences]
        )
    return out


def _fmt_cell(value: Any) -> Any:
    if isinstance(value, datetime):
        return _fmt_time(value)
    if isinstance(value, dict):
        return ", ".join(f"{k}={v}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(map(str, value))
    return value
