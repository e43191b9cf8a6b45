"""Mayor-mailbox HTML pages read through a site definition (crawlers/sites/*.toml)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from typing import Any
from urllib.parse import urljoin

from parsel import Selector
from parsel.selector import SelectorList

from crawlers.pages.base import Page, PageInput, ParseError
from crawlers.sites import SiteDefinition
from crawlers.text import clean_whitespace, html_to_text
from govpulse.schema import TZ


def select(node: Selector, query: str) -> SelectorList:
    """Run a site-file selector: ``xpath:...`` is XPath, anything else CSS."""
    try:
        if query.startswith("xpath:"):
            return node.xpath(query[6:])
        return node.css(query)
    except ValueError as exc:  # parsel raises ValueError subclasses on bad expressions
        raise ParseError(f"bad selector {query!r}: {exc}") from None


def select_text(node: Selector, query: str) -> str:
    """Text of every node a selector matches, markup removed, joined by line breaks."""
    parts = []
    for sel in select(node, query):
        raw = sel.get()
        parts.append(html_to_text(raw) if raw and "<" in raw else clean_whitespace(raw or ""))
    return "\n".join(p for p in parts if p)


class SitePage(Page):
    """Base of both mailbox page shapes: decode by the site's declared encoding."""

    def __init__(self, page: PageInput, site: SiteDefinition, now: datetime | None = None) -> None:
        super().__init__(page, now)
        self.site = site

    @cached_property
    def text(self) -> str:
        if self.site.encoding and not self.page.header("Content-Type").lower().count("charset"):
            try:
                return self.page.body.decode(self.site.encoding, errors="replace")
            except LookupError:
                raise ParseError(
                    f"{self.site.source_file}: unknown encoding {self.site.encoding!r}"
                ) from None
        return super().text

    @cached_property
    def selector(self) -> Selector:
        text = self.text
        if not text.strip():
            raise ParseError(f"{self.url}: empty page")
        self.check_blocked(text)
        try:
            return Selector(text=text, type="html")
        except (ValueError, TypeError) as exc:
            raise ParseError(f"{self.url}: unparsable HTML ({exc})") from None

    def site_time(self, raw: str) -> datetime | None:
        raw = clean_whitespace(raw or "")
        for fmt in self.site.date_formats:
            try:
                return datetime.strptime(raw, fmt).replace(tzinfo=TZ)
            except ValueError:
                continue
        return self.time(raw)


@dataclass(slots=True)
class MailboxList:
    """One list page: letter stubs (with detail URLs) and the next page URL, if any."""

    letters: list[dict[str, Any]]
    next_url: str | None
    total: int | None


class MailboxListPage(SitePage):
    """A list page of letters."""

    def parse(self, page_number: int, base_url: str) -> MailboxList:
        sel = self.selector
        letters = []
        for row in select(sel, self.site.rows):
            link = select(row, self.site.link).get()
            if not link:
                continue
            link = link.strip()
            sid = self.site.source_id(link)
            if not sid:
                continue
            item: dict[str, Any] = {
                "source": "mailbox",
                "source_id": sid,
                "channel": self.site.channel,
                "region": self.site.region,
                "url": urljoin(self.url, link),
                "extra": {"site": self.site.name},
            }
            for key, query in self.site.list_fields.items():
                value = select_text(row, query)
                if key == "posted_at":
                    item["posted_at"] = self.site_time(value)
                elif key in ("category", "state"):
                    item["extra"][key] = value or None
                else:
                    item[key] = value
            letters.append(item)
        total = None
        if self.site.total_regex:
            m = re.search(self.site.total_regex, self.text)
            total = int(m.group(1)) if m else None
        next_url = None
        if self.site.next_page:
            href = select(sel, self.site.next_page).get()
            next_url = urljoin(self.url, href.strip()) if href and href.strip() else None
        elif letters:
            more = total is None or page_number * (self.site.per_page or len(letters)) < total
            if more:
                next_url = self.site.page_url(base_url, page_number + 1)
        return MailboxList(letters, next_url, total)


class MailboxDetailPage(SitePage):
    """A letter's detail page: title, letter, times, office and reply."""

    def parse(self, source_id: str) -> dict[str, Any]:
        sel = self.selector
        values = {key: select_text(sel, query) for key, query in self.site.detail.items()}
        if not values.get("title") and not values.get("body"):
            raise ParseError(
                f"{self.url}: no title or body where {self.site.source_file} expects them"
            )
        state = values.pop("state", "") or ""
        category = values.pop("category", "") or ""
        item: dict[str, Any] = {
            "source": "mailbox",
            "source_id": source_id,
            "channel": self.site.channel,
            "region": self.site.region,
            "url": self.url,
            "title": values.get("title", ""),
            "body": values.get("body", ""),
            "author": values.get("author") or None,
            "department": values.get("department") or None,
            "posted_at": self.site_time(values.get("posted_at", "")),
            "extra": {"site": self.site.name, "state": state or None, "category": category or None},
        }
        reply = values.get("reply_body", "")
        if reply:
            item["reply_body"] = reply
            item["replied_at"] = self.site_time(values.get("replied_at", ""))
            item["replier"] = values.get("replier") or None
            item["status"] = "answered"
        elif state and any(s in state for s in self.site.answered_states):
            item["status"] = "closed"
        else:
            item["status"] = "open"
        return item
