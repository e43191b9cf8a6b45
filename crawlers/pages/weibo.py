"""Mobile Weibo JSON (m.weibo.cn): timeline, comments (hotflow / hotFlowChild), long text.

Item dicts use Message field names plus a few routing keys prefixed ``_``
(removed by the normalise pipeline).  Official replies: a second-level reply
written by the watched account answers the comment it sits under.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from crawlers.pages.base import BlockedError, Page, ParseError, as_dict, as_list, to_int
from crawlers.text import html_to_text, is_truncated_weibo

_REPLY_PREFIX_RE = re.compile(r"^回复\s*(?:<a[^>]*>)?@([^<:：\s]+)(?:</a>)?\s*[:：]\s*")


def _check_ok(page: Page, data: Any) -> dict[str, Any]:
    data = as_dict(data, page.url)
    ok = data.get("ok")
    if ok == -100 or (isinstance(data.get("url"), str) and "passport" in data["url"]):
        raise BlockedError("login_expired", f"{page.url}: Weibo asks for a login (ok={ok})")
    if "errno" in data and str(data.get("errno")) in ("20003", "100005"):
        raise BlockedError("blocked", f"{page.url}: {data.get('msg')}")
    return data


def _user(raw: Any) -> dict[str, Any]:
    return raw if isinstance(raw, dict) else {}


@dataclass(slots=True)
class Timeline:
    """One timeline page: posts plus the cursor of the next page."""

    posts: list[dict[str, Any]]
    since_id: str | None
    page: int | None
    total: int


class TimelinePage(Page):
    """``/api/container/getIndex?containerid=107603<uid>``: an account's posts."""

    def parse(self) -> Timeline:
        data = _check_ok(self, self.json())
        if data.get("ok") == 0:  # "这里还没有内容": an account with no (more) posts
            return Timeline([], None, None, 0)
        body = as_dict(data.get("data"), f"{self.url} data")
        info = body.get("cardlistInfo") if isinstance(body.get("cardlistInfo"), dict) else {}
        posts = []
        for card in as_list(body.get("cards"), f"{self.url} cards"):
            if not isinstance(card, dict):
                continue
            blogs = (
                [card.get("mblog")]
                if card.get("card_type") == 9
                else [
                    c.get("mblog")
                    for c in as_list(card.get("card_group"), "card_group")
                    if isinstance(c, dict) and c.get("card_type") == 9
                ]
            )
            for blog in blogs:
                if isinstance(blog, dict):
                    item = post_item(blog, self)
                    if item:
                        posts.append(item)
        since = info.get("since_id")
        page = info.get("page")
        return Timeline(
            posts,
            str(since) if since not in (None, "", 0, "0") else None,
            to_int(page) or None if page not in (None, "") else None,
            to_int(info.get("total")),
        )


def post_item(blog: dict[str, Any], page: Page) -> dict[str, Any] | None:
    """Message fields of one post (``mblog``)."""
    mid = str(blog.get("mid") or blog.get("id") or "").strip()
    if not mid:
        return None
    user = _user(blog.get("user"))
    text_html = blog.get("text") if isinstance(blog.get("text"), str) else ""
    long_text = bool(blog.get("isLongText")) or is_truncated_weibo(text_html)
    name = str(user.get("screen_name") or "")
    return {
        "source": "weibo",
        "source_id": mid,
        "channel": name or str(user.get("id") or "weibo"),
        "url": f"https://m.weibo.cn/detail/{mid}",
        "body": html_to_text(text_html),
        "author": name or None,
        "posted_at": page.time(blog.get("created_at")),
        "likes": to_int(blog.get("attitudes_count")),
        "reposts": to_int(blog.get("reposts_count")),
        "comments": to_int(blog.get("comments_count")),
        "extra": {
            "kind": "post",
            "mid": mid,
            "bid": blog.get("bid"),
            "long_text": long_text,
            "account_uid": str(user.get("id") or ""),
            "verified": bool(user.get("verified")),
            "verified_reason": user.get("verified_reason") or None,
        },
    }


class ExtendPage(Page):
    """``/statuses/extend?id=<mid>``: the full text of a truncated post."""

    def long_text(self) -> str:
        data = _check_ok(self, self.json())
        inner = as_dict(data.get("data"), f"{self.url} data")
        raw = inner.get("longTextContent")
        if not isinstance(raw, str) or not raw.strip():
            raise ParseError(f"{self.url}: no longTextContent")
        return html_to_text(raw)


@dataclass(slots=True)
class Comment:
    """One comment with its inline second-level replies (raw but typed)."""

    id: str
    user_id: str
    user_name: str
    verified: bool
    html: str
    created_at: Any
    likes: int
    floor: int
    reply_to: str | None  # name after "回复@NAME:" for replies
    total_replies: int
    replies: list[Comment] = field(default_factory=list)

    @property
    def text(self) -> str:
        return html_to_text(_REPLY_PREFIX_RE.sub("", self.html))


@dataclass(slots=True)
class CommentPage:
    """One hotflow / hotFlowChild page: comments plus paging cursor."""

    comments: list[Comment]
    max_id: int
    max_id_type: int
    total_number: int


def _comment(raw: Any) -> Comment | None:
    if not isinstance(raw, dict):
        return None
    cid = str(raw.get("id") or raw.get("mid") or "").strip()
    if not cid:
        return None
    user = _user(raw.get("user"))
    html = raw.get("text") if isinstance(raw.get("text"), str) else ""
    m = _REPLY_PREFIX_RE.match(html)
    replies = [c for c in (_comment(r) for r in as_list(raw.get("comments"), "comments")) if c]
    return Comment(
        id=cid,
        user_id=str(user.get("id") or ""),
        user_name=str(user.get("screen_name") or ""),
        verified=bool(user.get("verified")),
        html=html,
        created_at=raw.get("created_at"),
        likes=to_int(raw.get("like_count", raw.get("like_counts"))),
        floor=to_int(raw.get("floor_number")),
        reply_to=m.group(1) if m else None,
        total_replies=to_int(raw.get("total_number")),
        replies=replies,
    )


class CommentsPage(Page):
    """``/comments/hotflow`` (first-level) and ``/comments/hotFlowChild`` (replies)."""

    def parse(self) -> CommentPage:
        data = _check_ok(self, self.json())
        if data.get("ok") == 0:  # {"ok":0,"errno":"100011","msg":"暂无数据"}: no (more) comments
            return CommentPage([], 0, 0, 0)
        body = data.get("data")
        if isinstance(body, list):  # hotFlowChild puts the list at top level
            body = {
                "data": body,
                **{k: data.get(k) for k in ("max_id", "max_id_type", "total_number")},
            }
        body = as_dict(body, f"{self.url} data")
        rows = as_list(body.get("data"), f"{self.url} data.data")
        comments = [c for c in (_comment(r) for r in rows) if c]
        return CommentPage(
            comments,
            to_int(body.get("max_id")),
            to_int(body.get("max_id_type")),
            to_int(body.get("total_number")),
        )

    def items(
        self,
        comments: list[Comment],
        post: dict[str, Any],
        account_uid: str,
    ) -> list[dict[str, Any]]:
        """Message fields of citizen comments under `post`; official replies attached.

        A reply by the account (inline, or top level starting 回复@NAME:) fills
        reply_body/replied_at/replier of the comment it answers; other
        second-level replies become messages whose parent is the comment.
        """
        return comment_items(comments, post, account_uid, self)


def comment_items(
    comments: list[Comment], post: dict[str, Any], account_uid: str, page: Page
) -> list[dict[str, Any]]:
    """See CommentsPage.items (a function so the spider can call it on buffered comments)."""
    channel = post.get("channel") or "weibo"
    post_sid = str(post.get("source_id") or "")
    account_name = channel
    out: list[dict[str, Any]] = []
    by_author: dict[str, dict[str, Any]] = {}
    official_top: list[Comment] = []

    def citizen(c: Comment, parent_sid: str, level: int) -> dict[str, Any]:
        item = {
            "source": "weibo",
            "source_id": c.id,
            "channel": channel,
            "url": f"https://m.weibo.cn/detail/{post_sid}?cid={c.id}" if post_sid else None,
            "body": c.text,
            "author": c.user_name or None,
            "posted_at": page.time(c.created_at),
            "likes": c.likes,
            "comments": c.total_replies,
            "_parent_source_id": parent_sid,
            "extra": {
                "kind": "comment" if level == 1 else "reply",
                "mid": post_sid,
                "floor": c.floor,
            },
        }
        if c.user_name:
            by_author[c.user_name] = item
        return item

    def answer(item: dict[str, Any], reply: Comment) -> None:
        item["reply_body"] = reply.text
        item["replied_at"] = page.time(reply.created_at)
        item["replier"] = account_name
        item["status"] = "answered"

    for c in comments:
        if account_uid and c.user_id == account_uid:
            # The account's own top-level comment: it answers 回复@NAME (matched
            # below); citizens replying under it are comments on the post.
            official_top.append(c)
            item = None
        else:
            item = citizen(c, post_sid, 1)
            out.append(item)
        for r in c.replies:
            if account_uid and r.user_id == account_uid:
                target = by_author.get(r.reply_to or "") or item
                if target is not None and not target.get("reply_body"):
                    answer(target, r)
            else:
                out.append(citizen(r, c.id if item is not None else post_sid, 2 if item else 1))
    for c in official_top:
        target = by_author.get(c.reply_to or "")
        if target is not None and not target.get("reply_body"):
            answer(target, c)
    return out
