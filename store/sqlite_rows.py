"""Rows of the embedded store: column lists, row <-> Message, FTS query text, snapshots.

Shared by the store's writing (store/sqlite.py), searching
(store/sqlite_search.py) and aggregate (store/sqlite_aggregates.py) parts.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import operator
import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from govpulse import tokenize
from govpulse.schema import Message, Source, Status, Topic, Urgency
from govpulse.workdays import workday_ordinal
from store.common import (
    epoch_of,
    from_epoch,
)
from store.sqlite_agg import (
    CONTRIB_COLUMNS,
)

_COLUMNS = (
    "id", "source", "channel", "url", "title", "body", "author", "region", "department",
    "posted_at", "reply_body", "replied_at", "replier", "status", "likes", "reposts",
    "comments", "votes", "parent_id", "topic", "topic_score", "urgency", "urgency_reasons",
    "rumour_score", "rumour_reasons", "duplicate_of", "extra", "fetched_at", "updated_at",
)  # fmt: skip
_WRITE_COLUMNS = (*_COLUMNS, "content_hash", "posted_wd", "replied_wd")
_HASH_IDX = len(_COLUMNS)
_SELECT = ", ".join(_COLUMNS)
_TIME_COLS = {"posted_at", "replied_at", "fetched_at", "updated_at"}
_JSON_LIST_COLS = {"urgency_reasons", "rumour_reasons"}


def _row_to_message(row: Sequence[Any]) -> Message:
    data = dict(zip(_COLUMNS, row, strict=True))
    for name in _TIME_COLS:
        data[name] = from_epoch(data[name])
    for name in _JSON_LIST_COLS:
        data[name] = json.loads(data[name]) if data[name] else []
    data["extra"] = json.loads(data["extra"]) if data["extra"] else {}
    msg = Message(**data)
    # Stored rows were validated on the way in; coerce enums without re-checking.
    msg.source = Source(msg.source)
    msg.status = Status(msg.status)
    if msg.topic:
        msg.topic = Topic(msg.topic)
    if msg.urgency:
        msg.urgency = Urgency(msg.urgency)
    return msg


_ANALYZE_AFTER = 10_000  # inserted rows that make fresh planner statistics worth it
_FETCHED_IDX = _COLUMNS.index("fetched_at")
_UPDATED_IDX = _COLUMNS.index("updated_at")
_VOLATILE_IDX = (_FETCHED_IDX, _UPDATED_IDX)
_CONTRIB = operator.itemgetter(*(_WRITE_COLUMNS.index(c) for c in CONTRIB_COLUMNS))


_GET_COLUMNS = operator.attrgetter(*_COLUMNS)
_TIME_IDX = tuple(i for i, c in enumerate(_COLUMNS) if c in _TIME_COLS)
_LIST_IDX = tuple(i for i, c in enumerate(_COLUMNS) if c in _JSON_LIST_COLS)
_EXTRA_IDX = _COLUMNS.index("extra")
_PLAIN_IDX = tuple(i for i in range(len(_COLUMNS)) if i not in (*_TIME_IDX, *_LIST_IDX, _EXTRA_IDX))
_KEPT_IDX = tuple(i for i in range(len(_COLUMNS)) if i not in _VOLATILE_IDX)
_KEPT = operator.itemgetter(*_KEPT_IDX)
#: Values stored as they are (NoneType too: one set lookup decides most cells).
_PLAIN_TYPES = frozenset({str, int, float, bool, type(None)})
_NO_VALUE = object()


def _row_digest(row: Sequence[Any]) -> str:
    """Content hash of a row minus re-crawl bookkeeping: equal digest = unchanged.

    The repr of the kept cells as a list: stored digests were made this way,
    so it must not change (a re-import would count every row as updated).
    """
    kept = list(_KEPT(row))
    return hashlib.blake2b(repr(kept).encode(), digest_size=16).hexdigest()


#: Working-day ordinal by proleptic day ordinal: a dict hit instead of the
#: calendar lookup (two per imported message).  Bounded: cleared when large.
_WORKDAYS: dict[int, int] = {}


def _workday(value: datetime) -> int:
    """``workday_ordinal(value)``, cached by the (local) date of `value`."""
    day = value.toordinal()
    wd = _WORKDAYS.get(day)
    if wd is None:
        if len(_WORKDAYS) > 100_000:
            _WORKDAYS.clear()
        wd = _WORKDAYS[day] = workday_ordinal(value)
    return wd


def _bare_row(msg: Message, now: datetime | None = None, now_epoch: int = 0) -> list[Any]:
    """The row to write as a list, its digest cell still None (see `_finish_rows`).

    One attrgetter call and per-kind fix-ups by position: this runs once
    per imported message, so it is written for speed.  A time cell that
    *is* `now` (the import stamp every new message gets) takes `now_epoch`
    without a zone lookup.
    """
    out = list(_GET_COLUMNS(msg))
    for i in _TIME_IDX:
        value = out[i]
        if value is not None:
            out[i] = now_epoch if value is now else epoch_of(value)
    for i in _LIST_IDX:
        value = out[i]
        out[i] = json.dumps(value, ensure_ascii=False) if value else None
    extra = out[_EXTRA_IDX]
    out[_EXTRA_IDX] = json.dumps(extra, ensure_ascii=False, sort_keys=True) if extra else None
    plain = _PLAIN_TYPES
    for i in _PLAIN_IDX:
        value = out[i]
        # Enums (StrEnum is a str too) are stored by value; plain types pass.
        if type(value) not in plain:
            # An enum member's value without the Enum.value descriptor (~1 us each).
            stored = getattr(value, "_value_", _NO_VALUE)
            if stored is not _NO_VALUE:
                out[i] = stored
            elif hasattr(value, "value"):
                out[i] = value.value
    posted, replied = msg.posted_at, msg.replied_at
    out.append(None)  # content_hash
    out.append(_workday(posted) if posted else None)
    out.append(_workday(replied) if replied else None)
    return out


def _message_to_row(msg: Message) -> tuple[Any, ...]:
    """The row to write: columns, content digest, index-only derived values."""
    out = _bare_row(msg)
    out[_HASH_IDX] = _row_digest(out)
    return tuple(out)


_TEXT_IDX = operator.itemgetter(*(_COLUMNS.index(c) for c in ("title", "body", "reply_body")))


def _index_rows(rows: list[list[Any]]) -> tuple[list[str], list[str]]:
    """FTS tokens and content digests of bare rows: the part of a row worth a worker.

    Runs in the index worker processes (or inline with one worker).  The
    rows travel as lists of plain values, which pickle about as cheaply as
    the three texts alone; hashing them here takes the digest (~4 us a
    message, repr of the texts included) off the writing thread.
    """
    index_text = tokenize.index_text
    texts = _TEXT_IDX
    return [index_text(*texts(r)) for r in rows], [_row_digest(r) for r in rows]


def _finish_rows(rows: list[list[Any]], digests: list[str]) -> list[list[Any]]:
    """Put each digest into its bare row (in place); returns `rows`."""
    for row, digest in zip(rows, digests, strict=True):
        row[_HASH_IDX] = digest
    return rows


def fts_query(query: str) -> str | None:
    """FTS5 MATCH expression: every query token as a quoted term (AND)."""
    tokens = tokenize.cut_query(query)
    if not tokens:
        return None
    return " ".join('"' + t.replace('"', '""') + '"' for t in tokens)


def _snapshot(method: Callable[..., Any]) -> Callable[..., Any]:
    """Run a read method in one read transaction: one snapshot for all its queries.

    An aggregate adds summary rows, edge rows and (for calendar quantiles)
    rows read back by rank; a write committed between those queries would
    make them disagree.  In WAL mode a read transaction never blocks writers.
    """

    @functools.wraps(method)
    def wrapper(self: Any, *args: Any, **kwargs: Any) -> Any:
        conn = self._conn()
        if conn.in_transaction:
            return method(self, *args, **kwargs)
        conn.execute("BEGIN")
        try:
            return method(self, *args, **kwargs)
        finally:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("COMMIT")

    return wrapper
