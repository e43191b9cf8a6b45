"""The practice site's HTTP server (stdlib ThreadingHTTPServer; light, no extra deps).

Routes follow the real sites (see docs/crawlers.md for the list).  Faults are
injected deterministically: a share of pages (``faults``) fails on its first
request with 500, 429 (Retry-After: 1) or truncated JSON, and succeeds when
retried, so a polite crawler loses nothing.  Fixed trouble spots: Weibo uid
1000000099 answers "login required", 留言板 fid 199 says 系统繁忙, board 49
is a captcha page, board 48 paginates forever, board 47 holds a 10 MB thread.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

from crawlers.sandbox import render
from crawlers.sandbox.generator import Clock, World

log = logging.getLogger(__name__)

TIMELINE_PAGE = 10
HOTFLOW_PAGE = 20
LIUYAN_ROWS_MAX = 50
SITE_PAGE = 15
FORUM_PAGE = 20


class Sandbox:
    """Content + clock + fault memory: what the request handler serves."""

    def __init__(
        self, world: World | None = None, clock: Clock | None = None, faults: float = 0.0
    ) -> None:
        self.world = world or World()
        self.clock = clock or Clock()
        self.faults = faults
        self.hits: Counter[str] = Counter()
        self.lock = threading.Lock()

    def fault(self, key: str, json_route: bool) -> str | None:
        """The fault this request gets (first hit of an unlucky page only)."""
        with self.lock:
            self.hits[key] += 1
            first = self.hits[key] == 1
        if not first or self.faults <= 0:
            return None
        roll = int(hashlib.blake2b(key.encode(), digest_size=4).hexdigest(), 16) / 2**32
        if roll >= self.faults:
            return None
        kinds = ("500", "429", "truncated") if json_route else ("500", "429", "503")
        return kinds[int(roll / self.faults * len(kinds)) % len(kinds)]


class Handler(BaseHTTPRequestHandler):
    server_version = "govpulse-sandbox/0.1"
    sandbox: Sandbox

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("%s " + format, self.address_string(), *args)

    # -- plumbing ------------------------------------------------------------
    def send(
        self, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, data: Any, status: int = 200) -> None:
        self.send(status, render.dumps(data), "application/json; charset=utf-8")

    def send_html(self, text: str | bytes, status: int = 200, charset: str = "utf-8") -> None:
        body = text.encode(charset) if isinstance(text, str) else text
        ctype = "text/html" if charset != "utf-8" else "text/html; charset=utf-8"
        self.send(status, body, ctype)

    def not_found(self) -> None:
        self.send_html("<html><body><h1>404 页面不存在</h1></body></html>", 404)

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        self.route("GET", b"")

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        self.route("POST", self.rfile.read(min(length, 1 << 20)))

    def route(self, method: str, body: bytes) -> None:
        url = urlsplit(self.path)
        q = {k: v[-1] for k, v in parse_qs(url.query).items()}
        path = url.path
        json_route = path.startswith(("/api/", "/comments/", "/statuses/", "/v1/"))
        fault = (
            self.sandbox.fault(f"{method} {self.path} {body[:200]!r}", json_route)
            if path != "/robots.txt"
            else None
        )
        if fault == "500":
            return self.send_html("<html><body>500 Internal Server Error</body></html>", 500)
        if fault == "503":
            return self.send_html(render.BUSY_PAGE, 503)
        if fault == "429":
            return self.send(429, b"Too Many Requests", "text/plain", {"Retry-After": "1"})
        now = self.sandbox.clock.now()
        try:
            handler = ROUTES.get((method, path))
            if handler is None:
                if method == "GET" and path.startswith("/content/detail/"):
                    return self.chuzhou_detail(path, now)
                if method == "GET" and path.startswith("/v1/threads/"):
                    return self.send_json(
                        {"resultCode": 405, "resultMsg": "Method Not Allowed"}, 405
                    )
                return self.not_found()
            if method == "POST":
                try:
                    q.update(json.loads(body or b"{}"))
                except (ValueError, UnicodeDecodeError):
                    return self.send_json({"resultCode": 400, "resultMsg": "bad request body"}, 400)
            if fault == "truncated":
                self.wfile_truncate = True
            handler(self, q, now)
        except (ValueError, KeyError) as exc:
            log.debug("bad request %s: %s", self.path, exc)
            self.send_json(
                {"ok": 0, "msg": f"参数错误: {exc}"}, 400
            ) if json_route else self.not_found()

    def truncated(self) -> bool:
        return bool(getattr(self, "wfile_truncate", False))

    def send_json_maybe_truncated(self, data: Any) -> None:
        body = render.dumps(data)
        if self.truncated():
            body = body[: max(len(body) // 2, 1)]
        self.send(200, body, "application/json; charset=utf-8")

    # -- robots ----------------------------------------------------------------
    def robots(self, q: dict[str, str], now: Any) -> None:
        self.send(200, b"User-agent: *\nDisallow: /private/\n", "text/plain")

    # -- Weibo -----------------------------------------------------------------
    def weibo_index(self, q: dict[str, str], now: Any) -> None:
        w = self.sandbox.world
        if q.get("type") == "uid":
            uid = q.get("value", "")
            ch = w.channels.get(f"weibo:{uid}")
            if ch is None:
                return self.send_json({"ok": 0, "msg": "用户不存在"})
            return self.send_json_maybe_truncated(
                {"ok": 1, "data": {"userInfo": render.weibo_user(w, ch.key)}}
            )
        cid = q.get("containerid", "")
        uid = cid[6:] if cid.startswith("107603") else ""
        if uid == "1000000099":
            return self.send_json(
                {"ok": -100, "url": "https://passport.weibo.cn/signin/welcome?entry=mweibo"}
            )
        ch = w.channels.get(f"weibo:{uid}")
        if ch is None:
            return self.send_json({"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}})
        posts = w.posts(ch.key, now)
        since = q.get("since_id")
        start = 0
        if since:
            start = next((i + 1 for i, p in enumerate(posts) if p.id == since), len(posts))
        chunk = posts[start : start + TIMELINE_PAGE]
        if not chunk:
            return self.send_json({"ok": 0, "msg": "这里还没有内容", "data": {"cards": []}})
        cards = [
            {"card_type": 9, "itemid": f"1076{p.id}", "mblog": render.mblog(w, p, now)}
            for p in chunk
        ]
        more = start + TIMELINE_PAGE < len(posts)
        info = {
            "containerid": cid,
            "total": len(posts),
            "since_id": int(chunk[-1].id) if more else 0,
        }
        self.send_json_maybe_truncated({"ok": 1, "data": {"cardlistInfo": info, "cards": cards}})

    def weibo_extend(self, q: dict[str, str], now: Any) -> None:
        post = self.sandbox.world.post(q.get("id", ""))
        if post is None or post.posted_at > now:
            return self.send_json({"ok": 0, "msg": "内容不存在"})
        self.send_json_maybe_truncated(
            {
                "ok": 1,
                "data": {
                    "ok": 1,
                    "longTextContent": render.esc(post.body).replace("。", "。<br />"),
                },
            }
        )

    def weibo_hotflow(self, q: dict[str, str], now: Any) -> None:
        w = self.sandbox.world
        post = w.post(q.get("id") or q.get("mid") or "")
        if post is None or post.posted_at > now:
            return self.send_json({"ok": 0, "errno": "100011", "msg": "暂无数据"})
        comments = [c for c in w.comments_of(post.id) if c.posted_at <= now]
        start = int(q.get("max_id") or 0)
        chunk = comments[start : start + HOTFLOW_PAGE]
        if not chunk:
            return self.send_json({"ok": 0, "errno": "100011", "msg": "暂无数据"})
        nxt = start + HOTFLOW_PAGE if start + HOTFLOW_PAGE < len(comments) else 0
        data = [render.comment_json(w, post, c, now) for c in chunk]
        self.send_json_maybe_truncated(
            {
                "ok": 1,
                "data": {
                    "data": data,
                    "total_number": len(comments),
                    "max_id": nxt,
                    "max_id_type": 0 if start == 0 else 1,
                },
            }
        )

    def weibo_child(self, q: dict[str, str], now: Any) -> None:
        w = self.sandbox.world
        cid = q.get("cid", "")
        post = w.post("49" + cid[:10] + "000") if len(cid) >= 10 else None
        comment = next((c for c in w.comments_of(post.id) if c.id == cid), None) if post else None
        if post is None or comment is None or comment.posted_at > now:
            return self.send_json({"ok": 0, "errno": "100011", "msg": "暂无数据"})
        replies = render.comment_json(w, post, comment, now, inline=False)["comments"] or []
        start = int(q.get("max_id") or 0)
        chunk = replies[start : start + HOTFLOW_PAGE]
        if not chunk:
            return self.send_json({"ok": 0, "errno": "100011", "msg": "暂无数据"})
        nxt = start + HOTFLOW_PAGE if start + HOTFLOW_PAGE < len(replies) else 0
        self.send_json_maybe_truncated(
            {"ok": 1, "data": chunk, "total_number": len(replies), "max_id": nxt, "max_id_type": 0}
        )

    # -- 留言板 -------------------------------------------------------------------
    def liuyan_list(self, q: dict[str, Any], now: Any) -> None:
        param = json.loads(q.get("param") or "{}")
        fid = str(param.get("fid", ""))
        if fid == "199":
            return self.send_json(
                {"resultCode": 500, "resultMsg": "系统繁忙，请稍后再试", "resultData": None}
            )
        ch = self.sandbox.world.channels.get(f"liuyan:{fid}")
        if ch is None:
            return self.send_json(
                {"resultCode": 200, "resultMsg": "success", "resultData": {"data": []}}
            )
        letters = self.sandbox.world.letters(ch.key, now)
        last = str(param.get("lastItem") or "")
        start = (
            next((i + 1 for i, x in enumerate(letters) if x.id == last), len(letters))
            if last
            else 0
        )
        rows = min(int(param.get("rows") or 10), LIUYAN_ROWS_MAX)
        data = [render.liuyan_row(x, ch.name, now) for x in letters[start : start + rows]]
        self.send_json_maybe_truncated(
            {"resultCode": 200, "resultMsg": "success", "resultData": {"data": data}}
        )

    def liuyan_content(self, q: dict[str, Any], now: Any) -> None:
        tid = str(q.get("tid", ""))
        for ch in self.sandbox.world.channels_of("liuyan"):
            x = self.sandbox.world.letter(ch.key, tid)
            if x is not None and x.posted_at <= now:
                return self.send_json_maybe_truncated(render.liuyan_detail(x, ch.name, now))
        self.send_json({"resultCode": 404, "resultMsg": "留言不存在", "resultData": None}, 200)

    # -- mayor mailboxes -------------------------------------------------------------
    def chuzhou_list(self, q: dict[str, str], now: Any) -> None:
        letters = self.sandbox.world.letters("site:chuzhou", now)
        page = max(int(q.get("pageIndex") or 1), 1)
        pages = max((len(letters) + SITE_PAGE - 1) // SITE_PAGE, 1)
        if page > pages:
            return self.not_found()
        chunk = letters[(page - 1) * SITE_PAGE : page * SITE_PAGE]
        self.send_html(render.chuzhou_list(chunk, page, pages, now))

    def chuzhou_detail(self, path: str, now: Any) -> None:
        lid = path.rsplit("/", 1)[-1].removesuffix(".html")
        x = self.sandbox.world.letter("site:chuzhou", lid)
        if x is None or x.posted_at > now:
            return self.not_found()
        self.send_html(render.chuzhou_detail(x, now))

    def chengdu_list(self, q: dict[str, str], now: Any) -> None:
        letters = self.sandbox.world.letters("site:chengdu12345", now)
        page = max(int(q.get("page") or 1), 1)
        chunk = letters[(page - 1) * SITE_PAGE : page * SITE_PAGE]
        self.send_html(render.chengdu_list(chunk, len(letters), now), charset="gbk")

    def chengdu_detail(self, q: dict[str, str], now: Any) -> None:
        x = self.sandbox.world.letter("site:chengdu12345", q.get("id", "").removeprefix("CD"))
        if x is None or x.posted_at > now:
            return self.not_found()
        self.send_html(render.chengdu_detail(x, now), charset="gbk")

    # -- Discuz! -----------------------------------------------------------------------
    def forum(self, q: dict[str, str], now: Any) -> None:
        mod = q.get("mod")
        if mod == "forumdisplay":
            return self.forum_list(q, now)
        if mod == "viewthread":
            return self.forum_thread(q, now)
        self.not_found()

    def forum_list(self, q: dict[str, str], now: Any) -> None:
        fid = q.get("fid", "")
        page = max(int(q.get("page") or 1), 1)
        if fid == "49":
            return self.send_html(render.CAPTCHA_PAGE)
        w = self.sandbox.world
        if fid == "48":  # endless pagination: every page has rows and a next link
            letters = w.letters("forum:41", now)[:FORUM_PAGE]
            return self.send_html(render.discuz_list("无尽分页", fid, letters, page, page + 1, now))
        if fid == "47":
            stub = w.letters("forum:41", now)[:1]
            body = render.discuz_list("超大页面", fid, stub, 1, 1, now).replace(
                f"tid={stub[0].id}", "tid=47000001"
            )
            return self.send_html(body)
        ch = w.channels.get(f"forum:{fid}")
        if ch is None:
            return self.send_html(
                '<html><body><div id="messagetext"><p>指定的版块不存在</p></div></body></html>', 404
            )
        letters = w.letters(ch.key, now)
        pages = max((len(letters) + FORUM_PAGE - 1) // FORUM_PAGE, 1)
        chunk = letters[(page - 1) * FORUM_PAGE : page * FORUM_PAGE]
        self.send_html(render.discuz_list(ch.name, fid, chunk, page, pages, now))

    def forum_thread(self, q: dict[str, str], now: Any) -> None:
        tid = q.get("tid", "")
        w = self.sandbox.world
        if tid == "47000001":
            x = w.letters("forum:41", now)[0]
            huge = render.discuz_thread("超大页面", "47", x, now, False).replace(
                "</td></tr></table>", "x" * (10 * 1024 * 1024) + "</td></tr></table>", 1
            )
            return self.send_html(huge)
        for ch in w.channels_of("forum"):
            x = w.letter(ch.key, tid)
            if x is not None and x.posted_at <= now:
                return self.send_html(
                    render.discuz_thread(ch.name, ch.code, x, now, official_post=int(tid) % 2 == 0)
                )
        self.send_html(
            '<html><body><div id="messagetext"><p>抱歉，指定的主题不存在或已被删除</p></div></body></html>',
            404,
        )


ROUTES = {
    ("GET", "/robots.txt"): Handler.robots,
    ("GET", "/api/container/getIndex"): Handler.weibo_index,
    ("GET", "/statuses/extend"): Handler.weibo_extend,
    ("GET", "/comments/hotflow"): Handler.weibo_hotflow,
    ("GET", "/comments/hotFlowChild"): Handler.weibo_child,
    ("POST", "/v1/threads/list/df"): Handler.liuyan_list,
    ("POST", "/v1/threads/content"): Handler.liuyan_content,
    ("GET", "/content/column/4001"): Handler.chuzhou_list,
    ("GET", "/openWorkList"): Handler.chengdu_list,
    ("GET", "/openWorkDetail"): Handler.chengdu_detail,
    ("GET", "/forum.php"): Handler.forum,
}


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # the default (5) refuses connections from a 16-way crawler


def make_server(
    host: str = "127.0.0.1", port: int = 8765, sandbox: Sandbox | None = None
) -> ThreadingHTTPServer:
    """Build (not start) the server; port 0 picks a free port (see server.server_port)."""
    sandbox = sandbox or Sandbox()
    handler = type("SandboxHandler", (Handler,), {"sandbox": sandbox})
    server = _Server((host, port), handler)
    return server


def serve_in_thread(
    sandbox: Sandbox | None = None, host: str = "127.0.0.1"
) -> tuple[ThreadingHTTPServer, str]:
    """Start a server on a free port in a daemon thread; return it and its base URL."""
    server = make_server(host, 0, sandbox)
    threading.Thread(target=server.serve_forever, daemon=True, name="govpulse-sandbox").start()
    return server, f"http://{host}:{server.server_port}"
