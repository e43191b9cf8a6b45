"""The alert value that rules produce and the engine groups, de-duplicates and sends."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field

from govpulse.schema import URGENCY_RANK, Urgency

#: Chinese names of the rules, for message titles.
RULE_NAMES = {
    "hot_topic": "热点话题",
    "urgent": "紧急留言",
    "overdue": "超期未办",
    "rumour": "疑似谣言",
    "crawl_health": "采集异常",
    "digest": "日报",
    "test": "测试消息",
}


@dataclass(slots=True)
class Alert:
    """One condition a rule sees now.

    ``labels`` identify the alert (its fingerprint) and are what silences
    and inhibition rules match; ``rule`` is always among them.  A change of
    ``update_key`` (e.g. a hot topic doubling) is news worth a message even
    though the fingerprint stays the same.
    """

    rule: str
    severity: str
    title: str
    body: str
    labels: dict[str, str] = field(default_factory=dict)
    url: str = ""
    update_key: str = ""
    #: Repeat interval override in seconds (e.g. overdue: once a day).
    repeat_s: int | None = None

    def __post_init__(self) -> None:
        self.severity = Urgency(self.severity).value
        self.labels = {str(k): str(v) for k, v in self.labels.items()}
        self.labels["rule"] = self.rule

    @property
    def fingerprint(self) -> str:
        """Stable hash of the labels: the same condition always has the same fingerprint."""
        data = json.dumps(sorted(self.labels.items()), ensure_ascii=False)
        return hashlib.blake2b(data.encode(), digest_size=8).hexdigest()

    def match_labels(self) -> dict[str, str]:
        """Labels plus severity: what silence matchers are compared with."""
        return {**self.labels, "severity": self.severity}


def severity_rank(severity: str) -> int:
    """0 for 特急 … 3 for 低 (unknown values rank last)."""
    try:
        return URGENCY_RANK[Urgency(severity)]
    except ValueError:
        return len(URGENCY_RANK)
