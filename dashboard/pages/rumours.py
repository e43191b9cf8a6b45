"""谣言 Rumours: flagged posts by rumour score with reasons, spread and whether an
official reply exists; staff mark reviewed / confirmed / false alarm."""

from __future__ import annotations

from dash import Input, Output, State, dcc, html, no_update
from dash import ctx as dash_ctx

from dashboard import components as c
from dashboard import figures, queries
from dashboard.context import DashContext
from dashboard.pages.labels import RUMOUR_REVIEWS, LabelRefused, save_label
from dashboard.urlstate import ViewState, from_controls
from store.base import StoreError

NAME = "rumours"
PATH = "/rumours"
TITLE = "谣言"
IN_NAV = True
FIELDS = ("source", "region", "topic", "status")
COLUMNS = (
    "title",
    "source",
    "posted_at",
    "rumour_score",
    "reasons",
    "spread",
    "official_reply",
    "review",
)
#: DataTable columns that the store can sort on, and the store's key for each.
SORTABLE = {"rumour_score": "rumour_score", "posted_at": "posted_at", "spread": "reposts"}


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    facets = c.facet_options(ctx, ("region",))
    return html.Div(
        [
            dcc.Location(id=f"{NAME}-url", refresh=False),
            html.H2(TITLE),
            c.filter_bar(NAME, view, FIELDS, facets),
            html.P(
                f"列出谣言得分 ≥ {ctx.rumour_threshold} 的消息；勾选一行后可标记核查结论。",
                className="gp-muted",
            ),
            c.table(
                f"{NAME}-table", COLUMNS, ctx.page_size, row_selectable="single", selected_rows=[]
            ),
            html.Div(
                [
                    html.Button(
                        c.REVIEW_NAMES[v], id=f"{NAME}-mark-{v}", n_clicks=0, className="gp-btn"
                    )
                    for v in RUMOUR_REVIEWS
                ]
                + [dcc.Link("查看详情", id=f"{NAME}-detail-link", href=PATH, className="gp-link")],
                className="gp-actions",
            ),
            html.Div(id=f"{NAME}-status", role="status"),
            dcc.Store(id=f"{NAME}-refresh", data=0),
            dcc.Graph(id=f"{NAME}-scatter", config={"displaylogo": False}),
        ]
    )


def register(app, ctx: DashContext) -> None:
    @app.callback(
        Output(f"{NAME}-url", "search"),
        Output(f"{NAME}-table", "data"),
        Output(f"{NAME}-table", "page_count"),
        Output(f"{NAME}-scatter", "figure"),
        *c.filter_inputs(NAME, FIELDS),
        Input(f"{NAME}-table", "page_current"),
        Input(f"{NAME}-table", "sort_by"),
        Input(f"{NAME}-refresh", "data"),
    )
    def update(*values):
        view = from_controls(**c.collect(values[:-3], FIELDS))
        return render(ctx, view, values[-3] or 0, values[-2])

    @app.callback(
        Output(f"{NAME}-status", "children"),
        Output(f"{NAME}-refresh", "data"),
        *[Input(f"{NAME}-mark-{v}", "n_clicks") for v in RUMOUR_REVIEWS],
        State(f"{NAME}-table", "selected_rows"),
        State(f"{NAME}-table", "data"),
        State(f"{NAME}-refresh", "data"),
        prevent_initial_call=True,
    )
    def mark(*values):
        selected, data, refresh = values[-3:]
        trigger = dash_ctx.triggered_id or ""
        value = trigger.removeprefix(f"{NAME}-mark-")
        if not selected or not data or selected[0] >= len(data):
            return c.error_box("请先勾选一条消息。"), no_update
        row = data[selected[0]]
        try:
            save_label(ctx.store(), row["id"], "rumour", value, ctx.now())
        except (LabelRefused, StoreError) as exc:
            return c.error_box(str(exc), f"{NAME}-error"), no_update
        return html.Div(
            f"已标记为「{c.REVIEW_NAMES[value]}」：{row['title']}", className="gp-ok"
        ), (refresh or 0) + 1

    @app.callback(
        Output(f"{NAME}-detail-link", "href"),
        Input(f"{NAME}-table", "selected_rows"),
        State(f"{NAME}-table", "data"),
    )
    def link(selected, data):
        if not selected or not data or selected[0] >= len(data):
            return PATH
        return f"/message?id={data[selected[0]]['id']}"


def render(ctx: DashContext, view: ViewState, page: int, sort_by) -> tuple:
    sort = "-rumour_score"
    if sort_by and sort_by[0].get("column_id") in SORTABLE:
        key = SORTABLE[sort_by[0]["column_id"]]
        sort = key if sort_by[0].get("direction") == "asc" else f"-{key}"
    df, total = queries.rumours(
        ctx.store(),
        view.filters(),
        ctx.rumour_threshold,
        sort,
        page + 1,
        ctx.page_size,
        fetch=lambda *args: ctx.query(queries.rumour_page, *args),
    )
    pages = max(1, -(-total // ctx.page_size))
    table = df.copy()
    table["source"] = table["source"].map(lambda s: c.SOURCE_NAMES.get(s, s))
    table["official_reply"] = table["official_reply"].map({True: "有", False: "无"})
    table["review"] = table["review"].map(lambda v: c.REVIEW_NAMES.get(v, v or "未核查"))
    table = table.astype(object).where(table.notna(), None)
    return view.to_query(), table.to_dict("records"), pages, figures.rumour_scores(df)
