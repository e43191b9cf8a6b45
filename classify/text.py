"""Text preparation shared by every classifier: raw letter -> model input string.

Two input forms exist:

* ``"chars"`` (:func:`prepare_chars`, the shipped models): the normalised
  text with every run of non-word characters folded to one space, no jieba
  cut at all.  The models read only character 1-3-grams of it, which
  measured better than jieba words for every task and skips the cut, the
  largest single cost of tagging (see docs/classify.md).
* ``"tokens"`` (:func:`prepare`, models trained before): jieba tokens with
  stop words dropped, joined by single spaces, the form of the pre-cut topic
  training data.

A model's form follows from its n-gram step (:func:`classify.pipelines.input_form`),
so older models keep getting the input they were trained on.  The topic
training data comes pre-cut; its tokens are used as they are (the character
n-grams ignore the spaces), for either form.
"""

from __future__ import annotations

import html
import re

from govpulse.tokenize import cut_without, normalise, stopwords

#: Characters of a message that are classified.  A 1 MB letter is cut to this
#: many characters (head and tail) so one huge page cannot stall a batch; the
#: first few thousand characters carry the topic and the urgency cues.
MAX_CLASSIFY_CHARS = 6000

#: Any word character (what the character n-grams keep).
_WORD_RE = re.compile(r"\w")
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


def prepare_chars(title: str | None, body: str | None = None) -> str:
    """Return the character-model input for one message: normalised text, no jieba cut.

    Same normalisation, HTML stripping and clipping as :func:`prepare`, but
    no cutting: punctuation and spaces stay in the string and the
    character n-grams skip them (``HashedNgrams(drop_nonword=True)``, one
    numpy table look-up for the whole batch, cheaper than a regex pass per
    text); the cue look-ups ignore spaces and see the whole text, stop words
    included.  A text without any word character (only punctuation) is "",
    like one without tokens.  About a fifth of the cost of :func:`prepare`.
    """
    parts = [p for p in (title, body) if p and isinstance(p, str)]
    if not parts:
        return ""
    text = clip(strip_html("\n".join(parts)))
    text = normalise(text)
    return text if _WORD_RE.search(text) else ""


#: The preparation of each input form (see the module docstring).
PREPARE = {"tokens": prepare, "chars": prepare_chars}


def split_tokens(text: str) -> list[str]:
    """Tokenizer for the vectorizers: the input is already cut, so split on spaces."""
    return text.split()


def join_chars(text: str) -> str:
    """Preprocessor for character n-grams: drop the token boundaries."""
    return text.replace(" ", "")
