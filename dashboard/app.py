"""The app factory: ``create_app(store, settings)`` builds one Dash app.

Nothing is opened at import.  The store is either a Store object (tests,
embedding) or a URL opened lazily per worker process, so the app runs
under several processes.  Pages are modules in ``dashboard.pages``; the
router maps a path to a page's ``layout`` and each page registers its own
thin callbacks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import dash
import flask
from dash import Input, Output, State, dcc, html
from flask_login import current_user

from dashboard import auth, export
from dashboard.context import DashContext
from dashboard.pages import PAGES, page_for_path
from dashboard.urlstate import UrlStateError, parse
from dashboard.users import ROLE_NAMES
from dashboard.warm import warm_defaults
from store.base import Store, StoreError

log = logging.getLogger(__name__)
ASSETS = Path(__file__).parent / "assets"


def create_app(
    store: Store | str,
    settings: Mapping[str, Any],
    data_dir: str | Path | None = None,
    clock: Callable[[], datetime] | None = None,
) -> dash.Dash:
    """Build the dashboard.

    `store` is a Store (used as is) or a store URL (opened per process).
    `data_dir` holds users.db, alerts.db and the cookie key (default: the
    ``data_dir`` setting).  `clock` overrides "now" (tests, demos).
    """
    if data_dir is None:
        from govpulse.context import resolve_data_dir

        data_dir = resolve_data_dir(settings)  # type: ignore[arg-type]
    ctx = DashContext(settings=settings, data_dir=Path(data_dir), store_source=store)
    if clock is not None:
        ctx.clock = clock
    server = flask.Flask(__name__)
    app = dash.Dash(
        __name__,
        server=server,
        title="舆情与政务留言监测",
        update_title=None,
        assets_folder=str(ASSETS),
        suppress_callback_exceptions=True,
        serve_locally=True,
        compress=False,
        on_error=_on_error,
    )
    app.gp_context = ctx  # type: ignore[attr-defined]
    auth.install(server, ctx)
    export.install(server, ctx)
    # Started lazily in each worker process (threads do not survive the fork).
    server.before_request(lambda: ctx.start_warmer(warm_defaults))
    app.layout = lambda: _shell()

    @app.callback(
        Output("page-content", "children"),
        Output("nav", "children"),
        Input("url", "pathname"),
        State("url", "search"),
    )
    def route(pathname: str | None, search: str | None):
        page = page_for_path(pathname or "/")
        nav = _nav(page.PATH if page else "")
        if page is None:
            return html.Div([html.H2("页面不存在"), dcc.Link("返回总览", href="/")]), nav
        try:
            view = parse(search)
        except UrlStateError as exc:
            return _bad_url(str(exc), page.PATH), nav
        try:
            return page.layout(ctx, view), nav
        except StoreError as exc:
            log.warning("page %s: store error: %s", page.PATH, exc)
            return html.Div(f"数据存储暂不可用：{exc}", className="gp-error", role="alert"), nav

    for page in PAGES:
        page.register(app, ctx)
    return app


def _shell() -> html.Div:
    """The outer layout (served per request, after the login guard)."""
    user = current_user
    who = (
        f"{user.username}（{ROLE_NAMES.get(user.role, user.role)}）"
        if user.is_authenticated
        else ""
    )
    return html.Div(
        [
            dcc.Location(id="url", refresh=False),
            html.Header(
                [
                    html.Div("舆情与政务留言监测", className="gp-brand"),
                    html.Nav(id="nav", className="gp-nav"),
                    html.Div(
                        [
                            html.Span(who, id="gp-user", className="gp-user"),
                            html.Form(
                                [
                                    dcc.Input(
                                        type="hidden", name="csrf_token", value=auth.csrf_token()
                                    ),
                                    html.Button("退出", type="submit", id="gp-logout"),
                                ],
                                method="post",
                                action="/logout",
                                className="gp-logout",
                            ),
                        ],
                        className="gp-userbox",
                    ),
                ],
                className="gp-header",
            ),
            html.Div(id="gp-flash", role="alert"),
            html.Main(id="page-content", className="gp-main"),
        ]
    )


def _on_error(exc: Exception) -> None:
    """Show callback failures in the banner instead of a broken page.

    Store trouble (locked, down) is expected and said plainly; anything else
    is logged with its traceback and shown without internals.
    """
    if isinstance(exc, StoreError):
        log.warning("callback: store error: %s", exc)
        text = f"数据存储暂不可用，请稍后重试（{exc}）"
    else:
        log.exception("callback failed", exc_info=exc)
        text = "页面更新失败，请刷新重试；如持续出现请联系管理员。"
    dash.set_props("gp-flash", {"children": html.Div(text, className="gp-error")})


def _nav(active: str) -> list[Any]:
    return [
        dcc.Link(
            page.TITLE,
            href=page.PATH,
            className="gp-nav-link active" if active == page.PATH else "gp-nav-link",
            id=f"nav-{page.NAME}",
        )
        for page in PAGES
        if page.IN_NAV
    ]


def _bad_url(reason: str, path: str) -> html.Div:
    return html.Div(
        [
            html.P(f"地址中的筛选条件无效：{reason}", className="gp-error", role="alert"),
            dcc.Link("清除筛选条件", href=path),
        ]
    )
