"""Classify: tag topic, urgency and rumour likelihood with the installed model.

The model comes from classify.tagger (another package); when it or its
model is missing, items pass through untagged and that is logged once.

Tagging in batches: one tagger call has a fixed cost of a few milliseconds
(scikit-learn per-call overhead, the rumour model's 200 boosted trees),
so tagging items one at a time capped a crawl at ~100 items/s, while a
batch of a few hundred costs well under a millisecond per item.  The store
step (the next one) already holds items back and writes them in batches,
so this step does not tag on the way through: it remembers the items and
tags them all at once when the store step is about to write its batch
(signal :data:`BATCH_TO_STORE`, sent by ``StorePipeline.flush`` before the
upsert or the spool).  Nothing waits longer than it did before, and every
stored (or spooled) item is tagged.  Without a store step announcing itself
(:data:`STORE_BATCHES`), items are tagged one by one as before.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from govpulse.schema import Message
from govpulse.tagging import load_tagger

log = logging.getLogger(__name__)

#: Signal sent by the store step when it opens: "I will send BATCH_TO_STORE".
STORE_BATCHES = object()
#: Signal sent by the store step (keyword ``batch``) just before it writes a batch.
BATCH_TO_STORE = object()


class ClassifyPipeline:
    """Fifth step (crawl.classify): tag items, in the store step's batches; failures leave items untagged."""

    def __init__(
        self,
        stats: Any,
        enabled: bool,
        settings: dict[str, Any] | None = None,
        signals: Any = None,
    ) -> None:
        self.stats = stats
        self.enabled = enabled
        self.settings = settings
        self.tagger: Any | None = None
        self.loaded = False
        self.deferred = False  # True once a store step promised to hand batches back
        self.pending: dict[int, Message] = {}  # id(item) -> item, untagged so far
        if signals is not None and enabled:
            signals.connect(self.store_batches, signal=STORE_BATCHES)
            signals.connect(self.batch_to_store, signal=BATCH_TO_STORE)

    @classmethod
    def from_crawler(cls, crawler: Any) -> ClassifyPipeline:
        gp = crawler.settings.get("GOVPULSE") or {}
        return cls(crawler.stats, bool(gp.get("crawl.classify", True)), dict(gp), crawler.signals)

    def _tagger(self) -> Any | None:
        if not self.loaded:
            self.tagger = load_tagger(self.settings)
            self.loaded = True
        return self.tagger

    def process_item(self, item: Message, spider: Any = None) -> Message:
        if not self.enabled:
            return item
        if self._tagger() is None:
            self.stats.inc_value("govpulse/classify/skipped")
            return item
        if self.deferred:
            self.pending[id(item)] = item  # tagged with the store step's batch
            return item
        self._tag([item])
        return item

    def store_batches(self, **_: Any) -> None:
        """The store step will send BATCH_TO_STORE before each write: tag then."""
        self.deferred = True

    def batch_to_store(self, batch: Sequence[Message] = (), **_: Any) -> None:
        """Tag, in one call, the items of the store's batch that passed through this step."""
        mine = [m for m in batch if self.pending.pop(id(m), None) is not None]
        if mine:
            self._tag(mine)

    def close_spider(self, spider: Any = None) -> None:
        # Scrapy closes the store step first (its flush tags its last batch);
        # should the order ever differ, tag what is left so nothing is stored untagged.
        left, self.pending = list(self.pending.values()), {}
        if left:
            self._tag(left)

    def _tag(self, items: list[Message]) -> None:
        tagger = self._tagger()
        if tagger is None:
            return
        try:
            tagger.tag(items)
        except (ValueError, RuntimeError) as exc:
            self.stats.inc_value("govpulse/classify/failed", len(items))
            log.error("classifier failed on %d item(s) (%s ...): %s", len(items), items[0].id, exc)
            return
        self.stats.inc_value("govpulse/classify/tagged", len(items))
