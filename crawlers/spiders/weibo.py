"""Government Weibo accounts: posts (timeline) and the comments under them.

Timeline pages (getIndex, since_id paging) -> posts; truncated posts get their
full text from statuses/extend; comments page through comments/hotflow by
max_id up to crawl.weibo_max_comment_pages, then the post's comments are
emitted with the account's replies attached (see pages.weibo.comment_items).
Hitting the page cap is recorded as "incomplete: N of M comments fetched".
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import scrapy

from crawlers.config import base_url
from crawlers.pages.base import PageInput, ParseError
from crawlers.pages.weibo import Comment, CommentsPage, ExtendPage, TimelinePage, comment_items
from crawlers.spiders.base import GovSpider


class WeiboSpider(GovSpider):
    name = "weibo"
    source = "weibo"

    def base(self) -> str:
        return base_url(self.gp, "crawl.weibo_base_url")

    def headers(self) -> dict[str, str]:
        cookie = str(self.gp.get("crawl.weibo_cookie") or "")
        out = {
            "Accept": "application/json, text/plain, */*",
            "X-Requested-With": "XMLHttpRequest",
            "MWeibo-Pwa": "1",
        }
        if cookie:
            out["Cookie"] = cookie
        return out

    def timeline(self, uid: str, since_id: str | None, number: int) -> scrapy.Request:
        q = {"containerid": f"107603{uid}"}
        if since_id:
            q["since_id"] = since_id
        return scrapy.Request(
            f"{self.base()}/api/container/getIndex?{urlencode(q)}",
            headers=self.headers(),
            callback=self.parse_timeline,
            cb_kwargs={"uid": uid, "number": number},
            meta={"list_page": True},
            dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
        )

    async def start(self):  # type: ignore[no-untyped-def]
        for uid in self.gp["crawl.weibo_accounts"]:
            yield self.timeline(str(uid), None, 1)

    def parse_timeline(self, response: Any, uid: str, number: int):  # type: ignore[no-untyped-def]
        try:
            page = TimelinePage(self.page(response), self.now()).parse()
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        if number == 1 and not page.posts:
            self.logger.info("account %s has no posts", uid)
        stored = self.stored([p["source_id"] for p in page.posts])
        fresh = 0
        for post in page.posts:
            old = stored.get(post["source_id"])
            # A post is settled when stored with the same comment count: no new comments.
            if not self.resumed and old is not None and old.comments >= post["comments"]:
                continue
            fresh += 1
            post["extra"]["account_uid"] = post["extra"].get("account_uid") or uid
            if post["extra"].get("long_text"):
                yield scrapy.Request(
                    f"{self.base()}/statuses/extend?id={post['source_id']}",
                    headers=self.headers(),
                    callback=self.parse_extend,
                    # The store, not a local job's seen-set, decides what to fetch: an item fetched
                    # just before a SIGKILL may not have reached the store, so it is fetched again.
                    dont_filter=self.refetch_unstored or old is not None,
                    cb_kwargs={"post": post},
                )
            else:
                yield from self.post_and_comments(post)
        if self.incremental_stop(len(page.posts), fresh, len(stored)):
            return
        if page.since_id and number < int(self.gp["crawl.weibo_max_timeline_pages"]):
            yield self.timeline(uid, page.since_id, number + 1)

    def parse_extend(self, response: Any, post: dict[str, Any]):  # type: ignore[no-untyped-def]
        try:
            post["body"] = ExtendPage(self.page(response), self.now()).long_text()
        except ParseError as exc:
            for req in self.failed(response, exc):
                yield req
                return
            post["extra"]["long_text_missing"] = True  # keep the truncated text
        yield from self.post_and_comments(post)

    def post_and_comments(self, post: dict[str, Any]):  # type: ignore[no-untyped-def]
        yield post
        if post.get("comments"):
            yield self.hotflow(post, 0, 0, 1, [])

    def hotflow(
        self,
        post: dict[str, Any],
        max_id: int,
        max_id_type: int,
        number: int,
        buffer: list[Comment],
    ) -> scrapy.Request:
        mid = post["source_id"]
        q = {"id": mid, "mid": mid, "max_id_type": max_id_type}
        if max_id:
            q["max_id"] = max_id
        return scrapy.Request(
            f"{self.base()}/comments/hotflow?{urlencode(q)}",
            headers=self.headers(),
            callback=self.parse_hotflow,
            dont_filter=True,  # comment pages change between runs; the chain is sequential per post
            cb_kwargs={"post": post, "number": number, "buffer": buffer},
        )

    def _comments_page(self, response: Any) -> tuple[Any, list[Any]]:
        """(the parsed comments page, []) or, for a page that cannot be read, (None, retries).

        With no retry (blocked, or retries used up) the chain goes on
        without this page's comments, as it always did.
        """
        try:
            return CommentsPage(self.page(response), self.now()).parse(), []
        except ParseError as exc:
            return None, list(self.failed(response, exc))

    def parse_hotflow(
        self, response: Any, post: dict[str, Any], number: int, buffer: list[Comment]
    ):  # type: ignore[no-untyped-def]
        page, retries = self._comments_page(response)
        if retries:
            yield from retries
            return
        if page is not None:
            buffer = buffer + page.comments
            cap = int(self.gp["crawl.weibo_max_comment_pages"])
            if page.max_id and number < cap:
                yield self.hotflow(post, page.max_id, page.max_id_type, number + 1, buffer)
                return
            if page.max_id and number >= cap:
                total = max(page.total_number, post.get("comments") or 0)
                self.health(
                    "incomplete",
                    f"post {post['source_id']}: {len(buffer)} of {total} comments fetched (platform cap {cap} pages)",
                )
                post = {**post, "extra": {**post["extra"], "comments_fetched": len(buffer)}}
        yield from self.next_children(post, buffer, 0)

    def next_children(self, post: dict[str, Any], buffer: list[Comment], start: int):  # type: ignore[no-untyped-def]
        """Fetch hotFlowChild pages of comments with more replies than shown inline, then emit."""
        for i in range(start, len(buffer)):
            c = buffer[i]
            if c.total_replies > len(c.replies):
                yield self.children(post, buffer, i, 0, 1, [])
                return
        uid = str(post["extra"].get("account_uid") or "")
        yield from comment_items(
            buffer, post, uid, CommentsPage(PageInput(post.get("url") or "", b""), self.now())
        )

    def children(
        self,
        post: dict[str, Any],
        buffer: list[Comment],
        index: int,
        max_id: int,
        number: int,
        got: list[Comment],
    ) -> scrapy.Request:
        q = {"cid": buffer[index].id, "max_id": max_id, "max_id_type": 0}
        return scrapy.Request(
            f"{self.base()}/comments/hotFlowChild?{urlencode(q)}",
            headers=self.headers(),
            callback=self.parse_children,
            dont_filter=True,
            cb_kwargs={
                "post": post,
                "buffer": buffer,
                "index": index,
                "number": number,
                "got": got,
            },
        )

    def parse_children(
        self,
        response: Any,
        post: dict[str, Any],
        buffer: list[Comment],
        index: int,
        number: int,
        got: list[Comment],
    ):  # type: ignore[no-untyped-def]
        page, retries = self._comments_page(response)
        if retries:
            yield from retries
            return
        if page is not None:
            got = got + page.comments
            if page.max_id and number < int(self.gp["crawl.weibo_max_comment_pages"]):
                yield self.children(post, buffer, index, page.max_id, number + 1, got)
                return
        if got:
            known = {r.id for r in got}
            buffer[index].replies = got + [r for r in buffer[index].replies if r.id not in known]
        buffer[index].total_replies = len(buffer[index].replies)  # done with this one either way
        yield from self.next_children(post, buffer, index + 1)
