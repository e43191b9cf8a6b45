"""The store contract: every backend gives pandas' answers on the same rows.

The `store` fixture is parametrised over backends.  "sqlite" is the
embedded store.  The Elasticsearch/OpenSearch params come from a fixture
``elastic_store_factory`` (tests/store/conftest.py) returning a callable
``factory(flavour) -> Store`` with flavour "opensearch" or "elasticsearch";
when that fixture does not exist the params are skipped with a reason.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

import pandas as pd
import pytest

from govpulse.schema import TZ, CrawlEvent, Label, Message, Status, make_id
from govpulse.workdays import workday_ordinal
from store.base import Filters, Sla

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=TZ)
DEPARTMENTS = ["住建局", "人社局", "教育局", "交通局", "生态环境局", None]
REGIONS = ["A市", "B市", "C县"]
TOPICS = ["城乡建设", "劳动和社会保障", "教育文体", "交通运输", None]
PHRASES = [
    "小区供暖不足，家里只有十三度",
    "拖欠农民工工资三个月",
    "学校周边交通拥堵",
    "中华人民共和国社会保险法规定的待遇没有落实",
    "公积金提取手续繁琐",
    "噪音扰民严重影响休息",
]


def make_messages(n: int = 240, seed: int = 7) -> list[Message]:
    """Deterministic varied messages: sources, departments, open/answered, long tails."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        source = rng.choice(["mailbox", "mailbox", "forum", "weibo"])
        posted = NOW - timedelta(days=rng.randint(0, 200), seconds=rng.randint(0, 86399))
        answered = rng.random() < 0.7
        replied = None
        if answered:
            replied = min(
                posted + timedelta(days=rng.expovariate(1 / 11), seconds=rng.randint(0, 9999)), NOW
            )
        out.append(
            Message(
                id=make_id(source, f"s{i}"),
                source=source,
                channel=f"{source}-频道{i % 3}",
                title=f"{rng.choice(PHRASES)[:8]}{i}",
                body=rng.choice(PHRASES) + "。" + rng.choice(PHRASES),
                department=rng.choice(DEPARTMENTS),
                region=rng.choice(REGIONS),
                topic=rng.choice(TOPICS),
                urgency=rng.choice(["特急", "紧急", "一般", "低", None]),
                posted_at=posted,
                replied_at=replied,
                reply_body="网友您好，已转相关部门办理。" if answered else None,
                status="answered" if answered else "open",
                likes=rng.randint(0, 50),
                rumour_score=round(rng.random(), 3) if source == "weibo" else None,
            ).validate()
        )
    return out


MESSAGES = make_messages()


def frame(messages: list[Message]) -> pd.DataFrame:
    df = pd.DataFrame([m.to_dict() for m in messages])
    for col in ("posted_at", "replied_at"):
        df[col] = pd.to_datetime(df[col], utc=True).dt.tz_convert("Asia/Shanghai")
    return df


@pytest.fixture(params=["sqlite", "opensearch", "elasticsearch"])
def store(request, tmp_path):
    if request.param == "sqlite":
        from store.sqlite import SQLiteStore

        s = SQLiteStore(tmp_path / "contract.db")
    else:
        try:
            factory = request.getfixturevalue("elastic_store_factory")
        except pytest.FixtureLookupError:
            pytest.skip("no elastic_store_factory fixture (Elasticsearch backend not present)")
        s = factory(request.param)
    yield s
    s.close()


@pytest.fixture
def loaded(store):
    stats = store.upsert_many(MESSAGES)
    assert stats.inserted == len(MESSAGES) and not stats.failed
    return store


def test_upsert_is_idempotent(loaded):
    again = loaded.upsert_many(MESSAGES)
    assert (again.inserted, again.updated, again.unchanged) == (0, 0, len(MESSAGES))
    assert loaded.count() == len(MESSAGES)


def test_merge_keeps_known_fields_and_records_late_reply(store):
    letter = Message(
        id=make_id("mailbox", "m1"), source="mailbox", channel="市长信箱", title="路灯不亮",
        body="小区路灯坏了一个月", topic="城乡建设", posted_at=NOW - timedelta(days=3),
    )  # fmt: skip
    store.upsert(letter)
    # A list-page re-crawl knows less (no topic) but brings the late reply.
    later = Message(
        id=letter.id, source="mailbox", channel="市长信箱", title="路灯不亮", body="小区路灯坏了一个月",
        posted_at=letter.posted_at, reply_body="已修复", replied_at=NOW, replier="城管局",
    )  # fmt: skip
    stats = store.upsert(later)
    assert stats.updated == 1
    got = store.get(letter.id)
    assert got.topic.value == "城乡建设"
    assert got.reply_body == "已修复" and got.status is Status.ANSWERED
    assert got.reply_delay == timedelta(days=3)


def test_invalid_messages_are_reported_not_fatal(store):
    bad = Message(id="x", source="mailbox", channel="c", title="", body="")
    good = MESSAGES[0]
    stats = store.upsert_many([bad, good])
    assert stats.inserted == 1
    assert stats.failed and stats.failed[0][0] == "x" and "empty" in stats.failed[0][1]


def test_get_and_get_many_round_trip(loaded):
    first, second = MESSAGES[0], MESSAGES[1]
    got = loaded.get(first.id)
    assert got.to_dict() | {"updated_at": None} == first.to_dict() | {"updated_at": None}
    assert [m.id for m in loaded.get_many([second.id, "missing", first.id])] == [
        second.id,
        first.id,
    ]
    assert loaded.get("missing") is None


@pytest.mark.parametrize(
    "filters",
    [
        Filters(),
        Filters.make(source="mailbox"),
        Filters.make(department=["住建局", "人社局"], status="open"),
        Filters.make(topic="城乡建设", region="A市"),
        Filters(since=NOW - timedelta(days=30), until=NOW - timedelta(days=5)),
        Filters(min_rumour=0.5),
    ],
)
def test_count_and_filters_match_pandas(loaded, filters):
    df = frame(MESSAGES)
    mask = pd.Series(True, index=df.index)
    for name in ("source", "department", "region", "topic", "status"):
        values = getattr(filters, name)
        if values:
            mask &= df[name].isin(values)
    if filters.since:
        mask &= df.posted_at >= filters.since
    if filters.until:
        mask &= df.posted_at < filters.until
    if filters.min_rumour is not None:
        mask &= df.rumour_score >= filters.min_rumour
    assert loaded.count(filters=filters) == int(mask.sum())


def test_full_text_finds_two_character_words(loaded):
    df = frame(MESSAGES)
    text = df.title + df.body + df.reply_body.fillna("")
    for word in ("供暖", "工资", "保险", "人民", "公积金"):
        assert loaded.count(word) == int(text.str.contains(word).sum()), word
        assert loaded.count(word) > 0
    both = int((text.str.contains("供暖") & text.str.contains("工资")).sum())
    assert loaded.count("供暖 工资") == both
    assert loaded.count("完全不存在的词语组合") == 0


def test_search_sorts_and_pages(loaded):
    df = frame(MESSAGES).sort_values(["posted_at", "id"], ascending=[False, True])
    page1 = loaded.search(sort="-posted_at", page=1, per_page=25)
    page2 = loaded.search(sort="-posted_at", page=2, per_page=25)
    assert page1.total == len(MESSAGES)
    assert [m.id for m in page1.hits + page2.hits] == list(df.id[:50])
    likes = loaded.search(sort="likes", per_page=10).hits
    assert [m.likes for m in likes] == sorted(df.likes)[:10]
    hits = loaded.search("供暖", filters=Filters.make(source="mailbox"), sort="relevance").hits
    assert hits and all("供暖" in m.text + (m.reply_body or "") for m in hits)


def test_iter_messages_returns_everything_once(loaded):
    ids = [m.id for m in loaded.iter_messages(batch_size=17)]
    assert sorted(ids) == ids and set(ids) == {m.id for m in MESSAGES} and len(ids) == len(MESSAGES)


def test_facets_match_pandas(loaded):
    df = frame(MESSAGES)
    got = loaded.facets(["department", "source"], filters=Filters.make(status="answered"))
    sub = df[df.status == "answered"]
    for name in ("department", "source"):
        counts = sub[name].dropna().value_counts()
        expected = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
        assert got[name] == [(k, int(v)) for k, v in expected]


@pytest.mark.parametrize("interval", ["day", "week", "month"])
def test_histogram_matches_pandas(loaded, interval):
    df = frame(MESSAGES)
    naive = df.posted_at.dt.tz_localize(None)
    if interval == "day":
        buckets = naive.dt.floor("D")
    elif interval == "week":
        buckets = (naive - pd.to_timedelta(naive.dt.weekday, unit="D")).dt.floor("D")
    else:
        buckets = naive.dt.to_period("M").dt.to_timestamp()
    expected = df.assign(b=buckets).groupby(["b", "source"]).size()
    got = loaded.histogram(interval, split_by="source")
    assert [(b.replace(tzinfo=None), s, n) for b, s, n in got] == [
        (b.to_pydatetime(), s, int(n)) for (b, s), n in expected.items()
    ]


@pytest.mark.parametrize("working", [True, False])
def test_timeliness_matches_pandas(loaded, working):
    sla = Sla(days=15, by_source={"weibo": 2}, working_days=working)
    got = {r.group: r for r in loaded.timeliness("department", sla=sla, now=NOW)}
    df = frame(MESSAGES)
    df["department"] = df.department.fillna("(未知)")
    if working:
        delay = df.apply(
            lambda r: workday_ordinal(r.replied_at) - workday_ordinal(r.posted_at)
            if pd.notna(r.replied_at) else None, axis=1,
        )  # fmt: skip
        age = df.posted_at.map(lambda t: workday_ordinal(NOW) - workday_ordinal(t))
    else:
        delay = (df.replied_at - df.posted_at).dt.total_seconds() / 86400
        age = (NOW - df.posted_at).dt.total_seconds() / 86400
    df["delay"] = pd.to_numeric(delay)
    df["age"] = age
    df["sla"] = df.source.map(lambda s: 2 if s == "weibo" else 15)
    assert set(got) == set(df.department)
    for dept, sub in df.groupby("department"):
        row = got[dept]
        answered = sub[sub.status != "open"]
        assert row.letters == len(sub)
        assert row.answered == len(answered)
        assert row.open == int((sub.status == "open").sum())
        assert row.overdue == int(((sub.status == "open") & (sub.age > sub.sla)).sum())
        assert row.within_sla == int((answered.delay <= answered.sla).sum())
        assert row.median_delay == pytest.approx(answered.delay.quantile(0.5))
        assert row.p90_delay == pytest.approx(answered.delay.quantile(0.9))
        assert row.mean_delay == pytest.approx(answered.delay.mean())
    letters = [r.letters for r in got.values()]
    assert sum(letters) == len(MESSAGES)


def test_delay_distribution_and_overdue(loaded):
    sla = Sla(days=15, working_days=False)
    dist = loaded.delay_distribution(sla=sla, now=NOW)
    assert sum(a for _, a, _ in dist) == sum(m.status is not Status.OPEN for m in MESSAGES)
    assert sum(c for _, _, c in dist) == sum(m.status is Status.OPEN for m in MESSAGES)
    overdue = loaded.overdue(sla=sla, now=NOW, limit=1000)
    expected = sorted(
        (m for m in MESSAGES
         if m.status is Status.OPEN and (NOW - m.posted_at).total_seconds() / 86400 > 15),
        key=lambda m: (m.posted_at, m.id),
    )  # fmt: skip
    assert [m.id for m in overdue] == [m.id for m in expected]


def test_crawl_events_and_labels(store):
    store.add_crawl_event(
        CrawlEvent("weibo", "weibo", "finished", NOW - timedelta(hours=1), items=5)
    )
    store.add_crawl_event(CrawlEvent("weibo", "weibo", "captcha", NOW, ok=False, detail="验证码"))
    store.add_crawl_event(CrawlEvent("forum", "forum", "finished", NOW))
    events = store.crawl_events(source="weibo")
    assert [e.kind for e in events] == ["captcha", "finished"] and events[0].ok is False
    store.add_label(Label("m1", "topic", "教育文体", "staff1", NOW))
    store.add_label(Label("m2", "rumour", "confirmed", "staff1", NOW + timedelta(minutes=1)))
    assert [lab.message_id for lab in store.labels()] == ["m2", "m1"]
    assert store.labels(task="topic")[0].value == "教育文体"


def test_delete_before(loaded):
    cutoff = NOW - timedelta(days=100)
    expected = sum(m.posted_at < cutoff for m in MESSAGES)
    assert loaded.delete_before(cutoff) == expected
    assert loaded.count() == len(MESSAGES) - expected
    assert loaded.count("供暖") == sum(
        "供暖" in (m.title + m.body) for m in MESSAGES if m.posted_at >= cutoff
    )


@pytest.mark.parametrize(
    ("query", "filters"),
    [("", Filters()), ("供暖", Filters()), ("", Filters(min_rumour=0.2)),
     ("工资", Filters.make(source=["mailbox", "forum"]))],
)  # fmt: skip
def test_search_totals_are_exact_or_an_honest_lower_bound(loaded, query, filters):
    """Above store.search_total_cap a total may be "at least"; exact_total always counts."""
    loaded.search_total_cap = 30
    exact = loaded.count(query, filters)
    got = loaded.search(query, filters, per_page=5)
    if got.total_relation == "eq":
        assert got.total == exact and got.total_is_exact
    else:
        assert got.total_relation == "gte" and got.total == 30 < exact
    full = loaded.search(query, filters, per_page=5, exact_total=True)
    assert (full.total, full.total_relation) == (exact, "eq")
    assert [m.id for m in full.hits] == [m.id for m in got.hits]
