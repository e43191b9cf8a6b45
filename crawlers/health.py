"""Crawl health: turn what a run saw into CrawlEvents in the store.

Blocked or broken must be loud: a captcha, login page, 系统繁忙, a layout
change (list pages with no rows, or far fewer items than the previous run),
a high error rate or a capped comment thread each become an event, never a
quiet "no new data".  Thresholds are crawl.health_* settings.
"""

from __future__ import annotations

import logging
import re
from collections import Counter
from datetime import datetime
from typing import Any

from scrapy import signals

from crawlers.storeaccess import close_crawl_store, crawl_store
from govpulse.schema import TZ, CrawlEvent
from store import StoreError

log = logging.getLogger(__name__)

SOURCES = {"weibo": "weibo", "mailbox": "mailbox", "forum": "forum"}
_ROWS_RE = re.compile(r"rows_per_list_page=([\d.]+)")


class CrawlHealth:
    """Scrapy extension: collects problems during a run, writes events when it closes."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        gp = crawler.settings.get("GOVPULSE") or {}
        self.error_rate = float(gp.get("crawl.health_error_rate", 0.2))
        self.min_ratio = float(gp.get("crawl.health_min_rows_ratio", 0.3))
        self.min_previous = float(gp.get("crawl.health_min_previous_rows", 5.0))
        self.problems: Counter[str] = Counter()
        self.details: dict[str, list[str]] = {}

    @classmethod
    def from_crawler(cls, crawler: Any) -> CrawlHealth:
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_closed, signal=signals.spider_closed)
        crawler.govpulse_health = ext
        return ext

    def report(self, kind: str, detail: str) -> None:
        """Record a problem (called by spiders and pipelines); logged loudly once per detail."""
        self.problems[kind] += 1
        notes = self.details.setdefault(kind, [])
        if len(notes) < 5:
            notes.append(detail)
            log.warning("crawl health: %s: %s", kind, detail)
        self.crawler.stats.inc_value(f"govpulse/health/{kind}")

    def events(
        self, spider_name: str, reason: str, previous_rows: float | None
    ) -> list[CrawlEvent]:
        stats = self.crawler.stats.get_stats()
        now = datetime.now(TZ)
        source = SOURCES.get(spider_name, spider_name)
        pages = int(stats.get("response_received_count", 0))
        items = int(stats.get("item_scraped_count", 0))
        errors = (
            int(stats.get("govpulse/parse_errors", 0))
            + int(stats.get("downloader/exception_count", 0))
            + int(stats.get("retry/max_reached", 0))
            + sum(
                int(v)
                for k, v in stats.items()
                if k.startswith("downloader/response_status_count/")
                and k[-3:] >= "400"
                and k[-3:] != "404"
            )
        )
        base = {
            "source": source,
            "spider": spider_name,
            "at": now,
            "items": items,
            "pages": pages,
            "errors": errors,
        }
        out: list[CrawlEvent] = []
        for kind in ("captcha", "blocked", "login_expired", "layout_changed", "incomplete"):
            if self.problems[kind]:
                out.append(
                    CrawlEvent(kind=kind, ok=False, detail="; ".join(self.details[kind]), **base)
                )
        requests = max(int(stats.get("downloader/request_count", 0)), 1)
        if pages >= 5 and errors / requests > self.error_rate:
            out.append(
                CrawlEvent(
                    kind="error_rate",
                    ok=False,
                    detail=f"{errors} errors in {requests} requests (threshold {self.error_rate:.0%})",
                    **base,
                )
            )
        list_pages = int(stats.get("govpulse/list_pages", 0))
        rows_per_page = int(stats.get("govpulse/list_rows", 0)) / list_pages if list_pages else None
        if (
            previous_rows is not None
            and rows_per_page is not None
            and previous_rows >= self.min_previous
            and rows_per_page < previous_rows * self.min_ratio
            and not self.problems["layout_changed"]
        ):
            out.append(
                CrawlEvent(
                    kind="layout_changed",
                    ok=False,
                    detail=f"{rows_per_page:.1f} rows per list page where the previous run had {previous_rows:.1f}",
                    **base,
                )
            )
        if reason not in (
            "finished",
            "closespider_pagecount",
            "closespider_timeout",
            "closespider_itemcount",
        ):
            out.append(
                CrawlEvent(kind="incomplete", ok=False, detail=f"run ended: {reason}", **base)
            )
        rows = f" rows_per_list_page={rows_per_page:.1f}" if rows_per_page is not None else ""
        out.append(CrawlEvent(kind="finished", ok=not out, detail=f"reason={reason}{rows}", **base))
        return out

    def spider_closed(self, spider: Any, reason: str) -> None:
        store = crawl_store(self.crawler)
        previous = None
        try:
            if store is not None:
                for e in store.crawl_events(source=SOURCES.get(spider.name, spider.name), limit=50):
                    m = _ROWS_RE.search(e.detail or "")
                    if e.kind == "finished" and e.spider == spider.name and m:
                        previous = float(m.group(1))
                        break
        except StoreError as exc:
            log.error("cannot read previous crawl events: %s", exc)
        events = self.events(spider.name, reason, previous)
        self.crawler.stats.set_value("govpulse/health/events", [e.kind for e in events])
        try:
            if store is None:
                raise StoreError("no store")
            for event in events:
                store.add_crawl_event(event)
        except StoreError as exc:
            log.error("cannot record crawl events %s: %s", [e.kind for e in events], exc)
        finally:
            close_crawl_store(self.crawler)
