"""Store: batch upserts, revisit schedule for open letters, spool when the store is down."""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from crawlers.pipelines.classify import BATCH_TO_STORE, STORE_BATCHES
from crawlers.spool import Spool
from crawlers.storeaccess import crawl_store
from govpulse.schema import TZ, Message, Source, Status
from store import StoreError, StoreUnavailable

log = logging.getLogger(__name__)


def schedule_revisit(
    item: Message, previous: Message | None, hours: list[float], now: datetime
) -> None:
    """Set extra.revisit_at / revisit_step for letters still open (back-off schedule).

    Answered letters get ``revisit_at = "done"``; after the last step ``"never"``.
    """
    if item.source is Source.WEIBO or item.parent_id:
        return
    if item.status is not Status.OPEN:
        item.extra["revisit_at"] = "done"
        return
    prev_step = -1
    if previous is not None and previous.status is Status.OPEN:
        prev_step = int(previous.extra.get("revisit_step", -1))
    step = prev_step + 1
    if step >= len(hours):
        item.extra["revisit_at"] = "never"
        item.extra["revisit_step"] = step
        return
    item.extra["revisit_step"] = step
    item.extra["revisit_at"] = (
        (now + timedelta(hours=float(hours[step]))).replace(microsecond=0).isoformat()
    )


class StorePipeline:
    """Last step: upsert in batches of crawl.store_batch; spool on StoreUnavailable."""

    def __init__(self, crawler: Any) -> None:
        self.crawler = crawler
        self.stats = crawler.stats
        gp = crawler.settings.get("GOVPULSE") or {}
        self.batch_size = int(gp.get("crawl.store_batch", 200))
        self.hours = [float(h) for h in gp.get("crawl.revisit_hours", [1, 6, 24, 72])]
        self.spool = Spool(Path(crawler.settings.get("GOVPULSE_DATA_DIR") or ".") / "spool")
        self.buffer: list[Message] = []
        self.name = "crawl"

    @classmethod
    def from_crawler(cls, crawler: Any) -> StorePipeline:
        return cls(crawler)

    def open_spider(self, spider: Any = None) -> None:
        self.name = getattr(spider or self.crawler.spider, "name", "crawl")
        # The classify step then tags each batch at once, just before it is written.
        self.crawler.signals.send_catch_log(signal=STORE_BATCHES)
        store = crawl_store(self.crawler)
        if store is not None and self.spool.pending():
            try:
                n = self.spool.replay(store)
                self.stats.inc_value("govpulse/store/replayed", n)
            except StoreError as exc:
                log.error("spool replay failed, kept for next time: %s", exc)

    def process_item(self, item: Message, spider: Any = None) -> Message:
        self.buffer.append(item)
        if len(self.buffer) >= self.batch_size:
            self.flush()
        return item

    def close_spider(self, spider: Any = None) -> None:
        self.flush()

    def flush(self) -> None:
        if not self.buffer:
            return
        batch, self.buffer = self.buffer, []
        self.crawler.signals.send_catch_log(signal=BATCH_TO_STORE, batch=batch)
        store = crawl_store(self.crawler)
        now = datetime.now(TZ)
        try:
            if store is None:
                raise StoreUnavailable("store could not be opened")
            previous = {
                m.id: m for m in store.get_many([m.id for m in batch if m.status is Status.OPEN])
            }
            for m in batch:
                schedule_revisit(m, previous.get(m.id), self.hours, now)
            result = store.upsert_many(batch)
        except StoreUnavailable as exc:
            for m in batch:
                schedule_revisit(m, None, self.hours, now) if "revisit_at" not in m.extra else None
            self.spool.write(self.name, batch)
            self.stats.inc_value("govpulse/store/spooled", len(batch))
            log.error(
                "store unavailable (%s): %d items spooled to %s",
                exc,
                len(batch),
                self.spool.path(self.name),
            )
            return
        self.stats.inc_value("govpulse/store/inserted", result.inserted)
        self.stats.inc_value("govpulse/store/updated", result.updated)
        self.stats.inc_value("govpulse/store/unchanged", result.unchanged)
        for mid, reason in result.failed:
            self.stats.inc_value("govpulse/store/failed")
            log.error("store rejected %s: %s", mid, reason)
