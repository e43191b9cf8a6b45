"""Login for every page, callback and export; CSRF protection; cookie defaults.

* One Flask ``before_request`` guard covers the whole server: page loads
  without a session are redirected to the login form, Dash callback and
  layout requests get 401, so no callback can run for an anonymous user.
* CSRF: the login and logout forms carry a per-session token; Dash's
  renderer copies the ``_csrf_token`` cookie into an ``X-CSRFToken`` header
  on every callback POST, and the guard compares it with the session
  (double-submit), so another site cannot drive callbacks with the user's
  cookie.
* Sessions are signed Flask cookies that the server refuses after
  ``dashboard.session_hours``; changing a password invalidates them.
"""

from __future__ import annotations

import hmac
import os
import secrets
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import flask
from flask_login import LoginManager, current_user, login_user, logout_user

from dashboard.context import DashContext

CSRF_COOKIE = "_csrf_token"
CSRF_HEADER = "X-CSRFToken"
#: Paths served without a session: the login form and static JS/CSS bundles.
PUBLIC_PREFIXES = ("/login", "/_dash-component-suites/", "/assets/", "/_favicon.ico")

LOGIN_PAGE = """<!DOCTYPE html>
<html lang="zh-CN"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>登录 · 舆情监测</title>
<style>
body{font-family:"Noto Sans CJK SC","Microsoft YaHei",sans-serif;background:#f3f5f8;margin:0}
form{max-width:320px;margin:12vh auto;background:#fff;padding:28px;border-radius:8px;
box-shadow:0 2px 8px rgba(0,0,0,.08)}
h1{font-size:20px;margin:0 0 18px}label{display:block;margin:12px 0 4px;color:#444}
input[type=text],input[type=password]{width:100%;box-sizing:border-box;padding:8px;
border:1px solid #ccd;border-radius:4px}
button{margin-top:18px;width:100%;padding:9px;background:#1f5fa8;color:#fff;border:0;
border-radius:4px;font-size:15px}.err{color:#b00020;margin-top:10px}
</style></head><body>
<form method="post" action="/login" id="login-form">
<h1>舆情与政务留言监测</h1>
<input type="hidden" name="csrf_token" value="{{ csrf }}">
<input type="hidden" name="next" value="{{ next_url }}">
<label for="login-username">用户名</label>
<input type="text" id="login-username" name="username" autocomplete="username" required>
<label for="login-password">密码</label>
<input type="password" id="login-password" name="password" autocomplete="current-password" required>
<button type="submit" id="login-submit">登录</button>
{% if error %}<p class="err" id="login-error">{{ error }}</p>{% endif %}
</form></body></html>"""


def secret_key(ctx: DashContext) -> str:
    """The signing key: the setting, else a random key kept in the data dir.

    A file (not a per-process random key) so that every worker process
    accepts the sessions the others issued.
    """
    configured = str(ctx.settings["dashboard.secret_key"] or "")
    if configured:
        return configured
    path = Path(ctx.data_dir) / "dashboard_secret"
    if not path.exists():
        tmp = path.with_suffix(f".{secrets.token_hex(4)}.tmp")
        tmp.write_text(secrets.token_hex(32), encoding="ascii")
        tmp.chmod(0o600)
        try:
            # link() fails if another worker won the race; then theirs is used.
            os.link(tmp, path)
        except FileExistsError:
            pass
        finally:
            tmp.unlink(missing_ok=True)
    return path.read_text(encoding="ascii").strip()


def csrf_token() -> str:
    """The session's CSRF token (created on first use)."""
    token = flask.session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        flask.session["csrf"] = token
    return token


def _safe_next(target: str | None) -> str:
    """Only same-site relative paths, so the login form is no open redirect."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def install(server: flask.Flask, ctx: DashContext) -> None:
    """Configure sessions, cookies, the login manager, routes and the guard."""
    server.config.update(
        SECRET_KEY=secret_key(ctx),
        SESSION_COOKIE_NAME="govpulse_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=bool(ctx.settings["dashboard.https"]),
        PERMANENT_SESSION_LIFETIME=timedelta(hours=float(ctx.settings["dashboard.session_hours"])),
        # No "remember me" cookie: a session ends when it expires.
        REMEMBER_COOKIE_DURATION=timedelta(seconds=0),
    )
    manager = LoginManager()
    manager.session_protection = "basic"
    manager.init_app(server)

    @manager.user_loader
    def _load(session_id: str):
        return ctx.users().load(session_id)

    @server.before_request
    def _guard():
        path = flask.request.path
        if path.startswith(PUBLIC_PREFIXES):
            return None
        if not current_user.is_authenticated:
            if path.startswith("/_dash-") or flask.request.method != "GET":
                return flask.Response("login required", status=401)
            return flask.redirect(f"/login?next={flask.request.full_path.rstrip('?')}")
        if flask.request.method == "POST":
            sent = flask.request.headers.get(CSRF_HEADER) or flask.request.form.get("csrf_token")
            if not sent or not hmac.compare_digest(sent, csrf_token()):
                return flask.Response("CSRF token missing or wrong", status=403)
        return None

    @server.after_request
    def _headers(response: flask.Response) -> flask.Response:
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if current_user.is_authenticated and "csrf" in flask.session:
            # Readable by the Dash renderer (not HttpOnly) on purpose: that is how
            # the token reaches the X-CSRFToken header of callback requests.
            response.set_cookie(
                CSRF_COOKIE,
                flask.session["csrf"],
                httponly=False,
                samesite="Strict",
                secure=bool(ctx.settings["dashboard.https"]),
            )
        return response

    @server.route("/login", methods=["GET", "POST"])
    def login():
        error = ""
        next_url = _safe_next(flask.request.values.get("next"))
        if flask.request.method == "POST":
            sent = flask.request.form.get("csrf_token", "")
            if not sent or not hmac.compare_digest(sent, csrf_token()):
                error = "页面已过期，请重新登录。"
            else:
                user = ctx.users().authenticate(
                    flask.request.form.get("username", ""), flask.request.form.get("password", "")
                )
                if user is None:
                    error = "用户名或密码错误（多次失败将暂时锁定）。"
                else:
                    flask.session.clear()
                    flask.session.permanent = True
                    login_user(user)
                    csrf_token()  # fresh token for the new session
                    return flask.redirect(next_url)
        html = flask.render_template_string(
            LOGIN_PAGE, csrf=csrf_token(), next_url=next_url, error=error
        )
        return flask.Response(html, status=200 if not error else 401)

    @server.route("/logout", methods=["POST"])
    def logout():
        logout_user()
        flask.session.clear()
        response = flask.redirect("/login")
        response.delete_cookie(CSRF_COOKIE)
        return response
