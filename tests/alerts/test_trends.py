"""Hot-term detection on hand-made rows and on a real SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from govpulse.schema import TZ, Message, Source, make_id
from govpulse.trends import TrendRow, detect_rising, merge_events, message_terms, rising_terms

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=TZ)


def _rows(term: str, per_day: list[int], source: str = "weibo") -> list[TrendRow]:
    """per_day[i] messages containing `term` on day i of the 8 days before NOW."""
    rows = []
    for day, n in enumerate(per_day):
        start = NOW - timedelta(days=len(per_day) - day)
        for j in range(n):
            at = start + timedelta(minutes=10 * j + 1)
            rows.append(TrendRow(at, [term, "日常"], source, f"{term}-{day}-{j}"))
    return rows


def test_burst_rises_and_steady_term_does_not():
    rows = _rows("停水", [1, 0, 2, 1, 0, 1, 1, 30]) + _rows("物业", [10, 11, 9, 10, 12, 10, 11, 12])
    trends = detect_rising(rows, NOW, k=3.0, min_count=5)
    by_term = {t.term: t for t in trends}
    assert by_term["停水"].rising
    assert by_term["停水"].count == 30
    assert by_term["停水"].sparkline == [1, 0, 2, 1, 0, 1, 1, 30]
    assert by_term["停水"].baseline_mean == pytest.approx(6 / 7, abs=1e-3)
    assert by_term["停水"].sources == {"weibo": 30}
    assert len(by_term["停水"].sample_ids) == 5
    assert by_term["停水"].sample_ids[0] == "停水-7-29"  # newest first
    assert "物业" not in by_term or not by_term["物业"].rising
    assert trends[0].term == "停水"


def test_min_count_and_flat_baseline_floor():
    # 4 messages after a flat zero baseline: below min_count, so not reported.
    assert detect_rising(_rows("停电", [0] * 7 + [4]), NOW, min_count=5) == []
    # A flat baseline (std 0) does not give an infinite score.
    (t,) = [
        x
        for x in detect_rising(_rows("停电", [3] * 7 + [6]), NOW, volume_adjust=False)
        if x.term == "停电"
    ]
    assert t.score == pytest.approx(3 / 3**0.5, abs=1e-3)
    assert not t.rising


def test_volume_surge_is_not_a_hot_topic_but_an_event_on_top_is():
    usual = {"物业": 10, "停车": 8, "噪音": 6}
    rows = [r for term, n in usual.items() for r in _rows(term, [n] * 7 + [n * 3])]
    # Everything tripled (e.g. a crawler catching up on a backlog): nothing is hot ...
    assert [t for t in detect_rising(rows, NOW) if t.rising] == []
    # ... although without the adjustment every common word would be.
    assert {t.term for t in detect_rising(rows, NOW, volume_adjust=False) if t.rising} >= set(usual)
    # A real event on top of the surge still rises.
    rows += _rows("停水", [0] * 7 + [25])
    assert [t.term for t in detect_rising(rows, NOW) if t.rising] == ["停水"]


def test_rows_outside_range_and_bad_window():
    rows = _rows("暴雨", [0] * 7 + [8])
    rows.append(TrendRow(NOW, ["暴雨"], "weibo", "at-now"))  # until is exclusive
    rows.append(TrendRow(NOW - timedelta(days=30), ["暴雨"], "weibo", "old"))
    (t,) = [x for x in detect_rising(rows, NOW) if x.term == "暴雨"]
    assert t.count == 8 and sum(t.sparkline) == 8
    with pytest.raises(ValueError):
        detect_rising(rows, NOW, window=timedelta(0))


def test_merge_events_groups_cooccurring_terms():
    rows = []
    for j in range(12):
        rows.append(
            TrendRow(NOW - timedelta(hours=1, minutes=j), ["化工厂", "爆炸"], "weibo", f"a{j}")
        )
        rows.append(TrendRow(NOW - timedelta(hours=2, minutes=j), ["地铁"], "forum", f"b{j}"))
    events = merge_events(detect_rising(rows, NOW, min_count=5))
    assert sorted(sorted(t.term for t in e) for e in events) == [["化工厂", "爆炸"], ["地铁"]]


def test_message_terms_drops_stopwords_and_short_tokens():
    terms = message_terms("我们小区停水三天了，停水问题的诉求 http://x.cn")
    assert "停水" in terms and terms.count("停水") == 1
    assert all(len(t) >= 2 for t in terms)
    assert "我们" not in terms
    assert message_terms("") == []


def _msg(i: int, text: str, at: datetime, source: str = "mailbox") -> Message:
    return Message(
        id=make_id(source, f"t{i}"),
        source=Source(source),
        channel="市长信箱",
        title=text,
        body=text,
        posted_at=at,
    ).validate()


def test_rising_terms_from_store(sqlite_store):
    msgs = [_msg(i, "小区供暖不热，暖气片冰凉", NOW - timedelta(hours=i + 1)) for i in range(8)]
    msgs += [_msg(100 + d, "道路维修进度咨询", NOW - timedelta(days=d, hours=3)) for d in range(8)]
    sqlite_store.upsert_many(msgs)
    trends = rising_terms(sqlite_store, NOW, min_count=5)
    terms = {t.term: t for t in trends}
    assert "供暖" in terms and terms["供暖"].rising
    assert terms["供暖"].sources == {"mailbox": 8}
    assert "道路" not in terms  # one a day: never above its baseline
    assert rising_terms(sqlite_store, NOW - timedelta(days=30)) == []
