"""检索 Search: full-text search with filters, highlighted matches, paging and
export of the whole result to Excel or CSV."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html

from dashboard import components as c
from dashboard import queries
from dashboard.context import DashContext
from dashboard.urlstate import ViewState, from_controls
from store.base import StoreError

NAME = "search"
PATH = "/search"
TITLE = "检索"
IN_NAV = True
FIELDS = ("source", "region", "department", "topic", "urgency", "status")
SORTS = {
    "": "默认（有关键词按相关度，否则按时间）",
    "-posted_at": "最新发布",
    "posted_at": "最早发布",
    "-rumour_score": "谣言得分",
    "-reposts": "转发最多",
    "-replied_at": "最近答复",
}


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    facets = c.facet_options(ctx, ("region", "department"))
    return html.Div(
        [
            dcc.Location(id=f"{NAME}-url", refresh=False),
            html.H2(TITLE),
            c.filter_bar(NAME, view, FIELDS, facets, query=True),
            html.Div(
                [
                    dcc.Dropdown(
                        id=f"{NAME}-sort",
                        value=view.sort if view.sort in SORTS else "",
                        options=[{"label": v, "value": k} for k, v in SORTS.items()],
                        clearable=False,
                        className="gp-dropdown",
                    ),
                    html.A(
                        "导出 Excel",
                        id=f"{NAME}-export-xlsx",
                        href="/export.xlsx",
                        className="gp-btn",
                    ),
                    html.A(
                        "导出 CSV", id=f"{NAME}-export-csv", href="/export.csv", className="gp-btn"
                    ),
                ],
                className="gp-actions",
            ),
            dcc.Store(id=f"{NAME}-page", data=view.page),
            html.Div(id=f"{NAME}-summary", className="gp-muted"),
            html.Div(id=f"{NAME}-results"),
            html.Div(
                [
                    html.Button("上一页", id=f"{NAME}-prev", n_clicks=0, className="gp-btn"),
                    html.Span(id=f"{NAME}-pageinfo", className="gp-muted"),
                    html.Button("下一页", id=f"{NAME}-next", n_clicks=0, className="gp-btn"),
                ],
                className="gp-pager",
            ),
        ]
    )


def register(app, ctx: DashContext) -> None:
    from dash import ctx as dash_ctx

    filter_inputs = c.filter_inputs(NAME, FIELDS, query=True)

    @app.callback(
        Output(f"{NAME}-page", "data"),
        Input(f"{NAME}-prev", "n_clicks"),
        Input(f"{NAME}-next", "n_clicks"),
        *filter_inputs,
        Input(f"{NAME}-sort", "value"),
        State(f"{NAME}-page", "data"),
        prevent_initial_call=True,
    )
    def paging(*values):
        page = values[-1] or 1
        trigger = dash_ctx.triggered_id
        if trigger == f"{NAME}-next":
            return page + 1
        if trigger == f"{NAME}-prev":
            return max(1, page - 1)
        return 1  # any filter change starts again at page 1

    @app.callback(
        Output(f"{NAME}-url", "search"),
        Output(f"{NAME}-summary", "children"),
        Output(f"{NAME}-results", "children"),
        Output(f"{NAME}-pageinfo", "children"),
        Output(f"{NAME}-prev", "disabled"),
        Output(f"{NAME}-next", "disabled"),
        Output(f"{NAME}-export-xlsx", "href"),
        Output(f"{NAME}-export-csv", "href"),
        Input(f"{NAME}-page", "data"),
        *[State(i.component_id, i.component_property) for i in filter_inputs],
        State(f"{NAME}-sort", "value"),
    )
    def update(page, *values):
        view = from_controls(**c.collect(values[:-1], FIELDS, query=True), sort=values[-1])
        return render(ctx, view.with_(page=page or 1))


def render(ctx: DashContext, view: ViewState) -> tuple:
    per_page = ctx.page_size
    try:
        result = ctx.query(queries.search, view.q, view.filters(), view.sort, view.page, per_page)
    except StoreError as exc:
        box = c.error_box(f"检索失败：{exc}", f"{NAME}-error")
        return view.to_query(), "", box, "", True, True, "/export.xlsx", "/export.csv"
    pages = max(1, -(-result.total // per_page))
    # A common word under filters is counted only up to store.search_total_cap:
    # then the total is a lower bound ("gte") and there may be pages beyond it.
    exact = getattr(result, "total_relation", "eq") == "eq"
    export_query = view.with_(page=1, sort="").to_query()
    summary = (f"共 {result.total} 条" if exact else f"超过 {result.total} 条") + (
        f"，关键词「{view.q}」" if view.q else ""
    )
    last = view.page >= pages if exact else not result.hits
    return (
        view.to_query(),
        summary,
        _hits(result.hits, view.q),
        f" 第 {min(view.page, pages) if exact else view.page} / {pages}{'' if exact else '+'} 页 ",
        view.page <= 1,
        last,
        "/export.xlsx" + export_query,
        "/export.csv" + export_query,
    )


def _hits(hits, query: str) -> html.Div:
    if not hits:
        return html.P("没有找到符合条件的消息。", className="gp-muted")
    items = []
    for m in hits:
        meta = " · ".join(
            x
            for x in (
                c.SOURCE_NAMES.get(str(m.source), str(m.source)),
                m.channel,
                m.department or "",
                m.region or "",
                m.posted_at.strftime("%Y-%m-%d %H:%M") if m.posted_at else "",
                c.STATUS_NAMES.get(str(m.status), str(m.status)),
                str(m.topic or ""),
                str(m.urgency or ""),
            )
            if x
        )
        items.append(
            html.Div(
                [
                    html.Div(
                        dcc.Link(
                            c.highlight(m.title or m.body[:60], query, 120),
                            href=f"/message?id={m.id}",
                        ),
                        className="gp-hit-title",
                    ),
                    html.Div(c.highlight(m.body, query, 240), className="gp-hit-body"),
                    html.Div(meta, className="gp-muted"),
                ],
                className="gp-hit",
            )
        )
    return html.Div(items, id=f"{NAME}-hits")
