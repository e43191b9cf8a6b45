"""The practice site's generator (reproducible, realistic, clock-driven) and its server."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import datetime, timedelta

from crawlers.pages.base import PageInput
from crawlers.pages.weibo import CommentsPage
from crawlers.sandbox.generator import Clock, World
from crawlers.sandbox.server import Sandbox, serve_in_thread
from govpulse.schema import TZ

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=TZ)


def test_same_seed_same_content_in_another_process():
    here = [
        (x.id, x.title, x.posted_at.isoformat())
        for x in World(seed=3).letters("site:chuzhou", NOW)[:20]
    ]
    code = (
        "from datetime import datetime; from govpulse.schema import TZ; from crawlers.sandbox.generator import World;"
        "import json; now = datetime(2024, 6, 1, 12, 0, tzinfo=TZ);"
        "print(json.dumps([(x.id, x.title, x.posted_at.isoformat()) for x in World(seed=3).letters('site:chuzhou', now)[:20]]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, "PYTHONHASHSEED": "123"},
    )
    assert [tuple(x) for x in json.loads(out.stdout)] == here
    assert here != [
        (x.id, x.title, x.posted_at.isoformat())
        for x in World(seed=4).letters("site:chuzhou", NOW)[:20]
    ]


def test_realistic_delays_bursts_rumours_and_duplicates():
    w = World(seed=42, history_days=90)
    later = NOW + timedelta(days=3650)
    letters = [
        x for c in w.channels_of("site") + w.channels_of("liuyan") for x in w.letters(c.key, NOW)
    ]
    delays = [(x.reply_at - x.posted_at).total_seconds() / 86400 for x in letters if x.reply_at]
    assert 8 <= statistics.median(delays) <= 14 and max(delays) > 60  # median ≈ 11 days, long tail
    never = sum(1 for x in letters if not x.answered(later))
    assert 0.03 < never / len(letters) < 0.15
    days = w.day_range(NOW)
    assert any(w.event_of_day(d) is not None for d in days) and any(
        w.event_of_day(d) is None for d in days
    )
    forum = [x for c in w.channels_of("forum") for x in w.letters(c.key, NOW)]
    assert any(x.extra.get("copy_of") for x in forum)  # letters re-posted on the forum
    refutations = [
        p for c in w.channels_of("weibo") for p in w.posts(c.key, NOW) if p.kind == "refutation"
    ]
    assert refutations and all("辟谣" in p.body for p in refutations)
    assert len({x.department for x in letters}) > 10 and len({x.region for x in letters}) >= 5


def test_content_arrives_and_gets_answered_as_the_clock_runs():
    w = World(seed=5, history_days=10)
    before = w.letters("liuyan:101", NOW)
    after = w.letters("liuyan:101", NOW + timedelta(days=5))
    assert len(after) > len(before)  # new letters keep arriving
    old = {x.id for x in before}
    answered_before = sum(1 for x in before if x.answered(NOW))
    answered_after = sum(1 for x in after if x.id in old and x.answered(NOW + timedelta(days=5)))
    assert answered_after > answered_before  # letters get answered later
    clock = Clock(NOW, speed=3600)
    time.sleep(0.05)
    assert clock.now() > NOW + timedelta(seconds=60)


def test_server_shapes_faults_and_child_replies():
    sandbox = Sandbox(World(seed=9, history_days=5), Clock(NOW, speed=1.0), faults=1.0)
    server, url = serve_in_thread(sandbox)
    try:
        statuses = []
        for _ in range(2):
            try:
                with urllib.request.urlopen(f"{url}/forum.php?mod=forumdisplay&fid=41") as r:
                    statuses.append(r.status)
            except urllib.error.HTTPError as exc:
                statuses.append(exc.code)
        assert statuses[0] in (429, 500, 503) and statuses[1] == 200  # fails once, then works
        sandbox.faults = 0.0
        w = sandbox.world
        post = next(
            p
            for c in w.channels_of("weibo")
            for p in w.posts(c.key, NOW)
            if any(len(c.replies) > 2 for c in w.comments_of(p.id))
        )
        comment = next(c for c in w.comments_of(post.id) if len(c.replies) > 2)
        with urllib.request.urlopen(
            f"{url}/comments/hotFlowChild?cid={comment.id}&max_id=0&max_id_type=0"
        ) as r:
            body = r.read()
        page = CommentsPage(PageInput(url, body), NOW).parse()
        assert {c.id for c in page.comments} >= {
            r.id for r in comment.replies if r.posted_at <= NOW
        }
        with urllib.request.urlopen(f"{url}/openWorkList?page=1") as r:
            assert "charset=gbk" in r.read().decode("gbk")
        req = urllib.request.Request(f"{url}/v1/threads/list/df")
        try:
            urllib.request.urlopen(req)
            raise AssertionError("GET on the list API must answer 405")
        except urllib.error.HTTPError as exc:
            assert exc.code == 405
    finally:
        server.shutdown()


def test_sandbox_command_serves(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [sys.executable, "-m", "govpulse.cli", "sandbox", "--port", str(port), "--days", "3"],
        cwd=tmp_path,
        env={**os.environ, "GOVPULSE_DATA_DIR": str(tmp_path)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/robots.txt") as r:
                    assert b"User-agent" in r.read()
                break
            except (urllib.error.URLError, ConnectionError):
                time.sleep(0.1)
        else:
            raise AssertionError("sandbox did not start")
    finally:
        proc.terminate()
        proc.wait(10)
