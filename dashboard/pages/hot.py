"""热点 Hot topics: rising terms against their own baseline, with sparklines,
per-source volume and example messages; click a term to search it."""

from __future__ import annotations

from urllib.parse import urlencode

from dash import Input, Output, dcc, html

from dashboard import components as c
from dashboard import figures, queries
from dashboard.context import DashContext
from dashboard.urlstate import ViewState, from_controls

NAME = "hot"
PATH = "/hot"
TITLE = "热点"
IN_NAV = True
FIELDS = ("source", "region", "topic")
WINDOWS = {"24": "近24小时", "72": "近3天", "168": "近7天"}


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    facets = c.facet_options(ctx, ("region",))
    window = view.get("window") if view.get("window") in WINDOWS else "24"
    return html.Div(
        [
            dcc.Location(id=f"{NAME}-url", refresh=False),
            html.H2(TITLE),
            c.filter_bar(NAME, view, FIELDS, facets, dates=False),
            dcc.RadioItems(
                id=f"{NAME}-window",
                value=window,
                inline=True,
                options=[{"label": v, "value": k} for k, v in WINDOWS.items()],
            ),
            dcc.Graph(id=f"{NAME}-sparklines", config={"displaylogo": False}),
            html.Div(id=f"{NAME}-list"),
        ]
    )


def register(app, ctx: DashContext) -> None:
    @app.callback(
        Output(f"{NAME}-url", "search"),
        Output(f"{NAME}-sparklines", "figure"),
        Output(f"{NAME}-list", "children"),
        *c.filter_inputs(NAME, FIELDS, dates=False),
        Input(f"{NAME}-window", "value"),
    )
    def update(*values):
        window = values[-1] if values[-1] in WINDOWS else "24"
        view = from_controls(
            **c.collect(values[:-1], FIELDS, dates=False),
            extra={"window": "" if window == "24" else window},
        )
        return render(ctx, view)


def render(ctx: DashContext, view: ViewState) -> tuple:
    hours = int(view.get("window") or 24)
    store = ctx.store()
    df = rising(ctx, view.filters(), hours)
    return view.to_query(), figures.sparklines(df), _clusters(store, df)


def rising(ctx: DashContext, filters, hours: int = 24):
    """Rising terms for a filter, shared by 总览 and 热点.

    Computed from the kept per-day terms (`ctx.terms()`, only changed days
    are re-read) and cached like any page query, per clock step.
    """
    return ctx.query(
        queries.hot_terms,
        ctx.time_bucket(),
        filters,
        limit=20,
        window_hours=hours,
        baseline_days=max(7, hours * 7 // 24),
        only_rising=True,
        index=ctx.terms(),
        clocked=True,
    )


def _clusters(store, df) -> html.Div:
    if df.empty:
        return html.P("该时间窗口内没有明显上升的热词。", className="gp-muted", id=f"{NAME}-none")
    samples = {m.id: m for m in store.get_many([i for ids in df["sample_ids"] for i in ids])}
    items = []
    for row in df.itertuples():
        sources = "，".join(f"{c.SOURCE_NAMES.get(k, k)} {v}" for k, v in row.sources.items())
        examples = [
            html.Li(dcc.Link(samples[i].title or samples[i].body[:60], href=f"/message?id={i}"))
            for i in row.sample_ids
            if i in samples
        ]
        items.append(
            html.Div(
                [
                    html.H4(
                        [
                            dcc.Link(row.term, href="/search?" + urlencode({"q": row.term})),
                            html.Span(" 上升" if row.rising else "", className="gp-badge"),
                        ]
                    ),
                    html.P(
                        f"当前 {row.count} 条，基线均值 {row.baseline_mean}，上升分 {row.score}；来源：{sources}",
                        className="gp-muted",
                    ),
                    html.Ul(examples),
                ],
                className="gp-cluster",
            )
        )
    return html.Div(items, id=f"{NAME}-clusters")
