"""Elasticsearch/OpenSearch backend beyond the shared contract.

Zero loss when the server dies mid-ingest or blocks writes, deep paging
past the result window, per-document error reporting, concurrent writers,
alias-swapping reindex, and resumable ``store copy`` in both directions.
All run on osmem-server (an in-memory OpenSearch-compatible server) on
127.0.0.1, through both client libraries where they behave differently.
"""

from __future__ import annotations

import socket
import threading
from datetime import datetime, timedelta

import pytest

from govpulse.schema import TZ, CrawlEvent, Label, Message, make_id
from store.base import Filters, StoreError, StoreUnavailable
from store.elastic import ElasticStore
from store.elastic_client import ConnectionOptions
from store.sqlite import SQLiteStore
from tests.store.conftest import ELASTIC_PARAMS, make_elastic_client, open_elastic_store

osmem_server = pytest.importorskip("osmem_server")

T0 = datetime(2024, 3, 1, 9, 0, tzinfo=TZ)


def letters(n: int, start: int = 0, answered_every: int = 3) -> list[Message]:
    out = []
    for i in range(start, start + n):
        answered = i % answered_every == 0
        out.append(
            Message(
                id=make_id("mailbox", f"L{i}"),
                source="mailbox",
                channel="市长信箱",
                title=f"供暖不足{i}",
                body="小区供暖温度不达标" if i % 2 else "农民工工资拖欠",
                department=["住建局", "人社局"][i % 2],
                posted_at=T0 + timedelta(hours=i),
                replied_at=T0 + timedelta(hours=i, days=4) if answered else None,
                reply_body="已转办" if answered else None,
                likes=i,
            ).validate()
        )
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def own_server():
    """A private osmem-server on a fixed port, so a test can stop and restart it."""
    port = free_port()
    servers = [osmem_server.OsmemServer.start(japanese=False, addr=f"127.0.0.1:{port}")]

    class Handle:
        url = servers[0].url

        def stop(self) -> None:
            servers[-1].close(grace=2)

        def start(self) -> None:
            servers.append(osmem_server.OsmemServer.start(japanese=False, addr=f"127.0.0.1:{port}"))

    yield Handle()
    servers[-1].close(grace=2)


@pytest.mark.parametrize("kind", ["opensearch", "elasticsearch"])
def test_server_stopped_mid_ingest_loses_nothing(own_server, kind, tmp_path):
    """Stop the server inside one upsert_many call, restart it, and count.

    osmem keeps data in memory, so the restarted server comes back empty:
    what must arrive there is every message written while it was down
    (spooled, then replayed in order) plus everything after, exactly once.
    """
    store = ElasticStore(
        make_elastic_client(kind, own_server.url), url=own_server.url, prefix="zl",
        spool_path=tmp_path / "spool.sqlite", batch_size=40, retries=1, backoff_s=0.01,
        replicas=0, spool_retry_s=0,
    )  # fmt: skip
    msgs = letters(400)
    # A later version of message 150 (now answered) queued behind its first version.
    late = letters(1, start=150, answered_every=1)[0]
    late.reply_body = "已办结：第二版"

    def feed():
        for i, msg in enumerate(msgs):
            if i == 120:
                own_server.stop()  # dies between bulk requests of one call
            if i == 280:
                own_server.start()  # back (empty) before the next chunk
            if i == 200:
                yield late
            yield msg

    store.upsert_many(feed())
    store.add_crawl_event(CrawlEvent("mailbox", "mailbox", "finished", T0, items=400))
    assert store.spool.pending() == 0
    assert store.spooled == 160  # stream items 120..279 (the late version among them)
    after_stop = {m.id for m in msgs[120:]}
    stored = [m.id for m in store.iter_messages()]
    assert len(stored) == len(set(stored)) == 280
    assert set(stored) == after_stop
    got = store.get(late.id)
    # Replayed in order: the later version's reply survives the earlier one.
    assert got.reply_body == "已办结：第二版" and got.status.value == "answered"
    assert [e.items for e in store.crawl_events()] == [400]
    store.close()


def test_spool_left_by_a_previous_process_is_replayed_first(own_server, tmp_path):
    settings = {
        "store.es_spool_path": str(tmp_path / "s.sqlite"),
        "store.es_retries": 0,
        "store.es_replicas": 0,
        "store.es_prefix": "handover",
    }
    own_server.stop()
    crashed = ElasticStore.from_url(own_server.url, settings)
    crashed.upsert_many(letters(30))
    crashed.add_crawl_event(CrawlEvent("mailbox", "mailbox", "crashed", T0, ok=False))
    crashed.close()
    own_server.start()
    fresh = ElasticStore.from_url(own_server.url, settings)
    stats = fresh.upsert_many(letters(5, start=30))
    assert stats.inserted == 5 and fresh.spool.pending() == 0
    assert fresh.count() == 35
    assert [e.kind for e in fresh.crawl_events()] == ["crashed"]
    fresh.close()


def test_store_opens_and_spools_while_cluster_is_down(tmp_path):
    url = f"http://127.0.0.1:{free_port()}"  # nothing listens here
    store = ElasticStore.from_url(
        url,
        {
            "store.es_spool_path": str(tmp_path / "s.sqlite"),
            "store.es_retries": 0,
            "store.es_timeout": 2,
        },
    )
    stats = store.upsert_many(letters(5))
    store.add_label(Label("m1", "topic", "教育文体", "staff", T0))
    assert (stats.inserted, stats.failed) == (0, [])
    assert store.spool.pending() == 6
    with pytest.raises(StoreUnavailable):
        store.count()
    assert "error" in store.info()
    store.close()
    # The spool is durable: a new process sees the same pending writes.
    again = ElasticStore.from_url(url, {"store.es_spool_path": str(tmp_path / "s.sqlite")})
    assert again.spool.pending() == 6
    again.close()


@pytest.mark.parametrize("elastic_target", ELASTIC_PARAMS, indirect=True)
def test_write_block_spools_and_replays(elastic_target):
    store = open_elastic_store(elastic_target, spool_retry_s=0)
    store.upsert_many(letters(10))
    index = store.current_index()
    store._req("PUT", f"/{index}/_settings", {"index": {"blocks": {"write": True}}})
    stats = store.upsert_many(letters(10, start=10))
    assert stats.inserted == 0 and not stats.failed
    assert store.spool.pending() == 10 and store.count() == 10
    store._req("PUT", f"/{index}/_settings", {"index": {"blocks": {"write": False}}})
    assert store.replay_spool() == 10
    assert store.count() == 20 and store.spool.pending() == 0
    store.close()


@pytest.mark.parametrize("elastic_target", ELASTIC_PARAMS, indirect=True)
def test_deep_pages_past_the_result_window(elastic_target, tmp_path):
    """With max_result_window 20, page 7 of 10 (offset 60) still comes back, in SQLite's order."""
    store = open_elastic_store(elastic_target, max_window=20)
    ref = SQLiteStore(tmp_path / "ref.db")
    msgs = letters(95)
    store.upsert_many(msgs)
    ref.upsert_many(msgs)
    for sort in ("-posted_at", "likes", "-replied_at"):
        for page in (1, 2, 7, 10):
            got = store.search(sort=sort, page=page, per_page=10)
            want = ref.search(sort=sort, page=page, per_page=10)
            assert got.total == want.total == 95
            assert [m.id for m in got.hits] == [m.id for m in want.hits], (sort, page)
    assert store.search(page=11, per_page=10).hits == []
    assert [m.id for m in store.iter_messages(batch_size=7)] == [m.id for m in ref.iter_messages()]
    store.close()
    ref.close()


@pytest.mark.parametrize("elastic_target", ["opensearch"], indirect=True)
def test_per_document_errors_are_reported_and_kept(elastic_target):
    """An index made by an older mapping refuses some documents: report them, keep the rest."""
    store = open_elastic_store(elastic_target)
    old_props = {
        k: v
        for k, v in store._template_body()["template"]["mappings"]["properties"].items()
        if k != "delay_wd"
    }
    store._req(
        "PUT",
        f"/{store.messages_alias}-v1",
        {
            "mappings": {"dynamic": "strict", "properties": old_props},
            "aliases": {store.messages_alias: {}},
        },
    )
    msgs = letters(9)  # every third is answered and so carries delay_wd
    stats = store.upsert_many(msgs)
    assert stats.inserted == 6
    assert sorted(i for i, _ in stats.failed) == sorted(m.id for m in msgs if m.replied_at)
    assert all("strict_dynamic_mapping" in reason for _, reason in stats.failed)
    assert store.spool.rejected_count() == 3
    # The cure for a stale mapping: reindex to the current one, then re-send.
    result = store.reindex()
    assert result["new"].endswith("-v2") and result["documents"] == 6
    assert store.upsert_many(msgs).inserted == 3
    assert store.count() == 9
    store.close()


def test_too_long_id_fails_alone(elastic_store):
    bad = letters(1)[0]
    bad.id = "x" * 600
    stats = elastic_store.upsert_many([bad, *letters(3, start=1)])
    assert stats.inserted == 3
    assert stats.failed[0][0].startswith("xxx") and "512" in stats.failed[0][1]


@pytest.mark.parametrize("elastic_target", ["opensearch"], indirect=True)
def test_concurrent_writers_merge_not_overwrite(elastic_target):
    """Two stores update the same letter at once; optimistic concurrency keeps every change."""
    a, b = open_elastic_store(elastic_target), open_elastic_store(elastic_target)
    base = letters(1)[0]
    a.upsert(base)

    def writer(store: ElasticStore, tag: str) -> None:
        for i in range(15):
            msg = letters(1)[0]
            msg.extra = {f"{tag}{i}": i}
            store.upsert(msg)

    threads = [threading.Thread(target=writer, args=(s, t)) for s, t in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    extra = a.get(base.id).extra
    assert set(extra) == {f"{t}{i}" for t in "ab" for i in range(15)}
    a.close()
    b.close()


@pytest.mark.parametrize("elastic_target", ["opensearch"], indirect=True)
def test_write_that_always_loses_the_race_is_spooled_not_dropped(elastic_target, monkeypatch):
    """A rival writes the letter between every read and write: the change waits in the spool."""
    import store.elastic as elastic_module

    monkeypatch.setattr(elastic_module, "CONFLICT_ROUNDS", 3)
    mine, rival = open_elastic_store(elastic_target), open_elastic_store(elastic_target)
    base = letters(1)[0]
    mine.upsert(base)
    real_mget = mine._mget
    rounds = iter(range(100))

    def mget_then_rival_writes(ids):  # type: ignore[no-untyped-def]
        seen = real_mget(ids)
        msg = letters(1)[0]
        msg.extra = {f"rival{next(rounds)}": 1}
        rival.upsert(msg)
        return seen

    monkeypatch.setattr(mine, "_mget", mget_then_rival_writes)
    msg = letters(1)[0]
    msg.extra = {"mine": 1}
    stats = mine.upsert_many([msg])
    assert stats.failed == [] and stats.updated == 0
    assert mine.spool.pending() == 1
    monkeypatch.setattr(mine, "_mget", real_mget)
    assert mine.replay_spool() == 1
    mine._refresh(mine.messages_alias)
    extra = mine.get(base.id).extra
    assert {"mine", "rival0", "rival1", "rival2"} <= set(extra)
    mine.close()
    rival.close()


@pytest.mark.parametrize("elastic_target", ELASTIC_PARAMS, indirect=True)
def test_reindex_swaps_alias_and_keeps_answers(elastic_target):
    store = open_elastic_store(elastic_target)
    store.upsert_many(letters(50))
    before = (
        store.count("供暖"),
        store.facets(["department"]),
        store.timeliness(now=T0 + timedelta(days=30)),
    )
    result = store.reindex(batch_size=16)
    assert (result["old"], result["new"]) == (
        f"{store.messages_alias}-v1",
        f"{store.messages_alias}-v2",
    )
    assert store.current_index() == result["new"]
    assert store.versioned_indices() == [result["new"]]  # old one dropped
    after = (
        store.count("供暖"),
        store.facets(["department"]),
        store.timeliness(now=T0 + timedelta(days=30)),
    )
    assert after == before
    store.upsert_many(letters(5, start=50))  # writes go to the new version
    assert store.count() == 55
    kept = store.reindex(keep_old=True)
    assert store.versioned_indices() == [result["new"], kept["new"]]
    store.close()


@pytest.mark.parametrize("elastic_target", ELASTIC_PARAMS, indirect=True)
def test_copy_sqlite_to_elastic_resumes_and_round_trips(elastic_target, tmp_path):
    from store.cli import copy_store

    src = SQLiteStore(tmp_path / "src.db")
    msgs = letters(130)
    src.upsert_many(msgs)
    for i in range(3):
        src.add_crawl_event(
            CrawlEvent("mailbox", "mailbox", "finished", T0 + timedelta(hours=i), items=i)
        )
    src.add_label(Label(msgs[0].id, "topic", "城乡建设", "staff", T0))
    dst = open_elastic_store(elastic_target)
    checkpoint = tmp_path / "copy.json"
    batches = []

    def crash_after_two(n: int) -> None:
        batches.append(n)
        if len(batches) == 2:
            raise KeyboardInterrupt  # Ctrl-C half-way

    with pytest.raises(KeyboardInterrupt):
        copy_store(src, dst, checkpoint, batch_size=50, progress=crash_after_two)
    assert dst.count() == 100
    result = copy_store(src, dst, checkpoint, batch_size=50)
    assert result["resumed"] and result["messages"].inserted == 30
    assert (result["events"], result["labels"]) == (3, 1)
    assert copy_store(src, dst, checkpoint)["already_done"]
    # Back again into an empty SQLite store: identical messages, events and labels.
    back = SQLiteStore(tmp_path / "back.db")
    copy_store(dst, back, tmp_path / "back.json", batch_size=40)
    assert [m.to_dict() for m in back.iter_messages()] == [m.to_dict() for m in src.iter_messages()]
    assert back.crawl_events() == src.crawl_events()
    assert back.labels() == src.labels()
    for s in (src, dst, back):
        s.close()


def test_cli_copy_reindex_info(osmem, tmp_path, monkeypatch):
    from click.testing import CliRunner

    from govpulse.cli import main

    monkeypatch.setenv("GOVPULSE_DATA_DIR", str(tmp_path / "data"))
    src = SQLiteStore(tmp_path / "src.db")
    src.upsert_many(letters(30))
    src.close()
    es = osmem.url
    prefix = f"cli{free_port()}"
    sets = ["--set", f"store.es_prefix={prefix}", "--set", "store.es_replicas=0"]
    runner = CliRunner()
    res = runner.invoke(main, [*sets, "store", "copy", f"sqlite:///{tmp_path / 'src.db'}", es])
    assert res.exit_code == 0, res.output
    assert "30 inserted" in res.output
    res = runner.invoke(main, [*sets, "--store", es, "store", "reindex"])
    assert res.exit_code == 0, res.output
    assert f"{prefix}-messages-v1 -> {prefix}-messages-v2" in res.output
    res = runner.invoke(main, [*sets, "--store", es, "store", "info"])
    assert "flavour: opensearch" in res.output and "messages: 30" in res.output
    res = runner.invoke(main, [*sets, "store", "copy", es, es])
    assert res.exit_code != 0 and "same store" in res.output
    res = runner.invoke(
        main, [*sets, "--store", f"sqlite:///{tmp_path / 'src.db'}", "store", "reindex"]
    )
    assert res.exit_code != 0 and "not an Elasticsearch" in res.output


def test_elasticsearch_client_speaks_the_cluster_major(osmem):
    """A 9.x client asks an 8.x cluster for compatible-with=8, not its own 9."""
    from store.elastic_client import ElasticsearchClient
    from tests.store.conftest import osmem_compat_node_class

    node = osmem_compat_node_class()
    client = ElasticsearchClient(
        ConnectionOptions.from_url(osmem.url), server_major=8, node_class=node
    )
    client.request("POST", "/_search", {"size": 0})
    client.close()
    assert node.seen_media_types
    assert all(t.endswith("compatible-with=8") for t in node.seen_media_types)


def test_connection_options_from_url_and_settings():
    opts = ConnectionOptions.from_url(
        "https://elastic:p%40ss@es.example:9243/proxy/", {"store.es_timeout": 5}
    )
    assert (opts.url, opts.username, opts.password, opts.timeout) == (
        "https://es.example:9243/proxy", "elastic", "p@ss", 5.0,
    )  # fmt: skip
    opts = ConnectionOptions.from_url(
        "http://h:9200", {"store.es_username": "u", "store.es_password": "pw"}
    )
    assert (opts.username, opts.password) == ("u", "pw")
    with pytest.raises(StoreError, match="not an Elasticsearch URL"):
        ConnectionOptions.from_url("ftp://h")


def test_search_filters_and_query_edge_cases(elastic_store):
    elastic_store.upsert_many(letters(12))
    assert (
        elastic_store.count("！！！") == 0
    )  # a query with no tokens matches nothing, as in SQLite
    assert elastic_store.count("   ") == 12
    assert elastic_store.count(filters=Filters.make(department="不存在")) == 0
    assert elastic_store.facets(["replier"]) == {"replier": []}
    assert elastic_store.histogram("hour", filters=Filters.make(ids=["nope"])) == []
    assert elastic_store.timeliness(filters=Filters.make(ids=["nope"])) == []
