"""Any further service apprise knows (Telegram, Slack, Matrix …) by apprise URL."""

from __future__ import annotations

from alerts.notifiers.base import DeliveryError, Notifier, mask_url


class AppriseNotifier(Notifier):
    name = "apprise"

    def __init__(self, targets: list[str], timeout: float = 10.0) -> None:
        super().__init__(",".join(targets), timeout)
        import apprise

        self.targets = targets
        self._apprise = apprise.Apprise()
        for url in targets:
            if not self._apprise.add(url):
                raise ValueError(f"apprise does not understand {mask_url(url)}")

    @property
    def safe_target(self) -> str:
        return ", ".join(mask_url(u) for u in self.targets)

    def send(self, title: str, body: str) -> None:
        if not self._apprise.notify(body=body, title=title):
            raise DeliveryError(f"{self.safe_target}: apprise reported a failed delivery")
