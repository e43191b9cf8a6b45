"""Government forum boards on Discuz!: board -> thread list pages -> thread pages -> posts."""

from __future__ import annotations

import re
from typing import Any

import scrapy

from crawlers.config import base_url
from crawlers.pages.base import ParseError
from crawlers.pages.discuz import ForumListPage, ThreadPage, thread_items
from crawlers.spiders.base import GovSpider


class ForumSpider(GovSpider):
    name = "forum"
    source = "forum"

    def __init__(self, *args: Any, boards: str | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.boards = boards.split(",") if boards else None

    async def start(self):  # type: ignore[no-untyped-def]
        base = base_url(self.gp, "crawl.forum_base_url")
        if self.revisit:
            for fid in self.boards or self.gp["crawl.forum_boards"]:
                for m in self.due_letters("board", str(fid)):
                    yield scrapy.Request(
                        m.url or "",
                        callback=self.parse_thread,
                        cb_kwargs={
                            "stub": {
                                "source": "forum",
                                "source_id": m.extra.get("source_id"),
                                "channel": m.channel,
                                "url": m.url,
                                "extra": {"board": str(fid)},
                            },
                            "first": True,
                        },
                        dont_filter=True,
                    )
            return
        for fid in self.boards or self.gp["crawl.forum_boards"]:
            yield scrapy.Request(
                f"{base}/forum.php?mod=forumdisplay&fid={fid}&page=1",
                callback=self.parse_list,
                cb_kwargs={"fid": str(fid), "number": 1},
                meta={"list_page": True},
                dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
            )

    def parse_list(self, response: Any, fid: str, number: int):  # type: ignore[no-untyped-def]
        try:
            page = ForumListPage(self.page(response), self.now()).parse()
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        if not page.threads and number == 1:
            self.health("layout_changed", f"{response.url}: board page without threads")
        now = self.now()
        stored = self.stored([t["source_id"] for t in page.threads])
        fresh = 0
        for stub in page.threads:
            stub["extra"]["board"] = fid
            old = stored.get(stub["source_id"])
            if (
                not self.resumed
                and self.settled(old, now)
                and (old is None or old.comments >= stub.get("comments", 0))
            ):
                continue
            fresh += 1
            yield scrapy.Request(
                stub["url"],
                callback=self.parse_thread,
                cb_kwargs={"stub": stub, "first": True},
                # The store, not a local job's seen-set, decides what to fetch: an item fetched
                # just before a SIGKILL may not have reached the store, so it is fetched again.
                dont_filter=self.refetch_unstored or old is not None,
            )
        if self.incremental_stop(len(page.threads), fresh, len(stored)):
            return
        if page.next_url and number < int(self.gp["crawl.max_list_pages"]):
            yield scrapy.Request(
                page.next_url,
                callback=self.parse_list,
                cb_kwargs={"fid": fid, "number": number + 1},
                meta={"list_page": True},
                dont_filter=True,  # list pages are re-read every run (incremental), even after a resumed job
            )
        elif page.next_url:
            self.crawler.stats.inc_value("govpulse/forum/page_cap")
            self.logger.warning("board %s: stopped at the page cap (%s pages)", fid, number)

    def parse_thread(self, response: Any, stub: dict[str, Any], first: bool):  # type: ignore[no-untyped-def]
        try:
            thread = ThreadPage(self.page(response), self.now()).parse()
        except ParseError as exc:
            yield from self.failed(response, exc)
            return
        official = re.compile(str(self.gp["crawl.forum_official_pattern"]))
        yield from thread_items(thread, stub, official, first)
        if thread.next_url and thread.next_url != response.url:
            yield scrapy.Request(
                thread.next_url,
                callback=self.parse_thread,
                cb_kwargs={"stub": stub, "first": False},
            )
