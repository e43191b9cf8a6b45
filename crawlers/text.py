"""HTML fragments to plain text: what every page object and the normalise step use.

Weibo and forum bodies are HTML fragments (``<br />``, topic links, emoticon
``<img alt=[doge]>``); stored text keeps line breaks and emoticon names but
no markup, so search and the classifier see what a reader sees.
"""

from __future__ import annotations

import html
import re
import unicodedata

from parsel import Selector

_BR_RE = re.compile(r"<\s*(br|/p|/div|/li|/tr|/h\d)\b[^>]*>", re.I)
_IMG_ALT_RE = re.compile(r"<img\b[^>]*?\balt=[\"']?(\[[^\]\"'>]{1,12}\])[^>]*>", re.I)
_SCRIPT_RE = re.compile(r"<(script|style)\b.*?</\1\s*>", re.I | re.S)
_TAG_RE = re.compile(r"<[^>]*>")
_SPACES_RE = re.compile(r"[ \t\r\f\v\u00a0\u3000]+")
_BLANK_LINES_RE = re.compile(r"\n\s*\n+")
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_FULL_LINK_RE = re.compile(r"(\.\.\.|…)\s*<a [^>]*href=[\"']?/status/[^>]*>全文</a>\s*$", re.I)


def clean_whitespace(text: str) -> str:
    """Collapse runs of spaces, keep single line breaks, strip control characters."""
    text = unicodedata.normalize("NFC", text)
    text = _CONTROL_RE.sub("", text)
    text = _SPACES_RE.sub(" ", text)
    lines = [line.strip() for line in text.split("\n")]
    text = "\n".join(lines)
    return _BLANK_LINES_RE.sub("\n", text).strip()


def html_to_text(fragment: str | None) -> str:
    """Return the readable text of an HTML fragment (line breaks kept, tags dropped)."""
    if not fragment:
        return ""
    text = _SCRIPT_RE.sub("", fragment)
    text = _IMG_ALT_RE.sub(r"\1", text)
    text = _BR_RE.sub("\n", text)
    text = _TAG_RE.sub("", text)
    return clean_whitespace(html.unescape(text))


def is_truncated_weibo(fragment: str | None) -> bool:
    """True when a Weibo text ends with the ``…全文`` link of a truncated post."""
    return bool(fragment and _FULL_LINK_RE.search(fragment))


def node_text(sel: Selector | None) -> str:
    """Plain text of a parsel node (its HTML through html_to_text)."""
    if sel is None:
        return ""
    raw = sel.get()
    return html_to_text(raw) if raw else ""
