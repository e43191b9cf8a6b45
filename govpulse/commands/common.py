"""Options shared by the query commands (search, stats, export)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import click

from govpulse.schema import TZ
from govpulse.timeparse import TimeParseError, parse_time
from store.base import Filters

_FILTER_OPTIONS = [
    ("source", "Source: weibo, mailbox or forum."),
    ("channel", "Account, board or mailbox name."),
    ("department", "Department addressed or answering."),
    ("region", "Region."),
    ("topic", "Topic (e.g. 城乡建设)."),
    ("urgency", "Urgency: 特急, 紧急, 一般, 低."),
    ("status", "Status: open, answered, closed."),
]


def _parse_day(value: str | None, end: bool) -> datetime | None:
    if not value:
        return None
    try:
        dt = parse_time(value)
    except TimeParseError as exc:
        raise click.BadParameter(str(exc)) from None
    if end and dt.hour == dt.minute == dt.second == 0:
        dt += timedelta(days=1)  # --until 2024-01-31 includes that whole day
    return dt


def filter_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """Add --source/--department/... and --since/--until; pass `filters` instead."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        values = {name: kwargs.pop(name) for name, _ in _FILTER_OPTIONS}
        since = _parse_day(kwargs.pop("since"), end=False)
        until = _parse_day(kwargs.pop("until"), end=True)
        kwargs["filters"] = Filters.make(**values, since=since, until=until)
        return func(*args, **kwargs)

    for name, help_text in reversed(_FILTER_OPTIONS):
        wrapper = click.option(f"--{name}", multiple=True, help=help_text + " Repeatable.")(wrapper)
    wrapper = click.option("--since", metavar="DATE", help="Posted on or after DATE.")(wrapper)
    wrapper = click.option("--until", metavar="DATE", help="Posted on or before DATE.")(wrapper)
    return wrapper


def now() -> datetime:
    return datetime.now(TZ)
