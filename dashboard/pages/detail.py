"""消息详情 Message detail: the message, its reply, tags with reasons, the message
it duplicates, the timeline; staff correct topic/urgency (stored as labels)."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html

from dashboard import components as c
from dashboard import queries
from dashboard.context import DashContext
from dashboard.pages.labels import RUMOUR_REVIEWS, LabelRefused, save_label
from dashboard.urlstate import ViewState
from govpulse.schema import Message, Topic, Urgency
from store.base import StoreError

NAME = "detail"
PATH = "/message"
TITLE = "消息详情"
IN_NAV = False


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    message_id = view.get("id")
    info = queries.message_detail(ctx.store(), message_id) if message_id else None
    if info is None:
        return html.Div(
            [
                html.H2(TITLE),
                c.error_box("找不到这条消息。", f"{NAME}-missing"),
                dcc.Link("去检索", href="/search"),
            ]
        )
    m: Message = info["message"]
    return html.Div(
        [
            html.H2(m.title or TITLE, id=f"{NAME}-title"),
            html.Div(_meta(m), className="gp-muted"),
            html.Div(m.body, id=f"{NAME}-body", className="gp-letter"),
            html.H3("官方答复"),
            html.Div(m.reply_body or "尚未答复", id=f"{NAME}-reply", className="gp-letter"),
            html.H3("分类标签"),
            html.Ul(_tags(m), id=f"{NAME}-tags"),
            _links(m, info),
            html.H3("时间线"),
            html.Ul(
                [
                    html.Li(f"{at.strftime('%Y-%m-%d %H:%M')}  {what}")
                    for at, what in info["timeline"]
                ],
                id=f"{NAME}-timeline",
            ),
            html.H3("人工校正"),
            dcc.Store(id=f"{NAME}-id", data=m.id),
            html.Div(
                [
                    dcc.Dropdown(
                        id=f"{NAME}-topic",
                        options=[t.value for t in Topic],
                        value=str(m.topic) if m.topic else None,
                        placeholder="主题",
                        className="gp-dropdown",
                    ),
                    dcc.Dropdown(
                        id=f"{NAME}-urgency",
                        options=[u.value for u in Urgency],
                        value=str(m.urgency) if m.urgency else None,
                        placeholder="紧急程度",
                        className="gp-dropdown",
                    ),
                    dcc.Dropdown(
                        id=f"{NAME}-rumour",
                        placeholder="谣言核查",
                        className="gp-dropdown",
                        options=[{"label": c.REVIEW_NAMES[v], "value": v} for v in RUMOUR_REVIEWS],
                    ),
                    dcc.Input(id=f"{NAME}-note", placeholder="备注（可选）", maxLength=500),
                    html.Button("保存校正", id=f"{NAME}-save", n_clicks=0, className="gp-btn"),
                ],
                className="gp-filters",
            ),
            html.Div(id=f"{NAME}-status", role="status"),
        ]
    )


def _meta(m: Message) -> str:
    parts = [
        c.SOURCE_NAMES.get(str(m.source), str(m.source)),
        m.channel,
        m.department or "",
        m.region or "",
        m.posted_at.strftime("%Y-%m-%d %H:%M") if m.posted_at else "",
        c.STATUS_NAMES.get(str(m.status), ""),
        f"点赞 {m.likes} · 转发 {m.reposts} · 评论 {m.comments}",
    ]
    return " · ".join(p for p in parts if p)


def _tags(m: Message) -> list[html.Li]:
    out = []
    if m.topic:
        score = f"（置信度 {m.topic_score:.2f}）" if m.topic_score is not None else ""
        out.append(html.Li(f"主题：{m.topic}{score}"))
    if m.urgency:
        reasons = "；".join(m.urgency_reasons)
        out.append(html.Li(f"紧急程度：{m.urgency}" + (f"（依据：{reasons}）" if reasons else "")))
    if m.rumour_score is not None:
        reasons = "；".join(m.rumour_reasons)
        out.append(
            html.Li(f"谣言得分：{m.rumour_score:.2f}" + (f"（依据：{reasons}）" if reasons else ""))
        )
    return out or [html.Li("尚未分类")]


def _links(m: Message, info: dict) -> html.Div:
    items = []
    if m.url:
        # Only http(s) links are rendered as links; anything else is shown as text.
        if m.url.startswith(("http://", "https://")):
            items.append(
                html.Li(
                    [
                        "原文：",
                        html.A(m.url, href=m.url, target="_blank", rel="noopener noreferrer"),
                    ]
                )
            )
        else:
            items.append(html.Li(f"原文：{m.url}"))
    for key, label in (("original", "重复于"), ("parent", "所属原帖")):
        other = info.get(key)
        if other is not None:
            src = c.SOURCE_NAMES.get(str(other.source), str(other.source))
            items.append(
                html.Li(
                    [
                        f"{label}（{src}）：",
                        dcc.Link(other.title or other.id, href=f"/message?id={other.id}"),
                    ]
                )
            )
    return html.Ul(items, id=f"{NAME}-links") if items else html.Div()


def register(app, ctx: DashContext) -> None:
    @app.callback(
        Output(f"{NAME}-status", "children"),
        Input(f"{NAME}-save", "n_clicks"),
        State(f"{NAME}-id", "data"),
        State(f"{NAME}-topic", "value"),
        State(f"{NAME}-urgency", "value"),
        State(f"{NAME}-rumour", "value"),
        State(f"{NAME}-note", "value"),
        prevent_initial_call=True,
    )
    def save(_clicks, message_id, topic, urgency, rumour, note):
        return save_corrections(ctx, message_id, topic, urgency, rumour, note or "")


def save_corrections(
    ctx: DashContext,
    message_id: str,
    topic: str | None,
    urgency: str | None,
    rumour: str | None,
    note: str,
    user=None,
):
    """Store the fields that differ from the message (or that were reviewed) as labels."""
    store = ctx.store()
    m = store.get(message_id)
    if m is None:
        return c.error_box("消息不存在。", f"{NAME}-error")
    saved = []
    try:
        if topic and topic != (str(m.topic) if m.topic else None):
            saved.append(save_label(store, message_id, "topic", topic, ctx.now(), note, user))
        if urgency and urgency != (str(m.urgency) if m.urgency else None):
            saved.append(save_label(store, message_id, "urgency", urgency, ctx.now(), note, user))
        if rumour:
            saved.append(save_label(store, message_id, "rumour", rumour, ctx.now(), note, user))
    except (LabelRefused, StoreError) as exc:
        return c.error_box(str(exc), f"{NAME}-error")
    if not saved:
        return html.Div("没有需要保存的修改。", className="gp-muted")
    return html.Div(
        "已保存：" + "，".join(f"{lb.task}={lb.value}" for lb in saved),
        className="gp-ok",
        id=f"{NAME}-saved",
    )
