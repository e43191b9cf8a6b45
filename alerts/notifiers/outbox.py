"""Local outbox: alerts appended to a JSON-lines file in the data dir.

Used by the demo and the dashboard when no real channel is configured, so
alerts are never lost for want of a chat robot.
"""

from __future__ import annotations

import fcntl
import json
from datetime import datetime
from pathlib import Path

from alerts.notifiers.base import DeliveryError, Notifier
from govpulse.schema import TZ


class OutboxNotifier(Notifier):
    name = "outbox"

    def __init__(self, target: str, timeout: float = 10.0) -> None:
        super().__init__(target, timeout)
        self.path = Path(target)

    @property
    def safe_target(self) -> str:
        return str(self.path)

    def send(self, title: str, body: str) -> None:
        line = json.dumps(
            {"at": datetime.now(TZ).isoformat(timespec="seconds"), "title": title, "body": body},
            ensure_ascii=False,
        )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("a", encoding="utf-8") as fh:
                fcntl.flock(fh, fcntl.LOCK_EX)  # the dashboard may read while we write
                fh.write(line + "\n")
        except OSError as exc:
            raise DeliveryError(f"{self.path}: {exc}") from None


def read_outbox(path: str | Path, limit: int = 200) -> list[dict]:
    """Latest outbox entries, newest first (malformed lines skipped)."""
    path = Path(path)
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines()[-limit:]:
        try:
            out.append(json.loads(line))
        except ValueError:
            continue
    return out[::-1]
