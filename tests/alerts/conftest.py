"""Local servers the alert tests deliver to: robot receivers and an SMTP server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote_plus, urlsplit

import pytest

DINGTALK_SECRET = "SECtest0123456789"
FEISHU_SECRET = "feishu-secret-xyz"


class Receiver:
    """What the robot endpoints received, and how they should answer."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        self.fail_next = 0  # answer this many requests with HTTP 500
        self.lock = threading.Lock()

    def bodies(self, path: str) -> list[dict]:
        return [r["json"] for r in self.requests if r["path"] == path]


def _check_dingtalk(query: dict, body: dict) -> tuple[int, dict]:
    """Validate like oapi.dingtalk.com: signature, timestamp freshness, payload shape."""
    ts = query.get("timestamp", [""])[0]
    sign = query.get("sign", [""])[0]
    if not ts or not sign:
        return 200, {"errcode": 310000, "errmsg": "sign not match"}
    expected = base64.b64encode(
        hmac.new(
            DINGTALK_SECRET.encode(), f"{ts}\n{DINGTALK_SECRET}".encode(), hashlib.sha256
        ).digest()
    ).decode()
    if sign != expected or abs(time.time() * 1000 - int(ts)) > 3600_000:
        return 200, {"errcode": 310000, "errmsg": "sign not match"}
    if body.get("msgtype") != "markdown" or not body["markdown"].get("text"):
        return 200, {"errcode": 40035, "errmsg": "bad msgtype"}
    if len(body["markdown"]["text"].encode()) > 20000:
        return 200, {"errcode": 460101, "errmsg": "message too long"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def _check_wecom(body: dict) -> tuple[int, dict]:
    content = body.get("markdown", {}).get("content", "")
    if body.get("msgtype") != "markdown" or not content:
        return 200, {"errcode": 40008, "errmsg": "invalid message type"}
    if len(content.encode()) > 4096:
        return 200, {"errcode": 40058, "errmsg": "content exceed max length"}
    return 200, {"errcode": 0, "errmsg": "ok"}


def _check_feishu(body: dict) -> tuple[int, dict]:
    ts, sign = body.get("timestamp"), body.get("sign")
    key = f"{ts}\n{FEISHU_SECRET}".encode()
    expected = base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()
    if sign != expected or abs(time.time() - int(ts or 0)) > 3600:
        return 200, {"code": 19021, "msg": "sign match fail or timestamp is not within one hour"}
    if body.get("msg_type") != "text" or not body.get("content", {}).get("text"):
        return 200, {"code": 9499, "msg": "Bad Request"}
    return 200, {"code": 0, "msg": "success"}


@pytest.fixture
def receiver():
    """An HTTP server on 127.0.0.1 playing DingTalk, WeCom, Feishu and a webhook."""
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):  # keep test output clean
            pass

        def do_POST(self):
            parts = urlsplit(self.path)
            raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            try:
                body = json.loads(raw.decode("utf-8"))
            except ValueError:
                body = None
            query = {k: [unquote_plus(x) for x in v] for k, v in parse_qs(parts.query).items()}
            with rec.lock:
                rec.requests.append(
                    {
                        "path": parts.path,
                        "query": query,
                        "json": body,
                        "content_type": self.headers.get("Content-Type", ""),
                    }
                )
                fail = rec.fail_next > 0
                rec.fail_next -= int(fail)
            if fail or body is None:
                status, answer = 500, {"error": "server error"}
            elif parts.path == "/robot/send":
                status, answer = _check_dingtalk(parse_qs(parts.query), body)
            elif parts.path == "/cgi-bin/webhook/send":
                status, answer = _check_wecom(body)
            elif parts.path.startswith("/open-apis/bot/v2/hook/"):
                status, answer = _check_feishu(body)
            else:
                status, answer = 200, {"ok": True}
            data = json.dumps(answer).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
    )
    thread.start()
    rec.base = f"http://127.0.0.1:{server.server_address[1]}"
    yield rec
    server.shutdown()
    server.server_close()


@pytest.fixture
def smtp_server():
    """An aiosmtpd SMTP server on 127.0.0.1 collecting messages."""
    from aiosmtpd.controller import Controller

    class Collect:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    handler = Collect()
    with socket.socket() as probe:  # aiosmtpd needs a concrete port to self-check
        probe.bind(("127.0.0.1", 0))
        handler.port = probe.getsockname()[1]
    controller = Controller(handler, hostname="127.0.0.1", port=handler.port)
    controller.start()
    yield handler
    controller.stop()
