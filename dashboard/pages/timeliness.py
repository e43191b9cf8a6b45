"""回复时效 Response timeliness: per department (or replier) answer rate, median
and p90 delay, share within the deadline, open and overdue; monthly trend;
survival curve; click a row for that department's overdue letters."""

from __future__ import annotations

from datetime import timedelta

from dash import Input, Output, State, dcc, html

from dashboard import components as c
from dashboard import figures, queries
from dashboard.context import DashContext
from dashboard.urlstate import ViewState, from_controls
from store.base import Sla

NAME = "timeliness"
PATH = "/timeliness"
TITLE = "回复时效"
IN_NAV = True
FIELDS = ("source", "region", "topic")
GROUPS = {"department": "按部门", "channel": "按收信领导/渠道", "replier": "按答复单位"}
#: The page opens on the last 90 days unless the URL says otherwise.
DEFAULT_DAYS = 90


def _controls_extra(group: str | None, days: str | None) -> dict[str, str]:
    return {
        "group": group if group in GROUPS and group != "department" else "",
        "days": "calendar" if days == "calendar" else "",
    }


def default_view(ctx: DashContext, view: ViewState) -> ViewState:
    """Without dates in the URL the page opens on the last `DEFAULT_DAYS` days.

    All-time figures scan every letter ever stored (seconds at 1M); recent
    performance is what the page is opened for, and all time is one date
    filter away.
    """
    if view.since is None and view.until is None:
        today = ctx.now().date()
        view = view.with_(since=today - timedelta(days=DEFAULT_DAYS - 1), until=today)
    return view


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    view = default_view(ctx, view)
    facets = c.facet_options(ctx, ("region",))
    group = view.get("group") if view.get("group") in GROUPS else "department"
    days = "calendar" if view.get("days") == "calendar" else "working"
    return html.Div(
        [
            dcc.Location(id=f"{NAME}-url", refresh=False),
            html.H2(TITLE),
            c.filter_bar(NAME, view, FIELDS, facets),
            html.Div(
                [
                    dcc.RadioItems(
                        id=f"{NAME}-group",
                        value=group,
                        inline=True,
                        options=[{"label": v, "value": k} for k, v in GROUPS.items()],
                    ),
                    dcc.RadioItems(
                        id=f"{NAME}-days",
                        value=days,
                        inline=True,
                        options=[
                            {"label": "工作日（含法定节假日调休）", "value": "working"},
                            {"label": "自然日", "value": "calendar"},
                        ],
                    ),
                ],
                className="gp-filters",
            ),
            html.P(id=f"{NAME}-sla-note", className="gp-muted"),
            c.table(
                f"{NAME}-table",
                queries.TIMELINESS_COLUMNS,
                ctx.page_size,
                style_data_conditional=[
                    {
                        "if": {"filter_query": "{overdue} > 0", "column_id": "overdue"},
                        "color": "#b00020",
                        "fontWeight": "bold",
                    }
                ],
            ),
            html.P("点击单位所在行查看其超期未答复来信。", className="gp-muted"),
            html.Div(id=f"{NAME}-overdue"),
            html.Div(
                [
                    dcc.Graph(id=f"{NAME}-ranking", config={"displaylogo": False}),
                    dcc.Graph(id=f"{NAME}-survival", config={"displaylogo": False}),
                ],
                className="gp-grid2",
            ),
            dcc.Graph(id=f"{NAME}-trend", config={"displaylogo": False}),
        ]
    )


def _view(values, group, days) -> ViewState:
    return from_controls(**c.collect(values, FIELDS), extra=_controls_extra(group, days))


def _sla(ctx: DashContext, view: ViewState) -> Sla:
    return ctx.sla(working_days=view.get("days") != "calendar")


def register(app, ctx: DashContext) -> None:
    inputs = [
        *c.filter_inputs(NAME, FIELDS),
        Input(f"{NAME}-group", "value"),
        Input(f"{NAME}-days", "value"),
    ]

    @app.callback(
        Output(f"{NAME}-url", "search"),
        Output(f"{NAME}-sla-note", "children"),
        Output(f"{NAME}-ranking", "figure"),
        Output(f"{NAME}-survival", "figure"),
        Output(f"{NAME}-trend", "figure"),
        *inputs,
    )
    def update(*values):
        return render_charts(ctx, _view(values[:-2], *values[-2:]))

    @app.callback(
        Output(f"{NAME}-table", "data"),
        Output(f"{NAME}-table", "page_count"),
        *inputs,
        Input(f"{NAME}-table", "page_current"),
        Input(f"{NAME}-table", "sort_by"),
    )
    def table(*values):
        view = _view(values[:-4], values[-4], values[-3])
        return render_table(ctx, view, values[-2] or 0, values[-1])

    @app.callback(
        Output(f"{NAME}-overdue", "children"),
        Input(f"{NAME}-table", "active_cell"),
        State(f"{NAME}-table", "data"),
        *[State(i.component_id, i.component_property) for i in inputs],
    )
    def overdue(active_cell, data, *values):
        if not active_cell or not data or active_cell.get("row", -1) >= len(data):
            return ""
        group = data[active_cell["row"]]["group"]
        view = _view(values[:-2], *values[-2:])
        return render_overdue(ctx, view, group)


def _table(ctx: DashContext, view: ViewState):
    """The timeliness table, shared by the chart and table callbacks (cached, see ctx.query)."""
    sla, filters, group = _sla(ctx, view), view.filters(), view.get("group") or "department"
    return ctx.query(queries.timeliness, filters, sla, ctx.time_bucket(), group, clocked=True)


def render_charts(ctx: DashContext, view: ViewState) -> tuple:
    sla = _sla(ctx, view)
    filters = view.filters()
    unit = "个工作日" if sla.working_days else "天"
    df, curve_figure, trend_figure = ctx.run_parallel(
        lambda: _table(ctx, view),
        lambda: ctx.query(_survival, filters, sla, ctx.time_bucket(), unit, clocked=True),
        lambda: ctx.query(_answer_trend, filters),
    )
    by_source = "，".join(f"{c.SOURCE_NAMES.get(k, k)} {v}{unit}" for k, v in sla.by_source.items())
    note = (
        f"答复时限：默认 {sla.days}{unit}"
        + (f"（{by_source}）" if by_source else "")
        + "；待回复来信计入统计，不会被剔除。"
    )
    ranked = (
        df.sort_values(["within_sla_rate", "letters"], ascending=[True, False])
        if not df.empty
        else df
    )
    return (
        view.to_query(),
        note,
        figures.timeliness_ranking(ranked, sla.days, unit),
        curve_figure,
        trend_figure,
    )


# Drawn with their query, cached as one unit (see overview._volume).
def _survival(store, filters, sla: Sla, now, unit: str) -> dict:
    curve = queries.survival(store, filters, sla, now)
    return figures.survival(curve, sla.days, unit).to_plotly_json()


def _answer_trend(store, filters) -> dict:
    return figures.answer_trend(queries.answer_trend(store, filters)).to_plotly_json()


def render_table(ctx: DashContext, view: ViewState, page: int, sort_by) -> tuple[list[dict], int]:
    part, pages = queries.sort_and_page(_table(ctx, view), sort_by, page, ctx.page_size)
    part = part.astype(object).where(part.notna(), None)
    return part.to_dict("records"), pages


def render_overdue(ctx: DashContext, view: ViewState, group: str) -> html.Div:
    field = view.get("group") or "department"
    if field == "replier":
        # Open letters have no replier yet, so only departments have overdue lists.
        return html.P(
            "按答复单位分组时没有超期明细（未答复来信尚无答复单位）。", className="gp-muted"
        )
    df = queries.overdue(
        ctx.store(), view.filters(**{field: group}), _sla(ctx, view), ctx.now(), limit=100
    )
    title = html.H3(f"{group}：超期未答复来信 {len(df)} 件")
    if df.empty:
        return html.Div(
            [title, html.P("没有超期来信。", className="gp-muted")], id=f"{NAME}-overdue-list"
        )
    rows = [
        html.Li(
            [
                dcc.Link(r.title or r.id, href=f"/message?id={r.id}"),
                html.Span(f"  {r.posted_at} · 已等待 {r.age_days} 天", className="gp-muted"),
            ]
        )
        for r in df.itertuples()
    ]
    return html.Div([title, html.Ul(rows)], id=f"{NAME}-overdue-list")
