"""Turning model probabilities into the final urgency and rumour values with reasons.

Shared by the tagger and by `govpulse evaluate`, so the figures reported are
those of what staff actually see (model + rules), not of the bare model.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from functools import lru_cache
from operator import mul

import numpy as np

from classify import cues
from govpulse.schema import Urgency

CRITICAL = Urgency.CRITICAL.value


#: Multipliers on the model's class probabilities before the most likely level
#: is taken.  The balanced logistic regression still under-calls the rare
#: levels.  Chosen on the tuning part only (1,624 of 2,283 labels, 5-fold CV,
#: mean of 3 seeds, with the title cue columns and the title rule below): 特急
#: ×2.5, 紧急 ×1.3, 低 ×1.5 gives macro-F1 0.734 (±0.0004 over seeds); the
#: previous 特急 ×1.5 alone 0.725; any of 特急 2-3, 紧急 1.15-1.75, 低 1.3-1.75
#: is within 0.001-0.002 of it.  The held-out part was not used to choose it.
URGENCY_CLASS_WEIGHTS: dict[str, float] = {CRITICAL: 2.5, "紧急": 1.3, "低": 1.5}


def decide_urgency(
    proba: np.ndarray, classes: Sequence[str], text: str, rule_min_p: float
) -> tuple[str, list[str]]:
    """Return (level, reasons) for one message from its class probabilities and cue words.

    The model's probabilities are weighted by :data:`URGENCY_CLASS_WEIGHTS`
    and the highest wins.  Then a critical cue (燃气泄漏, 跳楼, 殴打 …) stated
    as a fact in the title or first sentence (``cues.HEAD_CHARS``; "没有发生火灾"
    or "以免倒塌" do not count, ``cues.asserted``, nor a dated or settled
    event such as "2013年酒店起火" or "中毒事故善后", :func:`_rule_cues`) lifts the level to 特急 when
    the model gives 特急 at least `rule_min_p` (default 0: the cue decides).
    特急 letters are rare (114 of 1,623 labelled), too few for the model alone;
    deeper in the text the same words are mostly background, so there they
    are only reported as reasons.  Reasons name the model's probability, the
    weighting when it changed the level, the rule and the cues found, so
    staff can see why.  (:func:`decide_urgency_rows` for many messages.)
    """
    return decide_urgency_rows(np.asarray(proba).reshape(1, -1), classes, [text], rule_min_p)[0]


def decide_urgency_rows(
    proba: np.ndarray, classes: Sequence[str], texts: Sequence[str], rule_min_p: float
) -> list[tuple[str, list[str]]]:
    """:func:`decide_urgency` for every row of ``proba`` (n_texts x n_classes) and its text.

    Why: the tagger decides a whole batch.  The plain and the weighted most
    likely level of every row come from two numpy ``argmax`` calls (the
    first maximum, as ``list.index(max(...))``, of the same float
    products), and each text's hits of the three reason lexicons are
    fetched in one cached look-up (``cues.hits_of``); the rest works on
    plain Python floats: ~6.2 -> ~4.7 us a letter (alternated runs), the
    same levels and reasons (tested).
    """
    names = [str(c) for c in classes]
    weights = _weights(tuple(names))
    proba = np.asarray(proba, dtype=np.float64).reshape(len(texts), len(names))
    rows = proba.tolist()
    if np.isnan(proba).any():  # max() and argmax() disagree on NaN: max() as before
        best = [_first_max(list(map(mul, p, weights))) for p in rows]
        raw = [_first_max(p) for p in rows]
    else:
        best = (proba * np.asarray(weights)).argmax(axis=1).tolist()
        raw = proba.argmax(axis=1).tolist()
    return [
        _decide(probs, b, r, classes, names, text, rule_min_p)
        for probs, b, r, text in zip(rows, best, raw, texts, strict=True)
    ]


def _first_max(values: list[float]) -> int:
    return values.index(max(values))


def _decide(
    probs: list[float],
    best: int,
    raw: int,
    classes: Sequence[str],
    names: list[str],
    text: str,
    rule_min_p: float,
) -> tuple[str, list[str]]:
    """One message's level and reasons, given its weighted (best) and plain (raw) argmax."""
    col = _columns(tuple(names))
    level = names[best]
    flat = cues.flatten(text)
    head_hits = _rule_cues(flat)
    reasons: list[str] = []
    if best != raw:
        weight = _weights(tuple(names))[best]
        reasons.append(f"加权: {level}×{weight:g} 超过 {classes[raw]} p={probs[raw]:.2f}")
    if head_hits and CRITICAL in col and probs[col[CRITICAL]] >= rule_min_p and level != CRITICAL:
        level = CRITICAL
        reasons.append("规则: 标题危险关键词 " + "、".join(head_hits))
    for (name, limit), found in zip(_REASON_NAMES, cues.hits_of(flat, _REASON_CUES), strict=True):
        if found:
            reasons.append(f"关键词({name}): " + "、".join(found[:limit]))
    reasons.insert(0, f"model: {level} p={probs[col[level]]:.2f}")
    return level, reasons


def _rule_cues(flat: str) -> list[str]:
    """The title cues that fire the rule: head cues stated as current events, at most 3.

    ``cues.RULE_SKIP_HEAD_CUES`` (开裂, 脱落) stay model features only, and a
    cue dated or settled in the title ("2013年酒店起火事故", "中毒事故善后",
    "倒塌是否属于危房改造", ``cues.current_event``) does not fire.
    """
    found = cues.head_hits(flat, cues.CRITICAL_HEAD_CUES, cues.HEAD_CHARS)
    if not found:
        return []
    skip = cues.RULE_SKIP_HEAD_CUES
    return [c for c in found if c not in skip and cues.current_event(flat, c)][:3]


#: (label, lexicon, how many cues the reason names) for the urgency reasons.
_REASON_LEXICONS = (
    ("特急", cues.CRITICAL_CUES, 3),
    ("紧急", cues.URGENT_CUES, 3),
    ("低", cues.LOW_CUES, 2),
)
_REASON_NAMES = tuple((name, limit) for name, _, limit in _REASON_LEXICONS)
_REASON_CUES = tuple(lexicon for _, lexicon, _ in _REASON_LEXICONS)


@lru_cache(maxsize=16)
def _columns(classes: tuple[str, ...]) -> dict[str, int]:
    return {str(c): k for k, c in enumerate(classes)}


@lru_cache(maxsize=16)
def _weights(classes: tuple[str, ...]) -> tuple[float, ...]:
    return tuple(URGENCY_CLASS_WEIGHTS.get(str(c), 1.0) for c in classes)


def decide_urgency_many(
    proba: np.ndarray, classes: Sequence[str], texts: Sequence[str], rule_min_p: float
) -> list[str]:
    """Levels only, for evaluation."""
    return [level for level, _ in decide_urgency_rows(proba, classes, texts, rule_min_p)]


#: Posts with fewer word characters (letters, digits, CJK) than this carry no claim to judge.
SHORT_TEXT_CHARS = 5
#: The rumour score such a post gets at most (below any flag threshold).
SHORT_TEXT_SCORE = 0.1
# Anchored, and the two classes are disjoint, so it stops after the fifth
# word character (a few characters of a long post) or at the end of a short one.
_ENOUGH_WORDS = re.compile(rf"[\W_]*(?:[^\W_][\W_]*){{{SHORT_TEXT_CHARS}}}")


def short_text(text: str) -> int | None:
    """Number of word characters when fewer than :data:`SHORT_TEXT_CHARS`, else None.

    The model scores "转发", "哈哈" or "转发微博" (Weibo's default repost text)
    as near-certain rumours (p 0.92-1.00): character n-grams of chain
    messages, no claim at all.  Such posts say nothing that could be a rumour.
    """
    if _ENOUGH_WORDS.match(text) is not None:
        return None
    return sum(1 for ch in text if ch.isalnum() and ch != "_")


_RUMOUR_REASON_CUES = (cues.RUMOUR_CUES, cues.REFUTATION_CUES)


def adjust_rumour(
    score: float,
    text: str,
    has_reply: bool,
    verified: bool,
    refutation_factor: float,
    reply_factor: float,
    reply_text: str | None = None,
) -> tuple[float, list[str]]:
    """Apply the short-text guard, the refutation / official-reply discounts; build the reasons.

    ``score`` is the model's calibrated probability (0.5 = learned flag
    threshold, ``classify.forward``).  A near-empty post (fewer than
    :data:`SHORT_TEXT_CHARS` word characters) is capped at
    :data:`SHORT_TEXT_SCORE` with a reason saying why: its score would
    otherwise come from a handful of n-grams.

    The refutation discount is for an *official* refutation: a refutation
    phrase (辟谣, 不实, 经核实 …) in the official reply (``reply_text``) or in
    a post by a verified account.  An ordinary user's post that merely
    contains such a word is not discounted (only noted): in the CED Weibo
    data 27 of the 32 posts with one of these words are rumours themselves
    ("这不是谣言，速转！").
    """
    reasons = [f"model: p={score:.2f}"]
    chars = short_text(text)
    if chars is not None:
        score = min(score, SHORT_TEXT_SCORE)
        reasons.append(
            f"文本过短: {chars}字(少于{SHORT_TEXT_CHARS}字)，无可判断的说法，得分至多{SHORT_TEXT_SCORE}"
        )
    # cues.find of both lexicons, the text's cached cue split fetched once.
    found, in_post = cues.hits_of(cues.flatten(text), _RUMOUR_REASON_CUES)
    found, in_post = list(found[:3]), list(in_post[:2])
    if found:
        reasons.append("传谣用语: " + "、".join(found))
    if verified:
        reasons.append("认证账号")
    in_reply = cues.find(reply_text, cues.REFUTATION_CUES, 2) if reply_text else []
    if in_reply or (verified and in_post):
        score *= refutation_factor
        if in_reply:
            reasons.append("官方答复辟谣: " + "、".join(in_reply))
        if verified and in_post:
            reasons.append("认证账号辟谣: " + "、".join(in_post))
    elif in_post:
        reasons.append("提及辟谣用语(非认证账号，不降分): " + "、".join(in_post))
    if has_reply:
        score *= reply_factor
        reasons.append("已有官方答复")
    return round(min(max(float(score), 0.0), 1.0), 4), reasons
