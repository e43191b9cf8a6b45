"""The whole product, end to end, as a user starts it: `govpulse demo`.

The demo runs in a subprocess (practice site, three spiders through the
full pipeline, the embedded store, alert evaluation, the scheduler, the
dashboard).  A real headless Chromium logs in and checks every page shows
crawled data from all three sources; a search finds a crawled letter; a
burst of messages injected through `govpulse import` raises a hot-topic
alert that reaches the outbox; SIGTERM stops everything cleanly.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from govpulse.schema import TZ
from store.base import Filters
from store.sqlite import SQLiteStore
from tests.dashboard.test_browser import _console_errors, _login, _settle, _shot, _wait

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]
BURST_TERM = "管涌"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def demo(tmp_path):
    port = _free_port()
    data = tmp_path / "demo"
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    log = (tmp_path / "demo.out").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "govpulse.cli",
            "demo",
            "--port",
            str(port),
            "--data-dir",
            str(data),
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
        cwd=tmp_path,
    )
    started = time.monotonic()
    yield proc, f"http://127.0.0.1:{port}", data, tmp_path / "demo.out", started
    if proc.poll() is None:  # the test failed early: stop the demo and its children
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()  # its children follow it (govpulse.demo.follow_parent)
            proc.wait(10)


def _wait_for(predicate, timeout: float, what: str, log: Path | None = None):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(1)
    tail = log.read_text(errors="replace")[-3000:] if log else ""
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}\n{tail}")


def _store_count(db: Path, **filters) -> int:
    if not db.exists():
        return 0
    store = SQLiteStore(db)
    try:
        return store.count(filters=Filters.make(**filters))
    finally:
        store.close()


def test_demo_end_to_end(demo, browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    proc, base, data, log, started = demo
    db = data / "govpulse.db"

    # First data within 60 seconds of starting.
    _wait_for(lambda: _store_count(db) > 0, 60, "first data in the store", log)
    first_data_s = time.monotonic() - started
    _wait_for(lambda: "ready" in log.read_text(errors="replace"), 300, "the demo to be ready", log)
    for source in ("weibo", "mailbox", "forum"):
        assert _store_count(db, source=source) > 0, source

    # A real browser: log in, every page shows data from all three sources.
    _login(browser, base, "demo", "govpulse-demo")
    _wait(browser, "#overview-by-source", timeout=90)
    _settle(browser, 60)
    overview = browser.find_element(By.CSS_SELECTOR, "#overview-by-source").text
    for label in ("微博", "领导信箱", "论坛"):
        assert label in overview, f"{label} missing from the overview chart"
    _shot(browser, "demo-01-overview")

    browser.find_element(By.CSS_SELECTOR, "#nav-timeliness").click()
    _wait(browser, "#timeliness-table td[data-dash-column='group']", timeout=60)
    _settle(browser, 60)
    _shot(browser, "demo-02-timeliness")

    browser.find_element(By.CSS_SELECTOR, "#nav-hot").click()
    _wait(browser, "#hot-clusters, #hot-none", timeout=90)
    _settle(browser, 60)
    _shot(browser, "demo-03-hot")

    browser.find_element(By.CSS_SELECTOR, "#nav-rumours").click()
    _wait(browser, "#rumours-table", timeout=90)
    _settle(browser, 60)
    _shot(browser, "demo-04-rumours")

    # A search finds a crawled letter by its title.
    store = SQLiteStore(db)
    letter = store.search(filters=Filters.make(source="mailbox"), per_page=1).hits[0]
    store.close()
    browser.find_element(By.CSS_SELECTOR, "#nav-search").click()
    box = _wait(browser, "#search-f-q")
    _settle(browser, 60)
    box.send_keys(letter.title, Keys.ENTER)
    _wait(browser, "#search-hits", text=letter.title[:6], timeout=60)
    _shot(browser, "demo-05-search")
    assert _console_errors(browser) == []

    # Inject a burst (as a crawl of a new incident would bring it) and watch the outbox.
    now = datetime.now(TZ)
    burst = tmp_path / "burst.jsonl"
    with burst.open("w", encoding="utf-8") as fh:
        for i in range(12):
            fh.write(json.dumps({
                "id": f"burst-{i}",
                "title": f"青山水库大坝出现{BURST_TERM}险情{i}",
                "body": f"下游村民很担心，水库大坝{BURST_TERM}，请尽快处置。第{i}条",
                "posted_at": (now - timedelta(minutes=5 * i)).isoformat(),
            }, ensure_ascii=False) + "\n")  # fmt: skip
    env = {
        **os.environ,
        "GOVPULSE_DATA_DIR": str(data),
        "GOVPULSE_STORE_URL": f"sqlite:///{db}",
        "GOVPULSE_ALERTS_CHANNELS": '["outbox"]',
        "GOVPULSE_ALERTS_GROUP_WAIT_S": "0",
    }
    cli = [sys.executable, "-m", "govpulse.cli"]
    subprocess.run(
        [*cli, "import", str(burst), "--source", "forum"], env=env, check=True, capture_output=True
    )
    outbox = data / "alerts_outbox.jsonl"

    def hot_alert() -> bool:
        subprocess.run([*cli, "alerts", "evaluate"], env=env, check=True, capture_output=True)
        return outbox.exists() and BURST_TERM in outbox.read_text(encoding="utf-8")

    _wait_for(hot_alert, 120, "the burst's hot-topic alert in the outbox", log)
    browser.find_element(By.CSS_SELECTOR, "#nav-alerts").click()
    _wait(browser, "body", text=BURST_TERM, timeout=60)
    _settle(browser, 60)
    _shot(browser, "demo-06-alerts")
    assert _console_errors(browser) == []

    # SIGTERM stops the demo and every process it started.
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(60) == 0
    assert "demo stopped" in log.read_text(errors="replace")
    print(f"first data after {first_data_s:.1f}s")
    assert first_data_s < 60
