"""Real-browser tests: headless Debian Chromium drives the live dashboard.

The app runs on 127.0.0.1 (free port) in a thread over a temp store; the
browser logs in, opens every page, uses a filter, exports CSV and Excel,
checks that XSS payloads stay text, and ends each page with a clean
console.  Screenshots go to artifacts/screenshots/ (git-ignored).
"""

from __future__ import annotations

import os
import shutil
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

import pytest

from .conftest import NOW, fixture_messages

ROOT = Path(__file__).resolve().parents[2]
SHOTS = ROOT / "artifacts" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")

pytestmark = [pytest.mark.browser, pytest.mark.timeout(240)]


def _require_browser() -> None:
    if CHROMIUM.exists() and CHROMEDRIVER.exists():
        return
    message = "Debian chromium + chromium-driver are not installed (apt-get install chromium chromium-driver)"
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture
def live_server(filled_store, dash_settings, tmp_path, users):
    from werkzeug.serving import make_server

    from dashboard.app import create_app

    app = create_app(filled_store, dash_settings, data_dir=tmp_path / "data", clock=lambda: NOW)
    if os.environ.get("DASH_DBG"):
        sys.path.insert(0, "/tmp")
        import dash_dbg

        dash_dbg.hook(app)
    server = make_server("127.0.0.1", 0, app.server, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}"
    server.shutdown()
    thread.join(5)


@pytest.fixture
def browser(tmp_path):
    _require_browser()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    downloads = tmp_path / "downloads"
    downloads.mkdir()
    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-dev-shm-usage",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--no-first-run",
        "--window-size=1400,1000",
        "--lang=zh-CN",
        f"--user-data-dir={tmp_path / 'profile'}",
    ):
        options.add_argument(arg)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd(
        "Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
    )
    driver.downloads = downloads
    yield driver
    driver.quit()


def _wait(driver, css: str, timeout: float = 20, text: str | None = None):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    wait = WebDriverWait(driver, timeout)
    if text is None:
        return wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, css)))
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, css), text))
    return driver.find_element(By.CSS_SELECTOR, css)


def _settle(driver, timeout: float = 20) -> None:
    """Wait until Dash has no callback in flight (loading states cleared)."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        busy = driver.execute_script(
            "return document.querySelectorAll('[data-dash-is-loading=\"true\"]').length"
        )
        if not busy:
            time.sleep(0.3)
            return
        time.sleep(0.2)


def _console_errors(driver) -> list[str]:
    return [e["message"] for e in driver.get_log("browser") if e["level"] in ("SEVERE", "ERROR")]


def _shot(driver, name: str) -> None:
    SHOTS.mkdir(parents=True, exist_ok=True)
    driver.save_screenshot(str(SHOTS / f"{name}.png"))


def _login(driver, base: str, user: str, password: str) -> None:
    driver.get(base + "/")
    _wait(driver, "#login-username").send_keys(user)
    driver.find_element("css selector", "#login-password").send_keys(password)
    driver.find_element("css selector", "#login-submit").click()
    _wait(driver, "#gp-user", text=user)


def test_every_page_filter_export_and_clean_console(live_server, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    base = live_server
    browser.get(base + "/login")
    _shot(browser, "00-login")
    _login(browser, base, "staff1", "staff-pass-1")

    # 总览: cards, charts with data, rising terms, crawl health
    _wait(browser, "#overview-today-total")
    _wait(browser, "#overview-crawl-table")
    _settle(browser)
    assert browser.find_element(By.CSS_SELECTOR, "#overview-today-total").text.isdigit()
    assert browser.find_elements(
        By.CSS_SELECTOR, "#overview-by-source .bars path, #overview-by-source .point path"
    )
    _wait(browser, "#overview-terms", text="噪音扰民")
    _shot(browser, "01-overview")
    assert _console_errors(browser) == []

    # 回复时效: table, charts; click a department for its overdue letters
    browser.find_element(By.CSS_SELECTOR, "#nav-timeliness").click()
    _wait(browser, "#timeliness-table td[data-dash-column='group']")
    _settle(browser)
    browser.find_element(By.CSS_SELECTOR, "#timeliness-table td[data-dash-column='group']").click()
    _wait(browser, "#timeliness-overdue h3", text="超期未答复来信")
    _shot(browser, "02-timeliness")
    assert _console_errors(browser) == []

    # 热点
    browser.find_element(By.CSS_SELECTOR, "#nav-hot").click()
    _wait(browser, "#hot-clusters", text="噪音扰民")
    _settle(browser)
    _shot(browser, "03-hot")
    assert _console_errors(browser) == []

    # 谣言: select the top post and mark it reviewed
    browser.find_element(By.CSS_SELECTOR, "#nav-rumours").click()
    _wait(browser, "#rumours-table td[data-dash-column='title']")
    _settle(browser)
    browser.find_element(By.CSS_SELECTOR, "#rumours-table input[type='radio']").click()
    browser.find_element(By.CSS_SELECTOR, "#rumours-mark-reviewed").click()
    _wait(browser, "#rumours-status", text="已标记为「已核查」")
    _settle(browser)
    _shot(browser, "04-rumours")
    assert browser.execute_script("return window.__xss === undefined")
    assert _console_errors(browser) == []

    # 检索: type a query (a filter), the URL follows, results highlight
    browser.find_element(By.CSS_SELECTOR, "#nav-search").click()
    box = _wait(browser, "#search-f-q")
    _settle(browser)
    box.send_keys("噪音扰民", Keys.ENTER)
    _wait(browser, "#search-summary", text="关键词「噪音扰民」")
    _settle(browser)
    assert "q=" in browser.current_url
    assert browser.find_elements(By.CSS_SELECTOR, "#search-hits mark")
    total = int(browser.find_element(By.CSS_SELECTOR, "#search-summary").text.split()[1])
    _shot(browser, "05-search")
    # The URL is shareable: opening it again restores the filter.
    browser.get(browser.current_url)
    _wait(browser, "#search-summary", text="关键词「噪音扰民」")
    assert browser.find_element(By.CSS_SELECTOR, "#search-f-q").get_attribute("value") == "噪音扰民"

    # Export both formats from the current view.
    _settle(browser)
    browser.find_element(By.CSS_SELECTOR, "#search-export-csv").click()
    browser.find_element(By.CSS_SELECTOR, "#search-export-xlsx").click()
    files = _downloads(browser.downloads, {".csv", ".xlsx"})
    csv_text = files[".csv"].read_text(encoding="utf-8-sig")
    assert len(csv_text.strip().splitlines()) >= total + 1
    from openpyxl import load_workbook

    sheet = load_workbook(files[".xlsx"], read_only=True).active
    assert sum(1 for _ in sheet.iter_rows()) == total + 1
    assert _console_errors(browser) == []

    # 消息详情 of a letter full of HTML/script: shown as text, never run.
    xss = fixture_messages()[0]
    browser.get(f"{base}/message?id={quote(xss.id)}")
    body = _wait(browser, "#detail-body", text="<script>")
    assert "onerror" in body.text
    _settle(browser)
    assert browser.execute_script("return window.__xss === undefined")
    assert not browser.find_elements(
        By.CSS_SELECTOR, "#detail-body script, #detail-body img, main img"
    )
    _shot(browser, "06-detail")
    assert _console_errors(browser) == []

    # 预警: empty state without an alerts database
    browser.find_element(By.CSS_SELECTOR, "#nav-alerts").click()
    _wait(browser, "#alerts-alerts-empty")
    _settle(browser)
    _shot(browser, "07-alerts")
    assert _console_errors(browser) == []

    # Search for the payload itself: results render it as text too.
    browser.get(f"{base}/search?q=script")
    _wait(browser, "#search-summary", text="共")
    _settle(browser)
    assert browser.execute_script("return window.__xss === undefined")
    assert _console_errors(browser) == []


def test_leader_is_read_only_in_the_browser(live_server, browser, filled_store):
    from selenium.webdriver.common.by import By

    _login(browser, live_server, "leader1", "leader-pass-1")
    browser.get(f"{live_server}/rumours")
    _wait(browser, "#rumours-table td[data-dash-column='title']")
    _settle(browser)
    browser.find_element(By.CSS_SELECTOR, "#rumours-table input[type='radio']").click()
    browser.find_element(By.CSS_SELECTOR, "#rumours-mark-confirmed").click()
    _wait(browser, "#rumours-status", text="只读")
    assert filled_store.labels(task="rumour") == []
    _shot(browser, "08-leader-readonly")
    assert _console_errors(browser) == []


def _downloads(folder: Path, suffixes: set[str], timeout: float = 20) -> dict[str, Path]:
    """The finished downloads by suffix.

    Chromium reserves the final name with an empty file while it writes
    ``*.crdownload``, so a file counts only once no partial download is
    left and it is not empty (a half-written .xlsx is not a zip file yet).
    """
    deadline = time.time() + timeout
    while time.time() < deadline:
        names = list(folder.iterdir())
        done = {p.suffix: p for p in names if p.suffix in suffixes}
        partial = any(p.suffix == ".crdownload" for p in names)
        if set(done) == suffixes and not partial and all(p.stat().st_size for p in done.values()):
            return done
        time.sleep(0.2)
    raise AssertionError(f"downloads missing: {sorted(p.name for p in folder.iterdir())}")


def teardown_module() -> None:
    shutil.rmtree(ROOT / "artifacts" / "tmp", ignore_errors=True)
