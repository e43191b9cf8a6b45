"""AlertState: the durable alerts database shared with the dashboard."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from alerts.state import AlertState, StateError
from govpulse.schema import TZ

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=TZ)


@pytest.fixture
def state(tmp_path):
    s = AlertState.for_data_dir(tmp_path)
    yield s
    s.close()


def _fire(state, fp="fp1", now=NOW, update_key=""):
    return state.upsert_firing(
        fingerprint=fp,
        rule="urgent",
        severity="特急",
        title="特急留言",
        body="正文",
        url="",
        group_key="urgent",
        labels={"rule": "urgent", "department": "水务局"},
        update_key=update_key,
        now=now,
    )


def test_alert_dedup_and_resolve(state, tmp_path):
    a, created = _fire(state)
    b, created2 = _fire(state, now=NOW + timedelta(minutes=5))
    assert created and not created2 and a == b
    (row,) = state.recent_alerts()
    assert row["first_seen"] == NOW and row["last_seen"] == NOW + timedelta(minutes=5)
    assert row["labels"]["department"] == "水务局" and row["status"] == "firing"
    state.resolve([a], NOW + timedelta(hours=1))
    c, created3 = _fire(state, now=NOW + timedelta(hours=2))
    assert created3 and c != a  # fires again: a new occurrence
    # Survives reopening (a second process, e.g. the dashboard).
    again = AlertState.for_data_dir(tmp_path)
    assert {r["status"] for r in again.recent_alerts()} == {"firing", "resolved"}
    again.close()


def test_queue_and_deliveries(state):
    a, _ = _fire(state)
    nid = state.enqueue(
        group_key="urgent",
        channel="dingtalk",
        severity="特急",
        title="t",
        body="b",
        alert_ids=[a],
        now=NOW,
    )
    (n,) = state.due_notifications(NOW)
    assert n["id"] == nid
    state.record_delivery(
        n, ok=False, error="HTTP 500", now=NOW, next_try=NOW + timedelta(seconds=30)
    )
    assert state.due_notifications(NOW) == []
    (n,) = state.due_notifications(NOW + timedelta(seconds=30))
    assert n["attempts"] == 1 and n["last_error"] == "HTTP 500"
    state.record_delivery(n, ok=True, error="", now=NOW + timedelta(seconds=30), parts=2)
    assert state.pending_notifications() == []
    d = state.recent_deliveries()
    assert [(x["attempt"], x["ok"]) for x in d] == [(2, True), (1, False)]
    assert d[1]["error"] == "HTTP 500" and d[0]["alert_id"] == a
    assert state.sent_parts_since("dingtalk", NOW) == 3


def test_silences(state):
    sid = state.add_silence({"rule": "hot_topic"}, NOW, NOW + timedelta(hours=2), "值班员", "演练")
    assert [s["id"] for s in state.silences(now=NOW + timedelta(hours=1))] == [sid]
    assert state.silences(now=NOW + timedelta(hours=3)) == []
    assert len(state.silences(active_only=False)) == 1
    state.expire_silence(sid, now=NOW + timedelta(minutes=30))
    assert state.silences(now=NOW + timedelta(hours=1)) == []
    with pytest.raises(StateError):
        state.expire_silence("nope")
    with pytest.raises(StateError):
        state.add_silence({}, NOW, NOW + timedelta(hours=1), "me", "")
    with pytest.raises(StateError):
        state.add_silence({"rule": "x"}, NOW, NOW, "me", "")
