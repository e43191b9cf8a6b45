"""What every govpulse spider shares: settings, page inputs, error handling, incremental checks."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

import scrapy

from crawlers.pages.base import BlockedError, PageInput, ParseError
from crawlers.storeaccess import crawl_store
from govpulse.schema import TZ, Message, Status, make_id
from govpulse.settings import load
from store import StoreError

log = logging.getLogger(__name__)


class GovSpider(scrapy.Spider):
    """Base spider: reads govpulse settings, turns page errors into stats and health events."""

    source = ""
    resumed = False

    def __init__(self, *args: Any, revisit: str | bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.revisit = str(revisit).lower() in ("1", "true", "yes", "on")

    @property
    def gp(self) -> dict[str, Any]:
        gp = self.settings.get("GOVPULSE")
        return gp if gp else dict(load().items())

    @classmethod
    def from_crawler(cls, crawler: Any, *args: Any, **kwargs: Any) -> GovSpider:
        spider = super().from_crawler(crawler, *args, **kwargs)
        # `govpulse crawl` removes JOBDIR after a clean finish, so a JOBDIR holding a
        # request queue means the previous run was killed part-way.
        jobdir = crawler.settings.get("JOBDIR")
        spider.resumed = bool(jobdir) and (Path(jobdir) / "requests.queue").exists()
        return spider

    def incremental_stop(self, rows: int, fresh: int, stored: int) -> bool:
        """Stop list paging here: the page held rows, all already stored and settled.

        Not after a killed run: requests that were in flight when it died are
        not in the resumed queue, so older pages may still hold unstored items.
        A resumed run also re-reads every item on the pages it sees (the list
        callbacks test `self.resumed`): a thread can be stored while the
        follow-up posts from the same page were still in an unwritten batch.
        """
        if rows and not fresh and stored and not self.resumed:
            self.crawler.stats.inc_value("govpulse/incremental/stopped")
            return True
        return False

    @property
    def refetch_unstored(self) -> bool:
        """Fetch items missing from the store even if a resumed local job saw their URL.

        Items are written in batches, so a SIGKILL can lose a batch whose
        requests the job already marked seen; re-reading what the store lacks
        closes that gap.  With scrapy-redis the shared seen-set is what keeps
        several machines from fetching the same page, so it stays in charge.
        """
        return not str(self.settings.get("SCHEDULER", "")).startswith("scrapy_redis")

    def now(self) -> datetime:
        return datetime.now(TZ)

    def page(self, response: Any) -> PageInput:
        return PageInput.from_response(response)

    def health(self, kind: str, detail: str) -> None:
        ext = getattr(self.crawler, "govpulse_health", None)
        if ext is not None:
            ext.report(kind, detail)

    def failed(
        self, response: Any, exc: ParseError, retry: bool = True
    ) -> Iterable[scrapy.Request]:
        """Log and count a page that could not be read; retry truncated bodies."""
        stats = self.crawler.stats
        if isinstance(exc, BlockedError):
            stats.inc_value(f"govpulse/blocked/{exc.kind}")
            self.health(exc.kind, str(exc))
            return
        stats.inc_value("govpulse/parse_errors")
        tries = int(response.meta.get("parse_retries", 0))
        if retry and "truncated" in str(exc) and tries < int(self.gp.get("crawl.retry_times", 3)):
            stats.inc_value("govpulse/parse_retries")
            self.logger.info("retrying %s: %s", response.url, exc)
            yield response.request.replace(
                dont_filter=True, meta={**response.meta, "parse_retries": tries + 1}
            )
            return
        self.logger.warning("cannot read %s: %s", response.url, exc)
        if response.meta.get("list_page"):
            self.health("layout_changed", f"{response.url}: {exc}")

    def stored(self, source_ids: list[str]) -> dict[str, Message]:
        """Stored messages of this source by source id (empty when incremental is off).

        Called once per parsed list page, so it also counts list pages and rows
        (crawl health compares rows per list page between runs).
        """
        self.crawler.stats.inc_value("govpulse/list_pages")
        self.crawler.stats.inc_value("govpulse/list_rows", len(source_ids))
        if not self.gp.get("crawl.incremental", True) or not source_ids:
            return {}
        store = crawl_store(self.crawler)
        if store is None:
            return {}
        ids = {make_id(self.source, sid): sid for sid in source_ids}
        try:
            found = store.get_many(list(ids))
        except StoreError as exc:
            self.logger.error("incremental check failed, crawling everything: %s", exc)
            return {}
        return {ids[m.id]: m for m in found}

    def settled(self, stored: Message | None, now: datetime) -> bool:
        """True when a stored letter needs no visit: answered/closed, or revisit not due yet."""
        if stored is None:
            return False
        if stored.status is not Status.OPEN:
            return True
        due = stored.extra.get("revisit_at")
        if due in ("never",):
            return True
        if not due or due == "done":
            return False
        try:
            return datetime.fromisoformat(due) > now
        except ValueError:
            return False

    def due_letters(self, channel_key: str, value: str) -> list[Message]:
        """Open letters whose revisit is due (for --revisit runs), selected by an extra key."""
        store = crawl_store(self.crawler)
        if store is None:
            return []
        from store.base import Filters

        now = self.now()
        out = []
        try:
            for m in store.iter_messages(filters=Filters.make(source=self.source, status="open")):
                if m.extra.get(channel_key) == value and not self.settled(m, now):
                    out.append(m)
        except StoreError as exc:
            self.logger.error("cannot list letters to revisit: %s", exc)
        return out
