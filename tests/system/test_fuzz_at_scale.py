"""Bad input at scale: over 10,000 malformed pages, JSON, items and letters, 0 crashes.

A deterministic mutation fuzzer (seeded, so a failure replays) starts from
the real-shaped fixtures under tests/fixtures/ and mangles them the way the
wild does: truncation, flipped bytes, wrong encodings, junk markup, deleted
keys, values of the wrong type, huge and empty texts, bogus dates.  Each
target may only fail in its documented way:

* page objects raise ParseError (BlockedError included),
* the time parser raises TimeParseError,
* the pipelines drop an item with DropItem (and a reason),
* `govpulse import` reports a row problem; the store stores what is valid.

Anything else is a crash and fails the test, with the input that caused it.
"""

from __future__ import annotations

import copy
import csv
import io
import json
import random
import re
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from scrapy.exceptions import DropItem
from scrapy.utils.test import get_crawler

from crawlers.pages.base import PageInput, ParseError
from crawlers.pages.discuz import ForumListPage, ThreadPage, thread_items
from crawlers.pages.liuyan import LiuyanDetailPage, LiuyanListPage
from crawlers.pages.mailbox_html import MailboxDetailPage, MailboxListPage
from crawlers.pages.weibo import CommentsPage, ExtendPage, TimelinePage
from crawlers.pipelines.dedupe import DedupePipeline
from crawlers.pipelines.mask import MaskPipeline
from crawlers.pipelines.normalise import NormalisePipeline
from crawlers.pipelines.validate import ValidatePipeline
from crawlers.sites import load_site
from govpulse.importer import ImportError_, import_file
from govpulse.schema import TZ, Source
from govpulse.timeparse import TimeParseError, parse_time
from store.sqlite import SQLiteStore

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures"
NOW = datetime(2024, 6, 1, 12, 0, tzinfo=TZ)
SITES = [load_site("chuzhou"), load_site("chengdu12345")]
JUNK = [
    b"<script>alert(1)</script>", b"\x00\x00", b"</div></td></table>", b"\xff\xfe", b"{",
    "系统繁忙".encode(), b"]]", b"&#x0;", b"\xe4\xb8", "😀".encode() * 50, b"<!--", b'"\\u00',
]  # fmt: skip
COUNTS: dict[str, int] = {}


def _mutate_json(value: Any, rng: random.Random) -> Any:
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            roll = rng.random()
            if roll < 0.08:
                continue  # key deleted
            if roll < 0.16:
                out[key] = rng.choice(
                    [None, "", 0, -1, [], {}, "x" * 5000, "昨天 99:99", True, 1e308]
                )
            else:
                out[key] = _mutate_json(item, rng)
        return out
    if isinstance(value, list):
        items = [_mutate_json(v, rng) for v in value if rng.random() > 0.1]
        if items and rng.random() < 0.1:
            items.append(copy.deepcopy(items[0]))
        return items
    if isinstance(value, str) and rng.random() < 0.1:
        return value[: rng.randrange(len(value) + 1)] + rng.choice(
            ["", "<b>", "&amp", "\ud800"[:0], "🙂"]
        )
    return value


def mutate(body: bytes, rng: random.Random) -> bytes:
    """One malformed variant of a page body."""
    kind = rng.randrange(8)
    if kind == 0:
        return body[: rng.randrange(len(body) + 1)]
    if kind == 1:
        data = bytearray(body)
        for _ in range(rng.randint(1, 40)):
            if data:
                data[rng.randrange(len(data))] = rng.randrange(256)
        return bytes(data)
    if kind == 2:
        cut = rng.randrange(len(body) + 1)
        return body[:cut] + rng.choice(JUNK) + body[cut:]
    if kind == 3:
        try:
            return body.decode("utf-8").encode("gb18030")
        except UnicodeDecodeError:
            return body.decode("gb18030", errors="replace").encode("utf-8")
    if kind == 4:
        try:
            return json.dumps(
                _mutate_json(json.loads(body), rng), ensure_ascii=rng.random() < 0.5
            ).encode()
        except (ValueError, RecursionError):
            return body[::-1]
    if kind == 5:
        return body * rng.randint(2, 20)  # repeated content, endless lists
    if kind == 6:
        return rng.choice([b"", b" ", b"null", b"[]", b"{}", b"<html></html>", b"\x00" * 100])
    return re.sub(rb"\d", lambda m: str(rng.randrange(10)).encode(), body)


def page_calls(page: PageInput) -> list:
    calls = [
        lambda: TimelinePage(page, NOW).parse(),
        lambda: ExtendPage(page, NOW).long_text(),
        lambda: CommentsPage(page, NOW).parse(),
        lambda: LiuyanListPage(page, NOW).parse(),
        lambda: LiuyanDetailPage(page, NOW).parse("1"),
        lambda: ForumListPage(page, NOW).parse(),
        lambda: thread_items(
            ThreadPage(page, NOW).parse(), {"source_id": "1"}, re.compile("局$"), True
        ),
    ]
    for site in SITES:
        calls.append(
            lambda site=site: MailboxListPage(page, site, NOW).parse(1, "http://127.0.0.1")
        )
        calls.append(lambda site=site: MailboxDetailPage(page, site, NOW).parse("x:1"))
    return calls


def test_page_objects_on_mutated_pages():
    rng = random.Random(20241122)
    seeds = [p.read_bytes() for p in sorted((FIXTURES / "crawlers").iterdir()) if p.is_file()]
    assert seeds, "no crawler fixtures"
    runs = 0
    for i in range(800):
        body = mutate(rng.choice(seeds), rng)
        page = PageInput("http://127.0.0.1/x?id=1", body, rng.choice([200, 200, 200, 404, 500]))
        for call in page_calls(page):
            try:
                call()
            except ParseError:
                pass
            except Exception as exc:
                pytest.fail(f"page object crashed on input {i}: {exc!r}\n{body[:300]!r}")
            runs += 1
    COUNTS["page objects"] = runs
    assert runs >= 7000


def test_time_parser_on_mutated_times():
    rng = random.Random(7)
    seeds = ["刚刚", "5分钟前", "今天 10:23", "昨天 23:05", "06-14", "2024年1月2日 10:23",
             "2019/4/25 9:32:09", "Tue Jun 08 09:35:04 +0800 2021", "2021-06-08T01:35:04Z", "1623116104"]  # fmt: skip
    runs = 0
    for _ in range(3000):
        raw = mutate(rng.choice(seeds).encode(), rng).decode("utf-8", errors="replace")
        try:
            got = parse_time(raw, now=NOW)
            assert got.tzinfo is not None
        except TimeParseError:
            pass
        runs += 1
    COUNTS["time strings"] = runs


def _items_from_fixtures() -> list[dict[str, Any]]:
    page = PageInput(
        "http://127.0.0.1/forum.php?mod=viewthread&tid=1",
        (FIXTURES / "crawlers" / "discuz_thread.html").read_bytes(),
    )
    items = thread_items(
        ThreadPage(page, NOW).parse(),
        {"source_id": "1", "source": "forum", "channel": "问政"},
        re.compile("局$"),
        True,
    )
    listing = LiuyanListPage(
        PageInput(
            "http://127.0.0.1/v1/threads/list/df",
            (FIXTURES / "crawlers" / "liuyan_list.json").read_bytes(),
        ),
        NOW,
    ).parse()
    return [dict(i) for i in items] + [dict(i) for i in getattr(listing, "letters", [])]


def test_pipelines_on_mutated_items():
    rng = random.Random(99)
    crawler = get_crawler()
    crawler.stats.open_spider(None)
    steps = [
        NormalisePipeline(crawler.stats),
        ValidatePipeline(crawler.stats),
        MaskPipeline(crawler.stats),
        DedupePipeline(crawler.stats, 0.8, 20),
    ]
    seeds = _items_from_fixtures()
    assert seeds, "no items parsed from the fixtures"
    runs = dropped = 0
    for i in range(2500):
        item = _mutate_json(copy.deepcopy(rng.choice(seeds)), rng)
        if rng.random() < 0.2:
            item[rng.choice(["body", "title", "posted_at", "replied_at", "likes", "author"])] = (
                rng.choice(
                    [
                        "",
                        None,
                        "x" * 300_000,
                        "😀😀",
                        "<script>alert(1)</script>",
                        "2024-13-45",
                        -5,
                        ["a"],
                        {"b": 1},
                    ]
                )
            )
        item.setdefault("source_id", f"fz{i}")
        try:
            for step in steps:
                item = step.process_item(item, None)
        except DropItem as exc:
            assert str(exc), "DropItem without a reason"
            dropped += 1
        except Exception as exc:
            pytest.fail(f"pipeline crashed on item {i}: {exc!r}\n{str(item)[:300]}")
        runs += 1
    COUNTS["pipeline items"] = runs
    assert 0 < dropped < runs


def test_import_on_mutated_letters(tmp_path):
    rng = random.Random(3)
    header = [
        "留言编号",
        "留言用户",
        "留言主题",
        "留言时间",
        "留言详情",
        "答复意见",
        "答复时间",
        "点赞数",
    ]
    store = SQLiteStore(tmp_path / "fuzz.db")
    rows_total = 0
    for f in range(4):
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(header)
        for r in range(500):
            row = [str(f * 1000 + r), f"U{r}", "小区供暖不足" * rng.randint(0, 3), "2019/4/25 9:32:09",
                   "家里只有十三度，电话13812345678", "已处理", "2019/5/9 10:02:08", "3"]  # fmt: skip
            for c in range(len(row)):
                if rng.random() < 0.25:
                    row[c] = mutate(row[c].encode(), rng).decode("utf-8", errors="replace")
            writer.writerow(row[: rng.randint(4, len(row))] if rng.random() < 0.1 else row)
        raw = buf.getvalue().encode("utf-8" if f % 2 else "gb18030", errors="replace")
        path = tmp_path / f"letters{f}.csv"
        path.write_bytes(raw)
        try:
            _, rows = import_file(path, Source.MAILBOX, now=NOW)
        except ImportError_:
            continue
        good = []
        for _number, msg, _warnings, error in rows:
            rows_total += 1
            if msg is not None:
                good.append(msg)
            else:
                assert error
        stats = store.upsert_many(good)
        assert stats.inserted + stats.updated + stats.unchanged + len(stats.failed) == len(good)
    COUNTS["import rows"] = rows_total
    assert rows_total >= 1500
    store.close()


def test_total_is_over_ten_thousand():
    total = sum(COUNTS.values())
    print(f"fuzz inputs: {COUNTS} total {total}")
    assert total >= 10_000, COUNTS
