"""Text preparation shared by every classifier: raw letter -> space-joined tokens.

The topic training data comes pre-cut by jieba (precise mode) with stop words
removed, tokens joined by single spaces.  Raw text therefore goes through the
same steps (``govpulse.tokenize.cut`` + stop words) so that training and
prediction see the same kind of string, and the tagger cuts each message once
for all three models.
"""

from __future__ import annotations

import html
import re

from govpulse.tokenize import cut_without, stopwords

#: Characters of a message that are classified.  A 1 MB letter is cut to this
#: many characters (head and tail) so one huge page cannot stall a batch; the
#: first few thousand characters carry the topic and the urgency cues.
MAX_CLASSIFY_CHARS = 6000

_TAG_RE = re.compile(r"<(script|style)\b.*?</\1\s*>|<[^>]{0,500}>", re.S | re.I)


def strip_html(text: str) -> str:
    """Remove tags and unescape entities (crawled bodies and exports may carry HTML)."""
    if "<" in text or "&" in text:
        text = _TAG_RE.sub(" ", text)
        text = html.unescape(text)
    return text


def clip(text: str, limit: int = MAX_CLASSIFY_CHARS) -> str:
    """Keep the head and tail of an over-long text (letters end with their request)."""
    if len(text) <= limit:
        return text
    head = limit * 3 // 4
    return text[:head] + "\n" + text[-(limit - head) :]


def prepare(title: str | None, body: str | None = None) -> str:
    """Return the model input for one message: its tokens, stop words dropped, space-joined."""
    parts = [p for p in (title, body) if p and isinstance(p, str)]
    if not parts:
        return ""
    text = clip(strip_html("\n".join(parts)))
    return " ".join(cut_without(text, stopwords()))


def split_tokens(text: str) -> list[str]:
    """Tokenizer for the vectorizers: the input is already cut, so split on spaces."""
    return text.split()


def join_chars(text: str) -> str:
    """Preprocessor for character n-grams: drop the token boundaries."""
    return text.replace(" ", "")
