"""Render generated content in the real page shapes (JSON and HTML bodies)."""

from __future__ import annotations

import html
import json
from datetime import datetime, timedelta
from typing import Any

from crawlers.sandbox.generator import Comment, Letter, Post, World

WEIBO_FMT = "%a %b %d %H:%M:%S +0800 %Y"


def esc(text: str) -> str:
    return html.escape(text, quote=True)


def weibo_time(dt: datetime, now: datetime) -> str:
    """Times as m.weibo.cn writes them: relative when recent, month-day this year."""
    age = now - dt
    if age < timedelta(minutes=1):
        return "刚刚"
    if age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)}分钟前"
    if age < timedelta(hours=24) and dt.date() == now.date():
        return f"{int(age.total_seconds() // 3600)}小时前"
    if dt.date() == (now - timedelta(days=1)).date():
        return f"昨天 {dt:%H:%M}"
    if dt.year == now.year and age < timedelta(days=60):
        return f"{dt:%m-%d}"
    return dt.strftime(WEIBO_FMT)


def weibo_user(world: World, key: str) -> dict[str, Any]:
    ch = world.channels[key]
    return {
        "id": int(ch.code),
        "screen_name": ch.name,
        "verified": True,
        "verified_type": 1,
        "verified_reason": f"{ch.region}官方微博",
        "followers_count": "12.5万",
    }


def citizen_user(uid: str, name: str) -> dict[str, Any]:
    return {
        "id": int(uid),
        "screen_name": name,
        "verified": False,
        "verified_type": -1,
        "followers_count": 37,
    }


def mblog(world: World, post: Post, now: datetime) -> dict[str, Any]:
    text = esc(post.body)
    if post.long:
        text = text[:120] + '...<a href="/status/' + post.id + '">全文</a>'
    return {
        "created_at": weibo_time(post.posted_at, now),
        "id": post.id,
        "mid": post.id,
        "bid": "K" + post.id[-8:],
        "text": text,
        "isLongText": post.long,
        "user": weibo_user(world, post.account),
        "reposts_count": post.comment_count // 3,
        "comments_count": post.comment_count,
        "attitudes_count": post.comment_count * 2,
    }


def comment_json(
    world: World, post: Post, c: Comment, now: datetime, inline: bool = True
) -> dict[str, Any]:
    replies: list[dict[str, Any]] = []
    for r in c.replies:
        if r.posted_at <= now:
            replies.append(
                {
                    "created_at": r.posted_at.strftime(WEIBO_FMT),
                    "id": r.id,
                    "rootid": c.id,
                    "text": f"回复<a href='/n/{esc(c.author)}'>@{esc(c.author)}</a>:{esc(r.body)}",
                    "user": citizen_user(r.author_uid, r.author),
                    "like_count": 0,
                }
            )
    if c.official_reply and c.official_reply[1] <= now:
        acct = weibo_user(world, post.account)
        replies.append(
            {
                "created_at": c.official_reply[1].strftime(WEIBO_FMT),
                "id": f"{c.id}9",
                "rootid": c.id,
                "text": f"回复<a href='/n/{esc(c.author)}'>@{esc(c.author)}</a>:{esc(c.official_reply[0])}",
                "user": acct,
                "like_count": 3,
            }
        )
    return {
        "created_at": weibo_time(c.posted_at, now),
        "id": c.id,
        "rootid": c.id,
        "floor_number": 0,
        "text": esc(c.body),
        "user": citizen_user(c.author_uid, c.author),
        "like_count": c.likes,
        "total_number": len(replies),
        # Like m.weibo.cn, only the first two replies are inline; the rest via hotFlowChild.
        "comments": (replies[:2] if inline else replies) if replies else False,
        "max_id": 0,
    }


# -- 留言板 ---------------------------------------------------------------------
def liuyan_row(letter: Letter, leader: str, now: datetime) -> dict[str, Any]:
    letter.answered(now)
    return {
        "tid": int(letter.id),
        "subject": letter.title,
        "content": letter.body[:60] + "…",
        "nickName": letter.author if "*" in letter.author else letter.author[:1] + "***",
        "dateline": int(letter.posted_at.timestamp()),
        "forumName": leader,
        "typeName": letter.category,
        "domainName": {
            "城乡建设": "城建",
            "交通运输": "交通",
            "环境保护": "环保",
            "教育文体": "教育",
            "卫生计生": "医疗",
            "劳动和社会保障": "就业",
            "商贸旅游": "旅游",
        }.get(letter.topic, "其他"),
        "stateInfo": letter.state(now),
        "answerContent": None,
        "answerDateline": None,
        "answerOrganization": None,
        "areaName": letter.region,
    }


def liuyan_detail(letter: Letter, leader: str, now: datetime) -> dict[str, Any]:
    entries = [
        {
            "content": esc(letter.body),
            "dateline": int(letter.posted_at.timestamp()),
            "stateInfo": letter.state(now),
        }
    ]
    if letter.answered(now) and letter.reply_at:
        entries.append(
            {
                "content": esc(letter.reply_body),
                "dateline": int(letter.reply_at.timestamp()),
                "organization": letter.replier,
                "stateInfo": "已办理",
            }
        )
    return {
        "resultCode": 200,
        "resultMsg": "success",
        "resultData": {
            "subject": letter.title,
            "forumName": leader,
            "typeName": letter.category,
            "stateInfo": letter.state(now),
            "contentList": entries,
        },
    }


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False).encode("utf-8")


# -- mayor mailboxes ------------------------------------------------------------
def chuzhou_list(letters: list[Letter], page: int, pages: int, now: datetime) -> str:
    rows = "".join(
        f'<li><span class="type">{esc(x.category)}</span><span class="num">{x.id}</span>'
        f'<a class="title" href="/content/detail/{x.id}.html" title="{esc(x.title)}">{esc(x.title)}</a>'
        f'<span class="state">{"已回复" if x.answered(now) else "办理中"}</span>'
        f'<span class="date">{x.posted_at:%Y-%m-%d}</span></li>'
        for x in letters
    )
    nxt = (
        f'<a class="next" href="/content/column/4001?pageIndex={page + 1}">下一页</a>'
        if page < pages
        else ""
    )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>政民互动-滁州市市长信箱</title></head><body>'
        f'<div class="lyy_listbox"><ul>{rows}</ul></div>'
        f'<div class="pagination"><span>第{page}/{pages}页</span>{nxt}</div></body></html>'
    )


def chuzhou_detail(x: Letter, now: datetime) -> str:
    reply = ""
    if x.answered(now) and x.reply_at:
        reply = (
            f'<tr><td class="nr">回复时间</td><td>{x.reply_at:%Y-%m-%d %H:%M:%S}</td></tr>'
            f'<tr><td class="nrtxt" data-field="reply" colspan="2">{esc(x.reply_body)}</td></tr>'
        )
    return (
        '<!DOCTYPE html><html><head><meta charset="utf-8"><title>信件详情</title></head><body>'
        f'<h1 class="mesgtitle">{esc(x.title)}</h1><table class="mesg">'
        f'<tr><td class="nr">来信时间</td><td>{x.posted_at:%Y-%m-%d %H:%M:%S}</td>'
        f'<td class="nr">来信类型</td><td>{esc(x.category)}</td></tr>'
        f'<tr><td class="nr">来信人</td><td>{esc(x.author)}</td>'
        f'<td class="nr">办理单位</td><td>{esc(x.replier if x.answered(now) else "")}</td></tr>'
        f'<tr><td class="nrtxt" data-field="letter" colspan="2"><p>{esc(x.body)}</p></td></tr>{reply}'
        "</table></body></html>"
    )


def chengdu_list(letters: list[Letter], total: int, now: datetime) -> bytes:
    rows = "".join(
        f"<li><span>{esc(x.category)}</span><span>{'已办结' if x.answered(now) else '办理中'}</span>"
        f'<span>{x.posted_at:%Y-%m-%d %H:%M:%S}</span><a href="/openWorkDetail?id=CD{x.id}">{esc(x.title)}</a></li>'
        for x in letters
    )
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"><title>成都市网络理政平台</title></head><body>'
        f'<div class="left5"><ul>{rows}</ul></div>'
        f'<script type="text/javascript">var iRecCount = {total}; var iPageSize = 15;</script></body></html>'
    )
    return page.encode("gbk", errors="replace")


def chengdu_detail(x: Letter, now: datetime) -> bytes:
    answered = x.answered(now) and x.reply_at
    process = f'<tr class="process"><td>{esc(x.department)}</td><td>{x.posted_at + timedelta(hours=20):%Y-%m-%d %H:%M:%S}</td><td>受理</td></tr>'
    if answered:
        process += f'<tr class="process"><td>{esc(x.replier)}</td><td>{x.reply_at:%Y-%m-%d %H:%M:%S}</td><td>办结</td></tr>'
    page = (
        '<html><head><meta http-equiv="Content-Type" content="text/html; charset=gbk"><title>办件详情</title></head><body>'
        '<table class="tb">'
        f"<tr><th>来电标题</th><td>{esc(x.title)}</td></tr>"
        f"<tr><th>来电时间</th><td>{x.posted_at:%Y-%m-%d %H:%M:%S}</td></tr>"
        f"<tr><th>来电类别</th><td>{esc(x.category)}</td></tr>"
        f"<tr><th>办理状态</th><td>{'已办结' if answered else '办理中'}</td></tr>"
        f"<tr><th>来电内容</th><td>{esc(x.body)}</td></tr>"
        f"{process}"
        f"<tr><th>办理结果</th><td>{esc(x.reply_body) if answered else ''}</td></tr>"
        "</table></body></html>"
    )
    return page.encode("gbk", errors="replace")


# -- Discuz! ----------------------------------------------------------------------
def discuz_list(
    board: str, fid: str, letters: list[Letter], page: int, pages: int, now: datetime
) -> str:
    rows = "".join(
        f'<tbody id="normalthread_{x.id}"><tr><td class="icn"><a href="forum.php?mod=viewthread&amp;tid={x.id}"></a></td>'
        f'<th class="new"><em>[<a href="forum.php?mod=forumdisplay&amp;fid={fid}&amp;typeid=1">{esc(x.category)}</a>]</em> '
        f'<a href="forum.php?mod=viewthread&amp;tid={x.id}" class="s xst">{esc(x.title)}</a></th>'
        f'<td class="by"><cite><a href="home.php?mod=space&amp;uid=1">{esc(x.author)}</a></cite>'
        f'<em><span title="{x.posted_at:%Y-%m-%d}">{x.posted_at:%Y-%m-%d}</span></em></td>'
        f'<td class="num"><a href="forum.php?mod=viewthread&amp;tid={x.id}" class="xi2">{1 if x.answered(now) else 0}</a><em>{x.votes * 7 + 12}</em></td></tr></tbody>'
        for x in letters
    )
    nxt = (
        f'<a href="forum.php?mod=forumdisplay&amp;fid={fid}&amp;page={page + 1}" class="nxt">下一页</a>'
        if page < pages
        else ""
    )
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(board)} - 问政论坛</title></head><body>'
        f'<div id="pt"><a href="forum.php">论坛</a><a href="forum.php?mod=forumdisplay&amp;fid={fid}">{esc(board)}</a></div>'
        f'<div class="bm_h"><h1 class="xs2"><a href="forum.php?mod=forumdisplay&amp;fid={fid}">{esc(board)}</a></h1></div>'
        f'<div id="threadlist"><table summary="forum_{fid}" id="threadlisttableid">{rows}</table></div>'
        f'<div class="pg"><strong>{page}</strong>{nxt}</div></body></html>'
    )


def _discuz_post(
    pid: str, author: str, when: datetime, body: str, now: datetime, comment: str = ""
) -> str:
    shown = (
        f"昨天 {when:%H:%M}"
        if when.date() == (now - timedelta(days=1)).date()
        else f"{when:%Y-%m-%d %H:%M}"
    )
    return (
        f'<div id="post_{pid}"><table><tr><td class="pls"><div class="authi"><a class="xw1" href="home.php?mod=space">{esc(author)}</a></div></td>'
        f'<td class="plc"><div class="authi"><em id="authorposton{pid}">发表于 <span title="{when:%Y-%m-%d %H:%M:%S}">{shown}</span></em></div>'
        f'<table><tr><td class="t_f" id="postmessage_{pid}">{esc(body)}<br />\n</td></tr></table>{comment}</td></tr></table></div>'
    )


def discuz_thread(board: str, fid: str, x: Letter, now: datetime, official_post: bool) -> str:
    posts = []
    comment = ""
    answered = x.answered(now) and x.reply_at
    if answered and not official_post:
        comment = (
            '<div id="comment" class="cm"><h3 class="psth xs1">点评</h3><div class="pstl xs1 cl">'
            f'<div class="psta vm"><a href="home.php?mod=space" class="xi2 xw1">{esc(x.replier)}</a></div>'
            f'<div class="psti">{esc(x.reply_body)} <span class="xg1">发表于 <span title="{x.reply_at:%Y-%m-%d %H:%M:%S}">{x.reply_at:%Y-%m-%d %H:%M}</span></span></div></div></div>'
        )
    posts.append(_discuz_post(f"{x.id}1", x.author, x.posted_at, x.body, now, comment))
    follow = x.posted_at + timedelta(hours=3)
    if follow <= now and int(x.id) % 3 == 0:
        posts.append(
            _discuz_post(
                f"{x.id}2", "路过的网友", follow, "顶！同样遇到这个问题，希望尽快解决。", now
            )
        )
    if answered and official_post:
        posts.append(_discuz_post(f"{x.id}3", x.replier, x.reply_at, x.reply_body, now))
    return (
        f'<!DOCTYPE html><html><head><meta charset="utf-8"><title>{esc(x.title)} - {esc(board)}</title></head><body>'
        f'<div id="pt"><a href="forum.php">论坛</a><a href="forum.php?mod=forumdisplay&amp;fid={fid}">{esc(board)}</a></div>'
        f'<h1 class="ts"><a href="forum.php?mod=forumdisplay&amp;fid={fid}&amp;typeid=1">[{esc(x.category)}]</a>'
        f'<span id="thread_subject">{esc(x.title)}</span></h1><div id="postlist">{"".join(posts)}</div></body></html>'
    )


CAPTCHA_PAGE = (
    '<!DOCTYPE html><html><head><meta charset="utf-8"><title>安全验证</title></head><body>'
    '<div class="box"><p>系统检测到您的访问异常，请输入验证码后继续访问。</p><img src="/captcha.png"></div></body></html>'
)
BUSY_PAGE = '<!DOCTYPE html><html><head><meta charset="utf-8"><title>提示</title></head><body><p>系统繁忙，请稍后再试。</p></body></html>'
