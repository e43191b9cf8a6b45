"""WeCom (企业微信) group robot: markdown messages, errcode 0 means accepted."""

from __future__ import annotations

from alerts.notifiers.base import DeliveryError, Notifier, post_json


class WeComNotifier(Notifier):
    name = "wecom"
    # markdown.content is limited to 4096 bytes; leave room for the title line.
    max_bytes = 3800

    def send(self, title: str, body: str) -> None:
        payload = {"msgtype": "markdown", "markdown": {"content": f"**{title}**\n{body}"}}
        answer = post_json(self.target, payload, self.timeout, self.safe_target)
        if not isinstance(answer, dict) or answer.get("errcode") != 0:
            raise DeliveryError(f"{self.safe_target}: robot refused: {answer!r}"[:300])
