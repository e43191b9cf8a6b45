"""Rising terms without re-cutting the past: the terms of every message kept per day.

`TermIndex` gives what `govpulse.trends.rising_terms` gives for the same
arguments, but the terms of every message are kept per calendar day (in
memory and, optionally, in a small SQLite file shared by processes), so a
dashboard load re-reads only days whose message count changed (in
practice: today) and cuts only messages it has not seen.  Filters are
applied in memory to the kept day, so a new filter combination costs no
cutting at all.
"""

from __future__ import annotations

import math
import pickle
import sqlite3
import threading
import time
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from govpulse.schema import TZ
from govpulse.trends import (
    SAMPLE_IDS,
    TermTrend,
    TrendRow,
    _score,
    detect_rising,
    merge_events,
    message_terms,
    rising_terms,
)

if TYPE_CHECKING:
    import numpy as np

    from store.base import Filters, Store
#: Message fields a kept day holds for filtering in memory (the list fields of Filters).
_DAY_FIELDS = ("source", "channel", "department", "region", "topic", "urgency", "status")
#: Layout version of a kept day; rows of another version in the file are ignored.
_DAY_FORMAT = 1
_US = timedelta(microseconds=1)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch_us(at: datetime) -> int:
    """Exact epoch microseconds (integer arithmetic, so bucket edges match `detect_rising`)."""
    return (at - _EPOCH) // _US


def _value(v: Any) -> str | None:
    """A field as the store compares it with filter values (enum value, str, or None)."""
    if v is None or v == "":
        return None if v is None else ""
    return v.value if hasattr(v, "value") else str(v)


@dataclass
class _Day:
    """One Asia/Shanghai calendar day of messages, reduced to terms plus filter fields.

    Term lists are stored as CSR arrays (``ptr`` offsets into ``terms``,
    indices into ``vocab``) so a whole day is filtered and counted with a
    few numpy operations instead of a Python loop per message.
    """

    day: date
    #: Messages read when the day was built; compared with the store's count.
    count: int
    #: time.time() of the build (days older than TermIndex.max_age are re-read).
    built: float
    ids: list[str]
    at_us: Any  # np.ndarray int64, posted_at in epoch microseconds
    codes: dict[str, Any]  # field -> np.ndarray int32 index into values[field]
    values: dict[str, list[str | None]]
    rumour: Any  # np.ndarray float64, NaN when unscored
    dup: Any  # np.ndarray bool, duplicate_of set
    crc: list[int]  # CRC-32 of each message's text, to reuse terms on a re-read
    vocab: list[str]
    ptr: Any  # np.ndarray int64, len(ids) + 1
    terms: Any  # np.ndarray int32 into vocab
    # Derived in each process (not stored): global term ids and each pair's message.
    gterms: Any = None
    pair_msg: Any = None

    def stored(self) -> bytes:
        state = {k: getattr(self, k) for k in self.__dataclass_fields__}
        state["gterms"] = state["pair_msg"] = None
        return zlib.compress(pickle.dumps(state, protocol=pickle.HIGHEST_PROTOCOL), 1)

    @classmethod
    def loaded(cls, blob: bytes) -> _Day:
        return cls(**pickle.loads(zlib.decompress(blob)))

    def term_lists(self) -> dict[str, tuple[int, list[str]]]:
        """id -> (text CRC, terms): what a re-read of the day can reuse."""
        vocab, ptr, terms = self.vocab, self.ptr.tolist(), self.terms.tolist()
        return {
            mid: (self.crc[i], [vocab[t] for t in terms[ptr[i] : ptr[i + 1]]])
            for i, mid in enumerate(self.ids)
        }


def _build_day(day: date, messages: Iterable[Any], old: _Day | None) -> _Day:
    """Reduce one day's messages; terms of messages already in `old` with the same text are reused."""
    import numpy as np

    reuse = old.term_lists() if old is not None else {}
    ids: list[str] = []
    at: list[int] = []
    crcs: list[int] = []
    rumour: list[float] = []
    dup: list[bool] = []
    raw: dict[str, list[str | None]] = {f: [] for f in _DAY_FIELDS}
    vocab: dict[str, int] = {}
    ptr = [0]
    terms: list[int] = []
    for m in messages:
        if m.posted_at is None:
            continue
        text = m.text or ""
        crc = zlib.crc32(text.encode("utf-8", "surrogatepass"))
        hit = reuse.get(m.id)
        words = hit[1] if hit is not None and hit[0] == crc else message_terms(text)
        ids.append(m.id)
        at.append(_epoch_us(m.posted_at))
        crcs.append(crc)
        rumour.append(math.nan if m.rumour_score is None else float(m.rumour_score))
        dup.append(m.duplicate_of is not None)
        for name in _DAY_FIELDS:
            raw[name].append(_value(getattr(m, name)))
        for w in words:
            terms.append(vocab.setdefault(w, len(vocab)))
        ptr.append(len(terms))
    codes: dict[str, Any] = {}
    values: dict[str, list[str | None]] = {}
    for name, column in raw.items():
        index: dict[str | None, int] = {}
        codes[name] = np.fromiter(
            (index.setdefault(v, len(index)) for v in column), np.int32, len(column)
        )
        values[name] = list(index)
    return _Day(
        day=day,
        count=len(ids),
        built=time.time(),
        ids=ids,
        at_us=np.array(at, dtype=np.int64),
        codes=codes,
        values=values,
        rumour=np.array(rumour, dtype=np.float64),
        dup=np.array(dup, dtype=bool),
        crc=crcs,
        vocab=list(vocab),
        ptr=np.array(ptr, dtype=np.int64),
        terms=np.array(terms, dtype=np.int32),
    )


def _day_start(day: date) -> datetime:
    return datetime.combine(day, dtime(), TZ)


class TermIndex:
    """Rising terms from per-day kept terms: `rising_terms` without re-cutting the past.

    Why: a dashboard load used to read and cut every message of the last 8
    (up to 56) days; the terms of a finished day never change, except when
    messages arrive late or are edited.  Each day is therefore reduced once
    (`_Day`) and kept in memory and, with `path`, in a SQLite file that
    every worker process and restart shares.  On each call one
    ``store.histogram(day)`` tells which days' message counts changed; only
    those are re-read, and only their unseen or edited messages are cut.
    Edits that keep a day's count (a topic corrected, a text re-crawled)
    show after `max_age`, when the day is re-read anyway (cheap: terms of
    unchanged texts are reused).

    Filters are applied to the kept day in memory, so any filter
    combination is served from the same days.  Filters on ``ids`` or
    ``parent_id`` (not kept) fall back to `rising_terms`' full read.
    Results equal `rising_terms` exactly (same counts, same score formula).
    """

    def __init__(
        self,
        path: str | Path | None = None,
        namespace: str = "",
        max_age: timedelta = timedelta(hours=1),
        keep_days: int = 120,
        age_in_queries: bool = True,
    ) -> None:
        self.path = Path(path) if path else None
        self.namespace = namespace
        self.max_age = max_age
        #: False: only `refresh` re-reads days for age, so a query never pays
        #: for re-reading every day at once when they all reach max_age together.
        self.age_in_queries = age_in_queries
        self.keep_days = keep_days
        self._lock = threading.Lock()
        self._days: dict[date, _Day] = {}
        self._gid: dict[str, int] = {}
        self._terms: list[str] = []
        self._counts: dict[date, int] = {}
        self._counts_marker: Any = None
        #: Days (re)built by this index since it was made (for tests and benchmarks).
        self.builds = 0

    # -- the kept days -----------------------------------------------------------
    def _db(self) -> sqlite3.Connection:
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, timeout=10, isolation_level=None)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS term_days (ns TEXT, day TEXT, format INTEGER, "
            "count INTEGER, built REAL, data BLOB, PRIMARY KEY (ns, day))"
        )
        return conn

    def _load(self, day: date, newer_than: float = 0.0) -> _Day | None:
        if self.path is None:
            return None
        try:
            conn = self._db()
            try:
                row = conn.execute(
                    "SELECT data FROM term_days WHERE ns = ? AND day = ? AND format = ? "
                    "AND built > ?",
                    (self.namespace, day.isoformat(), _DAY_FORMAT, newer_than),
                ).fetchone()
            finally:
                conn.close()
            return _Day.loaded(row[0]) if row else None
        except (sqlite3.Error, pickle.UnpicklingError, zlib.error, EOFError, TypeError):
            return None  # a damaged or foreign cache file only costs a re-read

    def _save(self, entry: _Day) -> None:
        if self.path is None:
            return
        try:
            conn = self._db()
            try:
                conn.execute(
                    "INSERT OR REPLACE INTO term_days VALUES (?, ?, ?, ?, ?, ?)",
                    (
                        self.namespace,
                        entry.day.isoformat(),
                        _DAY_FORMAT,
                        entry.count,
                        entry.built,
                        entry.stored(),
                    ),
                )
            finally:
                conn.close()
        except sqlite3.Error:
            pass  # the file is a cache: a failed write only costs a re-read later

    def _store_counts(self, store: Store, days: list[date], marker: Any) -> dict[date, int]:
        """Messages per day in the store (one histogram call, skipped while `marker` holds)."""
        from store.base import Filters

        if (
            marker is not None
            and marker == self._counts_marker
            and all(d in self._counts for d in days)
        ):
            return self._counts
        rows = store.histogram(
            "day",
            filters=Filters(
                since=_day_start(days[0]), until=_day_start(days[-1]) + timedelta(days=1)
            ),
        )
        counts = {b.astimezone(TZ).date(): n for b, _, n in rows}
        if marker is None or marker != self._counts_marker:
            self._counts = {}
        self._counts.update({d: counts.get(d, 0) for d in days})
        self._counts_marker = marker
        return self._counts

    def _day(self, store: Store, day: date, count: int, check_age: bool = True) -> _Day:
        from store.base import Filters

        entry = self._days.get(day)
        if entry is None:
            entry = self._load(day)
        fresh = time.time() - self.max_age.total_seconds()
        if entry is not None and not check_age and entry.built < fresh:
            # Another process (the warmer) may have re-read the day since.
            entry = self._load(day, newer_than=entry.built) or entry
        if entry is None or entry.count != count or (check_age and entry.built < fresh):
            span = Filters(since=_day_start(day), until=_day_start(day + timedelta(days=1)))
            messages = store.iter_messages(filters=span) if count else ()
            entry = _build_day(day, messages, entry)
            self.builds += 1
            self._save(entry)
        if entry.gterms is None:
            import numpy as np

            ids = np.fromiter((self._term_id(t) for t in entry.vocab), np.int32, len(entry.vocab))
            entry.gterms = ids[entry.terms] if len(entry.terms) else entry.terms
            entry.pair_msg = np.repeat(np.arange(len(entry.ids)), np.diff(entry.ptr))
        self._days[day] = entry
        return entry

    def _term_id(self, term: str) -> int:
        gid = self._gid.get(term)
        if gid is None:
            gid = self._gid[term] = len(self._terms)
            self._terms.append(term)
        return gid

    def refresh(self, store: Store, since: date, until: date, marker: Any = None) -> int:
        """Bring the kept days in [since, until] up to date (e.g. from a warm-up job).

        Returns how many days were re-read.
        """
        days = [since + timedelta(days=i) for i in range((until - since).days + 1)]
        with self._lock:
            before = self.builds
            counts = dict(self._store_counts(store, days, marker))
        for d in days:  # the lock per day: queries in other threads go on meanwhile
            with self._lock:
                self._day(store, d, counts.get(d, 0), check_age=True)
        return self.builds - before

    # -- the query ---------------------------------------------------------------------
    def rising(
        self,
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
        marker: Any = None,
    ) -> list[TermTrend]:
        """What `rising_terms` returns for the same arguments.

        `marker` is a cheap value that changes whenever the store is written
        (e.g. the SQLite file's modification time): while it is unchanged
        the per-day count check is skipped.
        """
        import numpy as np

        if window <= timedelta(0):
            raise ValueError("window must be positive")
        if baseline < timedelta(0):
            raise ValueError("baseline must not be negative")
        if filters is not None and (filters.ids or filters.parent_id is not None):
            return rising_terms(
                store, now, window, baseline, limit, filters, k, min_count, only_rising,
                volume_adjust,
            )  # fmt: skip
        n_base = max(int(baseline / window), 0)
        nb1 = n_base + 1
        start = now - window * nb1
        start_us, now_us, win_us = _epoch_us(start), _epoch_us(now), window // _US
        first = start.astimezone(TZ).date()
        last = (now - _US).astimezone(TZ).date()
        days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
        with self._lock:
            counts = self._store_counts(store, days, marker)
            entries = [
                self._day(store, d, counts.get(d, 0), check_age=self.age_in_queries) for d in days
            ]
            self._prune(days[-1])
            terms = self._terms
            vocab_size = len(terms)
        totals = np.zeros(nb1, dtype=np.int64)
        keys = []
        current: list[tuple[_Day, Any]] = []
        for e in entries:
            if not e.ids:
                continue
            mask = (e.at_us >= start_us) & (e.at_us < now_us)
            if filters is not None:
                mask &= _filter_mask(e, filters)
            if not mask.any():
                continue
            bucket = np.minimum((e.at_us - start_us) // win_us, n_base)
            totals += np.bincount(bucket[mask], minlength=nb1)
            in_pairs = mask[e.pair_msg]
            keys.append(e.gterms[in_pairs].astype(np.int64) * nb1 + bucket[e.pair_msg[in_pairs]])
            current.append((e, mask & (bucket == n_base)))
        if not keys:
            return []
        matrix = np.bincount(np.concatenate(keys), minlength=vocab_size * nb1).reshape(-1, nb1)
        total_list = totals.tolist()
        base_total = sum(total_list[:-1]) / n_base if n_base else 0.0
        surge = max(total_list[-1] / base_total, 1.0) if volume_adjust and base_total > 0 else 1.0
        out: list[TermTrend] = []
        for gid in np.nonzero(matrix[:, -1] >= max(min_count, 1))[0].tolist():
            series = matrix[gid].tolist()
            scored = _score(series, surge)
            if scored is None:
                continue
            mean, std, _expected, score = scored
            out.append(
                TermTrend(
                    term=terms[gid],
                    count=series[-1],
                    baseline_mean=round(mean, 3),
                    score=round(score, 3),
                    sparkline=series,
                    sources={},
                    sample_ids=[],
                    baseline_std=round(std, 3),
                    rising=score >= k,
                )
            )
        if only_rising:
            out = [t for t in out if t.rising]
        out.sort(key=lambda t: (-t.score, -t.count, t.term))
        if limit:
            out = out[:limit]
        _fill_current(out, current, self._gid, terms)
        return out

    def __repr__(self) -> str:
        # Stable across processes: callers put the index into shared cache keys.
        return f"TermIndex({self.namespace!r})"

    def _prune(self, newest: date) -> None:
        oldest = newest - timedelta(days=self.keep_days)
        for d in [d for d in self._days if d < oldest]:
            del self._days[d]


def _filter_mask(e: _Day, f: Filters) -> np.ndarray:
    """Which of a day's messages pass `f`, with the store's semantics (IN lists, NULL never matches)."""
    import numpy as np

    mask = np.ones(len(e.ids), dtype=bool)
    for name in _DAY_FIELDS:
        wanted = getattr(f, name)
        if wanted:
            allowed = [i for i, v in enumerate(e.values[name]) if v is not None and v in wanted]
            mask &= np.isin(e.codes[name], allowed)
    if f.min_rumour is not None:
        mask &= e.rumour >= f.min_rumour  # NaN (unscored) compares False, like SQL NULL
    if not f.include_duplicates:
        mask &= ~e.dup
    if f.since is not None:
        mask &= e.at_us >= _epoch_us(f.since)
    if f.until is not None:
        mask &= e.at_us < _epoch_us(f.until)
    return mask


def _fill_current(
    out: list[TermTrend], current: list[tuple[_Day, Any]], gid: dict[str, int], names: list[str]
) -> None:
    """Per-source counts and example ids of the current window, for the returned terms only."""
    import numpy as np

    if not out:
        return
    wanted = np.array([gid[t.term] for t in out], dtype=np.int32)
    by_term = {t.term: t for t in out}
    sources: dict[str, Counter[str]] = defaultdict(Counter)
    samples: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for e, in_window in current:
        pairs = in_window[e.pair_msg] & np.isin(e.gterms, wanted)
        if not pairs.any():
            continue
        src_codes, src_values = e.codes["source"], e.values["source"]
        for g, i in zip(e.gterms[pairs].tolist(), e.pair_msg[pairs].tolist(), strict=True):
            name = names[g]
            sources[name][src_values[src_codes[i]] or ""] += 1
            samples[name].append((int(e.at_us[i]), e.ids[i]))
    for term, trend in by_term.items():
        ordered = [i for _, i in sorted(samples[term], reverse=True)]
        trend.sources = dict(sorted(sources[term].items()))
        trend.sample_ids = ordered[:SAMPLE_IDS]
        trend.window_ids = ordered


__all__ = [
    "TermIndex",
    "TermTrend",
    "TrendRow",
    "detect_rising",
    "merge_events",
    "message_terms",
    "rising_terms",
]
