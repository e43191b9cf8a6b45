"""Engine semantics (grouping, timers, silences, inhibition, quiet hours, limits, retries).

Time is moved by a clock object; deliveries go to real notifiers: the
outbox file and the local robot receiver.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import pytest

from alerts.engine import Engine, EngineConfig, in_quiet_hours, parse_quiet_hours
from alerts.model import Alert
from alerts.notifiers import read_outbox
from alerts.notifiers.outbox import OutboxNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WeComNotifier
from alerts.state import AlertState
from govpulse.schema import TZ

T0 = datetime(2024, 6, 10, 9, 0, tzinfo=TZ)  # a Monday morning, outside quiet hours


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw) -> None:
        self.now += timedelta(**kw)


@pytest.fixture
def state(tmp_path):
    s = AlertState.for_data_dir(tmp_path)
    yield s
    s.close()


@pytest.fixture
def clock():
    return Clock(T0)


def _engine(state, tmp_path, clock, **cfg):
    outbox = OutboxNotifier(str(tmp_path / "outbox.jsonl"))
    config = EngineConfig(
        group_wait=timedelta(seconds=60),
        group_interval=timedelta(minutes=10),
        repeat_interval=timedelta(hours=4),
        dashboard_url="http://dash.example",
        **cfg,
    )
    return Engine(state, {"outbox": outbox}, config, clock=clock)


def _sent(tmp_path):
    return read_outbox(tmp_path / "outbox.jsonl")[::-1]  # oldest first


def _urgent(i, level="紧急", dept="水务局"):
    return Alert(
        "urgent",
        level,
        f"{level}留言{i}",
        f"正文{i}",
        labels={"group": level, "message_id": f"m{i}", "department": dept},
    )


def test_group_wait_batches_and_dedups(state, tmp_path, clock):
    eng = _engine(state, tmp_path, clock)
    eng.tick([_urgent(1)], ["urgent"])
    assert _sent(tmp_path) == []  # group_wait not over
    clock.advance(seconds=30)
    eng.tick([_urgent(1), _urgent(2)], ["urgent"])
    assert _sent(tmp_path) == []
    clock.advance(seconds=31)
    eng.tick([_urgent(1), _urgent(2)], ["urgent"])
    (msg,) = _sent(tmp_path)
    assert "2 条预警" in msg["title"] and "紧急留言1" in msg["body"] and "紧急留言2" in msg["body"]
    assert "http://dash.example/alerts" in msg["body"]
    # Same alerts again: no new message until repeat_interval.
    for _ in range(5):
        clock.advance(minutes=30)
        eng.tick([_urgent(1), _urgent(2)], ["urgent"])
    assert len(_sent(tmp_path)) == 1
    clock.advance(hours=2)
    eng.tick([_urgent(1), _urgent(2)], ["urgent"])
    assert len(_sent(tmp_path)) == 2  # repeat after 4 h
    assert len(state.recent_alerts()) == 2  # de-duplicated by fingerprint


def test_critical_goes_at_once_and_new_alert_waits_group_interval(state, tmp_path, clock):
    eng = _engine(state, tmp_path, clock)
    eng.tick([_urgent(1, "特急")], ["urgent"])
    assert len(_sent(tmp_path)) == 1 and "【特急】" in _sent(tmp_path)[0]["title"]
    eng.tick([_urgent(1, "特急"), _urgent(2, "特急")], ["urgent"])
    assert len(_sent(tmp_path)) == 2  # 特急: no group interval either
    # 紧急 group: first batch, then a new member waits group_interval.
    eng.tick([_urgent(3)], ["urgent"])
    clock.advance(seconds=61)
    eng.tick([_urgent(3)], ["urgent"])
    assert len(_sent(tmp_path)) == 3
    clock.advance(minutes=1)
    eng.tick([_urgent(3), _urgent(4)], ["urgent"])
    assert len(_sent(tmp_path)) == 3
    clock.advance(minutes=10)
    eng.tick([_urgent(3), _urgent(4)], ["urgent"])
    last = _sent(tmp_path)[-1]
    assert len(_sent(tmp_path)) == 4 and "【新】[紧急] 紧急留言4" in last["body"]


def test_hot_topic_update_key_and_resolution(state, tmp_path, clock):
    eng = _engine(state, tmp_path, clock)

    def hot(count):
        return Alert(
            "hot_topic",
            "一般",
            f"热点 {count}",
            "b",
            labels={"group": "停水", "topic": "停水"},
            update_key=str(count.bit_length()),
        )

    eng.tick([hot(5)], ["hot_topic"])
    clock.advance(minutes=2)
    eng.tick([hot(6)], ["hot_topic"])  # same doubling stage: no news
    assert len(_sent(tmp_path)) == 1
    clock.advance(minutes=20)
    eng.tick([hot(7)], ["hot_topic"])
    assert len(_sent(tmp_path)) == 1
    eng.tick([hot(12)], ["hot_topic"])  # grew past a doubling: an update
    assert len(_sent(tmp_path)) == 2 and "【更新】" in _sent(tmp_path)[-1]["body"]
    (row,) = state.recent_alerts()
    assert row["title"] == "热点 12" and row["status"] == "firing"
    eng.tick([], ["urgent"])  # another rule ran: hot topic untouched
    assert state.recent_alerts()[0]["status"] == "firing"
    eng.tick([], ["hot_topic"])
    assert state.recent_alerts()[0]["status"] == "resolved"
    # The event comes back later: a new alert, group_wait applies again.
    clock.advance(hours=1)
    eng.tick([hot(5)], ["hot_topic"])
    assert len(_sent(tmp_path)) == 2
    clock.advance(seconds=61)
    eng.tick([hot(5)], ["hot_topic"])
    assert len(_sent(tmp_path)) == 3


def test_silence_holds_back_then_releases(state, tmp_path, clock):
    eng = _engine(state, tmp_path, clock)
    sid = state.add_silence({"department": "水务局"}, T0, T0 + timedelta(hours=1), "值班员", "已知")
    eng.tick([_urgent(1, "特急"), _urgent(2, "特急", dept="交通局")], ["urgent"])
    (msg,) = _sent(tmp_path)
    assert "特急留言2" in msg["title"] and "特急留言1" not in msg["body"]
    rows = {r["title"]: r for r in state.recent_alerts()}
    assert rows["特急留言1"]["suppressed"] == f"silenced:{sid}"
    clock.advance(hours=1, seconds=1)
    eng.tick([_urgent(1, "特急"), _urgent(2, "特急", dept="交通局")], ["urgent"])
    assert "【新】[特急] 特急留言1" in _sent(tmp_path)[-1]["body"]


def test_inhibition_crawl_down_suppresses_volume_drop(state, tmp_path, clock):
    rules = [
        {
            "source": {"rule": "crawl_health", "kind": "down"},
            "target": {"rule": "crawl_health", "kind": "volume_drop"},
            "equal": ["source"],
        }
    ]
    eng = _engine(state, tmp_path, clock, inhibit_rules=rules)

    def crawl(kind, source):
        return Alert(
            "crawl_health",
            "紧急" if kind == "down" else "一般",
            f"{source} {kind}",
            "",
            labels={"group": source, "source": source, "spider": source, "kind": kind},
        )

    alerts = [crawl("down", "weibo"), crawl("volume_drop", "weibo"), crawl("volume_drop", "forum")]
    eng.tick(alerts, ["crawl_health"])
    clock.advance(seconds=61)
    eng.tick(alerts, ["crawl_health"])
    bodies = " ".join(m["body"] for m in _sent(tmp_path))
    assert "weibo down" in bodies and "forum volume_drop" in bodies
    assert "weibo volume_drop" not in bodies
    held = {r["title"]: r["suppressed"] for r in state.recent_alerts()}
    assert held["weibo volume_drop"] == "inhibited"


def test_quiet_hours_hold_all_but_critical(state, tmp_path):
    clock = Clock(datetime(2024, 6, 10, 23, 30, tzinfo=TZ))
    eng = _engine(state, tmp_path, clock, quiet_hours=parse_quiet_hours("22:00-07:00"))
    eng.tick([_urgent(1), _urgent(2, "特急")], ["urgent"])
    clock.advance(minutes=5)
    eng.tick([_urgent(1), _urgent(2, "特急")], ["urgent"])
    assert [m["title"] for m in _sent(tmp_path)] == ["【特急】特急留言2"]
    clock.now = datetime(2024, 6, 11, 7, 0, tzinfo=TZ)
    eng.tick([_urgent(1), _urgent(2, "特急")], ["urgent"])
    # The held 紧急 alert goes out (the 特急 one also repeats: 4 h have passed).
    assert "【紧急】紧急留言1" in [m["title"] for m in _sent(tmp_path)[1:]]


def test_quiet_hours_parsing():
    q = parse_quiet_hours("22:00-07:00")
    assert q == (time(22), time(7))
    assert in_quiet_hours(datetime(2024, 1, 1, 3, tzinfo=TZ), q)
    assert not in_quiet_hours(datetime(2024, 1, 1, 12, tzinfo=TZ), q)
    assert in_quiet_hours(datetime(2024, 1, 1, 12, 30, tzinfo=TZ), parse_quiet_hours("12:00-13:00"))
    assert parse_quiet_hours("") is None
    with pytest.raises(ValueError):
        parse_quiet_hours("night")


def test_failed_delivery_retried_with_backoff_never_lost(state, tmp_path, clock, receiver, caplog):
    hook = WebhookNotifier(f"{receiver.base}/hook")
    eng = Engine(
        state,
        {"webhook": hook},
        EngineConfig(retry_base=timedelta(seconds=30), retry_max=timedelta(minutes=5)),
        clock=clock,
    )
    receiver.fail_next = 4
    eng.tick([_urgent(1, "特急")], ["urgent"])
    assert [d["ok"] for d in state.recent_deliveries()] == [False]
    assert "HTTP 500" in state.recent_deliveries()[0]["error"]
    assert "delivery to webhook failed" in caplog.text
    delays = []
    for _ in range(10):
        (pending,) = state.pending_notifications()
        delays.append(pending["next_try"] - clock.now)
        clock.now = pending["next_try"]
        eng.deliver()
        if not state.pending_notifications():
            break
    assert delays == [timedelta(seconds=s) for s in (30, 60, 120, 240)]
    attempts = state.recent_deliveries()
    assert [(d["attempt"], d["ok"]) for d in attempts][:2] == [(5, True), (4, False)]
    assert len(receiver.requests) == 5
    assert receiver.requests[-1]["json"]["title"] == "【特急】特急留言1"


def test_rate_limit_and_splitting(state, tmp_path, clock, receiver):
    wecom = WeComNotifier(f"{receiver.base}/cgi-bin/webhook/send?key=k")
    eng = Engine(state, {"wecom": wecom}, EngineConfig(rate_limits={"wecom": 20}), clock=clock)
    alerts = [_urgent(i, "特急", dept=f"部门{i}") for i in range(25)]
    for a in alerts:
        a.labels["group"] = a.labels["department"]  # 25 separate groups
    eng.tick(alerts, ["urgent"])
    assert len(receiver.requests) == 20  # 20 a minute
    assert len(state.pending_notifications()) == 5
    clock.advance(seconds=30)
    eng.deliver()
    assert len(receiver.requests) == 20
    clock.advance(seconds=31)
    eng.deliver()
    assert len(receiver.requests) == 25 and state.pending_notifications() == []
    # A long text is split to WeCom's size limit; every part is accepted.
    long_alert = Alert("urgent", "特急", "长文", "很长的内容。" * 1500, labels={"group": "long"})
    clock.advance(minutes=2)
    eng.tick([*alerts, long_alert], ["urgent"])
    titles = [r["json"]["markdown"]["content"].splitlines()[0] for r in receiver.requests[25:]]
    assert len(titles) >= 6 and titles[0].endswith(f"（1/{len(titles)}）**")
    assert all(d["ok"] for d in state.recent_deliveries())


def test_unconfigured_channel_keeps_message(state, tmp_path, clock):
    eng = _engine(state, tmp_path, clock)
    eng.tick([_urgent(1, "特急")], ["urgent"])
    state.enqueue(
        group_key="g",
        channel="dingtalk",
        severity="特急",
        title="t",
        body="b",
        alert_ids=["x"],
        now=clock.now,
    )
    eng.deliver()
    (pending,) = state.pending_notifications()
    assert pending["channel"] == "dingtalk" and "not configured" in pending["last_error"]
