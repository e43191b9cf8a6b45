"""Alert rules against a real SQLite store."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from alerts.rules import RuleContext, crawl_health, evaluate, hot_topic, overdue, rumour, urgent
from govpulse.schema import TZ, CrawlEvent, Message, Source, make_id
from govpulse.settings import load

NOW = datetime(2024, 6, 10, 12, 0, tzinfo=TZ)


@pytest.fixture
def settings():
    return load(cli={"alerts.dashboard_url": "http://dash.example"}, env={})


def _ctx(store, settings, active=None):
    return RuleContext(store=store, settings=settings, now=NOW, active=active or {})


def _msg(key, text, at, source="mailbox", **kw):
    return Message(
        id=make_id(source, key),
        source=Source(source),
        channel="市长信箱",
        title=text[:20],
        body=text,
        posted_at=at,
        **kw,
    ).validate()


def test_urgent_rule(sqlite_store, settings):
    sqlite_store.upsert_many(
        [
            _msg(
                "a",
                "小区燃气泄漏，有很浓的气味",
                NOW - timedelta(hours=1),
                urgency="特急",
                department="燃气公司",
                urgency_reasons=["燃气泄漏"],
            ),
            _msg("b", "路灯坏了一周", NOW - timedelta(hours=2), urgency="紧急"),
            _msg(
                "c",
                "已处理的特急",
                NOW - timedelta(hours=3),
                urgency="特急",
                reply_body="已派人处理",
                replied_at=NOW - timedelta(hours=2),
            ),
            _msg("d", "很早以前的特急", NOW - timedelta(days=3), urgency="特急"),
            _msg("e", "一般咨询", NOW - timedelta(hours=1), urgency="一般"),
        ]
    )
    alerts = {a.title: a for a in urgent(_ctx(sqlite_store, settings))}
    assert len(alerts) == 2
    crit = next(a for a in alerts.values() if a.severity == "特急")
    assert (
        "燃气泄漏" in crit.title and "燃气公司" in crit.body and "判定依据：燃气泄漏" in crit.body
    )
    assert crit.url == f"http://dash.example/message?id={make_id('mailbox', 'a')}"
    assert crit.labels["group"] == "特急"


def test_overdue_rule_groups_by_department(sqlite_store, settings):
    old = NOW - timedelta(days=60)
    sqlite_store.upsert_many(
        [
            _msg("o1", "拆迁补偿问题", old, department="住建局"),
            _msg("o2", "违建问题", old + timedelta(days=1), department="住建局"),
            _msg("o3", "学校收费", old, department="教育局"),
            _msg(
                "o4",
                "回复了的",
                old,
                department="教育局",
                reply_body="已答复",
                replied_at=old + timedelta(days=3),
            ),
            _msg("n1", "新来信", NOW - timedelta(days=1), department="教育局"),
        ]
    )
    alerts = {a.labels["department"]: a for a in overdue(_ctx(sqlite_store, settings))}
    assert set(alerts) == {"住建局", "教育局"}
    assert alerts["住建局"].title.startswith("住建局：2 件留言超期未办")
    assert alerts["住建局"].repeat_s == 86400
    strict = settings.with_overrides({"alerts.overdue_min": 2})
    assert [a.labels["department"] for a in overdue(_ctx(sqlite_store, strict))] == ["住建局"]


def test_rumour_rule_needs_spread_and_no_reply(sqlite_store, settings):
    at = NOW - timedelta(hours=5)
    sqlite_store.upsert_many(
        [
            _msg(
                "r1",
                "网传自来水被污染不能喝",
                at,
                source="weibo",
                rumour_score=0.92,
                reposts=300,
                rumour_reasons=["网传"],
            ),
            _msg("r2", "网传明天全市停电", at, source="weibo", rumour_score=0.95, reposts=3),
            _msg(
                "r3",
                "网传学校停课",
                at,
                source="weibo",
                rumour_score=0.9,
                reposts=500,
                reply_body="经核实为谣言",
                replied_at=at + timedelta(hours=1),
            ),
            _msg("r4", "真实消息", at, source="weibo", rumour_score=0.2, reposts=900),
        ]
    )
    (alert,) = rumour(_ctx(sqlite_store, settings))
    assert "自来水" in alert.title and "0.92" in alert.title and "转发 300" in alert.body


def _event(spider, kind, hours_ago, items=0, ok=True, pages=10, errors=0):
    return CrawlEvent(
        source=spider.split("_")[0],
        spider=spider,
        kind=kind,
        at=NOW - timedelta(hours=hours_ago),
        ok=ok,
        items=items,
        pages=pages,
        errors=errors,
        detail=f"{kind} detail",
    )


def test_crawl_health_rule(sqlite_store, settings):
    for e in [
        _event("weibo_comments", "finished", 5, items=120),
        _event("weibo_comments", "finished", 4, items=90),
        _event("weibo_comments", "finished", 3, items=0),
        _event("weibo_comments", "captcha", 2, ok=False),
        _event("forum_posts", "finished", 3, items=80),
        _event("forum_posts", "finished", 2, items=0),
        _event("mailbox_city", "finished", 1, items=30, pages=40, errors=25),
        _event("mailbox_quiet", "finished", 1, items=0),  # never had many: fine
    ]:
        sqlite_store.add_crawl_event(e)
    got = {
        (a.labels["spider"], a.labels["kind"]) for a in crawl_health(_ctx(sqlite_store, settings))
    }
    assert got == {
        ("weibo_comments", "down"),
        ("weibo_comments", "volume_drop"),
        ("forum_posts", "volume_drop"),
        ("mailbox_city", "error_spike"),
    }
    down = next(a for a in crawl_health(_ctx(sqlite_store, settings)) if a.labels["kind"] == "down")
    assert "出现验证码" in down.title and down.labels["source"] == "weibo"


def _burst(store, term_text, n, hours_ago_start=1, key="x"):
    store.upsert_many(
        [
            _msg(
                f"{key}{i}",
                term_text,
                NOW - timedelta(hours=hours_ago_start, minutes=i),
                source="weibo" if i % 2 else "forum",
            )
            for i in range(n)
        ]
    )


def test_hot_topic_rule_keeps_event_identity(sqlite_store, settings):
    for d in range(1, 8):  # background chatter: one message a day
        sqlite_store.upsert_many(
            [_msg(f"bg{d}", "公交线路调整咨询", NOW - timedelta(days=d, hours=2))]
        )
    _burst(sqlite_store, "化工厂爆炸浓烟", 8)
    (alert,) = hot_topic(_ctx(sqlite_store, settings))
    assert alert.labels["topic"] in {"化工厂", "爆炸", "浓烟"}
    assert "8 条" in alert.title and "weibo" in alert.body and "forum" in alert.body
    first_topic = alert.labels["topic"]
    # The event grows and another term leads; the firing alert keeps its identity.
    _burst(sqlite_store, "浓烟 爆炸 化工厂 疏散 疏散 群众", 30, key="y")
    active = {"hot_topic": [{"labels": {"topic": first_topic, "rule": "hot_topic"}}]}
    (grown,) = hot_topic(_ctx(sqlite_store, settings, active))
    assert grown.labels["topic"] == first_topic and grown.fingerprint == alert.fingerprint
    assert grown.update_key != alert.update_key  # grew past a doubling: news
    strict = settings.with_overrides({"alerts.hot_min_sources": 3})
    assert hot_topic(_ctx(sqlite_store, strict)) == []


def test_evaluate_isolates_a_failing_rule(sqlite_store, settings, monkeypatch, caplog):
    from alerts import rules

    def broken(ctx):
        raise RuntimeError("rule bug")

    monkeypatch.setitem(rules.RULES, "broken", broken)
    sqlite_store.upsert_many([_msg("u", "燃气泄漏", NOW - timedelta(hours=1), urgency="特急")])
    alerts, ok = evaluate(_ctx(sqlite_store, settings), ["broken", "urgent"])
    assert ok == {"urgent"} and len(alerts) == 1  # the others still run
    assert "alert rule broken failed" in caplog.text


def test_digest_text(sqlite_store, settings, tmp_path):
    from alerts.jobs import digest_text
    from alerts.state import AlertState

    sqlite_store.upsert_many(
        [
            _msg("d1", "燃气泄漏", NOW - timedelta(hours=2), urgency="特急", topic="城乡建设"),
            _msg("d2", "噪音扰民", NOW - timedelta(hours=3), source="forum"),
            _msg("d3", "很久以前的来信", NOW - timedelta(days=40), department="住建局"),
        ]
    )
    sqlite_store.add_crawl_event(_event("weibo_x", "crashed", 1, ok=False))
    state = AlertState.for_data_dir(tmp_path)
    state.upsert_firing(
        fingerprint="f",
        rule="urgent",
        severity="特急",
        title="t",
        body="b",
        url="",
        group_key="g",
        labels={"rule": "urgent"},
        update_key="",
        now=NOW - timedelta(hours=1),
    )
    title, body = digest_text(sqlite_store, state, settings, NOW)
    state.close()
    assert title == "2024-06-10 舆情日报"
    assert "新增信息 2 条" in body and "mailbox 1" in body and "forum 1" in body
    assert "特急 1" in body and "超期未办留言：1 件" in body
    assert "紧急留言 1" in body and "采集异常：1 次" in body
    assert "http://dash.example/" in body
