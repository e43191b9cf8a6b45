"""Turning model probabilities into the final urgency and rumour values with reasons.

Shared by the tagger and by `govpulse evaluate`, so the figures reported are
those of what staff actually see (model + rules), not of the bare model.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache

import numpy as np

from classify import cues
from govpulse.schema import Urgency

CRITICAL = Urgency.CRITICAL.value


def decide_urgency(
    proba: np.ndarray, classes: Sequence[str], text: str, rule_min_p: float
) -> tuple[str, list[str]]:
    """Return (level, reasons) for one message from its class probabilities and cue words.

    A critical cue (燃气泄漏, 跳楼, 殴打 …) in the title or first sentence lifts
    the level to 特急 when the model gives 特急 at least `rule_min_p` (default
    0: the cue decides).  特急 letters are rare (22 of 620 labelled), too few
    for the model alone; deeper in the text the same words are mostly
    background, so there they are only reported as reasons.

    Runs once per tagged message, so it works on plain Python floats and
    the cached cue pass (``cues.hits``) rather than numpy scalars and enums.
    """
    probs = proba.tolist()
    col = _columns(tuple(classes))
    best = max(range(len(probs)), key=probs.__getitem__)  # first maximum, as np.argmax
    level = str(classes[best])
    flat = cues.flatten(text)
    head_hits = cues.hits(flat[: cues.HEAD_CHARS], cues.CRITICAL_HEAD_CUES)[:3]
    reasons: list[str] = []
    if head_hits and CRITICAL in col and probs[col[CRITICAL]] >= rule_min_p and level != CRITICAL:
        level = CRITICAL
        reasons.append("规则: 标题危险关键词 " + "、".join(head_hits))
    for name, lexicon, limit in _REASON_LEXICONS:
        found = cues.hits(flat, lexicon)
        if found:
            reasons.append(f"关键词({name}): " + "、".join(found[:limit]))
    reasons.insert(0, f"model: {level} p={probs[col[level]]:.2f}")
    return level, reasons


#: (label, lexicon, how many cues the reason names) for the urgency reasons.
_REASON_LEXICONS = (
    ("特急", cues.CRITICAL_CUES, 3),
    ("紧急", cues.URGENT_CUES, 3),
    ("低", cues.LOW_CUES, 2),
)


@lru_cache(maxsize=16)
def _columns(classes: tuple[str, ...]) -> dict[str, int]:
    return {str(c): k for k, c in enumerate(classes)}


def decide_urgency_many(
    proba: np.ndarray, classes: Sequence[str], texts: Sequence[str], rule_min_p: float
) -> list[str]:
    """Levels only, for evaluation."""
    return [decide_urgency(p, classes, t, rule_min_p)[0] for p, t in zip(proba, texts, strict=True)]


def adjust_rumour(
    score: float,
    text: str,
    has_reply: bool,
    verified: bool,
    refutation_factor: float,
    reply_factor: float,
) -> tuple[float, list[str]]:
    """Apply the refutation / official-reply discounts and build the reasons list."""
    reasons = [f"model: p={score:.2f}"]
    found = cues.find(text, cues.RUMOUR_CUES, 3)
    if found:
        reasons.append("传谣用语: " + "、".join(found))
    if verified:
        reasons.append("认证账号")
    refuted = cues.find(text, cues.REFUTATION_CUES, 2)
    if refuted:
        score *= refutation_factor
        reasons.append("辟谣用语: " + "、".join(refuted))
    if has_reply:
        score *= reply_factor
        reasons.append("已有官方答复")
    return round(min(max(float(score), 0.0), 1.0), 4), reasons
