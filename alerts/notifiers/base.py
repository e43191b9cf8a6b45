"""The notifier interface, message splitting and secret masking shared by channels."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit


class DeliveryError(RuntimeError):
    """A channel did not accept a message; the text says why (secrets masked)."""


class Notifier:
    """One channel: ``send(title, body)`` raises DeliveryError unless accepted.

    ``max_bytes`` is the channel's size limit for one message body (UTF-8);
    the engine splits longer texts.  ``safe_target`` is the target with
    secrets hidden, the only form that may reach logs.
    """

    name = "base"
    max_bytes: int | None = None

    def __init__(self, target: str, timeout: float = 10.0) -> None:
        self.target = target
        self.timeout = timeout

    @property
    def safe_target(self) -> str:
        return mask_url(self.target)

    def send(self, title: str, body: str) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.safe_target}>"


_SECRET_PARAMS = re.compile(r"(?i)^(access_token|token|key|secret|sign|password|pass|apikey)$")


def mask_url(url: str) -> str:
    """Hide passwords, tokens, keys and secrets in a URL (also long path ids)."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "***"
    netloc = parts.netloc
    if "@" in netloc:
        userinfo, host = netloc.rsplit("@", 1)
        user = userinfo.split(":", 1)[0]
        netloc = f"{user}:***@{host}" if ":" in userinfo else f"***@{host}"
    query = urlencode(
        [(k, "***" if _SECRET_PARAMS.match(k) else v) for k, v in parse_qsl(parts.query)],
        safe="*@,",
    )
    # Robot hooks carry their token in the last path segment (Feishu, Slack-like).
    path = re.sub(r"/([A-Za-z0-9_-]{16,})$", "/***", parts.path)
    return urlunsplit((parts.scheme, netloc, path, query, ""))


def split_text(text: str, max_bytes: int | None) -> list[str]:
    """Cut a text into parts of at most max_bytes UTF-8 bytes, at line ends when possible."""
    if not max_bytes or len(text.encode()) <= max_bytes:
        return [text]
    if max_bytes < 8:
        raise ValueError("max_bytes must leave room for a few characters")
    parts: list[str] = []
    current = ""
    for line in text.splitlines(keepends=True):
        while len(line.encode()) > max_bytes:  # one huge line: cut by characters
            room = max_bytes - len(current.encode())
            head = _take_bytes(line, room) if room > 0 else ""
            if not head:
                parts.append(current)
                current = ""
                continue
            parts.append(current + head)
            current = ""
            line = line[len(head) :]
        if len((current + line).encode()) > max_bytes:
            parts.append(current)
            current = line
        else:
            current += line
    if current:
        parts.append(current)
    return [p for p in parts if p]


def _take_bytes(text: str, limit: int) -> str:
    """The longest prefix of text whose UTF-8 form fits in limit bytes."""
    return text.encode()[:limit].decode("utf-8", errors="ignore")


def post_json(url: str, payload: Any, timeout: float, safe: str) -> Any:
    """POST JSON and return the decoded JSON answer (None if the body is not JSON)."""
    data = json.dumps(payload, ensure_ascii=False).encode()
    req = urllib.request.Request(
        url, data=data, method="POST", headers={"Content-Type": "application/json; charset=utf-8"}
    )
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            raw = resp.read()
    except urllib.error.HTTPError as exc:
        detail = exc.read()[:200].decode("utf-8", "replace")
        raise DeliveryError(f"{safe}: HTTP {exc.code} {detail}".strip()) from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DeliveryError(f"{safe}: {reason}") from None
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None


def pop_query_param(url: str, name: str) -> tuple[str, str]:
    """Remove one query parameter from a URL; return (url without it, its value)."""
    parts = urlsplit(url)
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    value = next((v for k, v in pairs if k == name), "")
    rest = urlencode([(k, v) for k, v in pairs if k != name])
    return urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment)), value
