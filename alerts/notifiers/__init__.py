"""Notification channels, one module each, built from settings.

Channel names: email, webhook, dingtalk, wecom, feishu, apprise, outbox.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from alerts.notifiers.apprise_target import AppriseNotifier
from alerts.notifiers.base import DeliveryError, Notifier, mask_url, split_text
from alerts.notifiers.dingtalk import DingTalkNotifier
from alerts.notifiers.feishu import FeishuNotifier
from alerts.notifiers.outbox import OutboxNotifier, read_outbox
from alerts.notifiers.smtp import SmtpNotifier
from alerts.notifiers.webhook import WebhookNotifier
from alerts.notifiers.wecom import WeComNotifier

#: channel name -> (setting holding its target, notifier class)
CHANNELS: dict[str, tuple[str, type[Notifier]]] = {
    "email": ("alerts.email_url", SmtpNotifier),
    "webhook": ("alerts.webhook_url", WebhookNotifier),
    "dingtalk": ("alerts.dingtalk_url", DingTalkNotifier),
    "wecom": ("alerts.wecom_url", WeComNotifier),
    "feishu": ("alerts.feishu_url", FeishuNotifier),
    "apprise": ("alerts.apprise_urls", AppriseNotifier),
    "outbox": ("alerts.outbox_file", OutboxNotifier),
}


class ChannelError(ValueError):
    """A channel that is unknown or configured wrongly."""


def build_notifier(name: str, settings: Mapping[str, Any], data_dir: str | Path) -> Notifier:
    """The notifier of one channel from its setting; ChannelError if unusable."""
    if name not in CHANNELS:
        raise ChannelError(f"unknown channel {name!r}; choose from {', '.join(CHANNELS)}")
    key, cls = CHANNELS[name]
    target = settings[key]
    timeout = float(settings["alerts.http_timeout_s"])
    if name == "outbox":
        path = Path(target or "alerts_outbox.jsonl")
        return OutboxNotifier(str(path if path.is_absolute() else Path(data_dir) / path), timeout)
    if not target:
        raise ChannelError(f"channel {name} has no target: set {key}")
    try:
        return cls(target, timeout)  # type: ignore[arg-type]
    except ValueError as exc:
        raise ChannelError(f"{name}: {exc}") from None


def enabled_channels(settings: Mapping[str, Any]) -> list[str]:
    """alerts.channels, or every channel with a target, or just the outbox."""
    chosen = list(settings["alerts.channels"])
    if chosen:
        return chosen
    found = [n for n, (key, _) in CHANNELS.items() if n != "outbox" and settings[key]]
    return found or ["outbox"]


def build_notifiers(settings: Mapping[str, Any], data_dir: str | Path) -> dict[str, Notifier]:
    """Notifiers of every enabled channel (ChannelError names the first bad one)."""
    return {name: build_notifier(name, settings, data_dir) for name in enabled_channels(settings)}


__all__ = [
    "CHANNELS",
    "ChannelError",
    "DeliveryError",
    "Notifier",
    "build_notifier",
    "build_notifiers",
    "enabled_channels",
    "mask_url",
    "read_outbox",
    "split_text",
]
