"""The store interface that both backends (SQLite, Elasticsearch) implement.

The dashboard, alert rules, CLI and crawl pipeline only talk to this
interface.  One parametrised contract suite (tests/store_contract.py) runs
against every backend so they give the same answers on the same data.

Conventions shared by all backends:

* ``upsert_many`` merges: a field that is empty in the incoming message
  (None, "", [], {}, 0) never erases a stored value, so a list page without
  a reply, or a re-crawl before classification, loses nothing.  A message
  whose merged content is identical to the stored one counts as unchanged.
* Full-text search uses the tokens of ``govpulse.tokenize``; every query
  token must match (AND); an empty query matches everything.
* Percentiles use linear interpolation (pandas' default), delays are in
  days (calendar days as floats, or whole working days).
* Open letters are never dropped from timeliness figures: they count as
  letters, as open, and (past their deadline) as overdue; in the survival
  curve they are censored at their current age.
"""

from __future__ import annotations

import abc
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from govpulse.schema import CrawlEvent, Label, Message

#: Fields that can be filtered on (exact match, OR within a field).
FILTER_FIELDS = ("source", "channel", "department", "region", "topic", "urgency", "status")
#: Fields that facets and timeliness can group by.
GROUP_FIELDS = (*FILTER_FIELDS, "replier")
#: Sort keys; prefix "-" for descending.  "relevance" needs a query.
SORT_FIELDS = (
    "posted_at",
    "replied_at",
    "updated_at",
    "rumour_score",
    "topic_score",
    "likes",
    "reposts",
    "comments",
    "votes",
    "relevance",
)
INTERVALS = ("hour", "day", "week", "month")


class StoreError(RuntimeError):
    """The store cannot do what was asked (unreachable, locked, bad query)."""


def facet_names(fields: Sequence[str]) -> list[str]:
    """The distinct facet fields in order; a field no backend can group by is an error."""
    for name in fields:
        if name not in GROUP_FIELDS:
            raise StoreError(f"cannot facet on {name!r}")
    return list(dict.fromkeys(fields))


class StoreUnavailable(StoreError):
    """The backend is down or locked; the caller may retry or spool."""


@dataclass(frozen=True, slots=True)
class Filters:
    """A filter on messages.  Empty tuples mean "any"; dates bound posted_at.

    ``since`` is inclusive and ``until`` exclusive.
    """

    source: tuple[str, ...] = ()
    channel: tuple[str, ...] = ()
    department: tuple[str, ...] = ()
    region: tuple[str, ...] = ()
    topic: tuple[str, ...] = ()
    urgency: tuple[str, ...] = ()
    status: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    ids: tuple[str, ...] = ()
    min_rumour: float | None = None
    parent_id: str | None = None
    #: False hides messages linked as near-duplicates of another one.
    include_duplicates: bool = True

    @classmethod
    def make(cls, **kwargs: object) -> Filters:
        """Build filters from loose values (str or list per field; None ignored)."""
        clean: dict[str, object] = {}
        for key, value in kwargs.items():
            if value is None or value == "" or value == []:
                continue
            if key in FILTER_FIELDS or key == "ids":
                if isinstance(value, str):
                    value = (value,)
                clean[key] = tuple(str(v) for v in value)  # type: ignore[union-attr]
            else:
                clean[key] = value
        return cls(**clean)  # type: ignore[arg-type]


@dataclass(slots=True)
class UpsertStats:
    """What an upsert did."""

    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: list[tuple[str, str]] = field(default_factory=list)  # (id, reason)

    def __iadd__(self, other: UpsertStats) -> UpsertStats:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.failed.extend(other.failed)
        return self


@dataclass(slots=True)
class SearchResult:
    """One page of hits plus the total number of matches.

    ``total_relation`` is "eq" when ``total`` is exact and "gte" when it is a
    lower bound: counting every match of a common word under a filter costs
    more than the page itself, so backends stop counting at a cap (setting
    store.search_total_cap) unless the caller asks for ``exact_total``.
    """

    total: int
    hits: list[Message]
    page: int
    per_page: int
    total_relation: str = "eq"

    @property
    def total_is_exact(self) -> bool:
        return self.total_relation == "eq"


@dataclass(slots=True)
class TimelinessRow:
    """Reply timeliness of one group (department, leader addressed, source …)."""

    group: str
    letters: int
    answered: int
    open: int
    overdue: int
    within_sla: int
    median_delay: float | None
    p90_delay: float | None
    mean_delay: float | None

    @property
    def answer_rate(self) -> float:
        return self.answered / self.letters if self.letters else 0.0

    @property
    def within_sla_rate(self) -> float:
        """Share of all letters (open ones included) answered within the deadline."""
        return self.within_sla / self.letters if self.letters else 0.0


@dataclass(frozen=True, slots=True)
class Sla:
    """Reply deadlines: a default plus per-source overrides, in days."""

    days: int = 15
    by_source: Mapping[str, int] = field(default_factory=dict)
    working_days: bool = True

    def for_source(self, source: str) -> int:
        return int(self.by_source.get(source, self.days))

    @classmethod
    def from_settings(cls, settings: Mapping[str, object]) -> Sla:
        return cls(
            days=int(settings["sla.days"]),  # type: ignore[arg-type]
            by_source=dict(settings["sla.by_source"] or {}),  # type: ignore[call-overload]
            working_days=bool(settings["sla.working_days"]),
        )


class Store(abc.ABC):
    """A message store.  Implementations: SQLiteStore, ElasticStore."""

    url: str

    # -- writing -----------------------------------------------------------
    @abc.abstractmethod
    def upsert_many(self, messages: Iterable[Message]) -> UpsertStats:
        """Insert new messages and merge changes into stored ones (idempotent)."""

    def upsert(self, message: Message) -> UpsertStats:
        return self.upsert_many([message])

    @abc.abstractmethod
    def delete_before(self, cutoff: datetime) -> int:
        """Delete messages posted before `cutoff` (retention); return how many."""

    # -- reading -----------------------------------------------------------
    @abc.abstractmethod
    def get(self, message_id: str) -> Message | None:
        """One message by id, or None."""

    @abc.abstractmethod
    def get_many(self, ids: Sequence[str]) -> list[Message]:
        """Messages by id, in the order given (missing ids skipped)."""

    @abc.abstractmethod
    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = "-posted_at",
        page: int = 1,
        per_page: int = 20,
        exact_total: bool = False,
    ) -> SearchResult:
        """Full-text search plus filters, sorted and paged (page numbers from 1).

        The total may be a lower bound (``total_relation == "gte"``) above
        store.search_total_cap matches unless ``exact_total`` is true; use
        `count` where an exact number is needed.
        """

    @abc.abstractmethod
    def iter_messages(
        self, query: str = "", filters: Filters | None = None, batch_size: int = 1000
    ) -> Iterator[Message]:
        """Every matching message, ordered by id (resumable), with no result-size ceiling."""

    @abc.abstractmethod
    def count(self, query: str = "", filters: Filters | None = None) -> int:
        """Number of matching messages."""

    @abc.abstractmethod
    def facets(
        self,
        fields: Sequence[str],
        query: str = "",
        filters: Filters | None = None,
        size: int = 20,
    ) -> dict[str, list[tuple[str, int]]]:
        """Top values and counts per field (count desc, then value asc); nulls skipped."""

    @abc.abstractmethod
    def histogram(
        self,
        interval: str = "day",
        query: str = "",
        filters: Filters | None = None,
        split_by: str | None = None,
        date_field: str = "posted_at",
    ) -> list[tuple[datetime, str | None, int]]:
        """Counts per time bucket (Asia/Shanghai calendar), optionally split by a field.

        Returns (bucket start, split value or None, count) sorted by bucket
        then value; empty buckets are omitted.
        """

    @abc.abstractmethod
    def timeliness(
        self,
        group_by: str = "department",
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
    ) -> list[TimelinessRow]:
        """Reply timeliness per group, sorted by letters desc then group asc."""

    @abc.abstractmethod
    def delay_distribution(
        self, filters: Filters | None = None, sla: Sla | None = None, now: datetime | None = None
    ) -> list[tuple[int, int, int]]:
        """(whole days, answered after that many days, open censored at that age).

        The input of the survival curve (see govpulse.analytics.survival).
        """

    @abc.abstractmethod
    def overdue(
        self,
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
        limit: int = 100,
    ) -> list[Message]:
        """Open letters past their deadline, oldest first."""

    # -- crawl health and labels ---------------------------------------------
    @abc.abstractmethod
    def add_crawl_event(self, event: CrawlEvent) -> None:
        """Record what a crawl run saw."""

    @abc.abstractmethod
    def crawl_events(
        self, source: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[CrawlEvent]:
        """Recent crawl events, newest first."""

    @abc.abstractmethod
    def add_label(self, label: Label) -> None:
        """Record a staff correction or review."""

    @abc.abstractmethod
    def labels(self, task: str | None = None, message_id: str | None = None) -> list[Label]:
        """Stored labels, newest first."""

    # -- lifecycle -----------------------------------------------------------
    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections."""

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
