"""Keep a scale-out worker alive while its peers are still producing requests.

With a shared Redis queue, a worker whose own queue is momentarily empty
would close although other workers keep discovering pages.  On each idle
signal this extension looks at the shared queue and the shared set of seen
requests: while either is non-empty or still growing, the worker stays.
"""

from __future__ import annotations

import logging
from typing import Any

from scrapy import signals
from scrapy.exceptions import DontCloseSpider, NotConfigured

log = logging.getLogger(__name__)


class SharedQueueIdle:
    """Scrapy extension, enabled only with crawl.redis_url."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.last_seen = -1

    @classmethod
    def from_crawler(cls, crawler: Any) -> SharedQueueIdle:
        if "scrapy_redis" not in str(crawler.settings.get("SCHEDULER", "")):
            raise NotConfigured
        ext = cls(crawler)
        crawler.signals.connect(ext.spider_idle, signal=signals.spider_idle)
        return ext

    def spider_idle(self, spider: Any) -> None:
        engine = self.crawler.engine
        scheduler = getattr(engine, "scheduler", None)  # public from Scrapy 2.19
        if scheduler is None and getattr(engine, "_slot", None) is not None:
            scheduler = engine._slot.scheduler
        server = getattr(scheduler, "server", None)
        if server is None:
            return
        queue_len = len(scheduler.queue)
        seen = int(server.scard(scheduler.df.key))
        growing = seen != self.last_seen
        self.last_seen = seen
        if queue_len or growing:
            log.debug("shared queue: %d waiting, %d seen; staying", queue_len, seen)
            raise DontCloseSpider
