"""Cue phrases that drive the rule half of urgency and rumour scoring.

Kept as plain data so reasons shown to staff ("关键词: 燃气泄漏") name the
exact phrase that fired, and so the labelling guidelines and the rules
stay readable side by side (see labels/URGENCY_GUIDELINES.md).
Phrases are matched on text with token boundaries removed, so segmentation
differences between jieba builds do not hide a cue.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

#: Risk to life or safety now.
CRITICAL_CUES: tuple[str, ...] = (
    "燃气泄漏",
    "煤气泄漏",
    "天然气泄漏",
    "漏气",
    "闻到煤气",
    "闻到燃气",
    "爆炸",
    "起火",
    "着火",
    "火灾",
    "失火",
    "大火",
    "浓烟",
    "倒塌",
    "坍塌",
    "塌方",
    "垮塌",
    "山体滑坡",
    "滑坡",
    "泥石流",
    "塌陷",
    "随时可能倒",
    "危房",
    "触电",
    "漏电",
    "电线裸露",
    "高压线",
    "溺水",
    "被困",
    "跳楼",
    "自杀",
    "轻生",
    "不想活",
    "以死",
    "同归于尽",
    "杀人",
    "砍人",
    "持刀",
    "殴打",
    "打人",
    "暴力",
    "威胁",
    "恐吓",
    "黑社会",
    "绑架",
    "人身安全",
    "生命安全",
    "生命危险",
    "命悬一线",
    "群体性",
    "聚集",
    "堵路",
    "围堵",
    "冲突",
    "中毒",
    "食物中毒",
    "疫情爆发",
    "决堤",
    "溃坝",
    "洪水",
    "内涝严重",
    "危及生命",
)
#: High-precision phrases that make a letter 特急 when they appear in its title
#: or first sentence (``HEAD_CHARS``).  Deeper in a letter the same words are
#: mostly background ("小区消防隐患, 万一发生火灾…"), so there they only count
#: as reasons and model features.  Tuned on the 70 % tuning part of the labels.
CRITICAL_HEAD_CUES: tuple[str, ...] = (
    "燃气泄漏",
    "煤气泄漏",
    "天然气泄漏",
    "闻到煤气",
    "闻到燃气",
    "起火",
    "着火",
    "失火",
    "浓烟",
    "倒塌",
    "坍塌",
    "塌方",
    "垮塌",
    "塌陷",
    "滑坡",
    "泥石流",
    "随时可能",
    "随时会",
    "开裂",
    "触电",
    "溺水",
    "被困",
    "跳楼",
    "自杀",
    "轻生",
    "不想活",
    "以死",
    "同归于尽",
    "杀人",
    "砍人",
    "持刀",
    "殴打",
    "打人",
    "斗殴",
    "伤人",
    "打伤",
    "大打出手",
    "绑架",
    "走失",
    "失联",
    "命悬一线",
    "危及生命",
    "生命危险",
    "中毒",
    "决堤",
    "溃坝",
    "洪水",
    "险地",
    "险情",
    "摧毁",
    "敲诈",
    "勒索",
    "砸伤",
    "脱落",
)
#: Characters (token boundaries removed) treated as the title / first sentence.
HEAD_CHARS = 30
#: Harm with a deadline.
URGENT_CUES: tuple[str, ...] = (
    "拖欠工资",
    "欠薪",
    "讨薪",
    "拖欠",
    "工资未发",
    "没发工资",
    "血汗钱",
    "农民工工资",
    "停水",
    "断水",
    "没有水",
    "没水",
    "停电",
    "断电",
    "没有电",
    "停气",
    "断气",
    "没有气",
    "没气",
    "停暖",
    "暖气不热",
    "不供暖",
    "没有暖气",
    "没暖气",
    "供暖",
    "取暖",
    "挨冻",
    "冻得",
    "室温",
    "气压低",
    "限气",
    "燃气紧张",
    "无法做饭",
    "做不了饭",
    "出行受阻",
    "无法通行",
    "堵死",
    "封路",
    "出不去",
    "进不去",
    "无人照顾",
    "无人管",
    "生病",
    "住院",
    "病重",
    "急需",
    "紧急",
    "十万火急",
    "刻不容缓",
    "迫在眉睫",
    "尽快",
    "马上",
    "立即",
    "燃眉之急",
    "孩子上学",
    "无法入学",
    "开学",
    "断供",
    "强拆",
    "强制拆除",
    "停工",
    "污水外溢",
    "臭气熏天",
    "噪音扰民",
    "安全隐患",
    "隐患",
)
#: Suggestions, consultations, praise.
LOW_CUES: tuple[str, ...] = (
    "建议",
    "提议",
    "咨询",
    "请问",
    "想问",
    "想了解",
    "询问",
    "如何办理",
    "怎么办理",
    "能否",
    "是否可以",
    "可否",
    "政策",
    "规定",
    "感谢",
    "表扬",
    "点赞",
    "致敬",
    "锦旗",
    "称赞",
    "为民办实事",
    "优化",
    "完善",
    "增设",
    "开通",
    "规划",
    "何时",
)
#: Phrases typical of rumours and chain messages on Weibo.
RUMOUR_CUES: tuple[str, ...] = (
    "转发扩散",
    "扩散",
    "转疯了",
    "转起来",
    "求转",
    "请转发",
    "转发",
    "内部消息",
    "据说",
    "听说",
    "网传",
    "传言",
    "紧急通知",
    "紧急扩散",
    "速看",
    "震惊",
    "惊呆",
    "太可怕",
    "马上删",
    "快删",
    "被删",
    "即将删除",
    "不转不是",
    "注意了",
    "提醒大家",
    "千万不要",
    "千万别",
    "告诉家人",
    "看到的朋友",
    "有孩子的",
    "为了孩子",
    "据悉",
    "爆料",
    "曝光",
    "真相",
    "揭秘",
    "惊人",
    "致癌",
    "吃了会",
    "有毒",
    "小心",
    "人贩子",
    "拐卖",
    "偷孩子",
    "器官",
    "寻人",
    "寻亲",
    "求助",
    "速转",
    "广而告之",
    "重要通知",
    "最新消息",
    "刚刚",
    "确认",
    "已经死",
    "死亡",
    "！！",
    "!!",
    "？？",
)
#: Refutation / official clarification phrases: lower the rumour likelihood.
REFUTATION_CUES: tuple[str, ...] = (
    "辟谣",
    "谣言",
    "不实",
    "假消息",
    "虚假信息",
    "经核实",
    "经查",
    "纯属谣言",
    "系谣言",
    "造谣",
    "官方回应",
    "官方通报",
    "警方通报",
    "情况通报",
    "并非事实",
    "不属实",
    "网传不实",
)


_SPACE_RE = re.compile(r"\s")
#: Every lexicon above; one Aho-Corasick automaton finds all their cues in one pass.
LEXICONS: tuple[tuple[str, ...], ...] = (
    CRITICAL_CUES,
    CRITICAL_HEAD_CUES,
    URGENT_CUES,
    LOW_CUES,
    RUMOUR_CUES,
    REFUTATION_CUES,
)


@lru_cache(maxsize=4096)
def flatten(text: str) -> str:
    """Drop whitespace (token boundaries) so multi-token cues still match.

    Cached: the tagger looks at the same message text in several steps
    (cue features of two models, urgency rules, rumour reasons).
    """
    flat = text.replace(" ", "")  # prepared text: tokens joined by single spaces
    if _SPACE_RE.search(flat):
        flat = "".join(flat.split())  # same whitespace as regex \s (str.isspace)
    return flat


class _Automaton:
    """All cues of :data:`LEXICONS` in one automaton, and each lexicon's cue order."""

    def __init__(self) -> None:
        import ahocorasick_rs

        words = sorted({c for lex in LEXICONS for c in lex if c})
        # A DFA scans a letter in about half the time of the default NFA (~3 vs
        # ~6 us) and finds the same matches; a few hundred short cues keep it small.
        self.automaton = ahocorasick_rs.AhoCorasick(
            words, implementation=ahocorasick_rs.Implementation.DFA
        )
        # Keyed by id(): hashing a 60-cue tuple per look-up would cost more than the scan.
        self.order = {id(lex): {c: k for k, c in enumerate(lex)} for lex in LEXICONS}
        self.sets = {id(lex): frozenset(lex) for lex in LEXICONS}
        self.lexicons = LEXICONS  # keeps the ids above valid

    def found(self, flat: str) -> frozenset[str]:
        """Every cue (of any lexicon) occurring in flat, overlaps included."""
        return frozenset(self.automaton.find_matches_as_strings(flat, overlapping=True))


@lru_cache(maxsize=1)
def _automaton() -> _Automaton:
    return _Automaton()


@lru_cache(maxsize=16384)
def _found(flat: str) -> frozenset[str]:
    return _automaton().found(flat)


@lru_cache(maxsize=64)
def _any_cue(cues: tuple[str, ...]) -> re.Pattern[str] | None:
    """One pattern matching any cue of a lexicon (None for a lexicon with an empty cue)."""
    if not cues or "" in cues:
        return None
    return re.compile("|".join(re.escape(c) for c in sorted(cues, key=len, reverse=True)))


def hits(flat: str, cues: tuple[str, ...]) -> tuple[str, ...]:
    """All cues of a lexicon found in a flattened text, in lexicon order.

    For the lexicons of this module one Aho-Corasick pass per text (cached)
    finds the cues of all of them at once, about 6x cheaper than a regex
    search per lexicon; the few cues found are then put in lexicon order.
    Any other tuple of cues is tested directly.
    """
    auto = _automaton()
    order = auto.order.get(id(cues))
    if order is not None:
        found = _found(flat)
        if not found:
            return ()
        get = order.get
        mine = [c for c in found if c in order]
        if len(mine) > 1:
            mine.sort(key=get)  # type: ignore[arg-type]
        return tuple(mine)
    pattern = _any_cue(cues)
    if pattern is not None and pattern.search(flat) is None:
        return ()
    return tuple([c for c in cues if c in flat])


def counts(flat: str, lexicons: tuple[tuple[str, ...], ...]) -> list[int]:
    """Number of distinct cues of each lexicon in a flattened text (``len(hits(...))`` each)."""
    auto = _automaton()
    if all(id(lex) in auto.sets for lex in lexicons):
        found = _found(flat)
        if not found:
            return [0] * len(lexicons)
        return [len(found & auto.sets[id(lex)]) for lex in lexicons]
    return [len(hits(flat, lex)) for lex in lexicons]


def clear_caches() -> None:
    """Forget cached texts (the tagger calls this per batch, so memory stays bounded)."""
    flatten.cache_clear()
    _found.cache_clear()


def find(text: str, cues: Iterable[str], limit: int = 5) -> list[str]:
    """Return up to `limit` cues found in (flattened) text, in lexicon order."""
    flat = flatten(text)
    if isinstance(cues, tuple):
        return list(hits(flat, cues)[:limit])
    out = [c for c in cues if c in flat]
    return out[:limit]
