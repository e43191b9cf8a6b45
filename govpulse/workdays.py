"""Chinese working-day arithmetic for reply deadlines.

Government reply deadlines (e.g. 15 working days) skip public holidays and
count the make-up working days (调休) that fall on weekends.  The
``chinese-calendar`` package knows the official schedule per year; outside
its range we fall back to Monday-Friday.

Each date maps to a *working-day ordinal*: the number of working days
before it since 2000-01-01.  The working-day delay between two times is the
difference of their ordinals, which both store backends keep as plain
integer columns so aggregates need no per-row calendar lookups.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from functools import cache

import chinese_calendar

EPOCH = date(2000, 1, 1)
_END = date(2040, 12, 31)


def is_workday(day: date) -> bool:
    """True if `day` is an official working day in mainland China."""
    try:
        return bool(chinese_calendar.is_workday(day))
    except NotImplementedError:  # year outside the package's schedule
        return day.weekday() < 5


@cache
def _ordinals() -> list[int]:
    """Cumulative working days per day since EPOCH.

    Built from the package's own holiday and make-up-day tables: its
    ``is_workday`` re-validates the year range with min/max over every
    holiday on each call (~60 us), which made this table cost ~1 s per process.
    """
    holidays, makeup = set(chinese_calendar.holidays), set(chinese_calendar.workdays)
    first, last = min(holidays).year, max(holidays).year
    out = [0]
    day = EPOCH
    count = 0
    while day <= _END:
        if first <= day.year <= last:
            count += day in makeup or (day.weekday() < 5 and day not in holidays)
        else:
            count += day.weekday() < 5
        out.append(count)
        day += timedelta(days=1)
    return out


def workday_ordinal(value: date | datetime) -> int:
    """Working days between 2000-01-01 and the start of `value`'s date."""
    day = value.date() if isinstance(value, datetime) else value
    index = (day - EPOCH).days
    table = _ordinals()
    if index < 0:
        return 0
    if index >= len(table) - 1:
        # Past the table: extend by weekdays.
        extra = sum(
            1
            for i in range(index - (len(table) - 1))
            if (_END + timedelta(days=i + 1)).weekday() < 5
        )
        return table[-1] + extra
    return table[index]


def working_days_between(start: date | datetime, end: date | datetime) -> int:
    """Working days from `start`'s date to `end`'s date (0 when answered the same day)."""
    return workday_ordinal(end) - workday_ordinal(start)


def add_working_days(start: date, days: int) -> date:
    """The date `days` working days after `start` (the deadline date)."""
    day = start
    remaining = days
    while remaining > 0:
        day += timedelta(days=1)
        remaining -= is_workday(day)
    return day
