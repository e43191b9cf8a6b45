"""What a page object reads (PageInput) and the errors it may raise."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import Any

from w3lib.encoding import html_to_unicode

from govpulse.schema import TZ
from govpulse.timeparse import TimeParseError, parse_time


class ParseError(ValueError):
    """A body the page object cannot read (malformed, truncated, wrong shape)."""


class BlockedError(ParseError):
    """The site answered with a block page instead of content.

    `kind` is one of the crawl-event kinds: ``captcha``, ``blocked``
    (系统繁忙 / rate limiting) or ``login_expired``.
    """

    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(f"{kind}: {detail}")
        self.kind = kind


_BLOCK_MARKERS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("captcha", re.compile(r"验证码|captcha|人机验证|安全验证|滑动验证", re.I)),
    ("blocked", re.compile(r"系统繁忙|访问过于频繁|请求过于频繁|访问受限|Access Denied", re.I)),
    ("login_expired", re.compile(r"请先登录|登录已过期|passport\.weibo|请登录后", re.I)),
)


@dataclass(frozen=True, slots=True)
class PageInput:
    """A fetched page: url, status, headers and raw body bytes."""

    url: str
    body: bytes
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def from_response(cls, response: Any) -> PageInput:
        """Build from a Scrapy response (kept duck-typed so pages import no Scrapy)."""
        headers = {
            k.decode("latin-1") if isinstance(k, bytes) else str(k): (
                v[0].decode("latin-1") if v and isinstance(v[0], bytes) else str(v[0]) if v else ""
            )
            for k, v in response.headers.items()
        }
        return cls(response.url, response.body, response.status, headers)

    def header(self, name: str) -> str:
        for key, value in self.headers.items():
            if key.lower() == name.lower():
                return value
        return ""


class Page:
    """Base page object: decoding, JSON loading, block detection, time parsing."""

    #: Documented for users of the page: the exception family it raises.
    Error = ParseError

    def __init__(self, page: PageInput, now: datetime | None = None) -> None:
        self.page = page
        self.now = now or datetime.now(TZ)

    @property
    def url(self) -> str:
        return self.page.url

    @cached_property
    def text(self) -> str:
        """The body decoded by the declared encoding (header, then meta tag, then sniffing)."""
        try:
            _, text = html_to_unicode(self.page.header("Content-Type") or None, self.page.body)
        except (LookupError, ValueError) as exc:
            raise ParseError(f"{self.url}: cannot decode body ({exc})") from None
        return text

    def check_blocked(self, text: str | None = None) -> None:
        """Raise BlockedError when the page is a captcha / 系统繁忙 / login page."""
        sample = (text if text is not None else self.text)[:4000]
        for kind, pattern in _BLOCK_MARKERS:
            m = pattern.search(sample)
            if m:
                raise BlockedError(kind, f"{self.url} says {m.group(0)!r}")

    def json(self) -> Any:
        """The body as JSON; ParseError names truncation and other damage."""
        body = self.page.body.strip()
        if not body:
            raise ParseError(f"{self.url}: empty body")
        try:
            return json.loads(self.text)
        except json.JSONDecodeError as exc:
            if body[:1] in (b"{", b"[") and exc.pos >= len(self.text.rstrip()) - 1:
                raise ParseError(f"{self.url}: truncated JSON ({len(body)} bytes)") from None
            self.check_blocked()
            raise ParseError(f"{self.url}: invalid JSON at char {exc.pos}: {exc.msg}") from None
        except RecursionError:
            raise ParseError(f"{self.url}: JSON nested too deeply") from None

    def time(self, raw: Any) -> datetime | None:
        """Parse a source time; None (not an error) when absent or unreadable."""
        if raw is None or raw == "" or isinstance(raw, bool):
            return None
        try:
            return parse_time(raw, now=self.now)
        except (TimeParseError, OverflowError, OSError, ValueError):
            return None


def as_dict(value: Any, where: str) -> dict[str, Any]:
    """Return value if it is a JSON object, else raise ParseError naming where."""
    if not isinstance(value, dict):
        raise ParseError(f"{where}: expected an object, got {type(value).__name__}")
    return value


def as_list(value: Any, where: str) -> list[Any]:
    """Return value if it is a JSON array (None/false: empty), else raise ParseError."""
    if value is None or value is False:
        return []
    if not isinstance(value, list):
        raise ParseError(f"{where}: expected a list, got {type(value).__name__}")
    return value


def to_int(value: Any) -> int:
    """Counts as sources write them: 12, "12", "1.5万", "10万+", None -> int."""
    if isinstance(value, bool) or value is None:
        return 0
    if isinstance(value, int):
        return max(value, 0)
    if isinstance(value, float):
        return max(int(value), 0) if value == value and abs(value) < 1e15 else 0
    text = str(value).strip().rstrip("+").replace(",", "")
    factor = 1
    if text.endswith("万"):
        factor, text = 10_000, text[:-1]
    elif text.endswith("亿"):
        factor, text = 100_000_000, text[:-1]
    try:
        number = float(text)
    except ValueError:
        return 0
    if number != number or abs(number) > 1e15:
        return 0
    return max(int(number * factor), 0)
