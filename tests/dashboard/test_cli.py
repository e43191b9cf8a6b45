"""`govpulse user ...` and `govpulse serve` as a user runs them."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from http.cookiejar import CookieJar
from urllib.parse import urlencode

import pytest
from click.testing import CliRunner

from govpulse.cli import main


def _run(tmp_path, *args, input=None):
    env = {"GOVPULSE_DATA_DIR": str(tmp_path / "data")}
    return CliRunner().invoke(main, list(args), input=input, env=env, catch_exceptions=False)


def test_user_commands(tmp_path):
    assert (
        _run(
            tmp_path, "user", "add", "zhang", "--role", "press", "--password", "pass-word-1"
        ).exit_code
        == 0
    )
    out = _run(tmp_path, "user", "list").output
    assert re.search(r"^zhang\tpress\t", out, re.M)
    dup = _run(tmp_path, "user", "add", "zhang", "--role", "press", "--password", "pass-word-1")
    assert dup.exit_code == 1 and "already exists" in dup.output
    weak = _run(tmp_path, "user", "add", "li", "--role", "staff", "--password", "short")
    assert weak.exit_code == 1 and "at least 8" in weak.output
    prompted = _run(tmp_path, "user", "passwd", "zhang", input="new-pass-22\nnew-pass-22\n")
    assert prompted.exit_code == 0
    from dashboard.users import UserStore

    users = UserStore(tmp_path / "data" / "users.db")
    assert users.authenticate("zhang", "new-pass-22") is not None
    assert _run(tmp_path, "user", "role", "zhang", "leader").exit_code == 0
    assert users.authenticate("zhang", "new-pass-22").role == "leader"
    assert _run(tmp_path, "user", "remove", "zhang").exit_code == 0
    assert _run(tmp_path, "user", "remove", "zhang").exit_code == 1


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_serve_with_two_worker_processes(tmp_path):
    """Sessions issued by one worker are accepted by the other (shared key file)."""
    assert (
        _run(
            tmp_path, "user", "add", "ops", "--role", "staff", "--password", "pass-word-1"
        ).exit_code
        == 0
    )
    port = _free_port()
    env = dict(os.environ, GOVPULSE_DATA_DIR=str(tmp_path / "data"))
    proc = subprocess.Popen(
        [sys.executable, "-m", "govpulse.cli", "serve", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(CookieJar()))
        deadline = time.time() + 60
        while True:
            try:
                page = opener.open(base + "/login", timeout=5).read().decode()
                break
            except (urllib.error.URLError, ConnectionError) as exc:
                if time.time() > deadline or proc.poll() is not None:
                    raise AssertionError(
                        proc.stdout.read().decode() if proc.poll() is not None else "no server"
                    ) from exc
                time.sleep(0.3)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)
        data = urlencode(
            {"username": "ops", "password": "pass-word-1", "csrf_token": token}
        ).encode()
        opener.open(base + "/login", data=data, timeout=10)
        for _ in range(6):  # forked workers answer in turn; every one must accept the session
            assert opener.open(base + "/_dash-layout", timeout=30).status == 200
        anonymous = urllib.request.build_opener()
        with pytest.raises(urllib.error.HTTPError) as err:
            anonymous.open(base + "/_dash-layout", timeout=10)
        assert err.value.code == 401
    finally:
        proc.terminate()
        proc.wait(10)
