"""Normalise: text fields to clean plain text, times to aware datetimes, ids made."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from scrapy.exceptions import DropItem

from crawlers.text import clean_whitespace, html_to_text
from govpulse.schema import TZ, ValidationError, make_id, mask_author
from govpulse.timeparse import TimeParseError, parse_time

log = logging.getLogger(__name__)

TEXT_FIELDS = ("title", "body", "reply_body")
TIME_FIELDS = ("posted_at", "replied_at")


def normalise_item(item: dict[str, Any], now: datetime) -> tuple[dict[str, Any], list[str]]:
    """Return (Message-ready dict, notes); pure, so tests call it directly.

    Routing keys (``_parent_source_id``) become ``parent_id``; ``source_id``
    becomes ``id`` via make_id; authors are pseudonymised with mask_author.
    """
    notes: list[str] = []
    out = {k: v for k, v in item.items() if not k.startswith("_") and k != "source_id"}
    source = item.get("source")
    sid = str(item.get("source_id") or "").strip()
    if not source or not sid:
        raise DropItem(f"missing {'source' if not source else 'source_id'}")
    try:
        out["id"] = make_id(source, sid)
        parent = item.get("_parent_source_id")
        if parent:
            out["parent_id"] = make_id(source, str(parent))
    except (ValidationError, ValueError) as exc:
        raise DropItem(f"cannot build id: {exc}") from None
    extra = dict(out["extra"]) if isinstance(out.get("extra"), dict) else {}
    extra["source_id"] = sid
    out["extra"] = extra
    for name in TEXT_FIELDS:
        value = out.get(name)
        if isinstance(value, str):
            out[name] = (
                html_to_text(value) if "<" in value and ">" in value else clean_whitespace(value)
            )
    for name in ("channel", "replier", "region", "department"):
        if isinstance(out.get(name), str):
            out[name] = clean_whitespace(out[name]) or None
    if not out.get("department") and isinstance(out.get("replier"), str):
        # Most sources name only the office that answered: it is the department
        # the timeliness tables rank (schema: "the office addressed or answering").
        out["department"] = out["replier"]
    for name in TIME_FIELDS:
        value = out.get(name)
        if value is None or isinstance(value, datetime):
            continue
        try:
            out[name] = parse_time(value, now=now)
        except TimeParseError as exc:
            notes.append(f"{name}: {exc}")
            out[name] = None
    if out.get("replied_at") and out.get("posted_at") and out["replied_at"] < out["posted_at"]:
        notes.append("replied_at before posted_at: dropped the reply time")
        out["replied_at"] = None
    out["author"] = mask_author(out.get("author"))
    out["fetched_at"] = now
    return out, notes


class NormalisePipeline:
    """First step: see normalise_item."""

    def __init__(self, stats: Any) -> None:
        self.stats = stats

    @classmethod
    def from_crawler(cls, crawler: Any) -> NormalisePipeline:
        return cls(crawler.stats)

    def process_item(self, item: Any, spider: Any = None) -> dict[str, Any]:
        try:
            out, notes = normalise_item(dict(item), datetime.now(TZ))
        except DropItem as exc:
            self.stats.inc_value("govpulse/normalise/dropped")
            log.warning("dropped item from %s: %s", dict(item).get("url"), exc)
            raise
        for note in notes:
            self.stats.inc_value("govpulse/normalise/bad_time")
            log.info("item %s: %s", out.get("url"), note)
        self.stats.inc_value("govpulse/normalise/ok")
        return out
