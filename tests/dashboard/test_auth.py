"""Login, sessions, CSRF and cookies, through the real Flask/Dash server."""

from __future__ import annotations

import json
import re

import pytest

from dashboard.users import UserError, UserStore

from .conftest import NOW


@pytest.fixture
def app(filled_store, dash_settings, tmp_path, users):
    from dashboard.app import create_app

    return create_app(filled_store, dash_settings, data_dir=tmp_path / "data", clock=lambda: NOW)


def _csrf(html: str) -> str:
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def login(client, username="staff1", password="staff-pass-1"):
    page = client.get("/login")
    return client.post(
        "/login",
        data={
            "username": username,
            "password": password,
            "csrf_token": _csrf(page.get_data(as_text=True)),
            "next": "/",
        },
    )


def callback_body(output: str, inputs: list[dict], outputs: list[dict] | None = None) -> dict:
    return {
        "output": output,
        "outputs": outputs or [],
        "inputs": inputs,
        "changedPropIds": [],
        "state": [],
    }


def test_user_store_hashes_and_checks(tmp_path):
    users = UserStore(tmp_path / "u.db", max_failures=3)
    users.add("wang", "correct-horse", "press")
    raw = (tmp_path / "u.db").read_bytes()
    assert b"correct-horse" not in raw and b"$argon2id$" in raw
    assert users.authenticate("wang", "correct-horse").role == "press"
    assert users.authenticate("wang", "wrong-password") is None
    assert users.authenticate("nobody", "correct-horse") is None
    with pytest.raises(UserError):
        users.add("wang", "another-pass", "press")
    with pytest.raises(UserError):
        users.add("li", "short", "staff")
    with pytest.raises(UserError):
        users.add("li", "long-enough", "superuser")
    with pytest.raises(UserError):
        users.add("<script>", "long-enough", "staff")


def test_repeated_failures_lock_the_name(tmp_path):
    users = UserStore(tmp_path / "u.db", max_failures=3)
    users.add("wang", "correct-horse", "staff")
    for _ in range(3):
        assert users.authenticate("wang", "bad-guess", now=1000.0) is None
    assert users.authenticate("wang", "correct-horse", now=1001.0) is None  # locked
    assert users.authenticate("wang", "correct-horse", now=1000.0 + 16 * 60) is not None


def test_password_change_ends_sessions(tmp_path):
    users = UserStore(tmp_path / "u.db")
    user = users.add("wang", "correct-horse", "staff")
    assert users.load(user.get_id()) is not None
    users.set_password("wang", "new-password-1")
    assert users.load(user.get_id()) is None


def test_every_page_callback_and_export_needs_login(app):
    client = app.server.test_client()
    for path in ("/", "/timeliness", "/search?q=噪音", "/message?id=x", "/alerts", "/export.csv"):
        response = client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert client.get("/_dash-layout").status_code == 401
    assert client.get("/_dash-dependencies").status_code == 401
    body = callback_body("search-hits.children", [])
    assert client.post("/_dash-update-component", json=body).status_code == 401
    # Static bundles stay public so the login page can load.
    assert client.get("/login").status_code == 200


def test_login_rejects_bad_password_and_missing_csrf(app):
    client = app.server.test_client()
    assert login(client, "staff1", "wrong-password").status_code == 401
    assert client.get("/").status_code == 302
    response = client.post("/login", data={"username": "staff1", "password": "staff-pass-1"})
    assert response.status_code == 401 and "页面已过期" in response.get_data(as_text=True)
    assert client.get("/").status_code == 302


def test_login_sets_safe_cookies_and_redirects_only_locally(app):
    client = app.server.test_client()
    page = client.get("/login?next=https://evil.example/")
    response = client.post(
        "/login",
        data={
            "username": "staff1",
            "password": "staff-pass-1",
            "csrf_token": _csrf(page.get_data(as_text=True)),
            "next": "https://evil.example/",
        },
    )
    assert response.status_code == 302 and response.headers["Location"] == "/"
    cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("govpulse_session=")
    )
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" not in cookie
    assert "Expires=" in cookie  # permanent session with a lifetime
    assert client.get("/").status_code == 200
    assert response.headers["X-Frame-Options"] == "DENY"


def test_secure_cookie_behind_https(filled_store, dash_settings, tmp_path, users):
    from dashboard.app import create_app

    app = create_app(
        filled_store,
        dash_settings.with_overrides({"dashboard.https": "true"}),
        data_dir=tmp_path / "data",
    )
    client = app.server.test_client()
    page = client.get("/login")
    response = client.post(
        "/login",
        data={
            "username": "staff1",
            "password": "staff-pass-1",
            "csrf_token": _csrf(page.get_data(as_text=True)),
        },
    )
    cookie = next(
        h for h in response.headers.getlist("Set-Cookie") if h.startswith("govpulse_session=")
    )
    assert "Secure" in cookie


def test_session_expires(filled_store, dash_settings, tmp_path, users):
    from freezegun import freeze_time

    from dashboard.app import create_app

    app = create_app(
        filled_store,
        dash_settings.with_overrides({"dashboard.session_hours": "1"}),
        data_dir=tmp_path / "data",
    )
    client = app.server.test_client()
    with freeze_time("2024-06-14 06:00:00") as frozen:
        login(client)
        assert client.get("/").status_code == 200
        frozen.tick(3599)
        assert client.get("/").status_code == 200
        frozen.tick(7200)
        assert client.get("/").status_code == 302


def test_callbacks_need_the_csrf_header(app):
    client = app.server.test_client()
    login(client)
    client.get("/")  # sets the _csrf_token cookie the Dash renderer reads
    token = client.get_cookie("_csrf_token").value
    body = callback_body(
        "alerts-log.children",
        [{"id": "alerts-refresh", "property": "data", "value": 0}],
        {"id": "alerts-log", "property": "children"},
    )
    assert client.post("/_dash-update-component", json=body).status_code == 403
    bad = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": "forged"})
    assert bad.status_code == 403
    good = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})
    assert good.status_code == 200
    assert "暂无记录" in json.dumps(good.get_json(), ensure_ascii=False)


def test_logout_needs_post_with_token(app):
    client = app.server.test_client()
    login(client)
    client.get("/logout")  # a GET (e.g. an <img> on another site) must not log out
    assert client.get("/").status_code == 200
    assert client.post("/logout").status_code == 403
    page = client.get("/").get_data(as_text=True)
    token = client.get_cookie("_csrf_token").value
    assert client.post("/logout", data={"csrf_token": token}).status_code == 302
    assert client.get("/").status_code == 302
    assert page


def test_login_page_escapes_reflected_values(app):
    client = app.server.test_client()
    page = client.get('/login?next=/"><script>alert(1)</script>').get_data(as_text=True)
    assert "<script>alert(1)" not in page and "&lt;script&gt;" in page
    login_page = client.get("/login?next=//evil.example/x").get_data(as_text=True)
    assert 'name="next" value="/"' in login_page


def test_store_failure_in_a_callback_shows_a_banner(app, filled_store, monkeypatch):
    from store.base import StoreUnavailable

    client = app.server.test_client()
    login(client)
    client.get("/")
    token = client.get_cookie("_csrf_token").value

    def down(*args, **kwargs):
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(filled_store, "search", down)
    body = {
        "output": "..rumours-url.search...rumours-table.data...rumours-table.page_count...rumours-scatter.figure..",
        "outputs": [
            {"id": "rumours-url", "property": "search"},
            {"id": "rumours-table", "property": "data"},
            {"id": "rumours-table", "property": "page_count"},
            {"id": "rumours-scatter", "property": "figure"},
        ],
        "inputs": [
            {"id": f"rumours-f-{f}", "property": "value", "value": []}
            for f in ("source", "region", "topic", "status")
        ]
        + [
            {"id": "rumours-f-dates", "property": "start_date", "value": None},
            {"id": "rumours-f-dates", "property": "end_date", "value": None},
            {"id": "rumours-table", "property": "page_current", "value": 0},
            {"id": "rumours-table", "property": "sort_by", "value": []},
            {"id": "rumours-refresh", "property": "data", "value": 0},
        ],
        "changedPropIds": [],
        "state": [],
    }
    response = client.post("/_dash-update-component", json=body, headers={"X-CSRFToken": token})
    text = response.get_data(as_text=True)
    assert response.status_code in (200, 204), text
    assert "数据存储暂不可用" in json.dumps(response.get_json(), ensure_ascii=False)
