"""Shared layout pieces: filter bar, tables, highlighted text, cards.

All text goes into Dash components as plain strings, which React renders
as text nodes: HTML or script inside a letter is shown, never run.  No
component here uses ``dangerously_allow_html`` or raw-HTML markdown.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from dash import dash_table, dcc, html
from dash.dash_table import FormatTemplate

from dashboard.urlstate import ViewState
from govpulse.schema import Source, Status, Topic, Urgency
from govpulse.tokenize import cut_for_index

FIELD_NAMES = {
    "source": "来源",
    "region": "地区",
    "department": "部门",
    "topic": "主题",
    "urgency": "紧急程度",
    "status": "状态",
}
SOURCE_NAMES = {"weibo": "微博", "mailbox": "领导信箱", "forum": "论坛"}
STATUS_NAMES = {"open": "待回复", "answered": "已回复", "closed": "已办结"}
COLUMN_NAMES = {
    "id": "编号",
    "source": "来源",
    "channel": "渠道",
    "title": "标题",
    "region": "地区",
    "department": "部门",
    "posted_at": "发布时间",
    "status": "状态",
    "replied_at": "答复时间",
    "reply_delay_days": "答复用时(天)",
    "topic": "主题",
    "urgency": "紧急程度",
    "rumour_score": "谣言得分",
    "likes": "点赞",
    "reposts": "转发",
    "comments": "评论",
    "url": "原文链接",
    "body": "正文",
    "reply_body": "答复内容",
    "replier": "答复单位",
    "group": "单位",
    "letters": "来信",
    "answered": "已答复",
    "answer_rate": "答复率",
    "median_delay": "中位用时",
    "p90_delay": "P90用时",
    "within_sla_rate": "按时答复率",
    "open": "待回复",
    "overdue": "超期",
    "reasons": "依据",
    "spread": "转发+评论",
    "official_reply": "官方回应",
    "review": "核查结论",
    "age_days": "已等待(天)",
    "term": "热词",
    "count": "当前窗口",
    "baseline_mean": "基线均值",
    "score": "上升分",
    "spider": "爬虫",
    "last_ok": "最近成功",
    "last_items": "条数",
    "last_problem": "最近问题",
    "warning": "告警",
    "severity": "级别",
    "rule": "规则",
    "first_seen": "首次",
    "last_seen": "最近",
    "group_key": "分组",
    "alert_id": "预警",
    "channel_name": "通道",
    "attempt": "次数",
    "at": "时间",
    "ok": "成功",
    "error": "错误",
    "matchers": "匹配",
    "starts_at": "开始",
    "ends_at": "结束",
    "created_by": "创建人",
    "comment": "备注",
}
REVIEW_NAMES = {"reviewed": "已核查", "confirmed": "确认谣言", "false_alarm": "误报"}

_STATIC_OPTIONS = {
    "source": [s.value for s in Source],
    "topic": [t.value for t in Topic],
    "urgency": [u.value for u in Urgency],
    "status": [s.value for s in Status],
}
_LABELS = {"source": SOURCE_NAMES, "status": STATUS_NAMES}


def options(field: str, values: Sequence[str] = ()) -> list[dict[str, str]]:
    """Dropdown options: the enum's values (if any) plus values found in the store."""
    seen = dict.fromkeys([*_STATIC_OPTIONS.get(field, []), *values])
    names = _LABELS.get(field, {})
    return [{"label": names.get(v, v), "value": v} for v in seen if v]


def facet_options(ctx, fields: tuple[str, ...]) -> dict[str, list[str]]:
    """Dropdown values found in the store (a full facet scan: cached, see DashContext.query)."""
    from dashboard.queries import facet_options as query

    return ctx.query(query, fields)


def filter_bar(
    page: str,
    view: ViewState,
    fields: Sequence[str],
    facet_values: dict[str, list[str]],
    query: bool = False,
    dates: bool = True,
) -> html.Div:
    """Controls with ids ``{page}-f-{field}``, prefilled from the URL."""
    children: list[Any] = []
    if query:
        children.append(
            dcc.Input(
                id=f"{page}-f-q",
                type="search",
                value=view.q,
                placeholder="关键词（多个词须同时出现）",
                debounce=True,
                className="gp-query",
            )
        )
    for field in fields:
        children.append(
            dcc.Dropdown(
                id=f"{page}-f-{field}",
                options=options(field, facet_values.get(field, [])),
                value=list(view.lists.get(field, ())),
                multi=True,
                placeholder=FIELD_NAMES[field],
                className="gp-dropdown",
            )
        )
    if dates:
        children.append(
            dcc.DatePickerRange(
                id=f"{page}-f-dates",
                start_date=view.since.isoformat() if view.since else None,
                end_date=view.until.isoformat() if view.until else None,
                display_format="YYYY-MM-DD",
                start_date_placeholder_text="开始日期",
                end_date_placeholder_text="结束日期",
                clearable=True,
                month_format="YYYY年M月",
            )
        )
    return html.Div(children, className="gp-filters", id=f"{page}-filters")


def filter_inputs(
    page: str, fields: Sequence[str], query: bool = False, dates: bool = True
) -> list[Any]:
    """The Input() list matching `filter_bar`, in the order `collect` expects."""
    from dash import Input

    out = [Input(f"{page}-f-q", "value")] if query else []
    out += [Input(f"{page}-f-{f}", "value") for f in fields]
    if dates:
        out += [Input(f"{page}-f-dates", "start_date"), Input(f"{page}-f-dates", "end_date")]
    return out


def collect(
    values: Sequence[Any], fields: Sequence[str], query: bool = False, dates: bool = True
) -> dict[str, Any]:
    """Turn callback arguments from `filter_inputs` back into keyword values."""
    values = list(values)
    out: dict[str, Any] = {}
    if query:
        out["q"] = values.pop(0)
    for f in fields:
        out[f] = values.pop(0)
    if dates:
        out["since"], out["until"] = values.pop(0), values.pop(0)
    return out


def table(
    table_id: str, columns: Sequence[str], page_size: int, sortable: bool = True, **kwargs: Any
) -> dash_table.DataTable:
    """A DataTable that sorts and pages on the server (custom actions)."""
    return dash_table.DataTable(
        id=table_id,
        columns=[_column(c) for c in columns],
        data=[],
        page_current=0,
        page_size=page_size,
        page_count=1,
        page_action="custom",
        sort_action="custom" if sortable else "none",
        sort_mode="single",
        sort_by=[],
        style_cell={
            "textAlign": "left",
            "fontFamily": "inherit",
            "fontSize": 13,
            "padding": "4px 8px",
            "maxWidth": 360,
            "overflow": "hidden",
            "textOverflow": "ellipsis",
        },
        style_header={"fontWeight": "bold", "backgroundColor": "#eef2f7"},
        **kwargs,
    )


def _column(name: str) -> dict[str, Any]:
    column: dict[str, Any] = {"name": COLUMN_NAMES.get(name, name), "id": name}
    if name.endswith("_rate"):
        column.update(type="numeric", format=FormatTemplate.percentage(1))
    return column


def highlight(text: str, query: str, limit: int = 300) -> list[Any]:
    """Text split into plain strings and html.Mark around query tokens.

    Works on tokens (the search's own tokeniser), not on HTML, so a payload
    in the text stays text.
    """
    text = text[:limit]
    terms = (
        sorted({t for t in cut_for_index(query) if t.strip()}, key=len, reverse=True)
        if query
        else []
    )
    if not terms:
        return [text]
    out: list[Any] = []
    i = 0
    plain_start = 0
    lower = text.lower()
    while i < len(text):
        match = next((t for t in terms if lower.startswith(t.lower(), i)), None)
        if match:
            if plain_start < i:
                out.append(text[plain_start:i])
            out.append(html.Mark(text[i : i + len(match)]))
            i += len(match)
            plain_start = i
        else:
            i += 1
    if plain_start < len(text):
        out.append(text[plain_start:])
    return out


def card(title: str, value: Any, card_id: str, tone: str = "") -> html.Div:
    return html.Div(
        [
            html.Div(title, className="gp-card-title"),
            html.Div(str(value), id=card_id, className="gp-card-value"),
        ],
        className=f"gp-card {tone}",
    )


def error_box(text: str, box_id: str | None = None) -> html.Div:
    kwargs = {"id": box_id} if box_id else {}
    return html.Div(text, className="gp-error", role="alert", **kwargs)
