"""Load test of the dashboard: many logged-in users on a large embedded store.

Usage: python bench/load.py [--users 20] [--seconds 60] [--size 1000000]
                            [--workers 2] [--threads 8] [--think 0]

What is measured, and why: bench/dashboard.py times each callback body alone;
this measures what a duty officer waits for when the whole office has the
dashboard open at once -- the real server (`govpulse serve`, waitress) over
HTTP on loopback, with sessions, CSRF, JSON encoding and the thread pool in
the way (issue 8).

How: the cached store of bench/dashboard.py (built once under
artifacts/bench/) is served by ``python -m govpulse.cli --store sqlite:///…
serve`` in a subprocess, with a fresh data dir holding one read-only (leader)
bench user.  Each simulated user logs in through the real login form (CSRF
token from the form), then loops with no think time over the pages, doing
what a browser does on a full page load: GET the page, GET /_dash-layout and
/_dash-dependencies, POST the router callback, then POST -- concurrently, as
the renderer does -- every callback the new page fires on load.  Those
payloads are built the way dash-renderer builds them: from
/_dash-dependencies and the initial property values in the page layout the
router returned (checked against payloads captured from headless Chromium).
Static JS/CSS bundles are left out (a browser caches them).  After one
warm-up pass (one user, each URL once; its page loads are printed as the
cold first loads, since the dashboard's shared result cache starts empty)
the users run for --seconds and stop by themselves: the timed run mostly
measures cached views, as an office opening the same pages does.

Same-run baseline: an extra client, in its own process so the load
generator's GIL does not slow it, GETs /login (a template page with no store
work) every --probe-interval seconds under the same load.

Prints a markdown table: per page the page-load time (all of the requests
above, what the user waits for) and the per-request latency, p50/p95;
requests/s; errors (non-2xx, transport errors, or a Dash error payload: the
error banner or a ``gp-error`` box); the /login baseline and the ratio.

The server's clock is the real one while the bench store ends on
2025-01-01, so the overview and timeliness pages are opened on the store's
last 30 / 90 days through their URL filters; views that always look at the
last 24 hours (today's counts, rising terms, 热点) find little there.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib.util
import itertools
import multiprocessing
import os
import re
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlencode, urlsplit

import requests

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def _bench_dashboard() -> Any:
    """bench/dashboard.py (its store builder and cache), loaded under another
    name: plain ``import dashboard`` would be the dashboard package."""
    spec = importlib.util.spec_from_file_location(
        "bench_dashboard", ROOT / "bench" / "dashboard.py"
    )
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BD = _bench_dashboard()
USER, PASSWORD = "bench", "bench-load-password"
CSRF_COOKIE, CSRF_HEADER = "_csrf_token", "X-CSRFToken"
UPDATE = "/_dash-update-component"
#: Props the renderer sends from a component's defaults when the layout omits them.
DEFAULT_PROPS: dict[str, dict[str, Any]] = {
    "DataTable": {"data": [], "page_current": 0, "sort_by": [], "selected_rows": []},
    "Button": {"n_clicks": 0},
}
ERROR_MARKERS = (b'"gp-flash"', b"gp-error")
#: Set on SIGTERM/SIGINT: users finish their page load and stop, the server is stopped.
STOP = threading.Event()


# -- what the users open ---------------------------------------------------------------


def page_urls(db: Path) -> dict[str, list[str]]:
    """Page title -> the URLs users open for it (taken in turn)."""
    now = BD.NOW.date()
    last30 = {"since": (now - timedelta(days=29)).isoformat(), "until": now.isoformat()}
    last90 = {"since": (now - timedelta(days=89)).isoformat(), "until": now.isoformat()}
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        count = conn.execute("SELECT max(rowid) FROM messages").fetchone()[0] or 1
        ids = [
            row[0]
            for k in range(5)
            for row in conn.execute(
                "SELECT id FROM messages WHERE rowid >= ? ORDER BY rowid LIMIT 1",
                (1 + k * count // 5,),
            )
        ]
    return {
        "总览 overview": [
            "/?" + urlencode(last30),
            "/?" + urlencode({**last30, "source": "mailbox"}),
        ],
        "回复时效 timeliness": [
            "/timeliness?" + urlencode(last90),
            "/timeliness?" + urlencode({**last90, "source": "forum"}),
        ],
        "热点 hot": ["/hot", "/hot?window=168"],
        "谣言 rumours": ["/rumours", "/rumours?source=weibo"],
        "检索 search": [
            "/search?" + urlencode({"q": "噪音"}),
            "/search?" + urlencode({"q": "物业 停车费", "source": "mailbox"}),
            "/search?source=forum",
        ],
        "消息详情 detail": ["/message?" + urlencode({"id": i}) for i in ids],
        "预警 alerts": ["/alerts"],
    }


# -- Dash payloads, as dash-renderer builds them --------------------------------------------


def components(layout: Any) -> dict[str, tuple[str, dict[str, Any]]]:
    """id -> (component type, props) for every component with a string id."""
    found: dict[str, tuple[str, dict[str, Any]]] = {}
    stack = [layout]
    while stack:
        node = stack.pop()
        if isinstance(node, list):
            stack.extend(node)
        elif isinstance(node, dict) and "props" in node:
            props = node["props"]
            if isinstance(props.get("id"), str):
                found[props["id"]] = (node.get("type", ""), props)
            stack.extend(v for v in props.values() if isinstance(v, list | dict))
    return found


def _outputs(spec: str) -> list[dict[str, str]] | dict[str, str]:
    """Dash's output string (``..a.x...b.y..`` when multi) as request `outputs`."""
    if spec.startswith(".."):
        parts = spec[2:-2].split("...")
        return [dict(zip(("id", "property"), p.rsplit(".", 1), strict=True)) for p in parts]
    cid, prop = spec.rsplit(".", 1)
    return {"id": cid, "property": prop}


def _output_ids(dep: dict[str, Any]) -> set[str]:
    outs = _outputs(dep["output"])
    return {o["id"] for o in (outs if isinstance(outs, list) else [outs])}


def _value(comps: dict[str, tuple[str, dict[str, Any]]], ref: dict[str, str]) -> dict[str, Any]:
    item: dict[str, Any] = {"id": ref["id"], "property": ref["property"]}
    kind, props = comps[ref["id"]]
    if ref["property"] in props:
        item["value"] = props[ref["property"]]
    elif ref["property"] in DEFAULT_PROPS.get(kind, {}):
        item["value"] = DEFAULT_PROPS[kind][ref["property"]]
    return item


def payload(
    dep: dict[str, Any], comps: dict[str, tuple[str, dict[str, Any]]], changed: list[str]
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "output": dep["output"],
        "outputs": _outputs(dep["output"]),
        "inputs": [_value(comps, ref) for ref in dep["inputs"]],
        "changedPropIds": changed,
        "parsedChangedPropsIds": changed,
    }
    if dep["state"]:
        body["state"] = [_value(comps, ref) for ref in dep["state"]]
    return body


def is_router(dep: dict[str, Any]) -> bool:
    return dep["inputs"] == [{"id": "url", "property": "pathname"}]


def route_payload(deps: list[dict[str, Any]], url: str) -> dict[str, Any]:
    """The router callback a full page load fires (url.pathname changed)."""
    parts = urlsplit(url)
    comps = {
        "url": (
            "Location",
            {"pathname": parts.path, "search": f"?{parts.query}" if parts.query else ""},
        )
    }
    return payload(next(d for d in deps if is_router(d)), comps, ["url.pathname"])


def initial_callbacks(
    deps: list[dict[str, Any]], comps: dict[str, tuple[str, dict[str, Any]]], page_ids: set[str]
) -> list[dict[str, Any]]:
    """Callbacks a new page fires on load: not prevent_initial_call, inputs and
    outputs all present, at least one input on the new page."""
    return [
        d
        for d in deps
        if not d["prevent_initial_call"]
        and not d.get("clientside_function")
        and all(ref["id"] in comps for ref in d["inputs"] + d["state"])
        and _output_ids(d) <= comps.keys()
        and any(ref["id"] in page_ids for ref in d["inputs"])
    ]


def waves(deps: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Fire order: a callback waits for the ones whose outputs are its inputs."""
    pending, plan = list(deps), []
    while pending:
        outs = {(o["id"], o["property"]) for d in pending for o in _flat_outputs(d)}
        ready = [
            d
            for d in pending
            if not any(
                (ref["id"], ref["property"]) in outs
                and not any(
                    (ref["id"], ref["property"]) == (o["id"], o["property"])
                    for o in _flat_outputs(d)
                )
                for ref in d["inputs"]
            )
        ]
        if not ready:  # a cycle: the renderer would refuse; fire the rest as is
            ready = pending
        plan.append(ready)
        pending = [d for d in pending if d not in ready]
    return plan


def callback_name(dep: dict[str, Any]) -> str:
    """A short name for a callback: its first output (the page's URL sync left out)."""
    outs = [o for o in _flat_outputs(dep) if not o["id"].endswith("-url")] or _flat_outputs(dep)
    more = f" (+{len(outs) - 1})" if len(outs) > 1 else ""
    return f"POST → {outs[0]['id']}.{outs[0]['property']}{more}"


def _flat_outputs(dep: dict[str, Any]) -> list[dict[str, str]]:
    outs = _outputs(dep["output"])
    return outs if isinstance(outs, list) else [outs]


# -- measurements ----------------------------------------------------------------------


@dataclass
class Results:
    """Latencies (ms) and errors, filled by all users under one lock."""

    requests: dict[tuple[str, str], list[float]] = field(default_factory=lambda: defaultdict(list))
    loads: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    url_loads: dict[str, list[float]] = field(default_factory=lambda: defaultdict(list))
    errors: Counter[str] = field(default_factory=Counter)
    error_pages: Counter[str] = field(default_factory=Counter)
    login: list[float] = field(default_factory=list)
    probe: list[float] = field(default_factory=list)
    probe_errors: int = 0
    #: URL -> page-load time of the untimed first pass (nothing cached yet, one user).
    first: dict[str, float] = field(default_factory=dict)
    recording: bool = True
    lock: threading.Lock = field(default_factory=threading.Lock)

    def request(self, page: str, kind: str, ms: float, error: str | None) -> None:
        if not self.recording:
            return
        with self.lock:
            self.requests[(page, kind)].append(ms)
            if error:
                self.errors[f"{kind}: {error}"] += 1
                self.error_pages[page] += 1

    def page_load(self, page: str, url: str, ms: float) -> None:
        if self.recording:
            with self.lock:
                self.loads[page].append(ms)
                self.url_loads[url].append(ms)

    def clear(self) -> None:
        with self.lock:
            self.requests.clear()
            self.loads.clear()
            self.url_loads.clear()
            self.errors.clear()
            self.error_pages.clear()
            self.probe.clear()
            self.probe_errors = 0


def pct(values: list[float], q: float) -> float:
    return BD.pct(values, q) if values else float("nan")


# -- one simulated user ----------------------------------------------------------------------


class User:
    """A browser: one session (cookies), up to 6 connections, a full page load at a time."""

    def __init__(self, base: str, results: Results, timeout: float) -> None:
        self.base, self.results, self.timeout = base, results, timeout
        self.http = requests.Session()
        adapter = requests.adapters.HTTPAdapter(pool_connections=1, pool_maxsize=6)
        self.http.mount("http://", adapter)
        self.deps: list[dict[str, Any]] = []

    def login(self) -> None:
        form = self.http.get(f"{self.base}/login", timeout=self.timeout)
        form.raise_for_status()
        token = re.search(r'name="csrf_token" value="([^"]+)"', form.text)
        if token is None:
            raise RuntimeError("no CSRF token in the login form")
        t = time.perf_counter()
        answer = self.http.post(
            f"{self.base}/login",
            data={
                "username": USER,
                "password": PASSWORD,
                "csrf_token": token.group(1),
                "next": "/",
            },
            allow_redirects=False,
            timeout=self.timeout,
        )
        self.results.login.append((time.perf_counter() - t) * 1000)
        if answer.status_code != 302 or CSRF_COOKIE not in self.http.cookies:
            raise RuntimeError(f"login failed: HTTP {answer.status_code}")
        self.deps = self.http.get(f"{self.base}/_dash-dependencies", timeout=self.timeout).json()

    def _call(
        self, page: str, kind: str, method: str, path: str, body: Any = None
    ) -> requests.Response | None:
        t = time.perf_counter()
        error: str | None = None
        response: requests.Response | None = None
        try:
            if method == "GET":
                response = self.http.get(self.base + path, timeout=self.timeout)
            else:
                response = self.http.post(
                    self.base + path,
                    json=body,
                    timeout=self.timeout,
                    headers={CSRF_HEADER: self.http.cookies.get(CSRF_COOKIE, "")},
                )
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
            elif method == "POST" and any(m in response.content for m in ERROR_MARKERS):
                error = "Dash error payload"
        except requests.RequestException as exc:
            error = type(exc).__name__
        self.results.request(page, kind, (time.perf_counter() - t) * 1000, error)
        return None if error else response

    def load(self, page: str, url: str, pool: ThreadPoolExecutor) -> None:
        """One full page load: document, layout, dependencies, router, page callbacks."""
        t = time.perf_counter()
        doc = self._call(page, "GET page", "GET", url)
        end_id = re.search(r'"end_id":"([^"]+)"', doc.text) if doc is not None else None
        update = UPDATE + (f"?endId={end_id.group(1)}" if end_id else "")
        shell = self._call(page, "GET /_dash-layout", "GET", "/_dash-layout")
        self._call(page, "GET /_dash-dependencies", "GET", "/_dash-dependencies")
        routed = self._call(page, "POST router", "POST", update, route_payload(self.deps, url))
        if shell is None or routed is None:
            self.results.page_load(page, url, (time.perf_counter() - t) * 1000)
            return
        new = routed.json()["response"]["page-content"]["children"]
        page_ids = set(components(new))
        comps = components(shell.json()) | components(new)
        plan = waves(initial_callbacks(self.deps, comps, page_ids))
        for n, wave in enumerate(plan):
            jobs = [
                pool.submit(
                    self._call,
                    page,
                    callback_name(dep),
                    "POST",
                    update,
                    payload(dep, comps, []),
                )
                for dep in wave
            ]
            answers = [job.result() for job in jobs]
            if n + 1 < len(plan):  # later callbacks see what this wave returned
                for answer in answers:
                    if answer is not None and answer.status_code == 200:
                        for cid, props in answer.json().get("response", {}).items():
                            if cid in comps:
                                comps[cid][1].update(props)
        self.results.page_load(page, url, (time.perf_counter() - t) * 1000)


# -- the server and the run -----------------------------------------------------------------


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(
    db: Path, data_dir: Path, port: int, workers: int, threads: int, log: Path
) -> subprocess.Popen[bytes]:
    """`govpulse serve` on 127.0.0.1:port in its own process group; wait until it answers."""
    from dashboard.users import UserStore

    UserStore(data_dir / "users.db").add(USER, PASSWORD, "leader")
    cmd = [
        sys.executable,
        "-m",
        "govpulse.cli",
        "--store",
        f"sqlite:///{db}",
        "--set",
        f"data_dir={data_dir}",
        "serve",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        str(workers),
        "--threads",
        str(threads),
    ]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()[-2000:]}")
        try:
            if requests.get(f"http://127.0.0.1:{port}/login", timeout=2).status_code == 200:
                return proc
        except requests.RequestException:
            pass
        time.sleep(0.3)
    stop_server(proc)
    raise RuntimeError("server did not answer within 60 s")


def stop_server(proc: subprocess.Popen[bytes]) -> None:
    """SIGTERM (the parent stops its forked workers), then SIGKILL the group if needed."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(10)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: only processes we started
    proc.wait(5)


def probe(base: str, go: Any, stop: Any, interval: float, out: Any) -> None:
    """The baseline, in its own process (so the load generator's GIL does not
    slow it): GET /login (no store work) every `interval` s while the users run."""
    http = requests.Session()
    times: list[float] = []
    errors = 0
    go.wait(3600)
    while not stop.wait(interval):
        t = time.perf_counter()
        try:
            ok = http.get(f"{base}/login", timeout=30).status_code == 200
        except requests.RequestException:
            ok = False
        times.append((time.perf_counter() - t) * 1000)
        errors += not ok
    out.put((times, errors))


def run(args: argparse.Namespace, base: str, urls: dict[str, list[str]]) -> tuple[Results, float]:
    results = Results()
    # Forked before any client thread exists; waits for `go`.
    mp = multiprocessing.get_context("fork")
    go, stop, out = mp.Event(), mp.Event(), mp.Queue()
    prober = mp.Process(target=probe, args=(base, go, stop, args.probe_interval, out), daemon=True)
    prober.start()
    users = [User(base, results, args.timeout) for _ in range(args.users)]
    callbacks: ThreadPoolExecutor | None = None
    try:
        with ThreadPoolExecutor(args.users) as pool:
            list(pool.map(User.login, users))
        # Callbacks of one page load go out together, as the renderer sends them.
        callbacks = ThreadPoolExecutor(args.users * 4, thread_name_prefix="callback")
        # Warm-up, outside the timed run: every URL once (store opened, SQLite pages
        # cached).  Its page loads are the *cold* figures: the shared result cache
        # is empty, so each is the first load of its filter combination (the
        # server's warmer may be computing the default views at the same time).
        results.recording = False
        for page, page_urls in urls.items():
            for url in page_urls:
                t = time.perf_counter()
                users[0].load(page, url, callbacks)
                results.first[url] = (time.perf_counter() - t) * 1000
        results.recording = True
        order = list(urls.items())
        deadline = time.monotonic() + args.seconds

        def loop(i: int) -> None:
            turns = itertools.count(i)  # users start on different pages
            while time.monotonic() < deadline and not STOP.is_set():
                n = next(turns)
                page, page_urls = order[n % len(order)]
                users[i].load(page, page_urls[(n // len(order)) % len(page_urls)], callbacks)
                if args.think:
                    time.sleep(args.think)

        start = time.monotonic()
        go.set()
        with ThreadPoolExecutor(args.users, thread_name_prefix="user") as pool:
            list(pool.map(loop, range(args.users)))
        elapsed = time.monotonic() - start
        stop.set()
        results.probe, results.probe_errors = out.get(timeout=60)
    finally:
        go.set()
        stop.set()
        prober.join(40)
        if prober.is_alive():
            prober.kill()
        if callbacks is not None:
            callbacks.shutdown()
    return results, elapsed


def report(
    args: argparse.Namespace,
    results: Results,
    elapsed: float,
    urls: dict[str, list[str]],
    load: tuple[float, float],
) -> None:
    pages = list(urls)
    all_requests = [ms for values in results.requests.values() for ms in values]
    all_loads = [ms for values in results.loads.values() for ms in values]
    total = len(all_requests)
    errors = sum(results.errors.values())
    print(
        f"\nDashboard under load: {args.size:,} messages (SQLite), {args.users} users, "
        f"{args.seconds:g} s ({elapsed:.1f} s with the last page loads), think time "
        f"{args.think:g} s, `govpulse serve --workers {args.workers} --threads {args.threads}` "
        f"on 127.0.0.1, {os.cpu_count()} CPUs shared by server and clients (1-min load average "
        f"{load[0]:.1f} before, {load[1]:.1f} after); times in ms\n"
    )
    print(
        "| page | page loads | page load p50 | page load p95 | requests | "
        "request p50 | request p95 | errors |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for page in pages:
        loads = results.loads.get(page)
        if not loads:
            continue
        reqs = [ms for (p, _), values in results.requests.items() if p == page for ms in values]
        print(
            f"| {page} | {len(loads)} | {statistics.median(loads):.0f} | {pct(loads, 0.95):.0f} | "
            f"{len(reqs)} | {statistics.median(reqs):.0f} | {pct(reqs, 0.95):.0f} | "
            f"{results.error_pages[page]} |"
        )
    print(
        f"| **all pages** | {len(all_loads)} | {statistics.median(all_loads):.0f} | "
        f"{pct(all_loads, 0.95):.0f} | {total} | {statistics.median(all_requests):.0f} | "
        f"{pct(all_requests, 0.95):.0f} | {errors} |"
    )
    print("\nPer request (each callback the page fires on load, and the page's own GETs):\n")
    print("| page | request | n | p50 | p95 |")
    print("|---|---|---:|---:|---:|")
    pooled: dict[str, list[float]] = defaultdict(list)
    rank = {page: i for i, page in enumerate(pages)}
    for (page, kind), values in sorted(
        results.requests.items(), key=lambda item: (rank.get(item[0][0], 99), item[0][1])
    ):
        if kind.startswith("GET"):
            pooled[kind].extend(values)
            continue
        print(
            f"| {page} | `{kind}` | {len(values)} | {statistics.median(values):.0f} | "
            f"{pct(values, 0.95):.0f} |"
        )
    for kind, values in pooled.items():
        print(
            f"| all pages | `{kind}` | {len(values)} | {statistics.median(values):.0f} | "
            f"{pct(values, 0.95):.0f} |"
        )
    print("\nPage loads per URL:\n")
    print("| URL | n | p50 | p95 |")
    print("|---|---:|---:|---:|")
    for url in (u for page_urls in urls.values() for u in page_urls):
        loads = results.url_loads.get(url)
        if loads:
            shown = unquote(url)
            print(
                f"| `{shown}` | {len(loads)} | {statistics.median(loads):.0f} | {pct(loads, 0.95):.0f} |"
            )
    if results.first:
        print(
            "\nFirst load of each URL (one user before the timed run, result cache empty: "
            "what the first visitor of a filter combination waits for):\n"
        )
        print("| URL | ms |\n|---|---:|")
        for url, ms in results.first.items():
            print(f"| `{unquote(url)}` | {ms:.0f} |")
        first = list(results.first.values())
        print(f"| **median / max** | {statistics.median(first):.0f} / {max(first):.0f} |")
    probe = results.probe
    p50, p95 = statistics.median(all_requests), pct(all_requests, 0.95)
    base50, base95 = (statistics.median(probe), pct(probe, 0.95)) if probe else (0.0, 0.0)
    print("\n| figure | value |\n|---|---:|")
    print(f"| requests (users) | {total} |")
    print(f"| requests/s | {total / elapsed:.1f} |")
    print(f"| page loads/s | {len(all_loads) / elapsed:.2f} |")
    print(f"| errors | {errors} ({errors / max(total, 1):.1%}) |")
    print(f"| request p50 / p95 | {p50:.0f} / {p95:.0f} ms |")
    print(
        f"| baseline GET /login p50 / p95 (same run, {len(probe)} probes, "
        f"{results.probe_errors} errors) | {base50:.0f} / {base95:.0f} ms |"
    )
    print(
        f"| ratio request / baseline, p50 · p95 | {p50 / max(base50, 0.01):.1f}x · "
        f"{p95 / max(base95, 0.01):.1f}x |"
    )
    print(f"| user logins (argon2), p50 | {statistics.median(results.login or [0]):.0f} ms |")
    if results.errors:
        print(
            "\nErrors by kind: " + "; ".join(f"{k} ×{n}" for k, n in results.errors.most_common(8))
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20, help="simulated users")
    parser.add_argument("--seconds", type=float, default=60, help="timed run length")
    parser.add_argument("--size", type=int, default=1_000_000, help="messages in the store")
    parser.add_argument("--workers", type=int, default=2, help="server worker processes")
    parser.add_argument("--threads", type=int, default=8, help="server threads per worker")
    parser.add_argument("--think", type=float, default=0.0, help="seconds between page loads")
    parser.add_argument(
        "--probe-interval", type=float, default=0.25, help="seconds between /login probes"
    )
    parser.add_argument("--timeout", type=float, default=30, help="per-request timeout (s)")
    args = parser.parse_args()

    def _stop(*_args: object) -> None:
        STOP.set()
        raise SystemExit(143)

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    BD.build(args.size).close()
    db = BD.CACHE / f"dashboard-{args.size}.db"
    urls = page_urls(db)
    with tempfile.TemporaryDirectory(prefix="govpulse-load-") as tmp:
        data_dir = Path(tmp)
        port = free_port()
        log = data_dir / "server.log"
        load_before = os.getloadavg()[0]
        proc = start_server(db, data_dir, port, args.workers, args.threads, log)
        try:
            results, elapsed = run(args, f"http://127.0.0.1:{port}", urls)
        finally:
            stop_server(proc)
        report(args, results, elapsed, urls, (load_before, os.getloadavg()[0]))
        if results.errors:
            tail = log.read_text(errors="replace").splitlines()[-15:]
            print("\nServer log (last lines):\n\n```\n" + "\n".join(tail) + "\n```")


if __name__ == "__main__":
    main()
