"""Hot-term detection: which words are rising against their own recent baseline.

Shared by the hot-topic alert rule and the dashboard's 热点 view, so staff
see on screen exactly what the alert fired on.

The method is a per-term burst test.  The baseline period before the
current window is cut into buckets as long as the window (e.g. 7 daily
buckets before the last 24 hours).  For every term we count the messages
that contain it (document frequency, so one long letter repeating a word
counts once) in each bucket and in the current window, and compute

    score = (count - mean) / max(std, sqrt(max(mean, 1)))

(with the baseline scaled up when the whole stream is busier than usual,
see `detect_rising`).  The floor ``sqrt(mean)`` is the Poisson standard deviation: a term whose
baseline happens to be perfectly flat (std 0) must not get an infinite
score from one extra message.  A term is *rising* when it has at least
``min_count`` messages in the window and ``score >= k`` (mean + k·σ).

`detect_rising` is the pure core on plain rows ``(time, tokens, source,
id)``; it is what the tests and the Weibo hot-search benchmark call.
`rising_terms` feeds it from a Store.

`govpulse.term_index.TermIndex` gives the same answer without re-cutting
the past (the dashboard uses it).
"""

from __future__ import annotations

import dataclasses
import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from govpulse.tokenize import cut, stopwords

if TYPE_CHECKING:
    from store.base import Filters, Store

#: Shortest term considered: single characters are too ambiguous in Chinese.
MIN_TERM_CHARS = 2
#: How many message ids each trend keeps as examples.
SAMPLE_IDS = 5


@dataclass(slots=True)
class TermTrend:
    """One term's volume in the current window against its baseline buckets."""

    term: str
    count: int
    baseline_mean: float
    score: float
    #: Counts per bucket, oldest first; the last value is the current window.
    sparkline: list[int]
    #: Current-window count per source (weibo, mailbox, forum …).
    sources: dict[str, int]
    #: A few ids of current-window messages containing the term, newest first.
    sample_ids: list[str]
    baseline_std: float = 0.0
    #: True when count >= min_count and score >= k.
    rising: bool = False
    #: Ids of every current-window message with the term (for merging events).
    window_ids: list[str] = field(default_factory=list, repr=False)


@dataclass(frozen=True, slots=True)
class TrendRow:
    """One message reduced to what the detector needs."""

    at: datetime
    tokens: Sequence[str]
    source: str = ""
    id: str = ""
    #: How much the row counts (1 per message; e.g. heat for ranked lists).
    weight: int = 1


def message_terms(text: str) -> list[str]:
    """Distinct topic-bearing terms of a text: jieba tokens minus stop words, >= 2 chars."""
    stop = stopwords()
    seen: dict[str, None] = {}
    for token in cut(text):
        token = token.lower()
        if len(token) >= MIN_TERM_CHARS and token not in stop and not token.isdigit():
            seen.setdefault(token, None)
    return list(seen)


def detect_rising(
    rows: Iterable[TrendRow],
    now: datetime,
    window: timedelta = timedelta(hours=24),
    baseline: timedelta = timedelta(days=7),
    limit: int = 20,
    k: float = 3.0,
    min_count: int = 5,
    only_rising: bool = False,
    volume_adjust: bool = True,
) -> list[TermTrend]:
    """Rank terms by how far their current-window count exceeds their baseline.

    With ``volume_adjust`` the baseline is scaled up when the whole stream
    is busier than usual (current rows / mean rows per baseline bucket, if
    above 1), so a crawler catching up on a backlog or a day of triple
    traffic does not make every common word "rising"; a real event still
    does, because its words grow far faster than the total.

    Rows outside ``[now - window - baseline, now)`` are ignored.  Terms with
    fewer than ``min_count`` current messages, or no more than their
    baseline mean, are left out; ``only_rising`` keeps just those passing
    ``k``.  Sorted by score, then count, then term (deterministic).
    """
    if window <= timedelta(0):
        raise ValueError("window must be positive")
    if baseline < timedelta(0):
        raise ValueError("baseline must not be negative")
    n_base = max(int(baseline / window), 0)
    start = now - window * (n_base + 1)
    # counts[term][bucket]; bucket n_base is the current window.
    counts: dict[str, list[int]] = defaultdict(lambda: [0] * (n_base + 1))
    totals = [0] * (n_base + 1)
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    samples: dict[str, list[tuple[datetime, str]]] = defaultdict(list)
    for row in rows:
        if row.at < start or row.at >= now:
            continue
        bucket = min(int((row.at - start) / window), n_base)
        current = bucket == n_base
        totals[bucket] += row.weight
        for term in dict.fromkeys(row.tokens):
            counts[term][bucket] += row.weight
            if current:
                sources[term][row.source] += row.weight
                if row.id:
                    samples[term].append((row.at, row.id))

    base_total = sum(totals[:-1]) / n_base if n_base else 0.0
    surge = max(totals[-1] / base_total, 1.0) if volume_adjust and base_total > 0 else 1.0
    out: list[TermTrend] = []
    for term, series in counts.items():
        count = series[-1]
        if count < min_count:
            continue
        scored = _score(series, surge)
        if scored is None:
            continue
        mean, std, _expected, score = scored
        ordered = [i for _, i in sorted(samples[term], reverse=True)]
        ids = ordered[:SAMPLE_IDS]
        out.append(
            TermTrend(
                term=term,
                count=count,
                baseline_mean=round(mean, 3),
                score=round(score, 3),
                sparkline=list(series),
                sources=dict(sorted(sources[term].items())),
                sample_ids=ids,
                baseline_std=round(std, 3),
                rising=score >= k,
                window_ids=ordered,
            )
        )
    if only_rising:
        out = [t for t in out if t.rising]
    out.sort(key=lambda t: (-t.score, -t.count, t.term))
    return out[:limit] if limit else out


def merge_events(trends: Sequence[TermTrend], min_overlap: float = 0.5) -> list[list[TermTrend]]:
    """Group terms that describe the same event: their current messages overlap.

    Two terms join when the overlap of their message ids (Jaccard) reaches
    ``min_overlap``, so "化工厂 / 爆炸 / 浓烟" rising together become one hot
    topic rather than three alerts.  Input order (by score) is kept: each
    group's first term is its strongest.
    """
    groups: list[tuple[list[TermTrend], set[str]]] = []
    for trend in trends:
        ids = set(trend.window_ids or trend.sample_ids)
        for members, group_ids in groups:
            union = ids | group_ids
            if ids and union and len(ids & group_ids) / len(ids | group_ids) >= min_overlap:
                members.append(trend)
                group_ids |= ids
                break
        else:
            groups.append(([trend], set(ids)))
    return [members for members, _ in groups]


def _score(series: Sequence[int], surge: float) -> tuple[float, float, float, float] | None:
    """(mean, std, expected, score) of a term's bucket series, or None when not above baseline.

    The one formula `detect_rising` and `TermIndex` share, so both give
    identical numbers for identical counts.
    """
    count = series[-1]
    base = series[:-1]
    mean = sum(base) / len(base) if base else 0.0
    expected = mean * surge
    if count <= expected:
        return None
    std = math.sqrt(sum((c - mean) ** 2 for c in base) / len(base)) if base else 0.0
    sigma = max(std * surge, math.sqrt(max(expected, 1.0)))
    return mean, std, expected, (count - expected) / sigma


def rising_terms(
    store: Store,
    now: datetime,
    window: timedelta = timedelta(hours=24),
    baseline: timedelta = timedelta(days=7),
    limit: int = 20,
    filters: Filters | None = None,
    k: float = 3.0,
    min_count: int = 5,
    only_rising: bool = False,
    volume_adjust: bool = True,
) -> list[TermTrend]:
    """Rising terms among the store's messages (optionally filtered) up to ``now``.

    Only messages posted in ``[now - window - baseline, now)`` are read; the
    filter's own since/until are replaced by that range.
    """
    from store.base import Filters

    span = window * (max(int(baseline / window), 0) + 1) if window > timedelta(0) else window
    base_filters = filters or Filters()
    ranged = dataclasses.replace(base_filters, since=now - span, until=now)
    rows = (
        TrendRow(at=m.posted_at, tokens=message_terms(m.text), source=str(m.source), id=m.id)
        for m in store.iter_messages(filters=ranged)
        if m.posted_at is not None
    )
    return detect_rising(
        rows,
        now,
        window=window,
        baseline=baseline,
        limit=limit,
        k=k,
        min_count=min_count,
        only_rising=only_rising,
        volume_adjust=volume_adjust,
    )
