"""Filters in the URL: one query string format shared by every page and export.

``?q=噪音&source=weibo,mailbox&since=2024-01-01&until=2024-02-01&page=2``
A view is shared by copying its address; the export link reuses the same
string, so the file holds exactly what the screen shows.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from urllib.parse import parse_qsl, urlencode

from govpulse.schema import TZ
from store.base import FILTER_FIELDS, SORT_FIELDS, Filters

#: Filter fields shown as multi-selects (channel is reachable by URL only).
LIST_KEYS = FILTER_FIELDS
SCALAR_KEYS = ("q", "since", "until", "sort", "page", "group", "days", "id", "window")


class UrlStateError(ValueError):
    """A query-string value that cannot be used (bad date, bad sort key)."""


@dataclass(frozen=True, slots=True)
class ViewState:
    """What a page shows, as read from (and written back to) its URL."""

    q: str = ""
    lists: dict[str, tuple[str, ...]] = field(default_factory=dict)
    since: date | None = None
    until: date | None = None  # inclusive in the UI; exclusive bound is the next day
    sort: str = ""
    page: int = 1
    extra: dict[str, str] = field(default_factory=dict)

    def filters(self, **overrides: object) -> Filters:
        """The store filter for this view."""
        kwargs: dict[str, object] = {k: v for k, v in self.lists.items() if v}
        if self.since:
            kwargs["since"] = datetime.combine(self.since, time(), TZ)
        if self.until:
            kwargs["until"] = datetime.combine(self.until + timedelta(days=1), time(), TZ)
        kwargs.update(overrides)
        return Filters.make(**kwargs)

    def get(self, key: str, default: str = "") -> str:
        return self.extra.get(key, default)

    def with_(self, **changes: object) -> ViewState:
        return replace(self, **changes)  # type: ignore[arg-type]

    def to_query(self) -> str:
        """The query string (with leading ``?``, or empty)."""
        pairs: list[tuple[str, str]] = []
        if self.q:
            pairs.append(("q", self.q))
        for key in LIST_KEYS:
            values = self.lists.get(key)
            if values:
                pairs.append((key, ",".join(values)))
        if self.since:
            pairs.append(("since", self.since.isoformat()))
        if self.until:
            pairs.append(("until", self.until.isoformat()))
        if self.sort:
            pairs.append(("sort", self.sort))
        if self.page > 1:
            pairs.append(("page", str(self.page)))
        for key, value in sorted(self.extra.items()):
            if value:
                pairs.append((key, value))
        return "?" + urlencode(pairs) if pairs else ""


def _parse_date(key: str, raw: str) -> date | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        return date.fromisoformat(raw[:10])
    except ValueError:
        raise UrlStateError(f"{key}: {raw!r} is not a date (YYYY-MM-DD)") from None


def parse(search: str | None) -> ViewState:
    """Read a query string; unknown keys are ignored, bad values raise UrlStateError."""
    lists: dict[str, tuple[str, ...]] = {}
    extra: dict[str, str] = {}
    q = sort = ""
    since = until = None
    page = 1
    for key, value in parse_qsl((search or "").lstrip("?"), keep_blank_values=False):
        if key in LIST_KEYS:
            parts = tuple(p.strip() for p in value.split(",") if p.strip())
            lists[key] = tuple(dict.fromkeys(lists.get(key, ()) + parts))
        elif key == "q":
            q = value.strip()[:200]
        elif key == "since":
            since = _parse_date(key, value)
        elif key == "until":
            until = _parse_date(key, value)
        elif key == "sort":
            if value.lstrip("-") not in SORT_FIELDS:
                raise UrlStateError(f"sort: {value!r} is not one of {', '.join(SORT_FIELDS)}")
            sort = value
        elif key == "page":
            try:
                page = max(1, min(int(value), 10_000))
            except ValueError:
                raise UrlStateError(f"page: {value!r} is not a number") from None
        elif key in SCALAR_KEYS:
            extra[key] = value.strip()[:200]
    if since and until and until < since:
        raise UrlStateError("until is before since")
    return ViewState(q=q, lists=lists, since=since, until=until, sort=sort, page=page, extra=extra)


def from_controls(
    q: str | None = None,
    since: str | None = None,
    until: str | None = None,
    sort: str | None = None,
    extra: dict[str, str] | None = None,
    **lists: list[str] | str | None,
) -> ViewState:
    """Build a view from filter-bar control values (dropdowns give lists)."""
    clean: dict[str, tuple[str, ...]] = {}
    for key, value in lists.items():
        if key not in LIST_KEYS or not value:
            continue
        clean[key] = (value,) if isinstance(value, str) else tuple(str(v) for v in value)
    return ViewState(
        q=(q or "").strip()[:200],
        lists=clean,
        since=_parse_date("since", since or ""),
        until=_parse_date("until", until or ""),
        sort=sort or "",
        extra={k: v for k, v in (extra or {}).items() if v},
    )
