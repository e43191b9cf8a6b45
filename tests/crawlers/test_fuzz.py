"""Random and malformed bodies at every page object and the time parser: 0 crashes.

Page objects may only raise ParseError (BlockedError included); the time
parser only TimeParseError.  Anything else is a bug.
"""

from __future__ import annotations

import contextlib
import json
import re
from datetime import datetime
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from crawlers.pages.base import PageInput, ParseError
from crawlers.pages.discuz import ForumListPage, ThreadPage, thread_items
from crawlers.pages.liuyan import LiuyanDetailPage, LiuyanListPage
from crawlers.pages.mailbox_html import MailboxDetailPage, MailboxListPage
from crawlers.pages.weibo import CommentsPage, ExtendPage, TimelinePage
from crawlers.sites import load_site
from govpulse.schema import TZ
from govpulse.timeparse import TimeParseError, parse_time

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "crawlers"
NOW = datetime(2024, 6, 1, tzinfo=TZ)
SITES = [load_site("chuzhou"), load_site("chengdu12345")]
SEEDS = [p.read_bytes() for p in sorted(FIX.iterdir())]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(
            st.sampled_from(
                [
                    "ok",
                    "data",
                    "cards",
                    "card_type",
                    "mblog",
                    "id",
                    "mid",
                    "text",
                    "user",
                    "created_at",
                    "comments",
                    "max_id",
                    "total_number",
                    "resultData",
                    "contentList",
                    "tid",
                    "dateline",
                    "content",
                    "responseData",
                    "longTextContent",
                    "cardlistInfo",
                    "since_id",
                    "like_count",
                    "stateInfo",
                    "answerContent",
                ]
            ),
            inner,
            max_size=6,
        )
    ),
    max_leaves=25,
)


def mutate(seed: bytes, cut: int, junk: bytes) -> bytes:
    cut = cut % (len(seed) + 1)
    return seed[:cut] + junk + seed[cut + len(junk) :]


bodies = st.one_of(
    st.binary(max_size=400),
    json_values.map(lambda v: json.dumps(v).encode()),
    st.builds(mutate, st.sampled_from(SEEDS), st.integers(0, 10_000), st.binary(max_size=30)),
    st.text(max_size=300).map(
        lambda t: f"<html><body>{t}</body></html>".encode("gbk", errors="replace")
    ),
)


def run_all(body: bytes) -> None:
    page = PageInput("http://127.0.0.1/forum.php?mod=viewthread&tid=1", body, 200, {})
    calls = [
        lambda: TimelinePage(page, NOW).parse(),
        lambda: ExtendPage(page, NOW).long_text(),
        lambda: (lambda cp: cp.items(cp.parse().comments, {"channel": "c", "source_id": "1"}, "1"))(
            CommentsPage(page, NOW)
        ),
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
    for call in calls:
        with contextlib.suppress(ParseError):
            call()


@settings(max_examples=1000, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(bodies)
def test_page_objects_never_crash(body):
    run_all(body)


time_strings = st.one_of(
    st.text(max_size=30),
    st.from_regex(r"\A(\d{1,5}[-/.年]\d{1,3}[-/.月]\d{1,3}日?( \d{1,3}:\d{1,3}(:\d{1,3})?)?)\Z"),
    st.from_regex(
        r"\A(刚刚|\d{1,12}(秒|分钟|小时|天|周|个月)前|(今天|昨天|前天) ?\d{1,3}:\d{1,3}|\d{1,3}-\d{1,3})\Z"
    ),
    st.integers(-(10**15), 10**15),
    st.floats(allow_nan=True, allow_infinity=True),
)


@settings(max_examples=1000, deadline=None)
@given(time_strings)
def test_time_parser_never_crashes(raw):
    try:
        dt = parse_time(raw, now=NOW)
    except TimeParseError:
        return
    assert dt.tzinfo is not None
