"""Text preparation: the same tokens for raw letters as the pre-cut training data."""

from __future__ import annotations

from classify.text import MAX_CLASSIFY_CHARS, clip, join_chars, prepare, split_tokens, strip_html


def test_prepare_drops_stop_words_and_punctuation():
    tokens = prepare("社保卡补办", "您好，请问社保卡丢了怎么补办？谢谢！").split()
    assert "社保卡" in tokens
    assert "您好" not in tokens and "，" not in tokens and "谢谢" not in tokens


def test_prepare_strips_html_and_entities():
    out = prepare("", "<p>小区&nbsp;停水</p><script>alert(1)</script><br/>三天")
    assert "停水" in out.split()
    assert "script" not in out and "alert" not in out and "<" not in out


def test_prepare_empty_whitespace_and_emoji_only():
    assert prepare(None, None) == ""
    assert prepare("", "   \n\t ") == ""
    assert prepare("", "😀😀🙏[微笑]") == ""


def test_prepare_non_chinese_text_keeps_words():
    assert prepare("", "The road is broken near gate 3").split()


def test_huge_letter_is_clipped_head_and_tail():
    text = "开头" + "很长的信" * 300_000 + "结尾请求"
    clipped = clip(text)
    assert len(clipped) <= MAX_CLASSIFY_CHARS + 1
    assert clipped.startswith("开头") and clipped.endswith("结尾请求")
    assert len(prepare("", text)) < MAX_CLASSIFY_CHARS * 2


def test_strip_html_leaves_plain_text_alone():
    assert strip_html("A<B 的比较") == "A<B 的比较"


def test_vectorizer_helpers():
    assert split_tokens("社保 补办  流程") == ["社保", "补办", "流程"]
    assert join_chars("社保 补办") == "社保补办"


def test_traditional_text_is_simplified_before_cutting():
    from govpulse.tokenize import cut, normalise

    assert normalise("請問社會保險卡怎麼補辦") == "请问社会保险卡怎么补办"
    assert cut("社會保險") == cut("社会保险")
    assert normalise("乾隆") == "乾隆"  # simplified text is left alone
    assert prepare("", "臺灣 後來") == prepare("", "台湾 后来")


def test_fast_nfkc_equals_unicodedata():
    """govpulse.tokenize folds character by character but must equal full NFKC."""
    import random
    import unicodedata

    from govpulse.tokenize import _nfkc

    random.seed(7)
    pool = [chr(c) for c in [*range(0x20, 0x3100), *range(0xF900, 0xFFF0), *range(0x1100, 0x1200)]]
    pool += ["\u0301", "\u0308", "\u3099", "\u309a", "\U0001d400", "\U0001f100", "\U0002f800"]
    samples = ["ＡＢＣ１２３，。！", "ﾃﾞｨ ｶﾞ", "e\u0301 A\u030a ㈱ ℡ ﬁ", "", "普通中文"]
    samples += ["".join(random.choice(pool) for _ in range(30)) for _ in range(3000)]
    for text in samples:
        assert _nfkc(text) == unicodedata.normalize("NFKC", text)


def test_normalise_with_common_full_width_characters_equals_full_nfkc():
    """`normalise` replaces the common full-width characters before folding the rest:
    the result must be that of a text given to it already NFKC-normalised."""
    import random
    import unicodedata

    from govpulse.tokenize import normalise

    random.seed(11)
    common = list("，！？：（）；\u3000\xa0…")
    pool = common * 20 + [chr(c) for c in range(0x3000, 0x3100)] + list("ＡＢＣａ１２。、")
    pool += ["\u0301", "\u0308", "\u3099", "e", "A", "社", "保", "http://x.cn", "@某人", "😀"]
    samples = ["供暖不达标，已经一个月！请问（急）：怎么办？", "…… 　 ", "，\u0301", "A\xa0\u0308"]
    samples += ["".join(random.choice(pool) for _ in range(25)) for _ in range(3000)]
    for text in samples:
        assert normalise(text) == normalise(unicodedata.normalize("NFKC", text)), repr(text)
