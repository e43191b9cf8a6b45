"""预警 Alerts: the alert log, deliveries and silences; staff add/expire silences."""

from __future__ import annotations

from datetime import timedelta

from dash import Input, Output, State, dcc, html
from flask_login import current_user

from dashboard import components as c
from dashboard import queries
from dashboard.context import DashContext
from dashboard.urlstate import ViewState

NAME = "alerts"
PATH = "/alerts"
TITLE = "预警"
IN_NAV = True
HOURS = {"1": "1小时", "4": "4小时", "24": "1天", "168": "7天"}


def layout(ctx: DashContext, view: ViewState) -> html.Div:
    return html.Div(
        [
            html.H2(TITLE),
            dcc.Store(id=f"{NAME}-refresh", data=0),
            html.Div(id=f"{NAME}-log"),
            html.H3("静默规则"),
            html.P(
                "静默期间，标签全部匹配的预警不再发送通知（例如 rule=crawl_health）。",
                className="gp-muted",
            ),
            html.Div(
                [
                    dcc.Input(
                        id=f"{NAME}-matchers",
                        placeholder="匹配条件，如 rule=hot_terms, source=weibo",
                        className="gp-query",
                    ),
                    dcc.Dropdown(
                        id=f"{NAME}-hours",
                        value="4",
                        clearable=False,
                        className="gp-dropdown",
                        options=[{"label": v, "value": k} for k, v in HOURS.items()],
                    ),
                    dcc.Input(id=f"{NAME}-comment", placeholder="原因", maxLength=200),
                    html.Button("添加静默", id=f"{NAME}-add", n_clicks=0, className="gp-btn"),
                ],
                className="gp-filters",
            ),
            html.Div(
                [
                    dcc.Input(id=f"{NAME}-expire-id", placeholder="静默编号"),
                    html.Button(
                        "立即结束静默", id=f"{NAME}-expire", n_clicks=0, className="gp-btn"
                    ),
                ],
                className="gp-filters",
            ),
            html.Div(id=f"{NAME}-status", role="status"),
        ]
    )


def parse_matchers(text: str) -> dict[str, str]:
    """``rule=hot_terms, source=weibo`` -> dict; raise ValueError on bad parts."""
    out: dict[str, str] = {}
    for part in (text or "").replace("，", ",").split(","):
        if not part.strip():
            continue
        key, sep, value = part.partition("=")
        if not sep or not key.strip() or not value.strip():
            raise ValueError(f"匹配条件「{part.strip()}」应写成 标签=值")
        out[key.strip()] = value.strip()
    if not out:
        raise ValueError("至少需要一个匹配条件")
    return out


def register(app, ctx: DashContext) -> None:
    from dash import ctx as dash_ctx

    @app.callback(Output(f"{NAME}-log", "children"), Input(f"{NAME}-refresh", "data"))
    def log(_refresh):
        return render_log(ctx)

    @app.callback(
        Output(f"{NAME}-status", "children"),
        Output(f"{NAME}-refresh", "data"),
        Input(f"{NAME}-add", "n_clicks"),
        Input(f"{NAME}-expire", "n_clicks"),
        State(f"{NAME}-matchers", "value"),
        State(f"{NAME}-hours", "value"),
        State(f"{NAME}-comment", "value"),
        State(f"{NAME}-expire-id", "value"),
        State(f"{NAME}-refresh", "data"),
        prevent_initial_call=True,
    )
    def change(_add, _expire, matchers, hours, comment, expire_id, refresh):
        if dash_ctx.triggered_id == f"{NAME}-expire":
            result = expire_silence(ctx, expire_id or "")
        else:
            result = add_silence(ctx, matchers or "", hours or "4", comment or "")
        return result, (refresh or 0) + 1


def _state(ctx: DashContext):
    from alerts.state import AlertState

    return AlertState.for_data_dir(ctx.data_dir)


def add_silence(ctx: DashContext, matchers: str, hours: str, comment: str, user=None):
    from alerts.state import StateError

    user = current_user if user is None else user
    if not getattr(user, "can_silence", False):
        return c.error_box("只有值班人员和管理员可以添加静默。", f"{NAME}-error")
    try:
        parsed = parse_matchers(matchers)
        now = ctx.now()
        state = _state(ctx)
        try:
            sid = state.add_silence(
                parsed, now, now + timedelta(hours=int(hours)), user.username, comment
            )
        finally:
            state.close()
    except (ValueError, StateError) as exc:
        return c.error_box(str(exc), f"{NAME}-error")
    return html.Div(f"已添加静默 {sid}", className="gp-ok")


def expire_silence(ctx: DashContext, silence_id: str, user=None):
    from alerts.state import StateError

    user = current_user if user is None else user
    if not getattr(user, "can_silence", False):
        return c.error_box("只有值班人员和管理员可以结束静默。", f"{NAME}-error")
    state = _state(ctx)
    try:
        state.expire_silence(silence_id.strip(), ctx.now())
    except StateError as exc:
        return c.error_box(str(exc), f"{NAME}-error")
    finally:
        state.close()
    return html.Div(f"已结束静默 {silence_id}", className="gp-ok")


def render_log(ctx: DashContext) -> html.Div:
    tables = queries.alert_log(ctx.data_dir, now=ctx.now())
    parts = []
    for key, title in (
        ("alerts", "预警记录"),
        ("silences", "生效中的静默"),
        ("deliveries", "通知发送记录"),
    ):
        df = tables[key]
        parts.append(html.H3(title))
        if df.empty:
            parts.append(html.P("暂无记录", className="gp-muted", id=f"{NAME}-{key}-empty"))
            continue
        header = html.Tr([html.Th(c.COLUMN_NAMES.get(col, col)) for col in df.columns])
        rows = [
            html.Tr([html.Td("" if v is None else str(v)) for v in r])
            for r in df.itertuples(index=False)
        ]
        parts.append(
            html.Table(
                [html.Thead(header), html.Tbody(rows)], className="gp-table", id=f"{NAME}-{key}"
            )
        )
    return html.Div(parts)
