"""Storing staff decisions (labels) with the role check in one place."""

from __future__ import annotations

from flask_login import current_user

from govpulse.schema import Label, Topic, Urgency
from store.base import Store

RUMOUR_REVIEWS = ("reviewed", "confirmed", "false_alarm")
_ALLOWED = {
    "topic": {t.value for t in Topic},
    "urgency": {u.value for u in Urgency},
    "rumour": set(RUMOUR_REVIEWS),
}


class LabelRefused(PermissionError):
    """The user may not store labels, or the value is not allowed."""


def save_label(
    store: Store, message_id: str, task: str, value: str, now, note: str = "", user=None
) -> Label:
    """Store one label as the logged-in user; leaders (read-only) are refused."""
    user = current_user if user is None else user
    if not getattr(user, "is_authenticated", False) or not getattr(user, "can_label", False):
        raise LabelRefused("当前角色为只读，不能修改标注。")
    if value not in _ALLOWED.get(task, ()):
        raise LabelRefused(f"无效的标注值：{value}")
    if store.get(message_id) is None:
        raise LabelRefused("消息不存在。")
    label = Label(
        message_id=message_id, task=task, value=value, user=user.username, at=now, note=note[:500]
    )
    store.add_label(label)
    return label
