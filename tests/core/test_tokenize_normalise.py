"""``normalise`` gives exactly what its plain form (every regex pass, no gates) gives."""

from __future__ import annotations

import os
import unicodedata
from pathlib import Path

import pytest

from govpulse import tokenize as T


def reference(text: str) -> str:
    """The normalisation as specified, every step run unconditionally."""
    if not text:
        return ""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        text = text.encode("utf-8", "replace").decode("utf-8")
    text = unicodedata.normalize("NFKC", text)
    trad, table = T._t2s()
    if trad is not None:
        text = text.translate(table)
    text = T._URL_RE.sub(" ", text)
    text = T._MENTION_RE.sub(" ", text)
    text = T._WEIBO_EMOTICON_RE.sub(" ", text)
    text = T._EMOJI_RE.sub(" ", text)
    return " ".join(text.split())


TRICKY = [
    "",
    " ",
    "纯中文没有任何标点",
    "ＡＢＣ１２３，全角！？",
    "我们小区😀停水了🔥🔥",
    "天气☀不错☂️，心情❤",  # U+2600-27BF and the variation selector
    "👨\u200d👩\u200d👧 一家人",
    "零宽\u200d连接符单独出现",
    "变体\ufe0f选择符",
    "“引号”和‘单引号’……——破折号",  # E2 80 .. lead bytes, not emoji
    "↑→★☆■□",  # E2 86/E2 98 mixed
    "学校食堂吃飯後腹瀉，衛生部門",
    "访问 https://example.com/a?b=1 或 www.gov.cn 看看",
    "@张三 @李四-五 你们好 [哈哈][微笑]",
    "broken \ud800 surrogate",
    "e\u0301 combining é ﬁ ligature ㎡ ① ％",
    "𠀀𪚥 CJK extension B",
    "\u3000全角空格\xa0不换行空格\t制表\n换行",
    "𝐀𝐁 mathematical bold",
]


@pytest.mark.parametrize("text", TRICKY)
def test_tricky_strings(text):
    assert T.normalise(text) == reference(text)


def test_every_emoji_class_character():
    for code in [*range(0x1F000, 0x1FB00), *range(0x2600, 0x27C0), 0xFE0F, 0x200D]:
        for text in (f"前{chr(code)}后", f"“引号”{chr(code)}", chr(code)):
            assert T.normalise(text) == reference(text), hex(code)


def test_characters_around_the_emoji_ranges_are_kept():
    for code in [0x25FF, 0x27C0, 0x200C, 0x200E, 0xFE0E, 0x1EFFF, 0x1FB00, 0x20000]:
        text = f"前{chr(code)}后"
        assert T.normalise(text) == reference(text), hex(code)


SHARED = Path(
    os.environ.get("GOVPULSE_SHARED_DATA", Path(__file__).resolve().parents[3] / "shared" / "data")
)


def test_real_letters():
    import pandas as pd

    path = SHARED / "mailbox" / "tipdm2020c_letters_with_replies.csv"
    if not path.exists():
        pytest.skip(f"shared data not found at {path}")
    frame = pd.read_csv(path, dtype=str, nrows=3000).fillna("")
    texts = [f"{a}\n{b}" for a, b in zip(frame["留言主题"], frame["留言详情"], strict=True)]
    assert len(texts) >= 1000
    for text in texts:
        assert T.normalise(text) == reference(text)


def _index_text_field_by_field(*parts: str | None) -> str:
    """What `index_text` gave when it cut each field on its own."""
    return " ".join(filter(None, map(T._index_string, parts)))


def test_index_text_cuts_joined_fields_like_each_field_alone():
    """`index_text` cuts its fields as one text; no token may cross a field boundary."""
    import random

    random.seed(5)
    edges = ["ABC", "abc1", "12", "社会保险", "保险", "https://a.cn/x", "@张三", "[哈哈]", "😀"]
    edges += ["\u0301", "e", "。", "，", " ", "\u3000", "臺灣", "ＡＢ", "-", ".", "_", "#"]
    fields = TRICKY + edges
    for _ in range(3000):
        parts = [random.choice(fields) + random.choice(fields) for _ in range(random.randint(1, 3))]
        if random.random() < 0.2:
            parts.insert(random.randrange(len(parts) + 1), None)
        assert T.index_text(*parts) == _index_text_field_by_field(*parts), parts
    for a in TRICKY:
        for b in TRICKY:
            assert T.index_text(a, b) == _index_text_field_by_field(a, b), (a, b)


def test_normalisation_cannot_bring_in_an_emoji_class_character():
    """Why `normalise` may test the original bytes for emoji: NFKC of text without an
    emoji-class character has none (no other character decomposes to one, none of
    them is a canonical composite), and the traditional-character table maps CJK to CJK."""
    import sys

    emoji = T._EMOJI_RE.match
    for code in range(sys.maxunicode + 1):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        if emoji(ch):
            decomposition = unicodedata.decomposition(ch)
            assert not decomposition or decomposition.startswith("<"), hex(code)
        elif unicodedata.decomposition(ch):
            assert not T._EMOJI_RE.search(unicodedata.normalize("NFKD", ch)), hex(code)
    _, table = T._t2s()
    assert not any(T._EMOJI_RE.search(v) for v in table.values())
