"""The one tokeniser: normalisation + jieba segmentation with a government dictionary.

Search (both store backends) and the classifiers cut text here, so a query
and a document are always split the same way.

Speed: pure-Python ``jieba.lcut`` manages ~1,500 letters/s on the target
machine; ``rjieba`` (bindings to jieba-rs, which reads jieba's dictionary
format and implements the same DAG + HMM algorithm) runs ~20x faster and
yields the same tokens on Chinese text (differences appear only around
ASCII punctuation inside URLs, which normalisation removes first).
"""

from __future__ import annotations

import re
import threading
import unicodedata
from functools import cache
from importlib import resources

import rjieba

_URL_RE = re.compile(r"https?://[^\s\u4e00-\u9fff，。！？、]+|www\.[a-zA-Z0-9./_-]+")
_MENTION_RE = re.compile(r"@[\w\u4e00-\u9fff-]{1,30}")
_WEIBO_EMOTICON_RE = re.compile(r"\[[\u4e00-\u9fffA-Za-z]{1,8}\]")
_EMOJI_RE = re.compile("[\U0001f000-\U0001faff\U00002600-\U000027bf\U0000fe0f\U0000200d]+")
# Tokens kept for search/classification: at least one CJK char, letter or digit.
_WORDLIKE_RE = re.compile(r"[\w\u4e00-\u9fff]")


def _wordlike(token: str) -> bool:
    # str.isalnum() is True for CJK words, digits and letters: the common case, in C.
    return token.isalnum() or _WORDLIKE_RE.search(token) is not None


_lock = threading.Lock()


@cache
def _t2s() -> tuple[re.Pattern[str] | None, dict[int, str]]:
    """Traditional -> simplified, character by character (zhconv's zh-cn table).

    Only one-to-one CJK character mappings are used.  A regex character class
    finds whether a text has any traditional character at all (~4 us for a
    letter; the rare hit then pays one ``str.translate``), so simplified text
    costs almost nothing.  乾 is left alone (乾坤, 乾隆 are simplified too).
    Without zhconv installed, text is left as it is.
    """
    try:
        from zhconv import zhconv as _zhconv
    except ImportError:  # pragma: no cover - zhconv is a declared dependency
        return None, {}
    table = {
        ord(k): v
        for k, v in _zhconv.getdict("zh-cn").items()
        if len(k) == 1 and len(v) == 1 and k != v and k != "乾" and "\u4e00" <= k <= "\u9fff"
    }
    pattern = re.compile("[" + "".join(sorted(chr(c) for c in table)) + "]")
    return pattern, table


@cache
def _nfkc_fold() -> tuple[re.Pattern[str], dict[str, str]]:
    """NFKC of each Basic Multilingual Plane character that NFKC changes (full-width forms …),
    and a character class matching them."""
    table = {}
    for code in range(0x10000):
        if 0xD800 <= code <= 0xDFFF:
            continue
        ch = chr(code)
        folded = unicodedata.normalize("NFKC", ch)
        if folded != ch:
            table[ch] = folded
    pattern = re.compile("[" + "".join(re.escape(c) for c in sorted(table)) + "]")
    return pattern, table


#: The full-width characters that make up 99 % of those in letters, with
#: their NFKC forms (，。is not one: it is NFKC-normal).  `normalise`
#: replaces them with ``str.replace`` first: the NFKC of a text is the NFKC
#: of the text with any characters replaced by their own NFKC forms, so the
#: result is the same, but the regex fold of `_nfkc` (a Python call per
#: match) then rarely runs (the store's `index_text` 25 -> 22-23 us a message).
_COMMON_NFKC = tuple(
    (wide, unicodedata.normalize("NFKC", wide)) for wide in "，！？：（）；\u3000\xa0…"
)


def _nfkc(text: str) -> str:
    """``unicodedata.normalize("NFKC", text)``, usually by folding character by character.

    Letters are rarely NFKC-normal (full-width punctuation), and a full
    normalisation costs ~40 us per letter.  Replacing each character by its
    own NFKC form keeps the text's NFKD, so when the result is NFKC-normal it
    *is* the NFKC of the text; otherwise (combining marks, compositions
    across characters) the full normalisation runs.
    """
    pattern, table = _nfkc_fold()
    folded = pattern.sub(lambda m: table[m.group()], text)
    if unicodedata.is_normalized("NFKC", folded):
        return folded
    return unicodedata.normalize("NFKC", text)


def normalise(text: str) -> str:
    """Return text with full-width forms folded, traditional characters simplified,
    URLs/@mentions/emoji removed.

    NFKC folds full-width Latin letters, digits and punctuation to their
    half-width forms (ＡＢＣ１２３ -> ABC123) without touching CJK ideographs.
    """
    if not text:
        return ""
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # lone surrogates (broken \ud800 escapes) cannot reach jieba
        text = text.encode("utf-8", "replace").decode("utf-8")
        data = text.encode("utf-8")
    if not unicodedata.is_normalized("NFKC", text):
        for wide, narrow in _COMMON_NFKC:
            text = text.replace(wide, narrow)
        if not unicodedata.is_normalized("NFKC", text):
            text = _nfkc(text)
    trad, table = _t2s()
    if trad is not None and trad.search(text):
        text = text.translate(table)
    # Each pattern runs only when its marker is present: most letters have none,
    # and this function sits on the import hot path.
    if "http" in text or "www." in text:
        text = _URL_RE.sub(" ", text)
    if "@" in text:
        text = _MENTION_RE.sub(" ", text)
    if "[" in text:
        text = _WEIBO_EMOTICON_RE.sub(" ", text)
    # The original bytes decide: no character outside `_EMOJI_RE`'s class has
    # one inside it in its NFKD, and none of its characters has a canonical
    # decomposition (checked over all code points by a test), so NFKC, the
    # character table and the removals above cannot bring one in.
    if _may_have_emoji(data):
        text = _EMOJI_RE.sub(" ", text)
    return " ".join(text.split())


def _may_have_emoji(data: bytes) -> bool:
    """Whether the UTF-8 text may hold a character ``_EMOJI_RE`` removes.

    Why: that regex scan costs ~3.5 us a letter and almost never matches.
    Its characters are U+1F000-1FAFF (lead byte F0), U+2600-27BF (E2 98 ..
    E2 9E), U+200D (E2 80 8D) and U+FE0F (EF B8 8F); memchr-speed byte
    searches for those lead bytes, then a look at the byte after each E2
    (curly quotes and dashes share that lead byte), answer in well under a
    microsecond.  False only when no such character is there, so the
    result of :func:`normalise` is the same.
    """
    if b"\xf0" in data:
        return True
    at = data.find(b"\xe2")
    while at >= 0:  # a lead byte: two continuation bytes follow (valid UTF-8)
        second = data[at + 1]
        if 0x98 <= second <= 0x9E or (second == 0x80 and data[at + 2] == 0x8D):
            return True
        at = data.find(b"\xe2", at + 3)
    return b"\xef" in data and b"\xef\xb8\x8f" in data


def _read_lines(name: str) -> list[str]:
    data = resources.files("govpulse.data").joinpath(name).read_text(encoding="utf-8")
    return [line.strip() for line in data.splitlines() if line.strip() and not line.startswith("#")]


@cache
def _jieba() -> rjieba.Jieba:
    """Build the segmenter once per process: default dictionary + government words."""
    with _lock:
        jb = rjieba.Jieba()
        for line in _read_lines("userdict.txt"):
            parts = line.split()
            word = parts[0]
            freq = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else None
            tag = parts[2] if len(parts) > 2 else None
            jb.add_word(word, freq, tag)
        return jb


@cache
def stopwords() -> frozenset[str]:
    """Function words and boilerplate that carry no topic or search value."""
    return frozenset(_read_lines("stopwords.txt"))


def cut(text: str) -> list[str]:
    """Precise-mode jieba tokens of normalised text (punctuation and spaces dropped)."""
    text = normalise(text)
    if not text:
        return []
    search = _WORDLIKE_RE.search  # _wordlike inlined: this is the hot path of every cut
    return [t for t in _jieba().cut(text, True) if t.isalnum() or search(t) is not None]


def cut_without(text: str, drop: frozenset[str] | set[str]) -> list[str]:
    """``[t for t in cut(text) if t not in drop]`` in one pass over the tokens.

    The classifiers drop stop words from every message they tag; filtering
    once instead of twice is a tenth of their tokenising time.
    """
    text = normalise(text)
    if not text:
        return []
    search = _WORDLIKE_RE.search
    return [
        t
        for t in _jieba().cut(text, True)
        if t not in drop and (t.isalnum() or search(t) is not None)
    ]


def cut_for_index(text: str) -> list[str]:
    """Search-mode tokens (long words plus their 2- and 3-character parts), lower-cased.

    Indexing with search mode is what lets a 2-character query such as
    保险 match a letter that wrote 社会保险.  No stop words are removed
    here: a query for 领导 must still find letters.
    """
    joined = _index_string(text)
    return joined.split() if joined else []


def _index_string(text: str | None) -> str:
    if not text:
        return ""
    text = normalise(text)
    if not text:
        return ""
    search = _WORDLIKE_RE.search  # _wordlike inlined: one call per token cost a third here
    tokens = _jieba().cut_for_search(text, True)
    return " ".join([t for t in tokens if t.isalnum() or search(t) is not None]).lower()


def cut_query(query: str) -> list[str]:
    """Tokens of a search query (precise mode, stop words dropped, lower-cased)."""
    stop = stopwords()
    tokens = [t.lower() for t in cut(query) if t not in stop]
    if not tokens and query.strip():
        tokens = [t.lower() for t in cut(query)]
    return tokens


def index_text(*parts: str | None) -> str:
    """Space-joined, lower-cased index tokens of several text fields (what FTS stores).

    The fields are cut as one text, joined by newlines: the same tokens as
    cutting each field apart, because normalisation and jieba treat a line
    break as a boundary nothing crosses (URL and mention patterns stop at
    whitespace, NFKC does not compose across it, jieba cuts each run of
    word characters on its own), checked on every text field of
    ../shared/data and by a test.  One call instead of three: 22 -> 17 us
    a message, a third of an import's tokenising.
    """
    return _index_string("\n".join([p for p in parts if p]))
