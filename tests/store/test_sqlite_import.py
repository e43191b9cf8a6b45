"""The embedded store's bulk import path: transactions spanning batches, their failure modes."""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from govpulse.schema import TZ, Label, Message, make_id
from store.sqlite import SQLiteStore

NOW = datetime(2024, 6, 30, 12, 0, tzinfo=TZ)


def letters(n: int, start: int = 0, topic: str = "城乡建设") -> list[Message]:
    return [
        Message(
            id=make_id("mailbox", f"imp{i}"),
            source="mailbox",
            channel="市长信箱",
            title=f"来信{i}",
            body=f"小区供暖温度不达标第{i}栋",
            department="住建局",
            topic=topic,
            status="open",
        )
        for i in range(start, start + n)
    ]


def probed(messages: list[Message], probe, seen: list) -> Iterator[Message]:  # type: ignore[no-untyped-def]
    """Yield `messages`, recording ``probe()`` as each one is taken (the caller's iterator)."""
    for msg in messages:
        seen.append(probe())
        yield msg


def traced(store: SQLiteStore, action) -> list[str]:  # type: ignore[no-untyped-def]
    """Every SQL statement the store's connection runs during `action`."""
    seen: list[str] = []
    conn = store._conn()
    conn.set_trace_callback(seen.append)
    try:
        action()
    finally:
        conn.set_trace_callback(None)
    return seen


def commits_during(store: SQLiteStore, action) -> int:  # type: ignore[no-untyped-def]
    """How many COMMIT statements the store's connection runs during `action`."""
    return sum(1 for sql in traced(store, action) if sql.strip().upper() == "COMMIT")


def test_batches_share_a_transaction_up_to_its_size(tmp_path):
    store = SQLiteStore(tmp_path / "t.db", batch_size=10, transaction_size=30)
    try:
        n = commits_during(store, lambda: store.upsert_many(iter(letters(95))))
        assert n == 4  # 30 + 30 + 30 + 5
        assert store.count() == 95 and store.check_summaries() == []
        assert store.facets(["department"])["department"] == [("住建局", 95)]
    finally:
        store.close()


def test_a_failing_producer_keeps_the_transactions_before_it(tmp_path):
    store = SQLiteStore(tmp_path / "t.db", batch_size=10, transaction_size=20)

    def feed() -> Iterator[Message]:
        yield from letters(45)  # two whole transactions, then 5 messages never written
        raise RuntimeError("reader broke")

    try:
        with pytest.raises(RuntimeError, match="reader broke"):
            store.upsert_many(feed())
        assert store.count() == 40 and store.check_summaries() == []
        # Re-importing changes nothing stored and adds the rest.
        stats = store.upsert_many(letters(50))
        assert (stats.inserted, stats.updated, stats.unchanged) == (10, 0, 40)
        assert store.check_summaries() == []
    finally:
        store.close()


@pytest.mark.parametrize("batch, workers", [(10, 1), (1000, 2)])
def test_a_failing_batch_rolls_back_its_whole_transaction(tmp_path, batch, workers):
    """With 2 workers and 1,000-message batches the failing batch is a staged copy
    (store/sqlite_workers.py): its files must go and be detached too."""
    store = SQLiteStore(
        tmp_path / "t.db", batch_size=batch, transaction_size=3 * batch, index_workers=workers
    )
    conn = store._conn()
    # A real failure inside SQLite, in the second batch of the second transaction.
    conn.execute(
        "CREATE TEMP TRIGGER refuse BEFORE INSERT ON messages "
        f"WHEN NEW.title = '来信{batch * 9 // 2}' BEGIN SELECT RAISE(ABORT, 'refused'); END"
    )
    try:
        with pytest.raises(sqlite3.IntegrityError, match="refused"):
            store.upsert_many(letters(6 * batch))
        # The first transaction committed; the second went with its failed batch.
        assert store.count() == 3 * batch and store.check_summaries() == []
        assert store.search("供暖", per_page=1).total == 3 * batch
        assert [r[1] for r in conn.execute("PRAGMA database_list")] == ["main", "temp"]
        if store._stage.path:
            assert os.listdir(store._stage.path) == []
        conn.execute("DROP TRIGGER refuse")
        assert store.upsert_many(letters(6 * batch)).inserted == 3 * batch  # lock released
        assert store.check_summaries() == []
    finally:
        store.close()


def test_updates_inside_one_transaction_keep_the_summaries_exact(tmp_path):
    """A message first seen in one batch and changed in a later batch of the same transaction."""
    store = SQLiteStore(tmp_path / "t.db", batch_size=10, transaction_size=1000)
    try:
        stream = letters(30) + letters(30, topic="交通运输") + letters(5, start=30)
        stats = store.upsert_many(stream)
        assert (stats.inserted, stats.updated, stats.unchanged) == (35, 30, 0)
        assert store.facets(["topic"])["topic"] == [("交通运输", 30), ("城乡建设", 5)]
        assert store.check_summaries() == []
    finally:
        store.close()


def test_the_write_lock_is_free_while_the_callers_iterator_runs(tmp_path):
    """Messages are read before a transaction begins: a producer that writes to the
    same database (or is slow) never waits on the import's own lock."""
    path = tmp_path / "t.db"
    store = SQLiteStore(path, batch_size=10, transaction_size=20)
    other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
    checked: list[int] = []

    def feed() -> Iterator[Message]:
        for i, msg in enumerate(letters(45)):
            if i in (5, 25, 44):  # inside the first, second and third transaction's reads
                other.execute("BEGIN IMMEDIATE")  # would raise "locked" if held
                other.execute("ROLLBACK")
                store.add_label(Label(msg.id, "topic", "城乡建设", "tester", NOW))
                checked.append(i)
            yield msg

    try:
        assert store.upsert_many(feed()).inserted == 45
        assert checked == [5, 25, 44]
        assert other.execute("SELECT COUNT(*) FROM messages").fetchone()[0] == 45
        assert len(store.labels(task="topic")) == 3
    finally:
        other.close()
        store.close()


def test_rows_and_digests_are_the_ones_earlier_versions_stored():
    """Stored digests decide 'unchanged' on re-import: the row must not drift.

    Expected values were produced by the row code before it was optimised
    (attrgetter + enum ``.value`` + ``workday_ordinal`` per call).
    """
    from store.sqlite_rows import _message_to_row

    full = Message(
        id=make_id("mailbox", "golden-1"), source="mailbox", channel="市长信箱",
        url="http://x/1", title="供暖不达标", body="小区供暖温度只有十三度", author="u1a2b",
        region="A市", department="住建局", posted_at=datetime(2024, 1, 5, 9, 30, tzinfo=TZ),
        reply_body="已转办", replied_at=datetime(2024, 1, 12, 17, 0, tzinfo=TZ), replier="住建局",
        status="answered", likes=3, reposts=1, comments=2, votes=0, topic="城乡建设",
        topic_score=0.91, urgency="紧急", urgency_reasons=["停暖", "老人"], rumour_score=0.05,
        rumour_reasons=[], extra={"b": 1, "a": "二"}, fetched_at=datetime(2024, 1, 13, tzinfo=TZ),
    ).validate()  # fmt: skip
    bare = Message(
        id=make_id("weibo", "golden-2"), source="weibo", channel="@某市发布", body="什么时候能解决"
    )
    assert _message_to_row(full) == (
        "m92cf79d43746b61b1927", "mailbox", "市长信箱", "http://x/1", "供暖不达标",
        "小区供暖温度只有十三度", "u1a2b", "A市", "住建局", 1704418200, "已转办", 1705050000,
        "住建局", "answered", 3, 1, 2, 0, None, "城乡建设", 0.91, "紧急", '["停暖", "老人"]', 0.05,
        None, None, '{"a": "二", "b": 1}', 1705075200, None, "9ea60473ce728269c61e79f99a1a0200",
        6043, 6048,
    )  # fmt: skip
    row = _message_to_row(bare.validate())
    assert type(row[1]) is str and type(row[13]) is str  # enums stored as plain values
    assert row[-3:] == ("8be99f461b9f765946091b9e9fc91cef", None, None)


def test_index_tokens_drop_punctuation_and_keep_mixed_words():
    """What FTS stores, pinned from the tokeniser before its filter was inlined."""
    from govpulse import tokenize

    assert tokenize.index_text(
        "小区供暖不达标，家里只有13度！！", "A1-3号楼 e_mail：foo_bar ——", None
    ) == ("小区 供暖 不 达标 家里 只有 13 度 a1 a1-3 号楼 mail e_mail foo bar foo_bar")


def test_cycle_collection_pauses_only_inside_the_store(tmp_path):
    """Paused while a batch is prepared and written, on while the caller's iterator runs,
    and left as found (off stays off)."""
    import gc

    store = SQLiteStore(tmp_path / "t.db", batch_size=10)
    seen: list[bool] = []

    try:
        assert gc.isenabled()
        store.upsert_many(probed(letters(35), gc.isenabled, seen))
        assert gc.isenabled() and all(seen) and len(seen) == 35
        gc.disable()
        try:
            store.upsert_many(letters(5, start=35))
            assert not gc.isenabled()
        finally:
            gc.enable()
        assert store.count() == 40
    finally:
        store.close()


def _stored(store: SQLiteStore) -> tuple[list[tuple[object, ...]], list[tuple[str, str]]]:
    """Every stored row (less updated_at, the import's clock) and every message's FTS tokens."""
    conn = store._conn()
    rows = conn.execute("SELECT * FROM messages ORDER BY id").fetchall()
    names = [d[0] for d in conn.execute("SELECT * FROM messages LIMIT 0").description]
    keep = [i for i, n in enumerate(names) if n != "updated_at"]
    fts = conn.execute(
        "SELECT m.id, f.tokens FROM messages m JOIN messages_fts f ON f.rowid = m.rowid "
        "ORDER BY m.id"
    ).fetchall()
    return [tuple(r[i] for i in keep) for r in rows], fts


@pytest.mark.parametrize("repeats", [False, True])
def test_index_workers_store_what_one_process_stores(tmp_path, repeats):
    """With index workers the digests and tokens are made in other processes: the rows,
    digests, tokens and counts must be exactly those of an import in one process.

    With `repeats` the second batch holds 500 messages the first batch wrote in the
    same transaction (unknown when it was prepared), so the rows made by the workers
    meet the update path.
    """
    from store.sqlite_rows import _HASH_IDX, _message_to_row

    stream = letters(1000) + (letters(1000, start=500) if repeats else letters(1000, start=1000))
    results = []
    for workers in (1, 2):
        store = SQLiteStore(tmp_path / f"w{workers}.db", batch_size=1000, index_workers=workers)
        try:
            stats = store.upsert_many(letters(1000) + stream[1000:])
            expected_new = 1500 if repeats else 2000
            assert (stats.inserted, stats.updated, stats.unchanged) == (
                expected_new, 0, 2000 - expected_new,
            )  # fmt: skip
            assert store.check_summaries() == []
            again = store.upsert_many(letters(1000) + stream[1000:])
            assert (again.inserted, again.updated) == (0, 0)
            rows, fts = _stored(store)
            hashes = store._conn().execute("SELECT id, content_hash FROM messages").fetchall()
            assert len(hashes) == expected_new
            for msg_id, hash_ in hashes:
                assert _message_to_row(store.get(msg_id))[_HASH_IDX] == hash_
            assert store.search("供暖", per_page=5).total == expected_new
            results.append((rows, fts))
        finally:
            store.close()
    assert results[0] == results[1]
    assert len(results[0][1]) == len(results[0][0])


@pytest.mark.parametrize("workers", [1, 2])
def test_posting_order_keeps_the_last_copy_of_an_id_and_the_failures_in_order(tmp_path, workers):
    """Rows are written in posting order, but a repeated id whose copies differ in time
    still ends as its last copy, and failures are reported in input order."""
    base = letters(6)
    for i, msg in enumerate(base):
        msg.posted_at = datetime(2024, 6, 20 - i, 9, 0, tzinfo=TZ)  # newest first
    early, late = letters(1, start=2)[0], letters(1, start=2)[0]
    early.posted_at = datetime(2024, 1, 1, tzinfo=TZ)  # would sort first
    late.posted_at = datetime(2024, 3, 1, tzinfo=TZ)
    late.body, early.title = "改过的正文", "最后一份"
    bad = [letters(1, start=90)[0], letters(1, start=91)[0]]
    bad[0].body = bad[0].title = ""
    bad[1].source = "telegram"
    stream = [bad[0], *base, late, bad[1], early]  # `early` is the last copy of imp2
    store = SQLiteStore(
        tmp_path / "t.db", batch_size=2, transaction_size=100, index_workers=workers
    )
    try:
        stats = store.upsert_many(stream)
        assert [mid for mid, _ in stats.failed] == [bad[0].id, bad[1].id]
        assert (stats.inserted, stats.updated) == (6, 2)
        got = store.get(early.id)
        # Sequential upserts: base copy, then `late`, then `early`, which wins.
        assert got is not None and got.title == "最后一份"
        assert got.posted_at == early.posted_at
        # Rows are placed by their id's first copy: oldest first.
        placed = [r[0] for r in store._read("SELECT id FROM messages ORDER BY rowid")]
        assert placed == [m.id for m in reversed(base)]
        assert store.check_summaries() == []
    finally:
        store.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_the_next_transaction_sees_the_rows_of_the_one_before(tmp_path, workers):
    """The messages transaction 1 inserts are updates in transaction 2, not new rows."""
    store = SQLiteStore(
        tmp_path / "t.db", batch_size=10, transaction_size=30, index_workers=workers
    )
    try:
        stream = letters(30) + letters(30, topic="交通运输") + letters(10, start=30)
        n = commits_during(store, lambda: store.upsert_many(iter(stream)))
        assert n == 3
        assert store.count() == 40 and store.check_summaries() == []
        assert store.facets(["topic"])["topic"] == [("交通运输", 30), ("城乡建设", 10)]
        assert store.search("供暖", per_page=1).total == 40
    finally:
        store.close()


def test_transaction_size_and_batch_size_come_from_the_settings(tmp_path):
    """`store.transaction_size` reaches the store built from a URL and bounds each commit."""
    url = f"sqlite:///{tmp_path / 't.db'}"
    store = SQLiteStore.from_url(url, {"store.transaction_size": 25, "store.batch_size": 10})
    try:
        assert (store.transaction_size, store.batch_size) == (25, 10)
        assert commits_during(store, lambda: store.upsert_many(letters(60))) == 3  # 25 + 25 + 10
        assert store.count() == 60 and store.check_summaries() == []
    finally:
        store.close()
    default = SQLiteStore.from_url(url, {})
    try:
        assert default.transaction_size == 50_000
    finally:
        default.close()


@pytest.mark.parametrize("other_store", [False, True])
def test_ids_stored_between_preparing_and_writing_are_updates(tmp_path, other_store):
    """A producer that stores messages itself, through this store or another
    connection, while the store holds a prepared transaction: those ids are
    found again when the transaction is written (updates, no duplicate rows)."""
    store = SQLiteStore(tmp_path / "t.db", batch_size=10, transaction_size=20)
    writer = SQLiteStore(tmp_path / "t.db") if other_store else store

    def feed() -> Iterator[Message]:
        yield from letters(20)  # transaction 1, prepared before the producer goes on
        writer.upsert_many(letters(5, topic="交通运输"))  # 5 of transaction 1's ids
        yield from letters(10, start=20)

    try:
        stats = store.upsert_many(feed())
        assert store.count() == 30 and store.check_summaries() == []
        assert (stats.inserted, stats.updated) == (25, 5)
        assert store.facets(["topic"])["topic"] == [("城乡建设", 30)]  # the last copy wins
    finally:
        if other_store:
            writer.close()
        store.close()


def test_bulk_writes_checkpoint_the_wal_and_keep_it_small(tmp_path):
    """Every transaction of a bulk write is checkpointed (by the store's checkpoint
    thread), so the WAL is reused from its start instead of growing with each
    transaction; a small write leaves checkpoints to SQLite."""
    path = tmp_path / "t.db"
    one = SQLiteStore(tmp_path / "one.db", batch_size=100, transaction_size=400)
    store = SQLiteStore(path, batch_size=100, transaction_size=400)
    store.bulk_checkpoint_min = 400
    try:
        small = traced(store, lambda: store.upsert_many(letters(300, start=5000)))
        assert not any("wal_autocheckpoint" in sql for sql in small)
        assert store._checkpoint_thread is None
        one.upsert_many(letters(400))
        store.upsert_many(letters(2000))
        store._checkpointer().submit(lambda: None).result()  # the last one runs on after
        conn = store._conn()
        assert conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0] == 1000  # restored
        busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        assert busy == 0 and frames == copied
        one_wal = os.path.getsize(f"{tmp_path / 'one.db'}-wal")
        # Five transactions; a WAL never started over would hold all of them.
        assert os.path.getsize(f"{path}-wal") < 2.5 * one_wal
        assert store.count() == 2300 and store.check_summaries() == []
    finally:
        one.close()
        store.close()


def test_what_a_bulk_write_freezes_is_unfrozen_and_others_freezes_are_kept(tmp_path):
    """Rows kept alive between transactions are frozen for the collector only during
    the call; a freeze made by someone else before (a pre-fork server) is left alone."""
    import gc

    store = SQLiteStore(tmp_path / "t.db", batch_size=10, transaction_size=20)
    counts: list[int] = []

    try:
        assert gc.get_freeze_count() == 0
        store.upsert_many(probed(letters(50), gc.get_freeze_count, counts))
        assert max(counts) > 0  # the prepared transaction was frozen while the feed ran
        assert gc.get_freeze_count() == 0
        gc.freeze()
        try:
            frozen = gc.get_freeze_count()
            store.upsert_many(letters(50, start=50))
            # Not unfrozen, nothing added (a few frozen objects may have been freed).
            assert frozen // 2 < gc.get_freeze_count() <= frozen
        finally:
            gc.unfreeze()
        assert store.count() == 100
    finally:
        store.close()


def test_the_index_workers_are_not_forked_while_a_thread_runs_sqlite():
    """A store's checkpoint may still run in its thread when a later import forks the
    index workers; the fork waits for it (a child forked while a thread holds one of
    SQLite's mutexes would hang when it opens its staging file)."""
    import threading
    from concurrent.futures import ThreadPoolExecutor

    from store.sqlite_workers import _worker_pool, run_in_thread

    gate = threading.Event()
    order: list[str] = []

    def checkpoint() -> None:
        gate.wait(10)
        order.append("checkpoint done")

    with ThreadPoolExecutor(1) as thread:
        run_in_thread(thread, checkpoint)
        timer = threading.Timer(0.3, gate.set)
        timer.start()
        _worker_pool(3)  # a size not used before: a new pool is forked
        order.append("forked")
        timer.join()
    assert order == ["checkpoint done", "forked"]


def test_epoch_of_is_the_timestamp_of_any_time():
    """The arithmetic path for times in Asia/Shanghai since 1992 gives exactly
    ``int(dt.timestamp())``; other zones and older times take the zone's own answer."""
    import random
    from datetime import timedelta, timezone
    from zoneinfo import ZoneInfo

    from store.common import epoch_of

    rng = random.Random(7)
    start = datetime(1985, 1, 1, tzinfo=UTC)
    zones = [TZ, TZ, TZ, UTC, timezone(timedelta(hours=8)), ZoneInfo("Europe/Berlin")]
    for _ in range(20_000):
        moment = start + timedelta(
            seconds=rng.randrange(0, 115 * 365 * 86400), microseconds=rng.randrange(10**6)
        )
        dt = moment.astimezone(rng.choice(zones))
        assert epoch_of(dt) == int(dt.timestamp()), dt
    edge = datetime(1992, 1, 1, tzinfo=TZ)
    for dt in (edge, edge - timedelta(microseconds=1), datetime(1991, 7, 1, 12, tzinfo=TZ)):
        assert epoch_of(dt) == int(dt.timestamp())
