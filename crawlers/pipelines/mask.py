"""Mask personal data (phones, landlines, ID numbers, e-mails, plates) in text fields."""

from __future__ import annotations

from typing import Any

from crawlers.pii import mask_pii
from govpulse.schema import Message


class MaskPipeline:
    """Third step: see crawlers.pii."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> MaskPipeline:
        return cls(crawler.stats)

    def process_item(self, item: Message, spider: Any = None) -> Message:
        for name in ("title", "body", "reply_body"):
            value = getattr(item, name)
            masked, counts = mask_pii(value)
            if counts:
                setattr(item, name, masked)
                for kind, n in counts.items():
                    self.stats.inc_value(f"govpulse/mask/{kind}", n)
        return item
