"""The shared per-text cue look-ups give what a direct scan of each lexicon gives."""

from __future__ import annotations

import pytest

from classify import cues
from classify.text import prepare_chars

TEXTS = [
    "燃气泄漏了，楼道里有人晕倒",
    "没有发生火灾，只是一次消防演练",
    "小区存在火灾隐患，万一起火后果严重",
    "标题很长很长很长很长很长很长很长很长很长很长很长很长很长起火隐患后面才说",
    "据说明天自来水有毒，转发扩散！经核实为不实信息，辟谣",
    "建议增加公交班次，谢谢",
    "",
    "哈",
]
LEXICONS = cues.LEXICONS


def _direct(flat: str, lexicon: tuple[str, ...]) -> tuple[str, ...]:
    """Lexicon order, each cue once; urgency cues only where stated as a fact."""
    negatable = any(lexicon is lex for lex in cues.NEGATABLE)
    seen = dict.fromkeys(
        c for c in lexicon if c and c in flat and (not negatable or cues.asserted(flat, c))
    )
    return tuple(seen)


def _head_texts() -> list[str]:
    """A head cue cut by the head boundary, or followed just past it by a hypothetical suffix."""
    out = []
    for cue in cues.CRITICAL_HEAD_CUES[:8]:
        for pad in range(cues.HEAD_CHARS - len(cue) - 2, cues.HEAD_CHARS + 1):
            out.append("市" * pad + cue + "隐患，请处理")
            out.append("市" * pad + cue + "，请处理")
    return out


@pytest.mark.parametrize("text", TEXTS + _head_texts())
def test_hits_counts_and_head_hits_match_a_direct_scan(text):
    cues.clear_caches()
    flat = cues.flatten(prepare_chars(text) or text)
    for lexicon in LEXICONS:
        assert cues.hits(flat, lexicon) == _direct(flat, lexicon)
    assert cues.counts(flat, LEXICONS) == [len(_direct(flat, lex)) for lex in LEXICONS]
    head = flat[: cues.HEAD_CHARS]
    got = cues.head_hits(flat, cues.CRITICAL_HEAD_CUES, cues.HEAD_CHARS)
    assert got == _direct(head, cues.CRITICAL_HEAD_CUES)


def test_head_cue_cut_at_the_boundary_is_judged_on_the_head():
    """ "起火" ending at the boundary with "隐患" after it: a fact in the head, not in the text."""
    flat = "市" * (cues.HEAD_CHARS - 2) + "起火隐患"
    cues.clear_caches()
    assert "起火" not in cues.hits(flat, cues.CRITICAL_HEAD_CUES)
    assert "起火" in cues.head_hits(flat, cues.CRITICAL_HEAD_CUES, cues.HEAD_CHARS)


def test_other_cue_tuples_are_scanned_directly():
    flat = "今天停水了，也停电了"
    assert cues.hits(flat, ("停电", "停水", "断网")) == ("停电", "停水")
    assert cues.head_hits(flat, ("停电",), 4) == ()
    assert cues.counts(flat, (("停电", "停水"), ("断网",))) == [2, 0]


def test_flatten_drops_every_whitespace_character():
    """The printable-text shortcut: no whitespace character but " " is printable."""
    spaces = [chr(c) for c in range(0x3100) if chr(c).isspace()]
    assert len(spaces) > 20
    cues.clear_caches()
    for ch in spaces:
        assert cues.flatten(f"火 灾{ch}发生") == "火灾发生", hex(ord(ch))
    assert cues.flatten("燃气 泄漏，请 处理") == "燃气泄漏，请处理"
