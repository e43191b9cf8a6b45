"""Pure pipeline steps: PII masking, normalising, near-duplicate linking, revisit schedule, spool."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from scrapy.exceptions import DropItem

from crawlers.pii import mask_pii
from crawlers.pipelines.dedupe import NearDuplicateIndex
from crawlers.pipelines.normalise import normalise_item
from crawlers.pipelines.store import schedule_revisit
from crawlers.spool import Spool
from govpulse.schema import TZ, Message, make_id

NOW = datetime(2024, 6, 1, 12, 0, tzinfo=TZ)


@pytest.mark.parametrize(
    ("raw", "masked", "kinds"),
    [
        ("电话13812345678", "电话138****5678", {"mobile"}),
        ("电话+86 138-1234-5678。", "电话138****5678。", {"mobile"}),
        ("座机0551-62345678", "座机0551-****5678", {"landline"}),
        ("身份证34010419900101123X", "身份证340104***********X", {"id_number"}),
        ("邮箱zhang.san@163.com", "邮箱z***@163.com", {"email"}),
        ("车牌川A12345被剐", "车牌川A12***被剐", {"plate"}),
        ("订单号20240101123456789012不是证件", "订单号20240101123456789012不是证件", set()),
        ("无个人信息", "无个人信息", set()),
    ],
)
def test_mask_pii(raw, masked, kinds):
    text, counts = mask_pii(raw)
    assert text == masked and set(counts) == kinds


def test_normalise_item():
    item = {
        "source": "mailbox",
        "source_id": "chuzhou:1",
        "channel": " 滁州市市长信箱 ",
        "title": "  噪音\u3000问题 ",
        "body": "<p>第一段</p><p>第二段&amp;</p>",
        "posted_at": "2024年1月2日 10:23",
        "replied_at": "bogus date",
        "author": "李四",
        "_parent_source_id": "chuzhou:0",
        "extra": {"site": "chuzhou"},
    }
    out, notes = normalise_item(item, NOW)
    assert out["id"] == make_id("mailbox", "chuzhou:1") and out["parent_id"] == make_id(
        "mailbox", "chuzhou:0"
    )
    assert (
        out["title"] == "噪音 问题"
        and out["body"] == "第一段\n第二段&"
        and out["channel"] == "滁州市市长信箱"
    )
    assert out["posted_at"] == datetime(2024, 1, 2, 10, 23, tzinfo=TZ) and out["replied_at"] is None
    assert notes and "replied_at" in notes[0]
    assert out["author"] != "李四" and out["author"].startswith("u")
    assert out["extra"]["source_id"] == "chuzhou:1" and "_parent_source_id" not in out
    Message(**out).validate()
    with pytest.raises(DropItem):
        normalise_item({"source": "mailbox", "channel": "x"}, NOW)


def test_near_duplicates_are_linked_not_dropped():
    idx = NearDuplicateIndex(threshold=0.7, min_chars=10)
    a = "我是幸福里小区的居民，物业长期不维修电梯，电梯多次困人，业主多次投诉无人处理，希望督促物业尽快维修电梯。"
    assert idx.find_or_add("m1", a) is None
    assert idx.find_or_add("f1", a + "（已向市长信箱反映，再发一次）") == "m1"
    assert (
        idx.find_or_add(
            "x1", "河道发黑发臭，夏天蚊虫很多，希望尽快治理河道污染，还居民一个干净的环境。"
        )
        is None
    )
    assert idx.find_or_add("short", "顶") is None


def test_revisit_schedule_backs_off_then_gives_up():
    hours = [1, 6, 24]
    m = Message(id="m1", source="mailbox", channel="c", body="x").validate()
    schedule_revisit(m, None, hours, NOW)
    assert (
        m.extra["revisit_step"] == 0
        and m.extra["revisit_at"] == (NOW + timedelta(hours=1)).isoformat()
    )
    prev = m
    for step, h in ((1, 6), (2, 24)):
        nxt = Message(id="m1", source="mailbox", channel="c", body="x").validate()
        schedule_revisit(nxt, prev, hours, NOW)
        assert (
            nxt.extra["revisit_step"] == step
            and nxt.extra["revisit_at"] == (NOW + timedelta(hours=h)).isoformat()
        )
        prev = nxt
    last = Message(id="m1", source="mailbox", channel="c", body="x").validate()
    schedule_revisit(last, prev, hours, NOW)
    assert last.extra["revisit_at"] == "never"
    done = Message(id="m1", source="mailbox", channel="c", body="x", reply_body="已办理").validate()
    schedule_revisit(done, prev, hours, NOW)
    assert done.extra["revisit_at"] == "done"


def test_spool_replays_into_store(tmp_path, sqlite_store):
    spool = Spool(tmp_path / "spool")
    msgs = [
        Message(id=f"m{i}", source="forum", channel="b", body=f"正文{i}", posted_at=NOW).validate()
        for i in range(5)
    ]
    spool.write("forum", msgs[:3])
    spool.write("forum", msgs[3:])
    (tmp_path / "spool" / "forum.jsonl").open("a").write("{not json\n")
    assert spool.pending() == 6
    assert spool.replay(sqlite_store) == 5
    assert spool.pending() == 0
    assert {m.id for m in sqlite_store.get_many([m.id for m in msgs])} == {m.id for m in msgs}


def test_classify_step_tags_or_passes_through(tmp_path):
    """With the installed models items get tagged; without them they pass through, counted."""
    from scrapy.utils.test import get_crawler

    from crawlers.pipelines.classify import ClassifyPipeline, load_tagger
    from govpulse.settings import load

    gp = dict(load(env={}).items())
    crawler = get_crawler(settings_dict={"GOVPULSE": gp})
    step = ClassifyPipeline.from_crawler(crawler)
    msgs = [
        Message(
            id=f"m{i}", source="forum", channel="b", body="小区燃气泄漏，味道很大，请尽快处理"
        ).validate()
        for i in range(2)
    ]
    for m in msgs:
        assert step.process_item(m) is m
    if load_tagger(gp) is None:
        assert crawler.stats.get_value("govpulse/classify/skipped") == 2
        assert all(m.topic is None and m.urgency is None for m in msgs)
    else:
        assert crawler.stats.get_value("govpulse/classify/tagged") == 2
        assert all(m.urgency is not None for m in msgs)


class _CountingTagger:
    """Stands in for classify.tagger.Tagger: records the size of every call."""

    def __init__(self) -> None:
        self.calls: list[int] = []

    def tag(self, messages):
        self.calls.append(len(messages))
        for m in messages:
            m.urgency = "一般"


def test_classify_tags_in_the_store_steps_batches(tmp_path):
    """With the store step behind it, the classify step tags each store batch in one call,
    before the batch is written (here: spooled, as no store is configured)."""
    from scrapy.utils.test import get_crawler

    from crawlers.pipelines.classify import ClassifyPipeline
    from crawlers.pipelines.store import StorePipeline
    from crawlers.spool import Spool
    from govpulse.settings import load

    gp = {**dict(load(env={}).items()), "crawl.store_batch": 4}
    crawler = get_crawler(settings_dict={"GOVPULSE": gp, "GOVPULSE_DATA_DIR": str(tmp_path)})
    classify = ClassifyPipeline.from_crawler(crawler)
    classify.tagger, classify.loaded = _CountingTagger(), True
    store = StorePipeline.from_crawler(crawler)
    classify_open = getattr(classify, "open_spider", None)
    if classify_open:
        classify_open()
    store.open_spider()
    msgs = [
        Message(id=f"b{i}", source="forum", channel="b", body=f"正文{i}", posted_at=NOW).validate()
        for i in range(10)
    ]
    for m in msgs:
        store.process_item(classify.process_item(m))
    assert classify.tagger.calls == [4, 4]  # two full batches written, tagged once each
    store.close_spider()
    classify.close_spider()
    assert classify.tagger.calls == [4, 4, 2]
    assert all(m.urgency == "一般" for m in msgs)
    assert crawler.stats.get_value("govpulse/classify/tagged") == 10
    spooled = Spool(tmp_path / "spool").pending()
    assert spooled == 10


def test_classify_without_store_step_tags_each_item():
    from scrapy.utils.test import get_crawler

    from crawlers.pipelines.classify import ClassifyPipeline

    crawler = get_crawler(settings_dict={"GOVPULSE": {}})
    classify = ClassifyPipeline.from_crawler(crawler)
    classify.tagger, classify.loaded = _CountingTagger(), True
    m = Message(id="c1", source="forum", channel="b", body="正文", posted_at=NOW).validate()
    assert classify.process_item(m) is m and m.urgency == "一般"
    assert classify.tagger.calls == [1]


def test_classify_batch_failure_leaves_items_untagged_but_stored(tmp_path):
    from scrapy.utils.test import get_crawler

    from crawlers.pipelines.classify import ClassifyPipeline
    from crawlers.pipelines.store import StorePipeline
    from crawlers.spool import Spool

    class Broken:
        def tag(self, messages):
            raise RuntimeError("model exploded")

    crawler = get_crawler(
        settings_dict={"GOVPULSE": {"crawl.store_batch": 3}, "GOVPULSE_DATA_DIR": str(tmp_path)}
    )
    classify = ClassifyPipeline.from_crawler(crawler)
    classify.tagger, classify.loaded = Broken(), True
    store = StorePipeline.from_crawler(crawler)
    store.open_spider()
    msgs = [
        Message(id=f"x{i}", source="forum", channel="b", body="正文", posted_at=NOW).validate()
        for i in range(3)
    ]
    for m in msgs:
        store.process_item(classify.process_item(m))
    assert crawler.stats.get_value("govpulse/classify/failed") == 3
    assert all(m.urgency is None for m in msgs)
    assert Spool(tmp_path / "spool").pending() == 3  # written all the same


def test_health_thresholds():
    from scrapy.utils.test import get_crawler

    from crawlers.health import CrawlHealth
    from govpulse.settings import load

    gp = dict(load(env={}).items())
    crawler = get_crawler(settings_dict={"GOVPULSE": gp})
    health = CrawlHealth(crawler)
    stats = crawler.stats
    for key, value in {
        "downloader/request_count": 40,
        "response_received_count": 30,
        "item_scraped_count": 12,
        "retry/max_reached": 10,
        "govpulse/list_pages": 4,
        "govpulse/list_rows": 4,
    }.items():
        stats.set_value(key, value)
    health.report("captcha", "http://h/forum.php?fid=49 says '验证码'")
    kinds = {e.kind: e for e in health.events("forum", "finished", previous_rows=15.0)}
    assert set(kinds) == {"captcha", "error_rate", "layout_changed", "finished"}
    assert not kinds["finished"].ok and "rows_per_list_page=1.0" in kinds["finished"].detail
    assert "10 errors in 40 requests" in kinds["error_rate"].detail
    calm = CrawlHealth(get_crawler(settings_dict={"GOVPULSE": gp}))
    calm.crawler.stats.set_value("govpulse/list_pages", 2)
    calm.crawler.stats.set_value("govpulse/list_rows", 30)
    (only,) = calm.events("forum", "finished", previous_rows=15.0)
    assert only.kind == "finished" and only.ok
    (shutdown, _) = calm.events("forum", "shutdown", previous_rows=None)
    assert shutdown.kind == "incomplete" and "shutdown" in shutdown.detail


def test_answering_office_becomes_the_department():
    from datetime import datetime

    from crawlers.pipelines.normalise import normalise_item
    from govpulse.schema import TZ

    base = {
        "source": "mailbox",
        "source_id": "1",
        "channel": "市长信箱",
        "title": "路灯",
        "body": "坏了",
    }
    out, _ = normalise_item({**base, "replier": " 城管局 "}, datetime(2024, 1, 1, tzinfo=TZ))
    assert out["department"] == "城管局"
    out, _ = normalise_item(
        {**base, "replier": "城管局", "department": "住建局"}, datetime(2024, 1, 1, tzinfo=TZ)
    )
    assert out["department"] == "住建局"
    out, _ = normalise_item(base, datetime(2024, 1, 1, tzinfo=TZ))
    assert out.get("department") is None
