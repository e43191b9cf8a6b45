"""DingTalk (钉钉) group robot, with the optional 加签 signature.

Signing (DingTalk docs, "自定义机器人安全设置"): string_to_sign =
timestamp_ms + "\\n" + secret, HMAC-SHA256 keyed with the secret, base64,
then URL-encoded into the ``sign`` query parameter next to ``timestamp``.
apprise has a DingTalk plugin, but it hard-codes oapi.dingtalk.com and
reports only True/False, so the robot could not be tested locally nor its
errcode logged; this thin notifier does both.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from urllib.parse import quote_plus

from alerts.notifiers.base import DeliveryError, Notifier, pop_query_param, post_json


def dingtalk_sign(timestamp_ms: int, secret: str) -> str:
    """The URL-encoded ``sign`` value for a timestamp (milliseconds) and secret."""
    string_to_sign = f"{timestamp_ms}\n{secret}".encode()
    digest = hmac.new(secret.encode(), string_to_sign, hashlib.sha256).digest()
    return quote_plus(base64.b64encode(digest))


class DingTalkNotifier(Notifier):
    name = "dingtalk"
    # The markdown text limit is 20,000 bytes; keep room for the title line.
    max_bytes = 18000

    def send(self, title: str, body: str) -> None:
        url, secret = pop_query_param(self.target, "secret")
        if secret:
            ts = int(time.time() * 1000)
            url += ("&" if "?" in url else "?") + f"timestamp={ts}&sign={dingtalk_sign(ts, secret)}"
        payload = {
            "msgtype": "markdown",
            "markdown": {"title": title, "text": f"### {title}\n\n{_md(body)}"},
        }
        answer = post_json(url, payload, self.timeout, self.safe_target)
        if not isinstance(answer, dict) or answer.get("errcode") != 0:
            raise DeliveryError(f"{self.safe_target}: robot refused: {answer!r}"[:300])


def _md(text: str) -> str:
    """Markdown line breaks: DingTalk joins single newlines."""
    return text.replace("\n", "  \n")
