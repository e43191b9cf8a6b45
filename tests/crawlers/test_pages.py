"""Page objects on small saved fixtures, field by field, with time frozen."""

from __future__ import annotations

import json
import re
from datetime import datetime
from pathlib import Path

import pytest
from freezegun import freeze_time

from crawlers.pages.base import BlockedError, PageInput, ParseError
from crawlers.pages.discuz import ForumListPage, ThreadPage, thread_items
from crawlers.pages.liuyan import LiuyanDetailPage, LiuyanListPage
from crawlers.pages.mailbox_html import MailboxDetailPage, MailboxListPage
from crawlers.pages.weibo import CommentsPage, ExtendPage, TimelinePage
from crawlers.sites import load_site
from govpulse.schema import TZ

FIX = Path(__file__).resolve().parent.parent / "fixtures" / "crawlers"
NOW = datetime(2021, 6, 8, 12, 30, tzinfo=TZ)


def page(name: str, url: str = "http://127.0.0.1/x", ctype: str = "") -> PageInput:
    return PageInput(url, (FIX / name).read_bytes(), 200, {"Content-Type": ctype} if ctype else {})


@freeze_time("2021-06-08 04:30:00")
def test_weibo_timeline_fields():
    tl = TimelinePage(page("weibo_timeline.json")).parse()
    assert tl.since_id == "4900000000000002" and tl.total == 2
    first, second = tl.posts
    assert first["source_id"] == "4900000000000001"
    assert first["channel"] == "东城区发布"
    assert first["body"] == "#停水# 【便民提示】东城区幸福里小区周末停水检修。\n请提前储水[心]"
    assert first["posted_at"] == datetime(2021, 6, 8, 9, 35, 4, tzinfo=TZ)
    assert (first["likes"], first["reposts"], first["comments"]) == (40, 12, 3)
    assert first["extra"]["verified"] is True and first["extra"]["long_text"] is False
    assert second["extra"]["long_text"] is True
    assert second["posted_at"] == datetime(2021, 6, 7, 10, 23, tzinfo=TZ)  # 昨天 10:23


def test_weibo_extend_and_login():
    assert (
        ExtendPage(page("weibo_extend.json"), NOW)
        .long_text()
        .endswith("请广大网友不信谣、不传谣。")
    )
    with pytest.raises(BlockedError) as exc:
        TimelinePage(page("weibo_login.json"), NOW).parse()
    assert exc.value.kind == "login_expired"


def test_weibo_comments_official_replies():
    cp = CommentsPage(page("weibo_hotflow.json"), NOW)
    parsed = cp.parse()
    assert (parsed.total_number, parsed.max_id) == (3, 0)
    items = cp.items(
        parsed.comments, {"channel": "东城区发布", "source_id": "4900000000000000"}, "1000000001"
    )
    by_id = {i["source_id"]: i for i in items}
    assert set(by_id) == {"4900000000000101", "4900000000000112", "4900000000000102"}
    water = by_id["4900000000000101"]
    assert water["body"] == "幸福里小区已经停水两天了，电话13812345678打不通[怒]"
    assert water["posted_at"] == datetime(2021, 6, 8, 12, 25, tzinfo=TZ)  # 5分钟前
    assert water["reply_body"] == "您好，已转交自来水公司抢修，预计今晚恢复。"
    assert water["replied_at"] == datetime(2021, 6, 8, 11, 0, tzinfo=TZ)
    assert water["replier"] == "东城区发布" and water["likes"] == 7
    reply = by_id["4900000000000112"]
    assert reply["_parent_source_id"] == "4900000000000101" and reply["body"] == "我们楼也停了"
    rumour = by_id["4900000000000102"]
    assert rumour["likes"] == 12000  # "1.2万" in the old like_counts key
    assert (
        rumour["reply_body"] == "不实信息，请以官方发布为准。"
    )  # top-level 回复@NAME by the account
    assert rumour["posted_at"] == datetime(2021, 6, 7, tzinfo=TZ)  # 06-07


def test_liuyan_list_and_detail():
    lst = LiuyanListPage(page("liuyan_list.json"), NOW).parse()
    assert len(lst.letters) == 2
    a, b = lst.letters
    assert a["source_id"] == "liuyan:16180001" and a["channel"] == "灵山县委书记"
    assert a["title"] == "幸福里小区燃气供应中断" and a["author"] == "陈***"
    assert a["posted_at"] == datetime(2022, 1, 1, 16, 0, tzinfo=TZ)
    assert (
        a["status"] == "answered"
        and a["extra"]["type"] == "求助"
        and a["extra"]["domain"] == "城建"
    )
    assert b["status"] == "open" and b["posted_at"] == datetime(2022, 1, 2, 16, 0, tzinfo=TZ)
    assert lst.last_item is None  # the last row has no tid
    d = LiuyanDetailPage(page("liuyan_detail.json"), NOW).parse("16180001")
    assert d["body"].startswith("小区燃气突然停供")
    assert (
        d["reply_body"] == "网友您好：您反映的问题已收悉。\n经县燃气公司抢修，已于1月3日恢复供气。"
    )
    assert d["replied_at"] == datetime(2022, 1, 3, 16, 0, tzinfo=TZ)
    assert d["replier"] == "灵山县住房和城乡建设局" and d["status"] == "answered"


def test_chuzhou_site_file():
    site = load_site("chuzhou")
    lst = MailboxListPage(
        page("chuzhou_list.html", "http://h/content/column/4001?pageIndex=1"), site, NOW
    ).parse(1, "http://h")
    assert [x["source_id"] for x in lst.letters] == ["chuzhou:1001", "chuzhou:1002"]
    assert lst.letters[0]["url"] == "http://h/content/detail/1001.html"
    assert lst.letters[0]["posted_at"] == datetime(2024, 1, 2, tzinfo=TZ)
    assert lst.letters[1]["extra"]["state"] == "办理中"
    assert lst.next_url == "http://h/content/column/4001?pageIndex=2"
    d = MailboxDetailPage(
        page("chuzhou_detail.html", "http://h/content/detail/1001.html"), site, NOW
    ).parse("chuzhou:1001")
    assert d["title"] == "关于人民路夜间施工噪音的问题"
    assert d["body"] == "工地夜间十一点以后仍在施工，\n噪音很大。"
    assert d["posted_at"] == datetime(2024, 1, 2, 21, 30, tzinfo=TZ)
    assert d["reply_body"] == "您好！已责令施工单位整改。"
    assert d["replied_at"] == datetime(2024, 1, 12, 9, 0, tzinfo=TZ)
    assert (
        d["replier"] == "滁州市城市管理局" and d["author"] == "李**" and d["status"] == "answered"
    )
    assert d["extra"]["category"] == "投诉"


def test_chengdu_site_file_gbk():
    site = load_site("chengdu12345")
    lst = MailboxListPage(
        page("chengdu_list_gbk.html", "http://h/openWorkList?page=1"), site, NOW
    ).parse(1, "http://h")
    assert lst.total == 31 and lst.next_url == "http://h/openWorkList?page=2"
    assert (
        lst.letters[0]["title"] == "青石镇道路坑洼积水"
        and lst.letters[0]["source_id"] == "chengdu12345:CD2001"
    )
    assert lst.letters[0]["posted_at"] == datetime(2024, 3, 5, 8, 10, tzinfo=TZ)
    d = MailboxDetailPage(
        page("chengdu_detail_gbk.html", "http://h/openWorkDetail?id=CD2001"), site, NOW
    ).parse("chengdu12345:CD2001")
    assert d["title"] == "青石镇道路坑洼积水" and "川A12345" in d["body"]
    assert d["replier"] == "成都市交通运输局" and d["reply_body"] == "已安排施工队修补路面。"
    assert d["replied_at"] == datetime(2024, 3, 15, 16, 20, tzinfo=TZ)
    last = MailboxListPage(
        page("chengdu_list_gbk.html", "http://h/openWorkList?page=3"), site, NOW
    ).parse(3, "http://h")
    assert last.next_url is None  # 3 pages x 15 >= 31


def test_discuz_list_and_thread():
    lst = ForumListPage(
        page("discuz_list.html", "http://h/forum.php?mod=forumdisplay&fid=41"), NOW
    ).parse()
    assert lst.board == "问政四川" and [t["source_id"] for t in lst.threads] == ["9001", "9002"]
    t = lst.threads[1]
    assert t["title"] == "锦绣花园电梯多次困人" and t["author"] == "阿喵321" and t["comments"] == 2
    assert t["extra"] == {"views": 1234, "category": "投诉", "sticky": False}
    assert t["posted_at"] == datetime(2024, 5, 19, tzinfo=TZ)
    assert lst.next_url == "http://h/forum.php?mod=forumdisplay&fid=41&page=2"
    th = ThreadPage(
        page("discuz_thread.html", "http://h/forum.php?mod=viewthread&tid=9002"), NOW
    ).parse()
    assert th.tid == "9002" and th.category == "投诉" and len(th.posts) == 3
    items = thread_items(th, t, re.compile(r"(局|办公室)$"), True)
    head, follow = items
    assert head["body"] == "物业长期不维修电梯，\n电梯多次困人。联系邮箱abc123@163.com"
    assert head["posted_at"] == datetime(2024, 5, 19, 8, 15, 30, tzinfo=TZ)
    assert head["reply_body"] == "已督促物业维修。" and head["replier"] == "市住建局"
    assert head["replied_at"] == datetime(2024, 5, 20, 10, 0, tzinfo=TZ)
    assert follow["source_id"] == "9002#502" and follow["_parent_source_id"] == "9002"


def test_block_pages_and_damage():
    with pytest.raises(BlockedError) as exc:
        ForumListPage(page("busy.html"), NOW).parse()
    assert exc.value.kind == "blocked"
    truncated = PageInput("http://h/x", (FIX / "liuyan_list.json").read_bytes()[:100])
    with pytest.raises(ParseError, match="truncated"):
        LiuyanListPage(truncated, NOW).parse()
    with pytest.raises(ParseError):
        ThreadPage(PageInput("http://h/x", b"<html><body>nothing</body></html>"), NOW).parse()


def test_discuz_pages_with_control_bytes_inside_a_tag():
    """NUL/control bytes inside a tag (a damaged download) cost that tag, not the page."""
    raw = (FIX / "discuz_thread.html").read_bytes()
    damaged = raw.replace(b'<div id="post_501">', b'<div id\x00\x00\x01\n<div id="post_501">', 1)
    assert damaged != raw
    th = ThreadPage(PageInput("http://h/forum.php?mod=viewthread&tid=9002", damaged), NOW).parse()
    assert th.tid == "9002" and [p.pid for p in th.posts] == ["501", "502", "503"]
    raw_list = (FIX / "discuz_list.html").read_bytes()
    damaged_list = raw_list.replace(b"<tbody id=", b"<tbody x\x00\x02 id=", 1)
    assert damaged_list != raw_list
    lst = ForumListPage(
        PageInput("http://h/forum.php?mod=forumdisplay&fid=41", damaged_list), NOW
    ).parse()
    assert [t["source_id"] for t in lst.threads] == ["9001", "9002"]


@pytest.mark.shared
def test_real_saved_pages(shared_data):
    """The page objects read the real saved bodies in ../shared/data/pages."""
    pages = shared_data / "pages"
    now = datetime(2022, 5, 20, tzinfo=TZ)
    weibo = pages / "weibo"
    tl = TimelinePage(
        PageInput(
            "https://m.weibo.cn/api/container/getIndex",
            next(weibo.glob("getIndex_userTimeline_*")).read_bytes(),
        ),
        now,
    ).parse()
    assert len(tl.posts) == 10 and tl.since_id and all(p["posted_at"] for p in tl.posts)
    assert (
        TimelinePage(PageInput("u", next(weibo.glob("getIndex_error_*")).read_bytes()), now)
        .parse()
        .posts
        == []
    )
    cp = CommentsPage(PageInput("u", next(weibo.glob("comments_hotflow_*")).read_bytes()), now)
    parsed = cp.parse()
    assert len(parsed.comments) == 20 and parsed.max_id and parsed.total_number > 1000
    assert all(
        c["posted_at"] and c["body"]
        for c in cp.items(parsed.comments, {"channel": "x", "source_id": "1"}, "")
    )
    assert ExtendPage(
        PageInput("u", next(weibo.glob("statuses_extend_*")).read_bytes()), now
    ).long_text()
    forum = pages / "forum"
    lst = ForumListPage(
        PageInput(
            "https://www.mcbbs.net/forum-news-1.html",
            next(forum.glob("*forumdisplay*")).read_bytes(),
        ),
        now,
    ).parse()
    assert (
        len(lst.threads) == 30 and lst.next_url and sum(1 for t in lst.threads if t["author"]) >= 25
    )
    th = ThreadPage(
        PageInput(
            "https://www.mcbbs.net/thread-1340927-1-1.html",
            next(forum.glob("*viewthread*")).read_bytes(),
        ),
        now,
    ).parse()
    assert th.subject and len(th.posts) >= 10 and all(p.when for p in th.posts)


def test_hotflowchild_and_old_liuyan_shapes():
    child = json.dumps(
        {
            "ok": 1,
            "data": [
                {
                    "created_at": "刚刚",
                    "id": "77",
                    "text": "回复<a href='/n/A'>@A</a>:好",
                    "user": {"id": 9, "screen_name": "B"},
                }
            ],
            "total_number": 1,
            "max_id": 0,
            "max_id_type": 0,
        }
    ).encode()
    page = CommentsPage(PageInput("http://h/comments/hotFlowChild?cid=1", child), NOW).parse()
    assert [(c.id, c.text, c.reply_to) for c in page.comments] == [("77", "好", "A")]
    empty = CommentsPage(
        PageInput("u", b'{"ok":0,"errno":"100011","msg":"\\u6682\\u65e0\\u6570\\u636e"}'), NOW
    ).parse()
    assert empty.comments == [] and empty.max_id == 0
    old = (
        '{"responseData": [{"tid": 5, "subject": "路灯不亮", "content": "路灯坏了", "nickName": "张***", "dateline": 1641024000,'
        ' "forumName": "市长", "typeName": "投诉", "domainName": "城建", "stateInfo": "已办理",'
        ' "answerContent": "已修复", "answerDateline": 1641110400, "answerOrganization": "市城管局"}]}'
    ).encode()
    (letter,) = (
        LiuyanListPage(PageInput("http://h/threads/queryThreadsList", old), NOW).parse().letters
    )
    assert (
        letter["reply_body"] == "已修复"
        and letter["replier"] == "市城管局"
        and letter["status"] == "answered"
    )
    assert letter["replied_at"] == datetime(2022, 1, 2, 16, 0, tzinfo=TZ)
