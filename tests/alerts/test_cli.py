"""`govpulse alerts …` commands end to end (real state file, real local receivers)."""

from __future__ import annotations

import re

from click.testing import CliRunner

from alerts.state import AlertState
from govpulse.cli import main

from .conftest import DINGTALK_SECRET


def _run(tmp_path, *args, **env):
    env = {"GOVPULSE_DATA_DIR": str(tmp_path), "GOVPULSE_ALERTS_QUIET_HOURS": "", **env}
    return CliRunner().invoke(main, list(args), env=env)


def test_alerts_test_channel(tmp_path, receiver):
    url = f"{receiver.base}/robot/send?access_token=tok&secret={DINGTALK_SECRET}"
    ok = _run(tmp_path, "alerts", "test", "dingtalk", GOVPULSE_ALERTS_DINGTALK_URL=url)
    assert ok.exit_code == 0, ok.output
    assert "test message sent to dingtalk" in ok.output and DINGTALK_SECRET not in ok.output
    assert "测试" in receiver.requests[0]["json"]["markdown"]["text"]
    bad = _run(
        tmp_path,
        "alerts",
        "test",
        "dingtalk",
        GOVPULSE_ALERTS_DINGTALK_URL=url.replace(DINGTALK_SECRET, "SECwrong"),
    )
    assert bad.exit_code == 1 and "not delivered" in bad.output and "SECwrong" not in bad.output
    missing = _run(tmp_path, "alerts", "test", "wecom")
    assert missing.exit_code == 1 and "alerts.wecom_url" in missing.output


def test_silence_commands(tmp_path):
    added = _run(
        tmp_path,
        "alerts",
        "silence",
        "add",
        "--match",
        "rule=hot_topic",
        "--match",
        "topic=停水",
        "--for",
        "90m",
        "--by",
        "张三",
        "--comment",
        "已处置",
    )
    assert added.exit_code == 0, added.output
    sid = re.search(r"silence (\w+) until", added.output).group(1)
    listed = _run(tmp_path, "alerts", "silence", "list")
    assert sid in listed.output and "topic=停水" in listed.output and "张三" in listed.output
    state = AlertState.for_data_dir(tmp_path)
    (s,) = state.silences()
    assert (s["ends_at"] - s["starts_at"]).total_seconds() == 5400
    state.close()
    assert _run(tmp_path, "alerts", "silence", "expire", sid).exit_code == 0
    assert sid not in _run(tmp_path, "alerts", "silence", "list").output
    assert sid in _run(tmp_path, "alerts", "silence", "list", "--all").output
    assert _run(tmp_path, "alerts", "silence", "expire", "nope").exit_code == 1
    bad = _run(tmp_path, "alerts", "silence", "add", "--match", "rule", "--by", "x")
    assert bad.exit_code == 2 and "LABEL=VALUE" in bad.output
    bad = _run(
        tmp_path, "alerts", "silence", "add", "--match", "rule=x", "--for", "soon", "--by", "x"
    )
    assert bad.exit_code == 2


def test_evaluate_and_list(tmp_path):
    from datetime import datetime, timedelta

    from govpulse.schema import TZ, Message, Source, make_id
    from store.sqlite import SQLiteStore

    now = datetime.now(TZ).replace(microsecond=0)
    with SQLiteStore(tmp_path / "govpulse.db") as store:
        store.upsert_many(
            [
                Message(
                    id=make_id("mailbox", "1"),
                    source=Source.MAILBOX,
                    channel="市长信箱",
                    title="燃气泄漏",
                    body="楼道燃气泄漏",
                    urgency="特急",
                    posted_at=now - timedelta(minutes=5),
                ).validate()
            ]
        )
    out = _run(tmp_path, "alerts", "evaluate", "--rule", "urgent")
    assert out.exit_code == 0, out.output
    assert "firing 1, new 1" in out.output and "sent 1" in out.output
    listed = _run(tmp_path, "alerts", "list")
    assert "特急" in listed.output and "燃气泄漏" in listed.output
    deliveries = _run(tmp_path, "alerts", "list", "--deliveries")
    assert "outbox" in deliveries.output and "#1 ok" in deliveries.output
    assert _run(tmp_path, "alerts", "evaluate", "--rule", "nope").exit_code == 2
