"""Discuz! forum pages (X3.x and 7.2): board thread lists and thread pages.

Government 问政 boards add a category column (问政类型) and let departments
answer as 点评 blocks (``div.pstl``) under the citizen's post; an official
account may also answer as an ordinary post.  Both become the thread's reply.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property
from typing import Any
from urllib.parse import urljoin

from parsel import Selector

from crawlers.pages.base import Page, ParseError, to_int
from crawlers.text import clean_whitespace, html_to_text

_TID_RE = re.compile(r"(\d+)$")
_TID_LINK_RE = re.compile(r"(?:tid=|thread-)(\d+)")
_PID_RE = re.compile(r"^post_(\d+)$")
_POSTED_RE = re.compile(r"^\s*发表于\s*")


class DiscuzPage(Page):
    """Shared decoding and block detection for Discuz! pages."""

    @cached_property
    def selector(self) -> Selector:
        text = self.text
        if not text.strip():
            raise ParseError(f"{self.url}: empty page")
        self.check_blocked(text[:3000] if "<" in text[:200] else text)
        return Selector(text=text, type="html")

    def when(self, node: Selector) -> Any:
        """A Discuz! time: the exact time from span@title, else the visible text."""
        exact = node.css("span::attr(title)").get()
        raw = exact or clean_whitespace(" ".join(node.css("::text").getall()))
        return self.time(_POSTED_RE.sub("", raw).strip())


def _element_id(sel: Selector) -> str:
    """The element's ``id`` attribute, or "".

    Read from the lxml element itself, not parsel's ``attrib`` dict: that
    dict reads every attribute name, and a damaged page (NUL or control
    bytes inside a tag) leaves names lxml refuses, so one broken tag would
    make the whole page fail.
    """
    root = sel.root
    value = root.get("id") if hasattr(root, "get") else None
    return value if isinstance(value, str) else ""


@dataclass(slots=True)
class ThreadList:
    """One board page: thread stubs and the next page URL."""

    board: str
    threads: list[dict[str, Any]]
    next_url: str | None


class ForumListPage(DiscuzPage):
    """``forum.php?mod=forumdisplay&fid=<fid>&page=<n>``."""

    def parse(self) -> ThreadList:
        sel = self.selector
        board = (
            clean_whitespace(" ".join(sel.css("div.bm_h h1 a::text, h1.xs2 a::text").getall()[:1]))
            or (clean_whitespace(sel.css("title::text").get() or "").split(" - ")[0])
        )
        if not sel.css("#threadlisttableid, #threadlist, table[summary]"):
            raise ParseError(f"{self.url}: no thread list table (layout changed?)")
        threads = []
        for row in sel.css("tbody[id^=normalthread_], tbody[id^=stickthread_]"):
            m = _TID_RE.search(_element_id(row))
            if not m:
                continue
            tid = m.group(1)
            link = (
                row.css("a.xst::attr(href), a.s.xst::attr(href)").get()
                or f"forum.php?mod=viewthread&tid={tid}"
            )
            by = row.css("td.by")
            num = row.css("td.num")
            threads.append(
                {
                    "source": "forum",
                    "source_id": tid,
                    "channel": board or "forum",
                    "url": urljoin(self.url, link),
                    "title": html_to_text(row.css("a.xst").get() or ""),
                    "author": clean_whitespace(by[0].css("cite a::text").get() or "") or None
                    if by
                    else None,
                    "posted_at": self.when(by[0].css("em")[0]) if by and by[0].css("em") else None,
                    "comments": to_int(num.css("a::text").get()) if num else 0,
                    "extra": {
                        "views": to_int(num.css("em::text").get()) if num else 0,
                        "category": clean_whitespace(" ".join(row.css("th em a::text").getall()))
                        or None,
                        "sticky": _element_id(row).startswith("stickthread_"),
                    },
                }
            )
        nxt = sel.css("div.pg a.nxt::attr(href)").get()
        return ThreadList(board, threads, urljoin(self.url, nxt) if nxt else None)


@dataclass(slots=True)
class Post:
    """One post on a thread page."""

    pid: str
    author: str
    when: Any
    html: str
    comments: list[tuple[str, str, Any]]  # 点评: (author, text, time)

    @property
    def text(self) -> str:
        return html_to_text(self.html)


@dataclass(slots=True)
class Thread:
    """One thread page: subject, board, posts, next page URL."""

    tid: str
    subject: str
    board: str
    category: str | None
    posts: list[Post]
    next_url: str | None


class ThreadPage(DiscuzPage):
    """``forum.php?mod=viewthread&tid=<tid>`` (or ``thread-<tid>-<page>-1.html``)."""

    def parse(self) -> Thread:
        sel = self.selector
        subject = clean_whitespace(" ".join(sel.css("#thread_subject::text").getall()))
        posts = []
        for node in sel.css("div[id^=post_]"):
            m = _PID_RE.match(_element_id(node))
            if not m:
                continue
            pid = m.group(1)
            body = node.css(f"td#postmessage_{pid}").get() or node.css("td.t_f").get()
            if body is None:
                continue
            author = clean_whitespace(
                " ".join(node.css("div.authi a.xw1::text, td.pls div.authi a::text").getall()[:1])
            )
            em = node.css(f"em#authorposton{pid}")
            comments = []
            for pstl in node.css("div.pstl"):
                who = clean_whitespace(
                    " ".join(pstl.css("div.psta a::text, div.psta::text").getall())
                )
                psti = pstl.css("div.psti")
                when = self.when(psti.css("span.xg1")) if psti.css("span.xg1") else None
                text = html_to_text(
                    re.sub(r"<span class=\"xg1\">.*?</span>", "", psti.get() or "", flags=re.S)
                )
                if text:
                    comments.append((who, text, when))
            posts.append(Post(pid, author, self.when(em[0]) if em else None, body, comments))
        if not posts:
            raise ParseError(
                f"{self.url}: no posts found (layout changed, deleted thread or a block page)"
            )
        tid = ""
        m = _TID_LINK_RE.search(self.url)
        if m:
            tid = m.group(1)
        board = clean_whitespace(
            " ".join(
                sel.css("#pt a[href*=forumdisplay]::text, #pt a[href*='forum-']::text").getall()[
                    -1:
                ]
            )
        )
        category = (
            clean_whitespace(" ".join(sel.css("h1.ts a::text").getall())).strip("[] ") or None
        )
        nxt = sel.css("div.pg a.nxt::attr(href)").get()
        return Thread(tid, subject, board, category, posts, urljoin(self.url, nxt) if nxt else None)


def thread_items(
    thread: Thread, stub: dict[str, Any], official: re.Pattern[str], first_page: bool
) -> list[dict[str, Any]]:
    """Message fields of a thread page: the thread (first post), plus citizen follow-ups.

    Posts by official authors and 点评 blocks are the thread's reply (the
    first one found wins); other posts become messages with the thread as parent.
    """
    out: list[dict[str, Any]] = []
    tid = thread.tid or str(stub.get("source_id") or "")
    head: dict[str, Any] = dict(stub)
    head.setdefault("source", "forum")
    head["source_id"] = tid
    head["channel"] = stub.get("channel") or thread.board or "forum"
    head["extra"] = dict(stub.get("extra") or {})
    if thread.category:
        head["extra"].setdefault("category", thread.category)
    posts = list(thread.posts)
    if first_page and posts:
        first = posts.pop(0)
        head["title"] = thread.subject or head.get("title", "")
        head["body"] = first.text
        head["author"] = first.author or head.get("author")
        head["posted_at"] = first.when or head.get("posted_at")
        for who, text, when in first.comments:
            if not head.get("reply_body"):
                head.update(
                    reply_body=text, replied_at=when, replier=who or None, status="answered"
                )
    for post in posts:
        if post.author and official.search(post.author):
            if not head.get("reply_body"):
                head.update(
                    reply_body=post.text,
                    replied_at=post.when,
                    replier=post.author,
                    status="answered",
                )
            continue
        if not post.text:
            continue
        out.append(
            {
                "source": "forum",
                "source_id": f"{tid}#{post.pid}",
                "channel": head["channel"],
                "url": f"{head.get('url') or ''}#pid{post.pid}",
                "body": post.text,
                "author": post.author or None,
                "posted_at": post.when,
                "_parent_source_id": tid,
                "extra": {"kind": "post"},
            }
        )
    if first_page or head.get("reply_body"):
        out.insert(0, head)
    return out
