"""Feishu (飞书) custom robot, with the optional 签名校验.

Feishu's scheme differs from DingTalk's: string_to_sign = timestamp_s +
"\\n" + secret is the HMAC-SHA256 *key*, the message is empty, the base64
digest goes in the JSON body as ``sign`` beside ``timestamp`` (seconds).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time

from alerts.notifiers.base import DeliveryError, Notifier, pop_query_param, post_json


def feishu_sign(timestamp_s: int, secret: str) -> str:
    """The ``sign`` value for a timestamp (seconds) and secret."""
    key = f"{timestamp_s}\n{secret}".encode()
    return base64.b64encode(hmac.new(key, b"", hashlib.sha256).digest()).decode()


class FeishuNotifier(Notifier):
    name = "feishu"
    # A request body may be 20 KB at most.
    max_bytes = 18000

    def send(self, title: str, body: str) -> None:
        url, secret = pop_query_param(self.target, "secret")
        payload: dict = {"msg_type": "text", "content": {"text": f"{title}\n{body}"}}
        if secret:
            ts = int(time.time())
            payload = {"timestamp": str(ts), "sign": feishu_sign(ts, secret), **payload}
        answer = post_json(url, payload, self.timeout, self.safe_target)
        code = answer.get("code", answer.get("StatusCode")) if isinstance(answer, dict) else None
        if code != 0:
            raise DeliveryError(f"{self.safe_target}: robot refused: {answer!r}"[:300])
