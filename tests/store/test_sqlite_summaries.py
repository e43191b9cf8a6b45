"""The SQLite summary tables (store/sqlite_agg.py) give the raw-row answers exactly.

Every aggregate is asked twice of one database file: through the summary
tables (the default) and with ``use_summaries=False`` (the raw-row
queries, themselves checked against pandas in test_contract.py).  The
data spans more than a year so whole months are served by summaries and
partial ones by the rows; it has NULL departments and post times, closed
letters, delays of exactly N days (the SLA boundary) and a negative delay.
The summaries must also stay equal to a recount after updates, retention
deletes, re-imports and a migration of a version-3 database.
"""

from __future__ import annotations

import random
import sqlite3
from datetime import datetime, timedelta

import pytest

from govpulse.schema import TZ, Message, make_id
from store.base import Filters, Sla
from store.sqlite import SQLiteStore
from store.sqlite_schema import LATEST_VERSION

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=TZ)
DEPTS = ["住建局", "人社局", "教育局", None]


def make(n: int = 600, seed: int = 3, tag: str = "s") -> list[Message]:
    rng = random.Random(seed)
    out = []
    for i in range(n):
        source = rng.choice(["mailbox", "mailbox", "forum", "weibo"])
        posted = NOW - timedelta(days=rng.randint(0, 420), seconds=rng.randint(0, 86399))
        status = rng.choice(["open", "answered", "answered", "closed"])
        replied = None
        if status != "open":
            kind = rng.random()
            if kind < 0.15:
                replied = posted + timedelta(days=rng.choice([1, 2, 15]))  # exactly N days
            elif kind < 0.2:
                replied = None  # answered without a reply time
            else:
                replied = posted + timedelta(seconds=rng.randint(0, 40 * 86400))
        out.append(
            Message(
                id=make_id(source, f"{tag}{i}"),
                source=source,
                channel=f"{source}-{i % 3}",
                title=f"标题{i}",
                body=rng.choice(["小区供暖不足", "拖欠工资", "噪音扰民"]) + f"{i}",
                department=rng.choice(DEPTS),
                region=rng.choice(["A市", "B市", None]),
                topic=rng.choice(["城乡建设", "教育文体", None]),
                urgency=rng.choice(["紧急", "一般", None]),
                posted_at=None if i % 97 == 0 else posted,
                replied_at=replied,
                reply_body="已办理" if status != "open" else None,
                status=status,
                rumour_score=round(rng.random(), 2) if source == "weibo" else None,
            )
        )
    return out


FILTERS = [
    Filters(),
    Filters.make(source="mailbox"),
    Filters.make(department=["住建局", "教育局"], status=["answered", "open"]),
    Filters.make(status="closed"),
    Filters.make(status="open"),
    Filters(since=NOW - timedelta(days=90), until=NOW),
    Filters(since=datetime(2023, 9, 1, tzinfo=TZ), until=datetime(2024, 3, 1, tzinfo=TZ)),
    Filters(since=datetime(2023, 9, 14, 7, tzinfo=TZ)),
    Filters(until=datetime(2024, 2, 3, tzinfo=TZ)),
    Filters(since=NOW - timedelta(days=10), until=NOW - timedelta(days=3)),
    Filters.make(source="forum", since=NOW - timedelta(days=200)),
    Filters.make(topic="城乡建设", region="A市"),  # month table only
    Filters.make(channel="mailbox-1"),  # no summary: raw
    Filters(min_rumour=0.5),  # no summary: raw
]
SLAS = [
    Sla(days=15, by_source={"weibo": 2}, working_days=True),
    Sla(days=15, by_source={"weibo": 2, "forum": 1}, working_days=False),
    Sla(days=1, working_days=False),
]


def answers(store: SQLiteStore) -> dict[str, object]:
    out: dict[str, object] = {}
    for i, f in enumerate(FILTERS):
        out[f"count{i}"] = store.count(filters=f)
        out[f"facets{i}"] = store.facets(
            ["source", "department", "topic", "region", "urgency", "status", "channel"],
            filters=f,
            size=50,
        )
        for interval in ("day", "week", "month"):
            for split in (None, "source", "topic", "status", "department"):
                out[f"hist{i}{interval}{split}"] = store.histogram(
                    interval, filters=f, split_by=split
                )
        for j, sla in enumerate(SLAS):
            for group in ("department", "source", "status", "topic"):
                out[f"time{i}{j}{group}"] = [
                    (r.group, r.letters, r.answered, r.open, r.overdue, r.within_sla,
                     r.median_delay, r.p90_delay,
                     None if r.mean_delay is None else round(r.mean_delay, 9))
                    for r in store.timeliness(group, filters=f, sla=sla, now=NOW)
                ]  # fmt: skip
            out[f"dist{i}{j}"] = store.delay_distribution(filters=f, sla=sla, now=NOW)
        out[f"search{i}"] = (lambda r: (r.total, r.total_relation, [m.id for m in r.hits]))(
            store.search(filters=f, sort="-posted_at", per_page=7)
        )
    return out


def assert_same_as_raw(path) -> None:
    fast, raw = SQLiteStore(path), SQLiteStore(path, use_summaries=False)
    try:
        got, expected = answers(fast), answers(raw)
        for key in expected:
            assert got[key] == expected[key], key
        assert fast.check_summaries() == []
    finally:
        fast.close()
        raw.close()


@pytest.fixture
def loaded(tmp_path):
    store = SQLiteStore(tmp_path / "s.db")
    stats = store.upsert_many(make())
    assert not stats.failed
    yield store
    store.close()


def test_summaries_answer_as_the_rows_do(loaded):
    assert loaded.count() == 600
    assert_same_as_raw(loaded.path)


def test_summaries_follow_updates_deletes_and_reimports(loaded):
    messages = make()
    loaded.upsert_many(messages)  # re-import: nothing changes
    assert loaded.check_summaries() == []
    rng = random.Random(9)
    changed = []
    for m in rng.sample(messages, 150):
        # Late replies, re-filed departments, re-classified topics.
        if m.status.value == "open":
            m.status, m.reply_body = "answered", "迟到的答复"
            m.replied_at = (m.posted_at or NOW) + timedelta(days=3, hours=5)
        m.department = rng.choice(["住建局", "民政局"])
        m.topic = "交通运输"
        changed.append(m)
    stats = loaded.upsert_many(changed + make(40, seed=11, tag="new"))
    assert stats.updated > 100 and stats.inserted == 40
    assert loaded.check_summaries() == []
    assert loaded.delete_before(NOW - timedelta(days=300)) > 0
    assert loaded.check_summaries() == []
    assert_same_as_raw(loaded.path)


def test_search_totals_are_capped_honestly(tmp_path):
    store = SQLiteStore(tmp_path / "c.db", search_total_cap=50)
    store.upsert_many(make())
    try:
        common = Filters.make(source=["mailbox", "forum"])
        capped = store.search("标题", filters=common, per_page=5)
        assert capped.total == 50 and capped.total_relation == "gte"
        assert not capped.total_is_exact
        exact = store.search("标题", filters=common, per_page=5, exact_total=True)
        assert exact.total == store.count("标题", common) > 50 and exact.total_is_exact
        assert [m.id for m in capped.hits] == [m.id for m in exact.hits]
        # No filter: the full-text index counts its own matches exactly and cheaply.
        assert store.search("标题").total == store.count("标题") == 600
        # Summary-served filters count exactly too.
        assert store.search(filters=common).total == store.count(filters=common)
        few = Filters.make(source="weibo", department="教育局")
        assert 0 < store.count("噪音", few) <= 50
        rare = store.search("噪音", filters=few)
        assert (rare.total, rare.total_relation) == (store.count("噪音", few), "eq")
    finally:
        store.close()


def test_time_sorted_search_walks_the_index_with_the_same_order(tmp_path):
    """Above the walk threshold a time-sorted full-text page reads the time index."""
    store = SQLiteStore(tmp_path / "w.db")
    store.upsert_many(make(2600, seed=5))
    try:
        for sort in ("-posted_at", "posted_at", "relevance", "-rumour_score", "likes"):
            hits = store.search("标题", sort=sort, page=3, per_page=25).hits
            if sort == "relevance":
                continue
            key = sort.lstrip("-")
            rows = [(getattr(m, key), m.id) for m in store.iter_messages("标题")]
            present = sorted(((v, i) for v, i in rows if v is not None), key=lambda r: r[1])
            present.sort(key=lambda r: r[0], reverse=sort.startswith("-"))
            expected = [i for _, i in present] + sorted(i for v, i in rows if v is None)
            assert [m.id for m in hits] == expected[50:75], sort
    finally:
        store.close()


def test_migration_from_version_3_fills_the_summaries(tmp_path):
    path = tmp_path / "v3.db"
    store = SQLiteStore(path)
    store.upsert_many(make())
    store.close()
    # Make it a version-3 database again: what a store written before v4 looks like.
    conn = sqlite3.connect(path)
    for table in ("agg_month", "agg_day", "agg_delay_wd", "agg_delay_cd", "agg_open"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP INDEX ix_messages_delay")
    conn.execute("DROP INDEX IF EXISTS ix_messages_open")
    conn.execute("DELETE FROM schema_version WHERE version >= 4")
    conn.commit()
    conn.close()
    store = SQLiteStore(path)
    assert store.schema_version() == LATEST_VERSION
    store.close()
    assert_same_as_raw(path)


def test_rumour_pages_read_the_smaller_index_with_the_same_answer(tmp_path):
    """Score >= t within dates: the rumour index or the date index, same page and total."""
    store = SQLiteStore(tmp_path / "r.db")
    store.upsert_many(make(1500, seed=8))
    try:
        rows = list(store.iter_messages())
        for since_days, source in ((30, ()), (400, ()), (30, ("weibo",))):
            f = Filters(
                min_rumour=0.9, since=NOW - timedelta(days=since_days), until=NOW, source=source
            )
            assert store._rumour_hint("", f) != "" or since_days == 30
            expected = sorted(
                (
                    m
                    for m in rows
                    if m.rumour_score is not None
                    and m.rumour_score >= 0.9
                    and m.posted_at is not None
                    and f.since <= m.posted_at < f.until
                    and (not source or m.source.value in source)
                ),
                key=lambda m: (-m.rumour_score, m.id),
            )
            got = store.search(filters=f, sort="-rumour_score", per_page=100)
            assert got.total == len(expected) and got.total_relation == "eq"
            assert [m.id for m in got.hits] == [m.id for m in expected[:100]]
    finally:
        store.close()


def test_pipelined_batches_see_ids_written_by_the_batch_before(tmp_path):
    """Batch N+1 is prepared while batch N is written: a repeated id must still merge."""
    store = SQLiteStore(tmp_path / "p.db", batch_size=10)
    try:
        first = make(25, seed=4)
        later = make(25, seed=4)
        for m in later[:12]:
            m.topic = "交通运输"  # changed on the second sighting
        # Each message again right after its first batch: adjacent batches share ids.
        stream = first[:10] + later[:10] + first[10:20] + later[10:20] + first[20:] + later[20:]
        stats = store.upsert_many(stream)
        assert (stats.inserted, stats.updated, stats.unchanged) == (25, 12, 13)
        assert store.count() == 25 and store.check_summaries() == []
        assert store.facets(["topic"])["topic"][0] == ("交通运输", 12)
    finally:
        store.close()


@pytest.mark.parametrize("limit", [50_000, 0])
def test_relevance_pages_equal_the_joined_query(tmp_path, monkeypatch, limit):
    """Best-scored candidates first, then rows: the same pages as joining every match.

    The bodies repeat a few phrases, so bm25 ties are many and the id
    tie-break decides; limit 0 forces the joined fallback itself.
    """
    import store.sqlite_search as sqlite_search

    monkeypatch.setattr(sqlite_search, "_RELEVANCE_MAX", limit)
    store = SQLiteStore(tmp_path / "rel.db")
    store.upsert_many(make(1200, seed=6))
    try:
        cases = [
            ("供暖", Filters()),
            ("工资", Filters.make(source="weibo")),
            ("噪音 扰民", Filters.make(department="教育局", status="open")),
            ("标题", Filters(since=NOW - timedelta(days=60))),
        ]
        for query, f in cases:
            where, params = store._where(query, f)
            for per_page, page in ((20, 1), (7, 3), (50, 9), (500, 1)):
                offset = (page - 1) * per_page
                got = store.search(query, f, sort="relevance", page=page, per_page=per_page)
                expected = store._relevance_full(query, where, params, per_page, offset)
                assert [m.id for m in got.hits] == [r[0] for r in expected], (query, page)
    finally:
        store.close()


def test_store_summaries_command_checks_and_rebuilds(tmp_path):
    from click.testing import CliRunner

    from govpulse.cli import main

    path = tmp_path / "cli.db"
    store = SQLiteStore(path)
    store.upsert_many(make(80))
    conn = store._conn()
    conn.execute("UPDATE agg_day SET n = n + 5 WHERE k = (SELECT MIN(k) FROM agg_day)")
    store.close()
    args = ["--store", f"sqlite:///{path}", "--set", f"data_dir={tmp_path}", "store", "summaries"]
    broken = CliRunner().invoke(main, args)
    assert broken.exit_code == 1 and "1 differences" in broken.output
    fixed = CliRunner().invoke(main, [*args, "--rebuild"])
    assert fixed.exit_code == 0 and "0 differences" in fixed.output, fixed.output


def test_a_query_with_nothing_searchable_finds_nothing(loaded):
    for filters in (Filters(), Filters.make(source="mailbox")):
        result = loaded.search("！！？", filters)
        assert (result.total, result.total_relation, result.hits) == (0, "eq", [])
        assert loaded.count("！！？", filters) == 0


def test_aggregates_read_one_snapshot(loaded, monkeypatch):
    """A write committed between an aggregate's queries must not show in half of them."""
    from store import sqlite as sqlite_module

    other = SQLiteStore(loaded.path)
    extra = make(30, seed=21, tag="late")
    original = sqlite_module.SQLiteStore._answered_summary
    wrote = []

    def answered_then_write(self, *args, **kwargs):
        out = original(self, *args, **kwargs)
        if not wrote:
            wrote.append(other.upsert_many(extra))  # another process commits meanwhile
        return out

    monkeypatch.setattr(sqlite_module.SQLiteStore, "_answered_summary", answered_then_write)
    sla = Sla(days=15, working_days=False)
    filters = Filters(since=datetime(2023, 9, 14, 7, tzinfo=TZ))
    before = loaded.timeliness("department", filters, sla=sla, now=NOW)
    assert wrote and wrote[0].inserted == 30
    monkeypatch.setattr(sqlite_module.SQLiteStore, "_answered_summary", original)
    raw = SQLiteStore(loaded.path, use_summaries=False)
    try:
        after = raw.timeliness("department", filters, sla=sla, now=NOW)
        assert sum(r.letters for r in before) + sum(
            m.posted_at is not None and m.posted_at >= filters.since for m in extra
        ) == sum(r.letters for r in after)
    finally:
        raw.close()
        other.close()
