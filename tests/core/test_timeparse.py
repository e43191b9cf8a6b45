"""The one time parser, tested with a table and frozen 'now'."""

from datetime import datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from govpulse.schema import TZ
from govpulse.timeparse import TimeParseError, parse_time

NOW = datetime(2024, 3, 15, 14, 30, 0, tzinfo=TZ)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("刚刚", NOW),
        ("5分钟前", datetime(2024, 3, 15, 14, 25, tzinfo=TZ)),
        ("3小时前", datetime(2024, 3, 15, 11, 30, tzinfo=TZ)),
        ("2天前", datetime(2024, 3, 13, 14, 30, tzinfo=TZ)),
        ("今天 10:23", datetime(2024, 3, 15, 10, 23, tzinfo=TZ)),
        ("昨天 23:05", datetime(2024, 3, 14, 23, 5, tzinfo=TZ)),
        ("前天 08:00", datetime(2024, 3, 13, 8, 0, tzinfo=TZ)),
        ("03-14", datetime(2024, 3, 14, tzinfo=TZ)),
        ("12-31", datetime(2023, 12, 31, tzinfo=TZ)),  # later than now: last year
        ("06-14 09:10", datetime(2023, 6, 14, 9, 10, tzinfo=TZ)),
        ("2024年1月2日", datetime(2024, 1, 2, tzinfo=TZ)),
        ("2024年1月2日 10:23", datetime(2024, 1, 2, 10, 23, tzinfo=TZ)),
        ("2019/4/25 9:32:09", datetime(2019, 4, 25, 9, 32, 9, tzinfo=TZ)),
        ("2022-5-19 00:35", datetime(2022, 5, 19, 0, 35, tzinfo=TZ)),
        ("2023-01-16 19:26", datetime(2023, 1, 16, 19, 26, tzinfo=TZ)),
        ("2022-04-11", datetime(2022, 4, 11, tzinfo=TZ)),
        ("Tue Jun 08 09:35:04 +0800 2021", datetime(2021, 6, 8, 9, 35, 4, tzinfo=TZ)),
        ("2021-06-08T01:35:04Z", datetime(2021, 6, 8, 9, 35, 4, tzinfo=TZ)),
        ("1623116104", datetime(2021, 6, 8, 9, 35, 4, tzinfo=TZ)),
        (1623116104000, datetime(2021, 6, 8, 9, 35, 4, tzinfo=TZ)),
    ],
)
def test_table(raw, expected):
    got = parse_time(raw, now=NOW)
    assert got == expected
    assert got.utcoffset().total_seconds() == 8 * 3600


@pytest.mark.parametrize(
    "raw", ["", "   ", "明天见", "2024-13-45", "0001-01-01", "3000年1月1日", None]
)
def test_bad_times_raise_clear_error(raw):
    with pytest.raises(TimeParseError):
        parse_time(raw, now=NOW)


@given(st.text(max_size=40))
def test_never_crashes_on_garbage(raw):
    try:
        got = parse_time(raw, now=NOW)
    except TimeParseError:
        return
    assert got.tzinfo is not None
