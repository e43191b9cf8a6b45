"""Validate: build a govpulse.schema.Message; DropItem names the broken field."""

from __future__ import annotations

import logging
from typing import Any

from scrapy.exceptions import DropItem

from govpulse.schema import FIELD_NAMES, Message, ValidationError

log = logging.getLogger(__name__)


class ValidatePipeline:
    """Second step: dict -> Message.validate()."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> ValidatePipeline:
        return cls(crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> Message:
        if isinstance(item, Message):
            data = item
        else:
            unknown = set(item) - set(FIELD_NAMES)
            if unknown:
                self.stats.inc_value("govpulse/validate/dropped/unknown_field")
                raise DropItem(f"unknown field(s) {sorted(unknown)} in {item.get('url')}")
            missing = [name for name in ("id", "source", "channel") if not item.get(name)]
            if missing:
                self.stats.inc_value(f"govpulse/validate/dropped/{missing[0]}")
                raise DropItem(f"missing {missing[0]} in {item.get('url')}")
            data = Message(**item)
        try:
            data.validate()
        except ValidationError as exc:
            self.stats.inc_value(f"govpulse/validate/dropped/{exc.field}")
            log.warning("invalid item %s: %s", getattr(data, "url", None), exc)
            raise DropItem(f"invalid {exc.field}: {exc.reason}") from None
        self.stats.inc_value("govpulse/validate/ok")
        return data
