"""Classify: tag topic, urgency and rumour likelihood with the installed model.

The model comes from classify.tagger (another package); when it or its
model is missing, items pass through untagged and that is logged once.

Items are tagged one at a time, as Scrapy hands them over: batching would
mean holding items back behind Deferreds (and a timer to flush a part
batch) while the later steps and the store wait.  One call costs a few
milliseconds (scikit-learn per-call overhead, and the rumour model's
gradient boosting walks its 200 trees per call), far below a crawl's
download rate; the bulk commands (`govpulse classify`, `govpulse reclassify`) tag
in batches of ``classify.batch_size``, where the tagger runs over 20x faster
per message.
"""

from __future__ import annotations

import logging
from typing import Any

from govpulse.schema import Message
from govpulse.tagging import load_tagger

log = logging.getLogger(__name__)


class ClassifyPipeline:
    """Fifth step (crawl.classify): tag each item; failures leave the item untagged."""

    def __init__(self, stats: Any, enabled: bool, settings: dict[str, Any] | None = None) -> None:
        self.stats = stats
        self.enabled = enabled
        self.settings = settings
        self.tagger: Any | None = None
        self.loaded = False

    @classmethod
    def from_crawler(cls, crawler: Any) -> ClassifyPipeline:
        gp = crawler.settings.get("GOVPULSE") or {}
        return cls(crawler.stats, bool(gp.get("crawl.classify", True)), dict(gp))

    def process_item(self, item: Message, spider: Any = None) -> Message:
        if not self.enabled:
            return item
        if not self.loaded:
            self.tagger = load_tagger(self.settings)
            self.loaded = True
        if self.tagger is None:
            self.stats.inc_value("govpulse/classify/skipped")
            return item
        try:
            self.tagger.tag([item])
        except (ValueError, RuntimeError) as exc:
            self.stats.inc_value("govpulse/classify/failed")
            log.error("classifier failed on %s: %s", item.id, exc)
            return item
        self.stats.inc_value("govpulse/classify/tagged")
        return item
