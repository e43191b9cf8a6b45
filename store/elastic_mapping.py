"""Index layout of the Elasticsearch/OpenSearch store: mappings and document conversion.

Mappings are explicit and strict (an unknown field is an error, not a
silently guessed type).  Search runs on ``tokens``: jieba tokens computed
client-side with `govpulse.tokenize.cut_for_index` and indexed with the
built-in ``whitespace`` analyzer, so the cluster needs no Chinese plugin
and matches exactly what the embedded store's FTS index matches.  The raw
title/body/reply stay in ``_source`` for display, and are also indexed
with the standard analyzer so Kibana/OpenSearch Dashboards can highlight.

Index-only values are derived at write time exactly as the SQLite store
derives them (working-day ordinals, reply delay), so aggregations never
need painless scripts.  Bump ``MAPPING_VERSION`` when the mapping changes
and run ``govpulse store reindex``.
"""

from __future__ import annotations

from typing import Any

from govpulse import tokenize
from govpulse.schema import TZ, CrawlEvent, Label, Message, Source, Status, Topic, Urgency
from govpulse.workdays import workday_ordinal
from store.common import from_epoch, to_epoch

MAPPING_VERSION = 1

_TIME_FIELDS = ("posted_at", "replied_at", "fetched_at", "updated_at")
_EPOCH = {"type": "date", "format": "epoch_second"}
# ignore_above: a pathological 40 kB channel name is stored, just not indexed,
# instead of failing the document with Lucene's "immense term" error.
_KW = {"type": "keyword", "ignore_above": 4096}
_INT = {"type": "integer"}
_LONG = {"type": "long"}
# Display text: indexed for highlighting, never used for matching.
_TEXT = {"type": "text", "analyzer": "standard"}

MESSAGE_PROPERTIES: dict[str, Any] = {
    "id": _KW,
    "source": _KW,
    "channel": _KW,
    "url": {"type": "keyword", "index": False, "doc_values": False},
    "title": _TEXT,
    "body": _TEXT,
    "author": _KW,
    "region": _KW,
    "department": _KW,
    "posted_at": _EPOCH,
    "reply_body": _TEXT,
    "replied_at": _EPOCH,
    "replier": _KW,
    "status": _KW,
    "likes": _LONG,  # long: SQLite takes any int, so must we
    "reposts": _LONG,  # long: SQLite takes any int, so must we
    "comments": _LONG,  # long: SQLite takes any int, so must we
    "votes": _LONG,  # long: SQLite takes any int, so must we
    "parent_id": _KW,
    "topic": _KW,
    # double, not float: a float32 doc value would make rumour_score >= 0.7 differ from SQLite.
    "topic_score": {"type": "double"},
    "urgency": _KW,
    "urgency_reasons": _KW,
    "rumour_score": {"type": "double"},
    "rumour_reasons": _KW,
    "duplicate_of": _KW,
    "extra": {"type": "object", "enabled": False},
    "fetched_at": _EPOCH,
    "updated_at": _EPOCH,
    # -- index-only, derived at write time ---------------------------------
    "tokens": {"type": "text", "analyzer": "whitespace", "norms": True},
    "posted_wd": _INT,
    "replied_wd": _INT,
    "delay_s": _LONG,
    "delay_wd": _INT,
    "content_hash": {"type": "keyword", "index": False},
}

CRAWL_EVENT_PROPERTIES: dict[str, Any] = {
    "source": _KW,
    "spider": _KW,
    "kind": _KW,
    "at": _EPOCH,
    "ok": {"type": "boolean"},
    "items": _INT,
    "pages": _INT,
    "errors": _INT,
    "detail": {"type": "text", "index": False},
    "seq": _LONG,  # insertion order: the tie-break SQLite gets from rowid
}

LABEL_PROPERTIES: dict[str, Any] = {
    "message_id": _KW,
    "task": _KW,
    "value": _KW,
    "user": _KW,
    "at": _EPOCH,
    "note": {"type": "text", "index": False},
    "seq": _LONG,
}


def index_settings(
    shards: int, replicas: int, refresh_interval: str = "1s", max_window: int = 10_000
) -> dict[str, Any]:
    return {
        "number_of_shards": shards,
        "number_of_replicas": replicas,
        "refresh_interval": refresh_interval,
        # Pages past the window are reached with search_after, so it can stay at the default.
        "max_result_window": max_window,
    }


def mappings(properties: dict[str, Any]) -> dict[str, Any]:
    return {
        "dynamic": "strict",
        "_meta": {"govpulse_mapping": MAPPING_VERSION},
        "properties": properties,
    }


def message_to_doc(msg: Message, digest: str) -> dict[str, Any]:
    """The stored document: the message's fields plus index-only derived values."""
    doc: dict[str, Any] = {}
    for name in MESSAGE_PROPERTIES:
        if name in ("tokens", "posted_wd", "replied_wd", "delay_s", "delay_wd", "content_hash"):
            continue
        value = getattr(msg, name)
        if name in _TIME_FIELDS:
            value = to_epoch(value)
        elif hasattr(value, "value"):
            value = value.value
        elif isinstance(value, list | dict):
            value = value.copy() or None
        doc[name] = value
    doc["tokens"] = tokenize.index_text(msg.title, msg.body, msg.reply_body)
    doc["posted_wd"] = workday_ordinal(msg.posted_at.astimezone(TZ)) if msg.posted_at else None
    doc["replied_wd"] = workday_ordinal(msg.replied_at.astimezone(TZ)) if msg.replied_at else None
    if msg.posted_at and msg.replied_at:
        doc["delay_s"] = doc["replied_at"] - doc["posted_at"]
        doc["delay_wd"] = doc["replied_wd"] - doc["posted_wd"]
    else:
        doc["delay_s"] = doc["delay_wd"] = None
    doc["content_hash"] = digest
    return {k: v for k, v in doc.items() if v is not None}


def doc_to_message(doc: dict[str, Any]) -> Message:
    """Rebuild the Message from a stored ``_source`` (derived values dropped)."""
    msg = Message(
        id=doc["id"],
        source=Source(doc["source"]),
        channel=doc["channel"],
        url=doc.get("url"),
        title=doc.get("title", ""),
        body=doc.get("body", ""),
        author=doc.get("author"),
        region=doc.get("region"),
        department=doc.get("department"),
        posted_at=from_epoch(doc.get("posted_at")),
        reply_body=doc.get("reply_body"),
        replied_at=from_epoch(doc.get("replied_at")),
        replier=doc.get("replier"),
        status=Status(doc["status"]),
        likes=doc.get("likes", 0),
        reposts=doc.get("reposts", 0),
        comments=doc.get("comments", 0),
        votes=doc.get("votes", 0),
        parent_id=doc.get("parent_id"),
        topic=Topic(doc["topic"]) if doc.get("topic") else None,
        topic_score=doc.get("topic_score"),
        urgency=Urgency(doc["urgency"]) if doc.get("urgency") else None,
        urgency_reasons=list(doc.get("urgency_reasons") or []),
        rumour_score=doc.get("rumour_score"),
        rumour_reasons=list(doc.get("rumour_reasons") or []),
        duplicate_of=doc.get("duplicate_of"),
        extra=dict(doc.get("extra") or {}),
        fetched_at=from_epoch(doc.get("fetched_at")),
        updated_at=from_epoch(doc.get("updated_at")),
    )
    return msg


def event_to_doc(event: CrawlEvent, seq: int) -> dict[str, Any]:
    return {
        "source": event.source,
        "spider": event.spider,
        "kind": event.kind,
        "at": to_epoch(event.at),
        "ok": bool(event.ok),
        "items": int(event.items),
        "pages": int(event.pages),
        "errors": int(event.errors),
        "detail": event.detail,
        "seq": seq,
    }


def doc_to_event(doc: dict[str, Any]) -> CrawlEvent:
    return CrawlEvent(
        doc["source"], doc["spider"], doc["kind"], from_epoch(doc["at"]),  # type: ignore[arg-type]
        bool(doc["ok"]), doc["items"], doc["pages"], doc["errors"], doc.get("detail", ""),
    )  # fmt: skip


def label_to_doc(label: Label, seq: int) -> dict[str, Any]:
    return {
        "message_id": label.message_id,
        "task": label.task,
        "value": label.value,
        "user": label.user,
        "at": to_epoch(label.at),
        "note": label.note,
        "seq": seq,
    }


def doc_to_label(doc: dict[str, Any]) -> Label:
    return Label(
        doc["message_id"], doc["task"], doc["value"], doc["user"],
        from_epoch(doc["at"]), doc.get("note", ""),  # type: ignore[arg-type]
    )  # fmt: skip
