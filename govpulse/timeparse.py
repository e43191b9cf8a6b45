"""One pure function that turns the time strings of Chinese sites into aware datetimes.

Sources write times as 刚刚, 5分钟前, 3小时前, 今天 10:23, 昨天 10:23, 前天,
06-14 (month-day, this year), 2024年1月2日 10:23, 2019/4/25 9:32:09, unix
seconds, Weibo's ``Tue Jun 08 09:35:04 +0800 2021`` or ISO 8601.  Relative
forms are resolved against ``now`` (passed in, so tests freeze time); naive
times are read in Asia/Shanghai.
"""

from __future__ import annotations

import re
from datetime import date, datetime, time, timedelta
from email.utils import parsedate_to_datetime

from govpulse.schema import TZ


class TimeParseError(ValueError):
    """A time string no rule understands."""


_REL_RE = re.compile(r"^(\d+)\s*(秒|分钟|小时|天|周|个月)前$")
_REL_UNITS = {
    "秒": timedelta(seconds=1),
    "分钟": timedelta(minutes=1),
    "小时": timedelta(hours=1),
    "天": timedelta(days=1),
    "周": timedelta(weeks=1),
    "个月": timedelta(days=30),
}
_DAY_WORDS = {"今天": 0, "昨天": 1, "前天": 2}
_DAY_WORD_RE = re.compile(r"^(今天|昨天|前天)\s*(\d{1,2}[:：]\d{1,2}(?:[:：]\d{1,2})?)?$")
_CLOCK_RE = re.compile(r"(\d{1,2})[:：](\d{1,2})(?:[:：](\d{1,2}))?")
_FULL_RE = re.compile(
    r"^(\d{4})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?"
    r"(?:[\sT]+(\d{1,2})[:：时](\d{1,2})(?:[:：分](\d{1,2}(?:\.\d+)?))?秒?)?\s*$"
)
_MONTH_DAY_RE = re.compile(
    r"^(\d{1,2})\s*[-/月]\s*(\d{1,2})\s*日?(?:\s+(\d{1,2})[:：](\d{1,2})(?:[:：](\d{1,2}))?)?$"
)
_WEIBO_RE = re.compile(r"^[A-Z][a-z]{2} [A-Z][a-z]{2} \d{1,2} \d{2}:\d{2}:\d{2} [+-]\d{4} \d{4}$")
_MIN_YEAR, _MAX_YEAR = 1990, 2100


def _clock(text: str) -> time:
    m = _CLOCK_RE.search(text)
    if not m:
        return time(0, 0)
    return time(int(m.group(1)), int(m.group(2)), int(m.group(3) or 0))


def _check(dt: datetime, raw: str) -> datetime:
    if not _MIN_YEAR <= dt.year <= _MAX_YEAR:
        raise TimeParseError(f"implausible year in {raw!r}")
    return dt


def parse_time(raw: str | int | float | datetime | None, now: datetime | None = None) -> datetime:
    """Parse a source time into an aware Asia/Shanghai datetime; raise TimeParseError.

    ``now`` anchors relative forms (刚刚, 昨天, 06-14); it defaults to the
    current time.  A month-day later than ``now`` is taken as last year.
    """
    if now is None:
        now = datetime.now(TZ)
    elif now.tzinfo is None:
        now = now.replace(tzinfo=TZ)
    now = now.astimezone(TZ)
    if raw is None:
        raise TimeParseError("no time given")
    if isinstance(raw, datetime):
        return _check(
            raw.replace(tzinfo=TZ) if raw.tzinfo is None else raw.astimezone(TZ), str(raw)
        )
    if isinstance(raw, int | float) and not isinstance(raw, bool):
        seconds = raw / 1000 if raw > 1e11 else raw  # milliseconds from some APIs
        try:
            return _check(datetime.fromtimestamp(seconds, TZ), str(raw))
        except (ValueError, OverflowError, OSError) as exc:  # NaN, inf, out-of-range epochs
            raise TimeParseError(f"bad timestamp {raw!r}: {exc}") from None

    text = str(raw).strip().replace("\u3000", " ")
    if not text:
        raise TimeParseError("empty time string")
    try:
        if text.isdigit() and len(text) in (10, 13):
            return parse_time(int(text), now)
        if text == "刚刚":
            return now
        m = _REL_RE.match(text)
        if m:
            return now - int(m.group(1)) * _REL_UNITS[m.group(2)]
        m = _DAY_WORD_RE.match(text)
        if m:
            day = now.date() - timedelta(days=_DAY_WORDS[m.group(1)])
            return datetime.combine(day, _clock(m.group(2) or ""), TZ)
        m = _FULL_RE.match(text)
        if m:
            y, mo, d, hh, mm, ss = m.groups()
            sec = float(ss) if ss else 0.0
            dt = datetime(int(y), int(mo), int(d), int(hh or 0), int(mm or 0), int(sec), tzinfo=TZ)
            return _check(dt, text)
        m = _MONTH_DAY_RE.match(text)
        if m:
            mo, d, hh, mm, ss = m.groups()
            candidate = datetime(
                now.year, int(mo), int(d), int(hh or 0), int(mm or 0), int(ss or 0), tzinfo=TZ
            )
            if candidate.date() > now.date():
                candidate = candidate.replace(year=now.year - 1)
            return candidate
        if _WEIBO_RE.match(text):
            return datetime.strptime(text, "%a %b %d %H:%M:%S %z %Y").astimezone(TZ)
        if "T" in text or re.match(r"^\d{4}-\d{2}-\d{2}", text):
            dt = datetime.fromisoformat(text.replace("Z", "+00:00"))
            return _check(dt.replace(tzinfo=TZ) if dt.tzinfo is None else dt.astimezone(TZ), text)
        if "," in text and re.search(r"\d{4}", text):  # RFC 2822 (HTTP headers, RSS)
            return _check(parsedate_to_datetime(text).astimezone(TZ), text)
    except (ValueError, OverflowError, OSError) as exc:
        raise TimeParseError(f"bad time {text!r}: {exc}") from None
    raise TimeParseError(f"unrecognised time {text!r}")


def parse_date(raw: str, now: datetime | None = None) -> date:
    """Parse a date-only string (or any time) and return its calendar date."""
    return parse_time(raw, now).date()
