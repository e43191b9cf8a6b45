"""Aggregates of the embedded store (a part of `SQLiteStore`): counts, facets, histograms, timeliness.

Each answer comes from the summary tables (store/sqlite_agg.py) where they
serve the filters, plus exact raw-row queries for partial date edges and
filters the summaries do not keep.
"""

from __future__ import annotations

import dataclasses
import math
import sqlite3
from collections import defaultdict
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from govpulse.schema import TZ, Message, Source
from govpulse.workdays import workday_ordinal
from store.base import (
    FILTER_FIELDS,
    GROUP_FIELDS,
    INTERVALS,
    Filters,
    Sla,
    StoreError,
    TimelinessRow,
    facet_names,
)
from store.common import (
    UTC_OFFSET_S,
    from_epoch,
    quantile,
    quantile_from_counts,
    to_epoch,
)
from store.sqlite_agg import (
    DAY_DIMS,
    DELAY_DIMS,
    MONTH_DIMS,
    OPEN_DIMS,
    TABLES,
    local_day,
    rebuild_from_rows,
    split_range,
)
from store.sqlite_rows import (
    _COLUMNS,
    _row_to_message,
    _snapshot,
)


def _covered(filters: Filters, unit: str) -> tuple[float, float]:
    """The [lo, hi) epoch range a summary serves for `filters` (infinite when unbounded)."""
    covered, _ = split_range(to_epoch(filters.since), to_epoch(filters.until), unit)
    lo, hi = covered if covered is not None else (0, 0)
    return (-math.inf if lo is None else lo), (math.inf if hi is None else hi)


def _locate(pairs: Sequence[tuple[int, int]], rank: int) -> tuple[int, int]:
    """(value, position among the letters with that value) of the rank-th (0-based) letter."""
    seen = 0
    for value, count in pairs:
        if rank < seen + count:
            return value, rank - seen
        seen += count
    raise IndexError(rank)


class AggregateQueries:
    """Aggregate methods of `SQLiteStore` (they use its connection helpers)."""

    # -- summaries -------------------------------------------------------
    def _plan(
        self, query: str, filters: Filters | None, dims: Sequence[str], unit: str
    ) -> tuple[str, list[Any], list[Filters]] | None:
        """How a summary table serves a query: (WHERE over it, params, raw edge filters).

        None when it cannot (a full-text query, a filter on a field the
        table does not keep, or no whole month/day inside the date range):
        the caller then runs its raw-row query alone.
        """
        if not self.use_summaries or (query and query.strip()):
            return None
        f = filters or Filters()
        if f.ids or f.min_rumour is not None or f.parent_id is not None:
            return None
        if not f.include_duplicates:
            return None
        clauses: list[str] = []
        params: list[Any] = []
        for name in FILTER_FIELDS:
            values = getattr(f, name)
            if values:
                if name not in dims:
                    return None
                clauses.append(f"{name} IN ({', '.join('?' * len(values))})")
                params.extend(values)
        covered, edges = split_range(to_epoch(f.since), to_epoch(f.until), unit)
        if covered is None:
            return None
        col = "month" if unit == "month" else "day"
        for bound, op in zip(covered, (">=", "<"), strict=True):
            if bound is not None:
                local = bound + UTC_OFFSET_S
                clauses.append(f"{col} {op} ?")
                params.append(local if unit == "month" else local // 86400)
        raw = [dataclasses.replace(f, since=from_epoch(a), until=from_epoch(b)) for a, b in edges]
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params, raw

    def check_summaries(self) -> list[str]:
        """Differences between the summary tables and a recount from the rows ([] = consistent).

        For tests and for an operator who suspects a summary drifted
        (`rebuild_summaries` repairs it).  Recounts inside a transaction
        that is rolled back, so nothing changes.
        """
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                before = {t: self._table_rows(conn, t) for t in TABLES}
                for table in TABLES:
                    conn.execute(f"DELETE FROM {table}")
                rebuild_from_rows(conn)
                after = {t: self._table_rows(conn, t) for t in TABLES}
            finally:
                conn.execute("ROLLBACK")
        problems = []
        for table in TABLES:
            for key in sorted(set(before[table]) | set(after[table])):
                if before[table].get(key) != after[table].get(key):
                    problems.append(
                        f"{table} {key}: stored {before[table].get(key)}, "
                        f"recounted {after[table].get(key)}"
                    )
        return problems

    def rebuild_summaries(self) -> None:
        """Recount the summary tables from the rows (repair; the v4 migration does the same)."""
        conn = self._conn()
        with self._write_lock:
            conn.execute("BEGIN IMMEDIATE")
            try:
                for table in TABLES:
                    conn.execute(f"DELETE FROM {table}")
                rebuild_from_rows(conn)
                conn.execute("COMMIT")
            except BaseException:
                conn.execute("ROLLBACK")
                raise

    @staticmethod
    def _table_rows(conn: sqlite3.Connection, table: str) -> dict[str, tuple[Any, ...]]:
        return {row[0]: tuple(row[1:]) for row in conn.execute(f"SELECT * FROM {table}")}

    # -- counts, facets, histograms ------------------------------------------
    @_snapshot
    def count(self, query: str = "", filters: Filters | None = None) -> int:
        plan = self._plan(query, filters, MONTH_DIMS, "month")
        if plan is None:
            return self._count_raw(query, filters)
        where, params, edges = plan
        n = self._read(f"SELECT COALESCE(SUM(n), 0) FROM agg_month{where}", params)[0][0]
        return int(n) + sum(self._count_raw("", e) for e in edges)

    def _count_raw(self, query: str, filters: Filters | None) -> int:
        where, params = self._where(query, filters)
        return self._read(f"SELECT COUNT(*) FROM messages m{where}", params)[0][0]

    @_snapshot
    def facets(
        self,
        fields: Sequence[str],
        query: str = "",
        filters: Filters | None = None,
        size: int = 20,
    ) -> dict[str, list[tuple[str, int]]]:
        names = facet_names(fields)
        served = [n for n in names if n in MONTH_DIMS]
        plan = self._plan(query, filters, MONTH_DIMS, "month") if served else None
        counts: dict[str, dict[str, int]] = {n: defaultdict(int) for n in served}
        if plan is not None:
            # One pass over the summary for every field: grouping by just the
            # wanted fields folds the months away in SQL.
            where, params, edges = plan
            cols = ", ".join(served)
            for row in self._read(
                f"SELECT {cols}, SUM(n) FROM agg_month{where} GROUP BY {cols}", params
            ):
                n = int(row[-1])
                for name, value in zip(served, row, strict=False):
                    if value is not None:
                        counts[name][str(value)] += n
            for edge in edges:
                for name in served:
                    for value, n in self._facet_raw(name, "", edge, -1):
                        counts[name][value] += n
        out: dict[str, list[tuple[str, int]]] = {}
        for name in fields:
            if plan is None or name not in counts:
                out[name] = self._facet_raw(name, query, filters, size)
                continue
            ranked = sorted(counts[name].items(), key=lambda kv: (-kv[1], kv[0]))
            out[name] = ranked if size < 0 else ranked[:size]
        return out

    def _facet_raw(
        self, name: str, query: str, filters: Filters | None, size: int
    ) -> list[tuple[str, int]]:
        where, params = self._where(query, filters)
        cond = f"{where} AND" if where else " WHERE"
        rows = self._read(
            f"SELECT m.{name}, COUNT(*) AS n FROM messages m{cond} m.{name} IS NOT NULL "
            f"GROUP BY m.{name} ORDER BY n DESC, m.{name} ASC LIMIT ?",
            [*params, size],
        )
        return [(str(v), int(n)) for v, n in rows]

    @_snapshot
    def histogram(
        self,
        interval: str = "day",
        query: str = "",
        filters: Filters | None = None,
        split_by: str | None = None,
        date_field: str = "posted_at",
    ) -> list[tuple[datetime, str | None, int]]:
        if interval not in INTERVALS:
            raise StoreError(f"interval must be one of {', '.join(INTERVALS)}")
        if date_field not in ("posted_at", "replied_at", "fetched_at", "updated_at"):
            raise StoreError(f"cannot bucket on {date_field!r}")
        if split_by is not None and split_by not in GROUP_FIELDS:
            raise StoreError(f"cannot split by {split_by!r}")
        plan = None
        if date_field == "posted_at":
            if interval == "month" and split_by in (None, *MONTH_DIMS):
                plan = self._plan(query, filters, MONTH_DIMS, "month")
                table, bucket = "agg_month", "month"
            elif interval in ("day", "week") and split_by in (None, *DAY_DIMS):
                plan = self._plan(query, filters, DAY_DIMS, "day")
                table = "agg_day"
                bucket = "day * 86400" if interval == "day" else "((day + 3) / 7 * 7 - 3) * 86400"
        if plan is None:
            rows = self._histogram_raw(interval, query, filters, split_by, date_field)
        else:
            where, params, edges = plan
            cond = f"{where} AND" if where else " WHERE"
            key = "month" if table == "agg_month" else "day"
            counts: dict[tuple[int, Any], int] = defaultdict(int)
            for b, s, n in self._read(
                f"SELECT {bucket} AS b, {split_by or 'NULL'} AS s, SUM(n) FROM {table}{cond} "
                f"{key} IS NOT NULL GROUP BY b, s",
                params,
            ):
                counts[(b, s)] += int(n)
            for edge in edges:
                for b, s, n in self._histogram_raw(interval, "", edge, split_by, date_field):
                    counts[(b, s)] += n
            rows = sorted(
                ((b, s, n) for (b, s), n in counts.items()),
                key=lambda r: (r[0], r[1] is not None, r[1] or ""),
            )
        return [
            (from_epoch(b - UTC_OFFSET_S), None if s is None else str(s), int(n))  # type: ignore[misc]
            for b, s, n in rows
        ]

    def _histogram_raw(
        self,
        interval: str,
        query: str,
        filters: Filters | None,
        split_by: str | None,
        date_field: str,
    ) -> list[tuple[int, Any, int]]:
        """(local bucket start in epoch seconds, split value, count) from the rows."""
        local = f"(m.{date_field} + {UTC_OFFSET_S})"
        bucket = {
            "hour": f"({local} / 3600) * 3600",
            "day": f"({local} / 86400) * 86400",
            # 1970-01-01 was a Thursday: shift so weeks start on Monday.
            "week": f"((({local} / 86400) + 3) / 7 * 7 - 3) * 86400",
            "month": f"CAST(strftime('%s', strftime('%Y-%m-01', {local}, 'unixepoch')) AS INTEGER)",
        }[interval]
        where, params = self._where(query, filters)
        cond = f"{where} AND" if where else " WHERE"
        split = f"m.{split_by}" if split_by else "NULL"
        return self._read(
            f"SELECT {bucket} AS b, {split} AS s, COUNT(*) FROM messages m{cond} "
            f"m.{date_field} IS NOT NULL GROUP BY b, s ORDER BY b, s",
            params,
        )

    # -- timeliness ------------------------------------------------------
    @staticmethod
    def _sla_case(sla: Sla, column: str = "m.source") -> tuple[str, list[Any]]:
        if not sla.by_source:
            return "?", [sla.days]
        parts = " ".join("WHEN ? THEN ?" for _ in sla.by_source)
        params: list[Any] = []
        for source, days in sla.by_source.items():
            params.extend([source, int(days)])
        return f"(CASE {column} {parts} ELSE ? END)", [*params, sla.days]

    @staticmethod
    def _now_terms(now: datetime, sla: Sla) -> tuple[str, str, int]:
        """SQL for a letter's delay (answered) and age (open), in the SLA's unit."""
        if sla.working_days:
            return "(m.replied_wd - m.posted_wd)", "(? - m.posted_wd)", workday_ordinal(now)
        # replied_at - posted_at rather than the generated delay_s: the planner
        # then reads both from the covering index instead of every row.
        return (
            "((m.replied_at - m.posted_at) / 86400.0)",
            "((? - m.posted_at) / 86400.0)",
            int(now.timestamp()),
        )

    @_snapshot
    def timeliness(
        self,
        group_by: str = "department",
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
    ) -> list[TimelinessRow]:
        if group_by not in GROUP_FIELDS:
            raise StoreError(f"cannot group by {group_by!r}")
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        plan = self._plan("", filters, DELAY_DIMS, "month") if group_by in DELAY_DIMS else None
        if plan is None:
            return self._timeliness_raw(group_by, filters, sla, now)
        where, params, edges = plan
        working = sla.working_days
        # Answered letters: per (group, source, delay bucket) from the summary and the edges.
        parts = self._answered_summary(group_by, where, params, working)
        for edge in edges:
            parts += self._answered_raw(group_by, edge, working)
        answered: dict[str, int] = defaultdict(int)
        within: dict[str, int] = defaultdict(int)
        delay_n: dict[str, int] = defaultdict(int)
        delay_sum: dict[str, int] = defaultdict(int)
        freq: dict[str, dict[int, int]] = defaultdict(lambda: defaultdict(int))
        for g, source, d, exact, n, total in parts:
            answered[g] += n
            if d is None:
                continue
            days = sla.for_source(source)
            if d < days or (d == days and (working or exact)):
                within[g] += n
            delay_n[g] += n
            delay_sum[g] += total
            freq[g][d] += n
        opened = self._open_stats(group_by, filters, sla, now)
        if working:
            quantiles = {
                g: (
                    quantile_from_counts(sorted(f.items()), 0.5),
                    quantile_from_counts(sorted(f.items()), 0.9),
                )
                for g, f in freq.items()
            }
        else:
            quantiles = self._calendar_quantiles(group_by, filters, freq)
        out = []
        for g in set(answered) | set(opened):
            open_, overdue = opened.get(g, (0, 0))
            med, p90 = quantiles.get(g, (None, None))
            mean = None
            if delay_n[g]:
                mean = delay_sum[g] / delay_n[g] if working else delay_sum[g] / 86400 / delay_n[g]
            out.append(
                TimelinessRow(
                    group=g,
                    letters=answered[g] + open_,
                    answered=answered[g],
                    open=open_,
                    overdue=overdue,
                    within_sla=within[g],
                    median_delay=med,
                    p90_delay=p90,
                    mean_delay=mean,
                )
            )
        out.sort(key=lambda r: (-r.letters, r.group))
        return out

    def _answered_summary(
        self, group_by: str, where: str, params: list[Any], working: bool
    ) -> list[tuple[Any, ...]]:
        """(group, source, delay bucket, exact, letters, delay sum) of answered letters, summarised.

        Working days: the bucket is the delay itself and the sum is in
        working days.  Calendar: the bucket is whole days (floor), ``exact``
        says the delay is exactly that many days, and the sum is in seconds.
        """
        g = f"COALESCE({group_by}, '(未知)')"
        if working:
            rows = self._read(
                f"SELECT {g}, source, d, SUM(n) FROM agg_delay_wd{where} GROUP BY 1, 2, 3", params
            )
            return [(gv, s, d, 1, n, 0 if d is None else d * n) for gv, s, d, n in rows]
        return self._read(
            f"SELECT {g}, source, d, exact, SUM(n), SUM(sum_s) FROM agg_delay_cd{where} "
            "GROUP BY 1, 2, 3, 4",
            params,
        )

    def _answered_raw(
        self, group_by: str, filters: Filters, working: bool
    ) -> list[tuple[Any, ...]]:
        """The tuples of `_answered_summary`, counted from the rows (for partial months)."""
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        g = f"COALESCE(m.{group_by}, '(未知)')"
        if working:
            rows = self._read(
                f"SELECT {g}, m.source, m.replied_wd - m.posted_wd AS d, COUNT(*) "
                f"FROM messages m{cond} m.status != 'open' GROUP BY 1, 2, 3",
                params,
            )
            return [(gv, s, d, 1, n, 0 if d is None else d * n) for gv, s, d, n in rows]
        delay = "(m.replied_at - m.posted_at)"  # not delay_s: see _now_terms
        rem = f"(({delay} % 86400 + 86400) % 86400)"
        return self._read(
            f"SELECT {g}, m.source, ({delay} - {rem}) / 86400 AS d, "
            f"CASE WHEN {delay} IS NULL THEN 0 ELSE {rem} = 0 END AS e, COUNT(*), "
            f"COALESCE(SUM({delay}), 0) FROM messages m{cond} m.status != 'open' "
            "GROUP BY 1, 2, 3, 4",
            params,
        )

    def _open_filters(self, filters: Filters | None) -> Filters | None:
        """Filters for a query over open letters only, or None when none can match."""
        f = filters or Filters()
        if f.status:
            if "open" not in f.status:
                return None
            f = dataclasses.replace(f, status=())
        return f

    def _open_stats(
        self, group_by: str, filters: Filters | None, sla: Sla, now: datetime
    ) -> dict[str, tuple[int, int]]:
        """Open letters and overdue ones per group: whole days from agg_open, edges from rows.

        A calendar deadline falls inside a day; the letters of that day
        posted before it are counted from the rows (a one-day range read).
        """
        f = self._open_filters(filters)
        if f is None:
            return {}
        plan = self._plan("", f, OPEN_DIMS, "day") if group_by in DELAY_DIMS else None
        if plan is None:
            return self._open_stats_raw(group_by, f, sla, now)
        where, params, edges = plan
        g = "'open'" if group_by == "status" else f"COALESCE({group_by}, '(未知)')"
        sla_sql, sla_params = self._sla_case(sla, "source")
        if sla.working_days:
            over = f"wd IS NOT NULL AND (? - wd) > {sla_sql}"
            over_params: list[Any] = [workday_ordinal(now), *sla_params]
        else:
            # Every letter of the day is past the deadline when the day ended by then.
            over = (
                f"day IS NOT NULL AND (day + 1) * 86400 - {UTC_OFFSET_S} <= ? - {sla_sql} * 86400"
            )
            over_params = [int(now.timestamp()), *sla_params]
        out: dict[str, list[int]] = defaultdict(lambda: [0, 0])
        for gv, n, o in self._read(
            f"SELECT {g}, SUM(n), SUM(CASE WHEN {over} THEN n ELSE 0 END) FROM agg_open{where} "
            "GROUP BY 1",
            [*over_params, *params],
        ):
            out[str(gv)][0] += int(n)
            out[str(gv)][1] += int(o)
        for edge in edges:
            for gv, (n, o) in self._open_stats_raw(group_by, edge, sla, now).items():
                out[gv][0] += n
                out[gv][1] += o
        if not sla.working_days:
            lo, hi = _covered(f, "day")
            stamp = int(now.timestamp())
            for source in Source:
                if f.source and source.value not in f.source:
                    continue
                cutoff = stamp - sla.for_source(source.value) * 86400
                start = local_day(cutoff) * 86400 - UTC_OFFSET_S
                start, end = max(start, lo), min(cutoff, hi)
                if start >= end:
                    continue
                part = dataclasses.replace(
                    f, source=(source.value,), since=from_epoch(start), until=from_epoch(end)
                )
                for gv, (n, _) in self._open_stats_raw(group_by, part, sla, now).items():
                    out[gv][1] += n
        return {gv: (n, o) for gv, (n, o) in out.items()}

    def _open_stats_raw(
        self, group_by: str, filters: Filters, sla: Sla, now: datetime
    ) -> dict[str, tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        g = "'open'" if group_by == "status" else f"COALESCE(m.{group_by}, '(未知)')"
        hint = " INDEXED BY ix_messages_status_posted" if group_by in DELAY_DIMS else ""
        rows = self._read(
            f"SELECT {g}, COUNT(*), SUM(m.posted_at IS NOT NULL AND {age} > {sla_sql}) "
            f"FROM messages m{hint}{cond} m.status = 'open' GROUP BY 1",
            [now_value, *sla_params, *params],
        )
        return {str(gv): (int(n), int(o or 0)) for gv, n, o in rows}

    def _calendar_quantiles(
        self, group_by: str, filters: Filters | None, freq: dict[str, dict[int, int]]
    ) -> dict[str, tuple[float | None, float | None]]:
        """Exact median and p90 of calendar delays from whole-day counts.

        The counts say which whole day holds each wanted rank; only the
        letters of that day are read back (partial index on delay_s), so a
        million letters cost a few small range reads instead of a sort.
        """
        wanted: dict[str, list[tuple[int, int, int, int, float]]] = {}
        days_needed: dict[int, set[str]] = defaultdict(set)
        for g, counts in freq.items():
            pairs = sorted(counts.items())
            total = sum(n for _, n in pairs)
            picks = []
            for q in (0.5, 0.9):
                pos = (total - 1) * q
                lo = math.floor(pos)
                hi = min(lo + 1, total - 1)
                (d_lo, off_lo), (d_hi, off_hi) = _locate(pairs, lo), _locate(pairs, hi)
                days_needed[d_lo].add(g)
                days_needed[d_hi].add(g)
                picks.append((d_lo, off_lo, d_hi, off_hi, pos - lo))
            wanted[g] = picks
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        expr = f"COALESCE(m.{group_by}, '(未知)')"
        values: dict[tuple[int, str], list[int]] = defaultdict(list)
        for day, groups in days_needed.items():
            for gv, v in self._read(
                f"SELECT {expr}, m.delay_s FROM messages m INDEXED BY ix_messages_delay{cond} "
                "m.status != 'open' AND m.delay_s >= ? AND m.delay_s < ?",
                [*params, day * 86400, (day + 1) * 86400],
            ):
                if gv in groups:
                    values[(day, gv)].append(v)
        for vals in values.values():
            vals.sort()
        out: dict[str, tuple[float | None, float | None]] = {}
        for g, picks in wanted.items():
            result = []
            for d_lo, off_lo, d_hi, off_hi, frac in picks:
                lo_val = values[(d_lo, g)][off_lo] / 86400.0
                hi_val = values[(d_hi, g)][off_hi] / 86400.0
                result.append(float(lo_val) + (float(hi_val) - float(lo_val)) * frac)
            out[g] = (result[0], result[1])
        return out

    def _timeliness_raw(
        self, group_by: str, filters: Filters | None, sla: Sla, now: datetime
    ) -> list[TimelinessRow]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        delay, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        answered = "m.status != 'open'"
        rows = self._read(
            f"SELECT COALESCE(m.{group_by}, '(未知)') AS g, COUNT(*), "
            f"SUM({answered}), SUM(m.status = 'open'), "
            f"SUM(m.status = 'open' AND m.posted_at IS NOT NULL AND {age} > {sla_sql}), "
            f"SUM({answered} AND {delay} IS NOT NULL AND {delay} <= {sla_sql}), "
            f"AVG(CASE WHEN {answered} THEN {delay} END) "
            f"FROM messages m{cond} 1 GROUP BY g",
            [now_value, *sla_params, *sla_params, *params],
        )
        quantiles = self._delay_quantiles(group_by, delay, cond, params, sla.working_days)
        out = []
        for g, letters, ans, open_, overdue, within, mean in rows:
            med, p90 = quantiles.get(g, (None, None))
            out.append(
                TimelinessRow(
                    group=str(g),
                    letters=int(letters),
                    answered=int(ans or 0),
                    open=int(open_ or 0),
                    overdue=int(overdue or 0),
                    within_sla=int(within or 0),
                    median_delay=med,
                    p90_delay=p90,
                    mean_delay=None if mean is None else float(mean),
                )
            )
        out.sort(key=lambda r: (-r.letters, r.group))
        return out

    def _delay_quantiles(
        self, group_by: str, delay: str, cond: str, params: list[Any], working: bool
    ) -> dict[str, tuple[float | None, float | None]]:
        base = f"FROM messages m{cond} m.status != 'open' AND {delay} IS NOT NULL"
        group = f"COALESCE(m.{group_by}, '(未知)')"
        out: dict[str, tuple[float | None, float | None]] = {}
        if working:
            # Whole working days: a frequency table per group is small and exact.
            freq: dict[str, list[tuple[float, int]]] = defaultdict(list)
            for g, d, n in self._read(
                f"SELECT {group} AS g, {delay} AS d, COUNT(*) {base} GROUP BY g, d ORDER BY g, d",
                params,
            ):
                freq[g].append((d, n))
            for g, pairs in freq.items():
                out[g] = (quantile_from_counts(pairs, 0.5), quantile_from_counts(pairs, 0.9))
            return out
        values: dict[str, list[float]] = defaultdict(list)
        for g, d in self._read(f"SELECT {group} AS g, {delay} AS d {base} ORDER BY g, d", params):
            values[g].append(d)
        for g, vals in values.items():
            out[g] = (quantile(vals, 0.5), quantile(vals, 0.9))
        return out

    @_snapshot
    def delay_distribution(
        self, filters: Filters | None = None, sla: Sla | None = None, now: datetime | None = None
    ) -> list[tuple[int, int, int]]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        plan = self._plan("", filters, DELAY_DIMS, "month")
        if plan is None:
            answered = self._answered_days_raw(filters, sla, now)
        else:
            where, params, edges = plan
            table = "agg_delay_wd" if sla.working_days else "agg_delay_cd"
            cond = f"{where} AND" if where else " WHERE"
            answered = self._read(
                f"SELECT d, SUM(n) FROM {table}{cond} d IS NOT NULL GROUP BY d", params
            )
            for edge in edges:
                answered += self._answered_days_raw(edge, sla, now)
        for d, n in answered:
            counts[max(0, int(d))][0] += n
        open_filters = self._open_filters(filters)
        if open_filters is not None:
            # Ages in working days follow from the posted day; calendar ages
            # need the time of day, so those are counted from the rows.
            oplan = self._plan("", open_filters, OPEN_DIMS, "day") if sla.working_days else None
            if oplan is None:
                opened = self._open_ages_raw(open_filters, sla, now, plan is not None)
            else:
                where, params, edges = oplan
                cond = f"{where} AND" if where else " WHERE"
                opened = self._read(
                    f"SELECT ? - wd AS d, SUM(n) FROM agg_open{cond} wd IS NOT NULL GROUP BY d",
                    [workday_ordinal(now), *params],
                )
                for edge in edges:
                    opened += self._open_ages_raw(edge, sla, now, True)
            for d, n in opened:
                counts[max(0, int(d))][1] += n
        return [(d, a, c) for d, (a, c) in sorted(counts.items())]

    def _open_ages_raw(
        self, filters: Filters, sla: Sla, now: datetime, indexed: bool
    ) -> list[tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        hint = " INDEXED BY ix_messages_status_posted" if indexed else ""
        return self._read(
            f"SELECT CAST({age} AS INTEGER) AS d, COUNT(*) FROM messages m{hint}{cond} "
            "m.status = 'open' AND m.posted_at IS NOT NULL GROUP BY d",
            [now_value, *params],
        )

    def _answered_days_raw(
        self, filters: Filters | None, sla: Sla, now: datetime
    ) -> list[tuple[int, int]]:
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        delay, _, _ = self._now_terms(now, sla)
        return self._read(
            f"SELECT CAST({delay} AS INTEGER) AS d, COUNT(*) FROM messages m{cond} "
            f"m.status != 'open' AND {delay} IS NOT NULL GROUP BY d",
            params,
        )

    def overdue(
        self,
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
        limit: int = 100,
    ) -> list[Message]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        where, params = self._where("", filters)
        cond = f"{where} AND" if where else " WHERE"
        _, age, now_value = self._now_terms(now, sla)
        sla_sql, sla_params = self._sla_case(sla)
        rows = self._read(
            f"SELECT {', '.join('m.' + c for c in _COLUMNS)} FROM messages m{cond} "
            f"m.status = 'open' AND m.posted_at IS NOT NULL AND {age} > {sla_sql} "
            "ORDER BY m.posted_at ASC, m.id ASC LIMIT ?",
            [*params, now_value, *sla_params, limit],
        )
        return [_row_to_message(r) for r in rows]
