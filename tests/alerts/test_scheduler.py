"""`govpulse run`: jobs, crash/hang handling, the single-scheduler lock, SIGTERM."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from alerts.notifiers import read_outbox
from alerts.scheduler import SchedulerLock, SchedulerLocked, job_specs
from alerts.state import AlertState
from govpulse.cli import main
from govpulse.settings import load

FAKE = Path(__file__).resolve().parent.parent / "fixtures" / "alerts" / "fake_crawl.py"


def _env(tmp_path: Path, spiders: dict, **extra: str) -> dict[str, str]:
    env = {
        "GOVPULSE_DATA_DIR": str(tmp_path),
        "GOVPULSE_SCHEDULE_SPIDERS": json.dumps(spiders),
        "GOVPULSE_SCHEDULE_CRAWL_COMMAND": json.dumps([sys.executable, str(FAKE)]),
        "GOVPULSE_ALERTS_QUIET_HOURS": "",
        "GOVPULSE_ALERTS_GROUP_WAIT_S": "0",
    }
    env.update(extra)
    return env


def test_job_specs_follow_settings():
    s = load(
        env={},
        cli={
            "schedule.spiders": '{"weibo": 30, "mailbox": 120}',
            "schedule.revisit_spiders": "mailbox",
            "schedule.digest_time": "08:30",
        },
    )
    specs = {j.id: j for j in job_specs(s)}
    assert list(specs) == [
        "crawl:mailbox",
        "crawl:weibo",
        "revisit:mailbox",
        "retention",
        "alerts",
        "digest",
        "deliver",
    ]
    assert specs["crawl:weibo"].trigger_args == {"minutes": 30.0}
    assert specs["revisit:mailbox"].kwargs == {"spider": "mailbox", "revisit": True}
    assert specs["digest"].trigger_args == {"hour": 8, "minute": 30}
    with pytest.raises(ValueError, match="HH:MM"):
        job_specs(s.with_overrides({"schedule.digest_time": "8点半"}))
    with pytest.raises(ValueError, match="positive"):
        job_specs(s.with_overrides({"schedule.spiders": '{"weibo": 0}'}))


def test_run_once_survives_crash_and_hang(tmp_path):
    env = _env(
        tmp_path,
        {"ok_spider": 30, "crash_spider": 30, "hang_spider": 30},
        GOVPULSE_SCHEDULE_CRAWL_TIMEOUT_MIN="0.04",
        GOVPULSE_SCHEDULE_REVISIT_SPIDERS="ok_mail",
    )
    result = CliRunner().invoke(main, ["run", "--once"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    lines = {
        line.split()[1]: line for line in result.output.splitlines() if line[:3] in ("ok ", "ERR")
    }
    assert "finished" in lines["crawl:ok_spider"]
    assert "crashed" in lines["crawl:crash_spider"] and "exit code 3" in lines["crawl:crash_spider"]
    assert "timeout" in lines["crawl:hang_spider"]
    assert "finished" in lines["revisit:ok_mail"]
    assert "--revisit" in (tmp_path / "logs" / "crawl-ok_mail-revisit.log").read_text()
    # The failures became crawl events and crawl-health alerts, delivered to the outbox.
    from store.sqlite import SQLiteStore

    with SQLiteStore(tmp_path / "govpulse.db") as store:
        kinds = {(e.spider, e.kind) for e in store.crawl_events()}
    assert {("crash_spider", "crashed"), ("hang_spider", "timeout")} <= kinds
    state = AlertState.for_data_dir(tmp_path)
    titles = {a["title"] for a in state.recent_alerts() if a["rule"] == "crawl_health"}
    state.close()
    assert titles == {"采集中断：crash_spider（进程崩溃）", "采集中断：hang_spider（运行超时）"}
    outbox = " ".join(e["title"] + e["body"] for e in read_outbox(tmp_path / "alerts_outbox.jsonl"))
    assert "crash_spider" in outbox and "hang_spider" in outbox and "舆情日报" in outbox


def test_second_scheduler_is_refused(tmp_path):
    with SchedulerLock(tmp_path):
        with pytest.raises(SchedulerLocked, match="already running"):
            SchedulerLock(tmp_path).acquire()
        result = CliRunner().invoke(main, ["run", "--once"], env=_env(tmp_path, {}))
        assert result.exit_code != 0
        assert "already running" in result.output
    SchedulerLock(tmp_path).acquire().release()  # free again once released


def _wait_for(predicate, timeout=30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def test_daemon_persists_jobs_refuses_twin_and_stops_on_sigterm(tmp_path):
    env = {**os.environ, **_env(tmp_path, {"hang_spider": 60})}
    log = tmp_path / "logs" / "crawl-hang_spider.log"
    proc = subprocess.Popen(
        [sys.executable, "-m", "govpulse.cli", "run"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        assert _wait_for(lambda: log.is_file() and "pid=" in log.read_text()), "crawl never started"
        child = int(re.search(r"pid=(\d+)", log.read_text()).group(1))
        twin = subprocess.run(
            [sys.executable, "-m", "govpulse.cli", "run", "--once"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert twin.returncode != 0 and "already running" in twin.stderr
        jobs_db = sqlite3.connect(tmp_path / "scheduler.db")
        ids = {r[0] for r in jobs_db.execute("SELECT id FROM apscheduler_jobs")}
        jobs_db.close()
        assert {"crawl:hang_spider", "alerts", "deliver", "digest", "retention"} <= ids
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, out.decode()
    assert "scheduler stopped" in out.decode()
    with pytest.raises(ProcessLookupError):  # the hanging crawl was terminated too
        os.kill(child, 0)


@pytest.mark.parametrize(
    ("key", "value", "message"),
    [
        ("GOVPULSE_ALERTS_QUIET_HOURS", "night", "quiet hours"),
        ("GOVPULSE_SCHEDULE_SPIDERS", "[1, 2]", "schedule.spiders"),
        ("GOVPULSE_ALERTS_INHIBIT_RULES", '{"a": 1}', "alerts.inhibit_rules"),
    ],
)
def test_bad_schedule_settings_fail_at_start(tmp_path, key, value, message):
    result = CliRunner().invoke(main, ["run", "--once"], env={**_env(tmp_path, {}), key: value})
    assert result.exit_code == 1 and message in result.output
    assert not (tmp_path / "alerts.db").exists()  # nothing ran


def test_retention_job_deletes_old_messages(tmp_path):
    from datetime import datetime, timedelta

    from alerts import jobs
    from govpulse.schema import TZ, Message, Source, make_id
    from store.sqlite import SQLiteStore

    now = datetime.now(TZ).replace(microsecond=0)
    with SQLiteStore(tmp_path / "govpulse.db") as store:
        store.upsert_many(
            [
                Message(
                    id=make_id("forum", str(d)),
                    source=Source.FORUM,
                    channel="问政",
                    body=f"帖子{d}",
                    posted_at=now - timedelta(days=d),
                ).validate()
                for d in (1, 10, 400)
            ]
        )
    jobs.configure(load(env={}, cli={"data_dir": str(tmp_path)}))
    assert jobs.retention_job() == 0  # 0 days: keep everything
    jobs.configure(load(env={}, cli={"data_dir": str(tmp_path), "schedule.retention_days": "30"}))
    assert jobs.retention_job() == 1
    with SQLiteStore(tmp_path / "govpulse.db") as store:
        assert store.count() == 2
