"""Generic JSON webhook: any 2xx answer counts as delivered."""

from __future__ import annotations

from alerts.notifiers.base import Notifier, post_json


class WebhookNotifier(Notifier):
    name = "webhook"

    def send(self, title: str, body: str) -> None:
        post_json(
            self.target,
            {"source": "govpulse", "title": title, "text": body},
            self.timeout,
            self.safe_target,
        )
