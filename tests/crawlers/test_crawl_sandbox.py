"""End to end: spiders crawl the practice site through every pipeline step into SQLite.

Each crawl runs in a subprocess (Twisted's reactor cannot restart), against
a sandbox served on 127.0.0.1 by the test, with a fixed clock.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from crawlers.sandbox.generator import Clock, World
from crawlers.sandbox.server import Sandbox, serve_in_thread
from govpulse.schema import MAX_TEXT_CHARS, TZ, make_id
from store.base import Filters
from store.sqlite import SQLiteStore

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2024, 6, 1, 12, 0, tzinfo=TZ)


@pytest.fixture(scope="module")
def site():
    server, url = serve_in_thread(
        Sandbox(World(seed=7, history_days=4), Clock(START, speed=0.0), faults=0.05)
    )
    yield url
    server.shutdown()


@pytest.fixture(scope="module")
def forum_reference(tmp_path_factory, site):
    """Ids of a clean, complete crawl of boards 41 and 42 (what resumed/shared runs must match)."""
    ref = tmp_path_factory.mktemp("forum_ref")
    done = crawl(ref, site, "forum", "--boards", "41,42")
    assert done.returncode == 0, done.stderr[-3000:]
    with open_db(ref) as db:
        return {m.id for m in db.iter_messages()}


def env_for(tmp: Path, base: str, **extra: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        GOVPULSE_DATA_DIR=str(tmp),
        GOVPULSE_CRAWL_BASE_URL=base,
        GOVPULSE_CRAWL_DOWNLOAD_DELAY="0",
        GOVPULSE_CRAWL_AUTOTHROTTLE="false",
        GOVPULSE_CRAWL_CLASSIFY="false",
        GOVPULSE_CRAWL_RETRY_BACKOFF_BASE="0.05",
        GOVPULSE_LOG_LEVEL="INFO",
    )
    env.update(extra)
    return env


def crawl(
    tmp: Path, base: str, name: str, *args: str, **extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "govpulse.cli", "crawl", name, *args],
        cwd=tmp,
        env=env_for(tmp, base, **extra),
        capture_output=True,
        text=True,
        timeout=240,
    )


def open_db(tmp: Path) -> SQLiteStore:
    return SQLiteStore(tmp / "govpulse.db")


def test_mailbox_crawl_then_incremental(tmp_path, site):
    first = crawl(tmp_path, site, "mailbox")
    assert first.returncode == 0, first.stderr[-3000:]
    with open_db(tmp_path) as db:
        total = db.count(filters=Filters.make(source="mailbox"))
        assert total > 40
        channels = {c for c, _ in db.facets(["channel"])["channel"]}
        assert {"滁州市市长信箱", "成都市12345市长信箱"} <= channels and len(channels) >= 5
        answered = db.search(
            filters=Filters.make(source="mailbox", status="answered"), per_page=200
        ).hits
        assert answered and all(m.reply_body and m.replied_at and m.replier for m in answered)
        open_ = db.search(filters=Filters.make(source="mailbox", status="open"), per_page=200).hits
        assert open_ and all(m.extra.get("revisit_at") not in (None, "done") for m in open_)
        assert not any("1381234" in (m.body or "") for m in db.iter_messages())  # masked
        events = db.crawl_events(source="mailbox")
        assert events and events[0].kind == "finished"
    second = crawl(tmp_path, site, "mailbox")
    assert second.returncode == 0, second.stderr[-3000:]
    assert "govpulse/incremental/stopped" in second.stderr
    with open_db(tmp_path) as db:
        assert db.count(filters=Filters.make(source="mailbox")) == total


def test_crawled_items_are_tagged_in_store_batches(tmp_path, site):
    """With classification on, every stored item is tagged, though the classify step
    tags whole store batches (crawl.store_batch) rather than one item per call."""
    done = crawl(
        tmp_path, site, "mailbox", GOVPULSE_CRAWL_CLASSIFY="true", GOVPULSE_CRAWL_STORE_BATCH="7"
    )
    assert done.returncode == 0, done.stderr[-3000:]
    with open_db(tmp_path) as db:
        stored = list(db.iter_messages())
    assert len(stored) > 40
    assert all(m.urgency is not None and m.topic_score is not None for m in stored)
    assert "govpulse/classify/tagged" in done.stderr


def test_weibo_and_forum_with_broken_channels(tmp_path, site):
    wb = crawl(
        tmp_path,
        site,
        "weibo",
        GOVPULSE_CRAWL_WEIBO_ACCOUNTS="1000000001,1000000002,1000000099",
        GOVPULSE_CRAWL_WEIBO_MAX_COMMENT_PAGES="2",
    )
    assert wb.returncode == 0, wb.stderr[-3000:]
    fo = crawl(
        tmp_path, site, "forum", "--boards", "41,49,47,48", GOVPULSE_CRAWL_MAX_LIST_PAGES="4"
    )
    assert fo.returncode == 0, fo.stderr[-3000:]
    assert (
        "'govpulse/forum/page_cap': 1" in fo.stderr
    )  # board 48 paginates forever: stopped at the cap
    busy = crawl(
        tmp_path,
        site,
        "mailbox",
        GOVPULSE_CRAWL_LIUYAN_FORUMS="199",
        GOVPULSE_CRAWL_MAILBOX_SITES="",
    )
    assert busy.returncode == 0, busy.stderr[-3000:]
    with open_db(tmp_path) as db:
        posts = db.search(filters=Filters.make(source="weibo"), per_page=500).hits
        comments = [m for m in posts if m.parent_id]
        assert comments and any(m.reply_body and m.replier for m in comments)
        events = db.crawl_events(source="weibo")
        kinds = {e.kind for e in events}
        assert "login_expired" in kinds
        # A post with 45 comments and a 2-page cap (40): said, not hidden.
        assert any(
            e.kind == "incomplete" and "40 of 45 comments fetched" in e.detail for e in events
        )
        threads = db.search(filters=Filters.make(source="forum"), per_page=500).hits
        assert any(m.reply_body for m in threads) and any(m.duplicate_of is None for m in threads)
        fkinds = {e.kind for e in db.crawl_events(source="forum")}
        assert "captcha" in fkinds
        finished = [e for e in db.crawl_events(source="forum") if e.kind == "finished"]
        assert finished and not finished[0].ok  # a run with a captcha is not reported as fine
        huge = db.get(make_id("forum", "47000001"))
        assert (
            huge is not None and len(huge.body) == MAX_TEXT_CHARS
        )  # 10 MB page read, text clipped
        assert "blocked" in {e.kind for e in db.crawl_events(source="mailbox")}  # 系统繁忙


def test_sigkill_and_resume_loses_and_duplicates_nothing(tmp_path, site, forum_reference):
    expected = forum_reference
    work = tmp_path / "work"
    work.mkdir()
    env = env_for(
        work,
        site,
        GOVPULSE_CRAWL_DOWNLOAD_DELAY="0.05",
        GOVPULSE_CRAWL_CONCURRENT_PER_DOMAIN="1",
        GOVPULSE_CRAWL_STORE_BATCH="5",
    )
    proc = subprocess.Popen(
        [sys.executable, "-m", "govpulse.cli", "crawl", "forum", "--boards", "41,42"],
        cwd=work,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline:
        time.sleep(0.3)
        if (work / "govpulse.db").exists():
            with open_db(work) as db:
                if db.count() >= 10:
                    break
    proc.send_signal(signal.SIGKILL)
    proc.wait(10)
    with open_db(work) as db:
        partial = db.count()
    assert 0 < partial < len(expected), "kill the crawl mid-run"
    again = crawl(work, site, "forum", "--boards", "41,42")
    assert again.returncode == 0, again.stderr[-3000:]
    with open_db(work) as db:
        got = [m.id for m in db.iter_messages()]
    assert len(got) == len(set(got))  # 0 duplicated
    assert set(got) == expected  # 0 lost


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_scale_out_through_redis(tmp_path, site, forum_reference):
    """Two workers share one Redis queue: together they crawl everything exactly once."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not installed (apt-get install redis-server)")
    import redis

    expected = forum_reference
    port = _free_port()
    server = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = redis.Redis(port=port)
        for _ in range(50):
            try:
                client.ping()
                break
            except redis.ConnectionError:
                time.sleep(0.1)
        shared = tmp_path / "shared"
        shared.mkdir()
        env = env_for(
            shared,
            site,
            GOVPULSE_CRAWL_REDIS_URL=f"redis://127.0.0.1:{port}/0",
            GOVPULSE_CRAWL_REDIS_RUN="t1",
            GOVPULSE_CRAWL_DOWNLOAD_DELAY="0.3",
            GOVPULSE_CRAWL_CONCURRENT_PER_DOMAIN="2",
            GOVPULSE_CRAWL_CONCURRENT_REQUESTS="2",
        )
        cmd = [sys.executable, "-m", "govpulse.cli", "crawl", "forum", "--boards", "41,42"]
        workers = [
            subprocess.Popen(
                cmd, cwd=shared, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
            for _ in range(2)
        ]
        outs = [w.communicate(timeout=240) for w in workers]
        assert all(w.returncode == 0 for w in workers), outs[0][1][-2000:]
        assert all("scrapy_redis.scheduler.Scheduler" in err for _, err in outs)
        pages = [
            int(m.group(1)) if (m := re.search(r"'response_received_count': (\d+)", err)) else 0
            for _, err in outs
        ]
        assert all(p > 1 for p in pages), pages  # both workers took requests from the shared queue
        assert client.scard("forum:t1:dupefilter") >= len(expected) // 2
        with open_db(shared) as db:
            got = [m.id for m in db.iter_messages()]
        assert len(got) == len(set(got)) and set(got) == expected
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(10)


def test_revisit_captures_late_replies(tmp_path):
    """Open letters are re-visited (--revisit) and get the reply that arrived later."""
    clock = Clock(START, speed=1.0)
    server, url = serve_in_thread(Sandbox(World(seed=11, history_days=3), clock, faults=0.0))
    try:
        first = crawl(
            tmp_path, url, "mailbox", "--sites", "chuzhou", GOVPULSE_CRAWL_REVISIT_HOURS="0,0,0"
        )
        assert first.returncode == 0, first.stderr[-3000:]
        with open_db(tmp_path) as db:
            open_before = {m.id for m in db.iter_messages(filters=Filters.make(status="open"))}
            total = db.count()
        assert open_before
        clock.start = clock.start + timedelta(days=90)  # most letters get answered meanwhile
        again = crawl(
            tmp_path,
            url,
            "mailbox",
            "--sites",
            "chuzhou",
            "--revisit",
            GOVPULSE_CRAWL_REVISIT_HOURS="0,0,0",
        )
        assert again.returncode == 0, again.stderr[-3000:]
        pages = int(re.search(r"'response_received_count': (\d+)", again.stderr).group(1))
        assert (
            pages == len(open_before) + 1
        )  # robots.txt + one detail page per open letter, no list pages
        with open_db(tmp_path) as db:
            now_answered = [m for m in db.get_many(sorted(open_before)) if m.reply_body]
            assert db.count() == total  # no new letters from a revisit run
        assert len(now_answered) >= len(open_before) // 2
        assert all(m.replied_at and m.extra.get("revisit_at") == "done" for m in now_answered)
    finally:
        server.shutdown()


def test_store_locked_items_are_spooled_then_replayed(tmp_path, site):
    """A store that is locked during the crawl loses nothing: the spool is replayed next run."""
    import sqlite3

    SQLiteStore(tmp_path / "govpulse.db").close()
    lock = sqlite3.connect(tmp_path / "govpulse.db", isolation_level=None)
    lock.execute("BEGIN EXCLUSIVE")
    try:
        down = crawl(
            tmp_path, site, "forum", "--boards", "42", GOVPULSE_STORE_SQLITE_BUSY_TIMEOUT_MS="100"
        )
    finally:
        lock.execute("ROLLBACK")
        lock.close()
    assert down.returncode == 0, down.stderr[-3000:]
    spooled = int(re.search(r"'govpulse/store/spooled': (\d+)", down.stderr).group(1))
    assert spooled > 5 and (tmp_path / "spool" / "forum.jsonl").exists()
    with open_db(tmp_path) as db:
        assert db.count() == 0
    up = crawl(tmp_path, site, "forum", "--boards", "43")
    assert up.returncode == 0, up.stderr[-3000:]
    assert f"'govpulse/store/replayed': {spooled}" in up.stderr
    with open_db(tmp_path) as db:
        assert (
            db.count(filters=Filters.make(channel="民生热线")) == spooled
        )  # board 42: every spooled item, once
    assert not (tmp_path / "spool" / "forum.jsonl").exists()


def test_layout_change_is_an_event_and_incremental_runs_are_not(tmp_path, site):
    """Far fewer rows per list page than last time is layout_changed; a quiet incremental run is not."""
    first = crawl(tmp_path, site, "mailbox", "--sites", "chuzhou")
    assert first.returncode == 0, first.stderr[-3000:]
    quiet = crawl(tmp_path, site, "mailbox", "--sites", "chuzhou")  # incremental: few or no items
    assert quiet.returncode == 0, quiet.stderr[-3000:]
    with open_db(tmp_path) as db:
        latest = db.crawl_events(source="mailbox", limit=1)[0]
        assert latest.kind == "finished" and latest.ok, latest
    shipped = (ROOT / "crawlers" / "sites" / "chuzhou.toml").read_text(encoding="utf-8")
    broken = (
        tmp_path / "chuzhou_redesigned.toml"
    )  # the site changed: the selector now catches one row
    broken.write_text(
        shipped.replace(
            'rows = "div.lyy_listbox ul li"', 'rows = "div.lyy_listbox ul li:first-child"'
        ),
        encoding="utf-8",
    )
    changed = crawl(
        tmp_path, site, "mailbox", "--sites", str(broken), GOVPULSE_CRAWL_INCREMENTAL="false"
    )
    assert changed.returncode == 0, changed.stderr[-3000:]
    with open_db(tmp_path) as db:
        kinds = [e.kind for e in db.crawl_events(source="mailbox", limit=2)]
    assert "layout_changed" in kinds


def test_run_cut_short_by_page_cap_then_next_run_completes(tmp_path, site, forum_reference):
    """A run stopped by crawl.close_after_pages keeps its job; the next run still reads list pages."""
    expected = forum_reference
    work = tmp_path / "work"
    work.mkdir()
    short = crawl(work, site, "forum", "--boards", "41,42", "--max-pages", "4")
    assert short.returncode == 0 and "closespider_pagecount" in short.stderr
    assert (work / "jobs" / "forum").is_dir()
    full = crawl(work, site, "forum", "--boards", "41,42")
    assert full.returncode == 0, full.stderr[-3000:]
    with open_db(work) as db:
        assert {m.id for m in db.iter_messages()} == expected
    assert not (work / "jobs" / "forum").exists()  # removed after a clean finish
