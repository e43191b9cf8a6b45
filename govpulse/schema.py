"""The one message schema every stage imports.

A `Message` is one citizen utterance (a Weibo comment or post, a mailbox
letter, a forum thread) plus what the government answered.  Crawlers,
importers, the classifier, both store backends, the dashboard and the
alert rules all pass `Message` objects; nothing else defines these fields.

This module imports nothing beyond the standard library so that any stage
(including a Scrapy process or a Dash worker) can import it cheaply.
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

TZ = ZoneInfo("Asia/Shanghai")


class Source(StrEnum):
    """Where a message was collected."""

    WEIBO = "weibo"
    MAILBOX = "mailbox"
    FORUM = "forum"


class Status(StrEnum):
    """Reply state of a message."""

    OPEN = "open"
    ANSWERED = "answered"
    CLOSED = "closed"


class Topic(StrEnum):
    """The seven first-level topics used for citizen letters."""

    URBAN = "城乡建设"
    LABOUR = "劳动和社会保障"
    EDUCATION = "教育文体"
    COMMERCE = "商贸旅游"
    ENVIRONMENT = "环境保护"
    HEALTH = "卫生计生"
    TRANSPORT = "交通运输"


class Urgency(StrEnum):
    """Four urgency levels, most urgent first."""

    CRITICAL = "特急"
    URGENT = "紧急"
    NORMAL = "一般"
    LOW = "低"


#: Ordering used by rules and the dashboard (0 = most urgent).
URGENCY_RANK = {u: i for i, u in enumerate(Urgency)}


class ValidationError(ValueError):
    """A message that breaks the schema; `field` names the offending field."""

    def __init__(self, field_name: str, reason: str) -> None:
        super().__init__(f"{field_name}: {reason}")
        self.field = field_name
        self.reason = reason


def make_id(source: str | Source, source_id: str) -> str:
    """Return the stable message id: a hash of source + the source's own id.

    Re-crawling or re-importing the same letter yields the same id, so the
    store upserts instead of duplicating.
    """
    if not str(source_id).strip():
        raise ValidationError("source_id", "empty source id")
    digest = hashlib.blake2b(f"{Source(source).value}:{source_id}".encode(), digest_size=10)
    return f"{Source(source).value[0]}{digest.hexdigest()}"


def mask_author(name: str | None) -> str | None:
    """Return a stable pseudonym for a user name; the raw name is never stored.

    Names that the source already masked (``陈***``) are kept as they are.
    """
    if name is None or not str(name).strip():
        return None
    name = str(name).strip()
    if "*" in name:
        return name
    return "u" + hashlib.blake2b(name.encode(), digest_size=6).hexdigest()


# Text fields get a hard cap so one pathological page cannot blow up the store.
MAX_TEXT_CHARS = 200_000
#: Engagement counts above this are corrupt data (and would overflow store integers).
MAX_COUNT = 10**12

_INT_FIELDS = ("likes", "reposts", "comments", "votes")
_TIME_FIELDS = ("posted_at", "replied_at", "fetched_at", "updated_at")
_ENUM_FIELDS: dict[str, type[StrEnum]] = {
    "source": Source,
    "status": Status,
    "topic": Topic,
    "urgency": Urgency,
}


@dataclass(slots=True)
class Message:
    """One citizen message and the government's reply to it.

    Times are timezone-aware (Asia/Shanghai after validation).  Derived
    values such as the reply delay are properties, never stored fields.
    """

    id: str
    source: Source
    channel: str
    url: str | None = None
    title: str = ""
    body: str = ""
    author: str | None = None
    region: str | None = None
    department: str | None = None
    posted_at: datetime | None = None
    reply_body: str | None = None
    replied_at: datetime | None = None
    replier: str | None = None
    status: Status = Status.OPEN
    likes: int = 0
    reposts: int = 0
    comments: int = 0
    votes: int = 0
    parent_id: str | None = None
    topic: Topic | None = None
    topic_score: float | None = None
    urgency: Urgency | None = None
    urgency_reasons: list[str] = field(default_factory=list)
    rumour_score: float | None = None
    rumour_reasons: list[str] = field(default_factory=list)
    duplicate_of: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    fetched_at: datetime | None = None
    updated_at: datetime | None = None

    # -- derived ---------------------------------------------------------
    @property
    def reply_delay(self) -> timedelta | None:
        """Time from posting to the official reply, if both are known."""
        if self.posted_at is None or self.replied_at is None:
            return None
        return self.replied_at - self.posted_at

    @property
    def reply_delay_days(self) -> float | None:
        """Reply delay in (fractional) calendar days."""
        delay = self.reply_delay
        return None if delay is None else delay.total_seconds() / 86400.0

    @property
    def text(self) -> str:
        """Title and body joined: what classifiers and search read."""
        if self.title and self.body and not self.body.startswith(self.title):
            return f"{self.title}\n{self.body}"
        return self.body or self.title

    # -- validation ------------------------------------------------------
    def validate(self) -> Message:
        """Coerce types and check invariants in place; raise ValidationError.

        Returns self so calls chain: ``Message(...).validate()``.

        Every bulk import validates every message (stored ones again when
        merged), so values that are already what a check would make (an enum
        member, an int count in range, a whole-second datetime in `TZ`) skip
        the coercion: same result, a third of the time.
        """
        for name, enum in _ENUM_FIELDS.items():
            value = getattr(self, name)
            if type(value) is enum:
                continue  # enum(member) is the member
            if type(value) is str:
                # What enum(value) looks up first, without EnumType.__call__ and __new__.
                member = enum._value2member_map_.get(value)
                if member is not None:
                    setattr(self, name, member)
                    continue
            if value is None or value == "":
                if name in ("source", "status"):
                    raise ValidationError(name, "required")
                setattr(self, name, None)
                continue
            try:
                setattr(self, name, enum(value))
            except ValueError:
                allowed = ", ".join(e.value for e in enum)
                raise ValidationError(name, f"{value!r} is not one of: {allowed}") from None
        if not self.id:
            raise ValidationError("id", "required")
        if not self.channel or not str(self.channel).strip():
            raise ValidationError("channel", "required (account, board or mailbox name)")
        self.title = _clip(self.title or "", "title")
        self.body = _clip(self.body or "", "body")
        # "not x.strip()" without the copy: empty or whitespace only.
        if (not self.title or self.title.isspace()) and (not self.body or self.body.isspace()):
            raise ValidationError("body", "title and body are both empty")
        if self.reply_body is not None:
            self.reply_body = _clip(self.reply_body, "reply_body") or None
        for name in _INT_FIELDS:
            value = getattr(self, name)
            if type(value) is int and 0 <= value <= MAX_COUNT:
                continue  # int(value or 0) is value
            try:
                value = int(value or 0)
            except (TypeError, ValueError):
                raise ValidationError(name, f"not a count: {value!r}") from None
            if value < 0:
                raise ValidationError(name, f"negative count {value}")
            if value > MAX_COUNT:
                raise ValidationError(name, f"implausible count {value}")
            setattr(self, name, value)
        for name in _TIME_FIELDS:
            value = getattr(self, name)
            if value is None:
                continue
            if type(value) is datetime and value.tzinfo is TZ and not value.microsecond:
                continue  # astimezone(TZ) returns it as it is; microsecond is already 0
            if not isinstance(value, datetime):
                raise ValidationError(name, f"not a datetime: {value!r}")
            if value.tzinfo is None:
                raise ValidationError(name, "naive datetime; attach Asia/Shanghai first")
            # Whole seconds: both stores keep epoch seconds, so round trips are exact.
            setattr(self, name, value.astimezone(TZ).replace(microsecond=0))
        for name in ("topic_score", "rumour_score"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= float(value) <= 1.0:
                raise ValidationError(name, f"{value} is outside [0, 1]")
        if self.replied_at and self.posted_at and self.replied_at < self.posted_at:
            raise ValidationError("replied_at", "reply is earlier than the message")
        if self.reply_body and self.status is Status.OPEN:
            self.status = Status.ANSWERED
        return self

    # -- (de)serialisation ----------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return a JSON-ready dict (ISO times, plain strings for enums)."""
        out: dict[str, Any] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            elif isinstance(value, list | dict):
                value = value.copy()
            out[f.name] = value
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Message:
        """Build and validate a message from `to_dict` output (unknown keys rejected)."""
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - names
        if unknown:
            raise ValidationError(sorted(unknown)[0], "unknown field")
        kwargs = dict(data)
        for name in ("posted_at", "replied_at", "fetched_at", "updated_at"):
            value = kwargs.get(name)
            if isinstance(value, str) and value:
                kwargs[name] = datetime.fromisoformat(value)
            elif value == "":
                kwargs[name] = None
        for required in ("id", "source", "channel"):
            if required not in kwargs:
                raise ValidationError(required, "required")
        return cls(**kwargs).validate()


FIELD_NAMES: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Message))


def _clip(text: str, name: str) -> str:
    if not isinstance(text, str):
        raise ValidationError(name, f"not text: {type(text).__name__}")
    return text[:MAX_TEXT_CHARS]


@dataclass(slots=True)
class CrawlEvent:
    """What one crawl run saw: shown on the dashboard and fed to crawl-health alerts.

    `kind` is ``finished`` for a normal end, or a problem: ``blocked``,
    ``captcha``, ``login_expired``, ``layout_changed``, ``error_rate``,
    ``incomplete``, ``crashed``, ``timeout``.
    """

    source: str
    spider: str
    kind: str
    at: datetime
    ok: bool = True
    items: int = 0
    pages: int = 0
    errors: int = 0
    detail: str = ""


@dataclass(slots=True)
class Label:
    """A staff decision on a message: a corrected topic/urgency or a rumour review.

    Stored beside (not inside) the message so corrections survive re-crawls
    and can be fed back into training.
    """

    message_id: str
    task: str  # topic | urgency | rumour
    value: str
    user: str
    at: datetime
    note: str = ""
