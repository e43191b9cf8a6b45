"""Summary tables of the embedded store: counts kept in the same transaction as the rows.

Why: at a million messages every all-time aggregate (facets, timeliness,
histograms) scanned every row, 0.7-4 s.  The dimensions those aggregates
group and filter by have few distinct values, so a table of counts per
combination is a few tens of thousands of rows and reads in milliseconds.

Tables (schema migration 4, store/sqlite_schema.py):

* ``agg_month``: messages per (posted month, source, department, topic,
  region, urgency, status): facets, counts, month histograms.
* ``agg_day``: messages per (posted day, source, topic, status): day and
  week histograms.
* ``agg_delay_wd``: answered/closed letters per (month, source, department,
  status, reply delay in working days): timeliness and delay distribution.
* ``agg_open``: open letters per (posted day, its working-day ordinal,
  source, department): open and overdue counts, ages in working days.
* ``agg_delay_cd``: the same per whole calendar days of delay
  (floor(delay_s / 86400)), with ``exact`` (delay a whole number of days)
  and the sum of delays in seconds; exact values inside one day are read
  back from the partial index ``ix_messages_delay`` when a quantile needs them.

Every row carries ``k``, the Python repr of its dimension tuple, as primary key, so one
``INSERT .. ON CONFLICT(k)`` adds a delta even where a dimension is NULL.
Answers stay exact: time ranges are split into whole months (or days)
served here and partial edges served by the raw-row queries.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable, Sequence
from datetime import date
from functools import lru_cache
from typing import Any

from store.common import UTC_OFFSET_S

_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()

#: Dimensions per table, in key order (after the time key).
MONTH_DIMS = ("source", "department", "topic", "region", "urgency", "status")
DAY_DIMS = ("source", "topic", "status")
DELAY_DIMS = ("source", "department", "status")
OPEN_DIMS = ("source", "department")
TABLES = ("agg_month", "agg_day", "agg_delay_wd", "agg_delay_cd", "agg_open")

#: Columns per table: k, the key (time key + dimensions), n, and agg_delay_cd's sum_s.
WIDTHS = {"agg_month": 9, "agg_day": 6, "agg_delay_wd": 7, "agg_delay_cd": 9, "agg_open": 6}
#: How a delta row is added to a stored summary row.
UPSERT = {
    t: "ON CONFLICT(k) DO UPDATE SET n = n + excluded.n"
    + (", sum_s = sum_s + excluded.sum_s" if t == "agg_delay_cd" else "")
    for t in TABLES
}

#: Row columns (store.sqlite._WRITE_COLUMNS order) a contribution is computed from.
CONTRIB_COLUMNS = (
    "posted_at", "replied_at", "posted_wd", "replied_wd",
    "source", "department", "topic", "region", "urgency", "status",
)  # fmt: skip


@lru_cache(maxsize=8192)
def month_of_day(day: int) -> int:
    """Local epoch seconds of the first day of the month containing local day number `day`."""
    d = date.fromordinal(day + _EPOCH_ORDINAL)
    return (d.replace(day=1).toordinal() - _EPOCH_ORDINAL) * 86400


def local_day(epoch: int) -> int:
    """Asia/Shanghai day number (days since 1970-01-01 local) of a UTC epoch second."""
    return (epoch + UTC_OFFSET_S) // 86400


def next_month(month: int) -> int:
    """Local epoch of the month after the one starting at local epoch `month`."""
    return month_of_day(month // 86400 + 31)


class Deltas:
    """Count changes per summary row, collected over a batch and applied once."""

    def __init__(self) -> None:
        #: Change of the message count per dimension key, per table.
        self.counts: dict[str, dict[tuple[Any, ...], int]] = {t: {} for t in TABLES}
        #: Change of the summed delay seconds per agg_delay_cd key.
        self.delay_sums: dict[tuple[Any, ...], int] = {}
        self.negative = False

    def add(self, values: Sequence[Any], sign: int = 1, n: int = 1) -> None:
        """Add one row's contributions (values in CONTRIB_COLUMNS order) `sign * n` times."""
        self.add_rows((values,), sign * n)

    def add_rows(self, rows: Iterable[Sequence[Any]], step: int = 1) -> None:
        """Add every row's contributions `step` times; values in CONTRIB_COLUMNS order.

        The one definition of which summary rows a message counts in.  One
        loop over a whole batch with the tables bound to locals: it runs for
        every imported message, and a call per row and per table cost a
        tenth of the import.
        """
        month_n, day_n, wd_n, cd_n, open_n = (self.counts[t] for t in TABLES)
        sums = self.delay_sums
        month_of = month_of_day
        for posted, replied, posted_wd, replied_wd, source, dept, topic, region, urgency, status in rows:  # fmt: skip
            if posted is None:
                month = day = None
            else:
                day = (posted + UTC_OFFSET_S) // 86400  # local_day(posted)
                month = month_of(day)
            key: tuple[Any, ...] = (month, source, dept, topic, region, urgency, status)
            month_n[key] = month_n.get(key, 0) + step
            key = (day, source, topic, status)
            day_n[key] = day_n.get(key, 0) + step
            if status == "open":
                key = (day, posted_wd, source, dept)
                open_n[key] = open_n.get(key, 0) + step
                continue
            wd = None if posted_wd is None or replied_wd is None else replied_wd - posted_wd
            key = (month, source, dept, status, wd)
            wd_n[key] = wd_n.get(key, 0) + step
            if posted is None or replied is None:
                key = (month, source, dept, status, None, 0)
            else:
                delay = replied - posted
                key = (month, source, dept, status, delay // 86400, int(delay % 86400 == 0))
                sums[key] = sums.get(key, 0) + delay * step
            cd_n[key] = cd_n.get(key, 0) + step
        if step < 0:
            self.negative = True

    def add_sum(self, table: str, key: tuple[Any, ...], n: int, delay_sum: int) -> None:
        """Add a pre-aggregated delta (a GROUP BY row of many messages)."""
        counts = self.counts[table]
        counts[key] = counts.get(key, 0) + n
        if table == "agg_delay_cd":
            self.delay_sums[key] = self.delay_sums.get(key, 0) + delay_sum
        if n < 0:
            self.negative = True

    def table_rows(self, table: str) -> list[tuple[Any, ...]]:
        """The changed rows of `table` as stored (k, key..., n[, sum_s]); clears them."""
        counts = self.counts[table]
        # k: str/int/None only, so repr is exact and cheap.
        if table == "agg_delay_cd":
            sums = self.delay_sums
            rows = [
                (repr(key), *key, n, sums.get(key, 0))
                for key, n in counts.items()
                if n or sums.get(key, 0)
            ]
            sums.clear()
        else:
            rows = [(repr(key), *key, n) for key, n in counts.items() if n]
        counts.clear()
        return rows

    def apply(self, conn: sqlite3.Connection) -> None:
        for table in TABLES:
            rows = self.table_rows(table)
            if not rows:
                continue
            conn.executemany(
                f"INSERT INTO {table} VALUES ({', '.join('?' * len(rows[0]))}) {UPSERT[table]}",
                rows,
            )
            if self.negative:
                # Rows whose messages all left (updated away, deleted) go; by key, not a scan.
                conn.executemany(
                    f"DELETE FROM {table} WHERE k = ? AND n <= 0",
                    [(row[0],) for row in rows if row[-2 if table == "agg_delay_cd" else -1] < 0],
                )
        self.negative = False


def rebuild_from_rows(
    conn: sqlite3.Connection,
    where: str = "",
    params: Sequence[Any] = (),
    sign: int = 1,
    tables: Sequence[str] = TABLES,
) -> None:
    """Add (sign=1) or subtract (sign=-1) the contributions of the rows matching `where`.

    Aggregated in SQL, one GROUP BY per table, so a migration over a million
    rows or a retention delete moves only as many deltas as summary rows.
    `where` is a full clause ("WHERE posted_at < ?") or "".
    """
    deltas = Deltas()
    month = (
        f"CAST(strftime('%s', strftime('%Y-%m-01', posted_at + {UTC_OFFSET_S}, 'unixepoch'))"
        " AS INTEGER)"
    )
    day = f"(posted_at + {UTC_OFFSET_S}) / 86400"
    answered = f"{where} AND status != 'open'" if where else "WHERE status != 'open'"
    opened = f"{where} AND status = 'open'" if where else "WHERE status = 'open'"
    delay = "(replied_at - posted_at)"
    rem = f"(({delay} % 86400 + 86400) % 86400)"
    queries = {
        "agg_month": (f"{month}, {', '.join(MONTH_DIMS)}", where, "0"),
        "agg_day": (f"{day}, {', '.join(DAY_DIMS)}", where, "0"),
        "agg_delay_wd": (
            f"{month}, {', '.join(DELAY_DIMS)}, replied_wd - posted_wd",
            answered,
            "0",
        ),
        "agg_delay_cd": (
            f"{month}, {', '.join(DELAY_DIMS)}, ({delay} - {rem}) / 86400, "
            f"CASE WHEN {delay} IS NULL THEN 0 ELSE {rem} = 0 END",
            answered,
            f"COALESCE(SUM({delay}), 0)",
        ),
    }
    queries["agg_open"] = (f"{day}, posted_wd, source, department", opened, "0")
    for table, (keys, clause, total) in queries.items():
        if table not in tables:
            continue
        sql = f"SELECT {keys}, COUNT(*), {total} FROM messages {clause} GROUP BY {keys}"
        for row in conn.execute(sql, list(params)):
            key = tuple(row[:-2])
            deltas.add_sum(table, key, sign * row[-2], sign * row[-1])
    deltas.apply(conn)


def split_range(
    since: int | None, until: int | None, unit: str
) -> tuple[tuple[int | None, int | None] | None, list[tuple[int | None, int | None]]]:
    """Split [since, until) into the whole months/days a summary serves and the raw edges.

    Returns ((lo, hi) in UTC epoch seconds, None meaning unbounded) or None
    when no whole unit fits, and the list of raw edge ranges.
    """

    def floor_unit(epoch: int) -> int:  # local unit start containing epoch, as UTC epoch
        day = local_day(epoch)
        start = day * 86400 if unit == "day" else month_of_day(day)
        return start - UTC_OFFSET_S

    def ceil_unit(epoch: int) -> int:
        start = floor_unit(epoch)
        if start == epoch:
            return start
        local = start + UTC_OFFSET_S
        return (local + 86400 if unit == "day" else next_month(local)) - UTC_OFFSET_S

    lo = None if since is None else ceil_unit(since)
    hi = None if until is None else floor_unit(until)
    if lo is not None and hi is not None and lo >= hi:
        return None, [(since, until)]
    edges: list[tuple[int | None, int | None]] = []
    if since is not None and lo is not None and since < lo:
        edges.append((since, lo))
    if until is not None and hi is not None and hi < until:
        edges.append((hi, until))
    return (lo, hi), edges
