"""总览 Overview: volume by source and topic, reply status, today's urgent and
rumour counts, rising terms and crawl health."""

from __future__ import annotations

from datetime import datetime, time, timedelta
from urllib.parse import urlencode

from dash import Output, dcc, html

from dashboard import components as c
from dashboard import figures, queries
from dashboard.context import DashContext
from dashboard.pages import hot
from dashboard.urlstate import ViewState, from_controls
from govpulse.schema import TZ

NAME = "overview"
PATH = "/"
TITLE = "总览"
IN_NAV = True
FIELDS = ("source", "region", "department")
#: The overview opens on the last 30 days unless the URL says otherwise.
DEFAULT_DAYS = 30


def default_view(ctx: DashContext, view: ViewState) -> ViewState:
    """Without dates in the URL the overview opens on the last `DEFAULT_DAYS` days."""
    if view.since is None and view.until is None:
        today = ctx.now().date()
        view = view.with_(since=today - timedelta(days=DEFAULT_DAYS - 1), until=today)
    return view


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    view = default_view(ctx, view)
    facets = c.facet_options(ctx, ("region", "department"))
    return html.Div(
        [
            dcc.Location(id=f"{NAME}-url", refresh=False),
            html.H2(TITLE),
            c.filter_bar(NAME, view, FIELDS, facets),
            html.Div(
                [
                    c.card("今日消息", "…", f"{NAME}-today-total"),
                    c.card("今日紧急", "…", f"{NAME}-today-urgent", "gp-warn"),
                    c.card("今日疑似谣言", "…", f"{NAME}-today-rumour", "gp-warn"),
                    c.card("待回复", "…", f"{NAME}-open"),
                ],
                className="gp-cards",
            ),
            html.Div(
                [
                    dcc.Graph(id=f"{NAME}-by-source", config={"displaylogo": False}),
                    dcc.Graph(id=f"{NAME}-by-topic", config={"displaylogo": False}),
                ],
                className="gp-grid2",
            ),
            html.Div(
                [
                    dcc.Graph(id=f"{NAME}-status", config={"displaylogo": False}),
                    html.Div([html.H3("上升热词（近24小时）"), html.Div(id=f"{NAME}-terms")]),
                ],
                className="gp-grid2",
            ),
            html.H3("采集状态"),
            html.Div(id=f"{NAME}-crawl"),
        ]
    )


def register(app, ctx: DashContext) -> None:
    @app.callback(
        Output(f"{NAME}-url", "search"),
        Output(f"{NAME}-today-total", "children"),
        Output(f"{NAME}-today-urgent", "children"),
        Output(f"{NAME}-today-rumour", "children"),
        Output(f"{NAME}-open", "children"),
        Output(f"{NAME}-by-source", "figure"),
        Output(f"{NAME}-by-topic", "figure"),
        Output(f"{NAME}-status", "figure"),
        Output(f"{NAME}-crawl", "children"),
        *c.filter_inputs(NAME, FIELDS),
    )
    def update(*values):
        return render(ctx, from_controls(**c.collect(values, FIELDS)))

    # Rising terms read and cut every message of the last days: their own
    # callback, so the counts and charts above never wait for them.
    @app.callback(Output(f"{NAME}-terms", "children"), *c.filter_inputs(NAME, FIELDS))
    def terms(*values):
        return render_terms(ctx, from_controls(**c.collect(values, FIELDS)))


def render(ctx: DashContext, view: ViewState) -> tuple:
    """Everything the overview shows for a view (the callback body, callable in tests)."""
    store, now = ctx.store(), ctx.now()
    filters = view.filters()
    unbounded = view.filters(since=None, until=None)
    # Today's counts depend on the date only: the day's start is the key's clock.
    day = datetime.combine(now.astimezone(TZ).date(), time(), TZ)
    today, (status, donut), by_source, by_topic, crawl = ctx.run_parallel(
        lambda: ctx.query(queries.today_counts, unbounded, day, ctx.rumour_threshold),
        lambda: ctx.query(_status, filters),
        lambda: ctx.query(_volume, filters, "source"),
        lambda: ctx.query(_volume, filters, "topic"),
        lambda: queries.crawl_health(store, now),
    )
    return (
        view.to_query(),
        str(today["total"]),
        str(today["urgent"]),
        str(today["rumour"]),
        str(status["open"]),
        by_source,
        by_topic,
        donut,
        _crawl_table(crawl),
    )


# Figures are cached with the query they draw (one unit, one validity marker):
# building a Plotly figure costs more than a cached query, so a warm load
# would otherwise spend most of its time re-drawing the same charts.
def _volume(store, filters, split: str) -> dict:
    df = queries.volume(store, filters, split)
    if split == "source":
        return figures.volume(df, "每日消息量（按来源）", c.SOURCE_NAMES).to_plotly_json()
    return figures.volume(df, "每日消息量（按主题）").to_plotly_json()


def _status(store, filters) -> tuple[dict[str, int], dict]:
    counts = queries.status_counts(store, filters)
    return counts, figures.status_donut(counts).to_plotly_json()


def render_terms(ctx: DashContext, view: ViewState) -> html.Div:
    """The top rising terms (last 24 h) for the view's filters, dates aside."""
    return _terms_list(hot.rising(ctx, view.filters(since=None, until=None)).head(10))


def _terms_list(df) -> html.Div:
    if df.empty:
        return html.P("暂无上升热词", className="gp-muted")
    items = [
        html.Li(
            [
                dcc.Link(row.term, href="/search?" + urlencode({"q": row.term})),
                html.Span(f" {row.count} 条（基线 {row.baseline_mean}）", className="gp-muted"),
            ]
        )
        for row in df.itertuples()
    ]
    return html.Ol(items, className="gp-terms")


def _crawl_table(df) -> html.Div:
    if df.empty:
        return html.P("尚无采集记录", className="gp-muted")
    header = html.Tr([html.Th(c.COLUMN_NAMES[k]) for k in df.columns])
    rows = [
        html.Tr(
            [
                html.Td(c.SOURCE_NAMES.get(r.source, r.source)),
                html.Td(r.spider),
                html.Td(r.last_ok or "从未成功"),
                html.Td("" if r.last_items is None else str(r.last_items)),
                html.Td(r.last_problem),
                html.Td("⚠ 需处理" if r.warning else "正常"),
            ],
            className="gp-row-warn" if r.warning else "",
        )
        for r in df.itertuples()
    ]
    return html.Table(
        [html.Thead(header), html.Tbody(rows)], className="gp-table", id=f"{NAME}-crawl-table"
    )
