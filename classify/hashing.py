"""Hashed word and character n-grams of prepared text, computed for a whole batch in numpy.

Why: a vocabulary-based ``TfidfVectorizer`` runs sklearn's pure-Python
analyzer and one dict look-up per n-gram, three times over (one vectorizer
pair per task).  That was most of the tagger's time after tokenisation.
Here a batch of prepared texts (``classify.text.prepare``: tokens joined by
single spaces) is encoded once as UTF-32 code points and every n-gram
becomes a 64-bit key by array arithmetic:

* word n-grams: a polynomial hash of each token's code points (segment
  sums, no Python loop per token), bigrams combine two token hashes;
* character n-grams of the text with token boundaries removed (they absorb
  segmentation differences between the published pre-cut data and our
  rjieba build): code points packed into one integer.

Keys are salted per family and Fibonacci-hashed (one multiply; the top
``n_bits`` bits are the column); counts per (row, column) come from one
sort of 32-bit (row, column) keys.  The hash is a fixed function
of the text (no Python ``hash()``, which is salted per process), so a model
trained in one process scores identically in another, and there is no
vocabulary to store, load or look up.

:class:`HashedNgrams` is the scikit-learn face of this (stateless;
:class:`HashedTfidf` after it learns the IDF and which columns to keep).  All three shipped models use
the same ``HashedNgrams`` parameters, so the tagger computes the counts once
per batch and only the cheap IDF weighting differs per model.
"""

from __future__ import annotations

import contextvars
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from functools import cache
from itertools import pairwise
from typing import NamedTuple

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, TransformerMixin

_U64 = np.uint64
_CP_BITS = _U64(21)  # Unicode code points are < 2**21
_SPACE = 32
_DOC_SEP = 10  # "\n": never inside a prepared text (whitespace is folded to single spaces)
_MAX_TOKEN = 64  # positions beyond this reuse the last power (hash stays deterministic)
#: Powers of the FNV prime modulo 2**64 (computed in Python ints: numpy warns on wrap).
_POW = np.array([pow(0x100000001B3, i, 1 << 64) for i in range(_MAX_TOKEN)], dtype=np.uint64)
#: Salts keep the families apart before hashing (a word "ab" and the char bigram "ab").
_SALT = {
    "w1": _U64(0x9E3779B97F4A7C15),
    "w2": _U64(0xC2B2AE3D27D4EB4F),
    "c": _U64(0x165667B19E3779F9),
}

_MULT = _U64(0x9E3779B97F4A7C15)  # 2**64 / golden ratio, odd: Fibonacci hashing


def _mix(x: np.ndarray) -> np.ndarray:
    """Fibonacci hashing, in place: the top bits of ``x * 2**64/phi`` spread distinct keys
    evenly over the columns (one multiply per key; the caller takes the top bits)."""
    with np.errstate(over="ignore"):
        x *= _MULT
    return x


def _code_points(texts: Sequence[str]) -> np.ndarray:
    """All texts as one uint32 array of code points, separated by _DOC_SEP."""
    joined = "\n".join([t.replace("\n", " ") if "\n" in t else t for t in texts])
    return np.frombuffer(joined.encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


_WORD_TABLE_SIZE = 1 << 18  # code points up to U+3FFFF (CJK extensions included)


@cache
def _word_chars() -> np.ndarray:
    """Boolean table: is the code point a regex word character (``\\w``)?

    Code points beyond the table count as word characters (the normaliser
    has already removed emoji; what is left there is rare CJK), and the
    document separator is kept so that rows stay apart.
    """
    word = re.compile(r"\w").match
    table = np.zeros(_WORD_TABLE_SIZE, dtype=bool)
    for code in range(_WORD_TABLE_SIZE):
        if not 0xD800 <= code <= 0xDFFF and word(chr(code)):
            table[code] = True
    table[-1] = True
    table[_DOC_SEP] = True
    return table


def ngram_keys(
    texts: Sequence[str],
    word_ngrams: tuple[int, int] | None = (1, 2),
    char_ngrams: tuple[int, int] | None = (2, 3),
    drop_nonword: bool = False,
) -> tuple[np.ndarray, np.ndarray]:
    """(row, key) of every n-gram occurrence in the texts (keys: hashed, use the top bits).

    Character n-grams skip spaces; with ``drop_nonword`` they skip every
    non-word character (punctuation, symbols), so normalised raw text needs
    no regex pass in Python to drop them (``classify.text.prepare_chars``).
    """
    rows_out, keys_out = _ngram_parts(texts, word_ngrams, char_ngrams, drop_nonword)
    if not keys_out:
        return np.zeros(0, np.int32), np.zeros(0, np.uint64)
    return np.concatenate(rows_out), np.concatenate(keys_out)


def _ngram_parts(
    texts: Sequence[str],
    word_ngrams: tuple[int, int] | None,
    char_ngrams: tuple[int, int] | None,
    drop_nonword: bool,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`ngram_keys` per n-gram family and order; each part's rows ascend."""
    cp = _code_points(texts)
    rows_out: list[np.ndarray] = []
    keys_out: list[np.ndarray] = []
    if not len(cp):
        return rows_out, keys_out
    sep = cp == _DOC_SEP
    doc_of = np.cumsum(sep, dtype=np.int32)  # row of every position (a separator starts a row)
    space = cp == _SPACE
    if word_ngrams is not None:
        lo, hi = word_ngrams
        pos = np.flatnonzero(~(sep | space))
        if len(pos):
            # A token starts where the previous position is a boundary (or at 0).
            starts_mask = np.empty(len(pos), dtype=bool)
            starts_mask[0] = True
            np.not_equal(pos[1:], pos[:-1] + 1, out=starts_mask[1:])
            starts = np.flatnonzero(starts_mask)
            token_of = np.cumsum(starts_mask) - 1
            offset = np.arange(len(pos)) - starts[token_of]
            np.minimum(offset, _MAX_TOKEN - 1, out=offset)
            with np.errstate(over="ignore"):
                contrib = cp[pos].astype(np.uint64)
                contrib += _U64(1)
                contrib *= _POW[offset]
                tok = np.add.reduceat(contrib, starts)
                tok += _U64(0x51ED27)  # never 0, so a pair is never a unigram
            tok_row = doc_of[pos[starts]]
            if lo <= 1 <= hi:
                rows_out.append(tok_row)
                keys_out.append(_mix(tok ^ _SALT["w1"]))
            if hi >= 2 and len(tok) > 1:
                same = tok_row[1:] == tok_row[:-1]
                with np.errstate(over="ignore"):
                    pair = tok[:-1][same] * _U64(0x2545F4914F6CDD1D) + tok[1:][same]
                rows_out.append(tok_row[:-1][same])
                pair ^= _SALT["w2"]
                keys_out.append(_mix(pair))
    if char_ngrams is not None:
        lo, hi = char_ngrams
        keep = _word_chars()[np.minimum(cp, _WORD_TABLE_SIZE - 1)] if drop_nonword else ~space
        ch = cp[keep].astype(np.uint64)
        ch += _U64(1)
        row = doc_of[keep]
        is_sep = sep[keep]
        key = ch
        bad = is_sep
        for n in range(1, hi + 1):
            if n > 1:  # extend every (n-1)-gram by the next character
                m = len(ch) - n + 1
                if m <= 0:
                    break
                key = key[:m] << _CP_BITS
                key |= ch[n - 1 :]
                bad = bad[:m] | is_sep[n - 1 :]
            if n >= lo:
                good = ~bad
                rows_out.append(row[: len(key)][good])
                grams = key[good]
                grams ^= _SALT["c"]
                keys_out.append(_mix(grams))
    return rows_out, keys_out


#: Keys sorted at a time: a block this size (a few letters' keys) stays in the
#: CPU cache, which makes sorting the blocks about twice as fast as one sort of
#: a whole batch's keys (2**12 measured a little faster than 2**11 and 2**14).
_SORT_BLOCK = 1 << 12
#: The same for character-only n-grams (:func:`_char_keys_sorted`), whose
#: blocks are sorted in place without concatenation: 1k keys (about one
#: letter's) measured fastest there (21-22 us a letter against 24 for 4k).
_CHAR_SORT_BLOCK = 1 << 10
#: Characters of texts whose character n-grams are keyed and sorted at a
#: time: the (positions x orders) table of 64 letters (~24k characters, ~300
#: KB) stays in the CPU cache, that of a whole batch of 500 does not (tagging
#: 8,500 -> 8,800 letters per CPU-second, median of 9 alternated runs; alone,
#: the count 22.7 -> 21.3 us).  Counted in characters, not texts, so that
#: short texts (the topic model's 20-character heads: ~2.0 -> ~1.2 us a
#: letter, same process) are not cut into many small chunks, each paying
#: numpy's per-call costs.
_CHAR_CHUNK_CHARS = 64 * 375


def _sorted_keys(rows: list[np.ndarray], keys: list[np.ndarray], n: int) -> np.ndarray:
    """All (row << bits | column) keys of the parts, sorted, by blocks of whole rows.

    Each part's rows ascend, so the keys of rows [a, b) are one slice of
    every part; sorting each block of rows and concatenating the blocks in
    row order gives the fully sorted array.
    """
    total = sum(len(k) for k in keys)
    if total <= _SORT_BLOCK or n <= 1:
        out = np.concatenate(keys)
        out.sort()
        return out
    step = max(1, n * _SORT_BLOCK // total)
    edges = np.arange(0, n + step, step)
    edges[-1] = max(edges[-1], n)
    cuts = [np.searchsorted(r, edges) for r in rows]
    blocks = []
    for b in range(len(edges) - 1):
        block = np.concatenate([k[c[b] : c[b + 1]] for k, c in zip(keys, cuts, strict=True)])
        block.sort()
        blocks.append(block)
    return np.concatenate(blocks)


def _char_keys_sorted(
    texts: Sequence[str],
    char_ngrams: tuple[int, int],
    drop_nonword: bool,
    n_bits: int,
    useful: np.ndarray | None,
    n_total: int,
) -> np.ndarray:
    """Sorted (row << n_bits | column) keys of every character n-gram occurrence.

    The same keys as :func:`_ngram_parts` then :func:`_sorted_keys` give for
    character n-grams alone (what every shipped model reads), with less
    work: each order's keys are written into one column of a (positions x
    orders) table, so one boolean mask (not a separator, a column some
    model reads) selects them all at once, already in row order; whole-row
    blocks of it are then sorted in place, no concatenation per block.
    """
    n = len(texts)
    small = n_total << n_bits < 1 << 32  # small batches: 32-bit keys sort faster
    kd = np.uint32 if small else np.uint64
    cp = _code_points(texts)
    lo, hi = char_ngrams
    if not len(cp) or hi < max(lo, 1):
        return np.zeros(0, kd)
    keep = (
        _word_chars().take(np.minimum(cp, _WORD_TABLE_SIZE - 1)) if drop_nonword else cp != _SPACE
    )
    ch = cp[keep].astype(np.uint64)
    ch += _U64(1)
    is_sep = ch == _U64(_DOC_SEP + 1)  # separators are kept (word-table entry / not a space)
    m = len(ch)
    orders = [k for k in range(max(lo, 1), hi + 1) if k <= m]
    if not orders:
        return np.zeros(0, kd)
    # Row of every kept position: a separator starts the next row.
    rowkey = np.cumsum(is_sep, dtype=kd)
    rowkey <<= kd(n_bits)
    out = np.empty((m, len(orders)), dtype=kd)
    ok = np.zeros((m, len(orders)), dtype=bool)
    shift = _U64(64 - n_bits)
    key, bad = ch, is_sep
    for order in range(1, orders[-1] + 1):
        if order > 1:  # extend every (order-1)-gram by the next character
            mm = m - order + 1
            key = key[:mm] << _CP_BITS
            key |= ch[order - 1 :]
            bad = bad[:mm] | is_sep[order - 1 :]
        if order < orders[0]:
            continue
        j = order - orders[0]
        mm = len(key)
        grams = key ^ _SALT["c"]
        _mix(grams)
        grams >>= shift
        col = grams.astype(kd) if kd is np.uint32 else grams
        np.bitwise_or(rowkey[:mm], col, out=out[:mm, j])
        np.logical_not(bad, out=ok[:mm, j])
        if useful is not None:
            ok[:mm, j] &= useful.take(col)  # take: ~1/3 faster than fancy indexing
    flat = out[ok]  # row-major: position order, so rows ascend
    if len(flat) > _CHAR_SORT_BLOCK:
        # Block edges at row starts, about _CHAR_SORT_BLOCK keys apart.
        per_row = np.bincount((flat >> kd(n_bits)).astype(np.intp), minlength=n)
        starts = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(per_row, out=starts[1:])
        cut = np.unique(starts[np.searchsorted(starts, np.arange(0, len(flat), _CHAR_SORT_BLOCK))])
        edges = np.append(cut, len(flat)).tolist()
        for a, b in pairwise(edges):
            flat[a:b].sort()
    else:
        flat.sort()
    return flat


def hashed_counts(
    texts: Sequence[str],
    n_bits: int = 20,
    word_ngrams: tuple[int, int] | None = (1, 2),
    char_ngrams: tuple[int, int] | None = (2, 3),
    sublinear_tf: bool = True,
    dtype: type = np.float32,
    useful: np.ndarray | None = None,
    drop_nonword: bool = False,
) -> sp.csr_matrix:
    """CSR matrix (len(texts) x 2**n_bits) of n-gram counts (1 + log tf when sublinear).

    Rows are sorted and each row's columns ascend, so the matrix is canonical
    without scipy's per-row sort.  ``useful`` (a boolean mask over the
    columns) leaves out columns no consumer reads, before the sort that
    counts them (the tagger passes the union of its models' kept columns).
    """
    n = len(texts)
    width = 1 << n_bits
    if word_ngrams is None and char_ngrams is not None:
        edges = _chunk_edges(texts, _CHAR_CHUNK_CHARS)
        if len(edges) == 2:
            combined = _char_keys_sorted(texts, char_ngrams, drop_nonword, n_bits, useful, n)
        else:
            parts = []
            for start, stop in pairwise(edges):
                part = _char_keys_sorted(
                    texts[start:stop], char_ngrams, drop_nonword, n_bits, useful, n
                )
                if start:
                    part += part.dtype.type(start << n_bits)
                parts.append(part)
            combined = np.concatenate(parts)
    else:
        combined = _word_keys_sorted(texts, n_bits, word_ngrams, char_ngrams, drop_nonword, useful)
    if not len(combined):
        return sp.csr_matrix((n, width), dtype=dtype)
    first = np.empty(len(combined), dtype=bool)
    first[0] = True
    np.not_equal(combined[1:], combined[:-1], out=first[1:])
    idx = np.flatnonzero(first)
    counts = np.diff(idx, append=len(combined)).astype(dtype)
    uniq = combined[idx]
    if sublinear_tf:
        np.log(counts, out=counts)
        counts += 1
    ucol = (uniq & uniq.dtype.type(width - 1)).astype(np.int32)
    # uniq is sorted, so each row's entries start where its first key would.
    row_starts = np.arange(n + 1, dtype=uniq.dtype) << uniq.dtype.type(n_bits)
    indptr = np.searchsorted(uniq, row_starts).astype(np.int64)
    out = sp.csr_matrix((counts, ucol, indptr), shape=(n, width))
    out.has_sorted_indices = True
    out.has_canonical_format = True
    return out


def _chunk_edges(texts: Sequence[str], chars: int) -> list[int]:
    """Indices cutting ``texts`` into runs of about ``chars`` characters, each run at
    least one text: ``[0, ..., len(texts)]`` (``[0, n]``: one run)."""
    n = len(texts)
    ends = np.cumsum([len(t) + 1 for t in texts])  # + 1: the separator
    if not n or ends[-1] <= chars:
        return [0, n]
    cuts = np.searchsorted(ends, np.arange(chars, ends[-1], chars)) + 1
    return [0, *sorted({int(c) for c in cuts if 0 < c < n}), n]


def _word_keys_sorted(
    texts: Sequence[str],
    n_bits: int,
    word_ngrams: tuple[int, int] | None,
    char_ngrams: tuple[int, int] | None,
    drop_nonword: bool,
    useful: np.ndarray | None,
) -> np.ndarray:
    """Sorted (row << n_bits | column) keys when word n-grams are read (older models)."""
    parts_rows, parts_keys = _ngram_parts(texts, word_ngrams, char_ngrams, drop_nonword)
    n = len(texts)
    small = n << n_bits < 1 << 32  # small batches: 32-bit keys sort faster
    shift = _U64(64 - n_bits)
    all_rows: list[np.ndarray] = []
    all_keys: list[np.ndarray] = []
    for rows, keys in zip(parts_rows, parts_keys, strict=True):
        col = keys >> shift
        if useful is not None:
            sel = useful[col]
            col, rows = col[sel], rows[sel]
        if not len(col):
            continue
        if small:
            combined = (rows.astype(np.uint32) << np.uint32(n_bits)) | col.astype(np.uint32)
        else:
            combined = (rows.astype(np.uint64) << _U64(n_bits)) | col
        all_rows.append(rows)
        all_keys.append(combined)
    if not all_keys:
        return np.zeros(0, np.uint32 if small else np.uint64)
    return _sorted_keys(all_rows, all_keys, n)


class HashedNgrams(TransformerMixin, BaseEstimator):
    """Stateless: prepared texts -> hashed n-gram (sublinear) term frequencies.

    Follow it with :class:`HashedTfidf` for IDF weights, column pruning and
    L2 normalisation; the tf is already ``1 + log(count)`` here.  Inside
    :func:`shared_batch` it returns the batch's one shared count.
    """

    def __init__(
        self,
        n_bits: int = 20,
        word_ngrams: tuple[int, int] | None = (1, 2),
        char_ngrams: tuple[int, int] | None = (2, 3),
        sublinear_tf: bool = True,
        drop_nonword: bool = False,
    ) -> None:
        self.n_bits = n_bits
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.sublinear_tf = sublinear_tf
        self.drop_nonword = drop_nonword

    def fit(self, X, y=None):
        self.n_features_out_ = 1 << self.n_bits
        return self

    def transform(self, X) -> sp.csr_matrix:
        texts = _texts(X)
        batch = _BATCH.get()
        if batch is not None:
            cached = batch.counts(texts, self.params())
            if cached is not None:
                return cached
        return hashed_counts(texts, **self.params())

    def params(self) -> dict[str, object]:
        """The arguments of :func:`hashed_counts` (equal params -> one shared computation)."""
        return {
            "n_bits": int(self.n_bits),
            "word_ngrams": None if self.word_ngrams is None else tuple(self.word_ngrams),
            "char_ngrams": None if self.char_ngrams is None else tuple(self.char_ngrams),
            "sublinear_tf": bool(self.sublinear_tf),
            # Models saved before this parameter existed lack the attribute.
            "drop_nonword": bool(getattr(self, "drop_nonword", False)),
        }

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.string = True
        tags.input_tags.two_d_array = False
        tags.requires_fit = False
        return tags


def _texts(X) -> list[str]:
    if hasattr(X, "to_numpy"):
        X = X.to_numpy()
    if isinstance(X, np.ndarray):
        X = X.ravel().tolist()
    return ["" if t is None or t != t else str(t) for t in X]


class HashedTfidf(TransformerMixin, BaseEstimator):
    """IDF weighting and L2 normalisation of hashed counts, keeping only useful columns.

    Like ``TfidfTransformer`` (smooth IDF), but a column seen in fewer than
    ``min_df`` training documents, in more than ``max_df`` of them, or outside
    the ``max_features`` most frequent ones is dropped: the same pruning a
    vocabulary-based vectorizer does with min_df / max_df / max_features,
    worth about a point of topic macro-F1 (hapax n-grams are noise, very
    common character n-grams carry no topic).

    The kept columns are renumbered 0..K-1, so the model after this step
    has K rows of weights instead of 2**20: its weights stay in the CPU
    cache, and dropped n-grams cost nothing downstream.
    """

    def __init__(
        self, min_df: int = 2, max_df: float = 1.0, max_features: int | None = None
    ) -> None:
        self.min_df = min_df
        self.max_df = max_df
        self.max_features = max_features

    def fit(self, X, y=None):
        X = sp.csr_matrix(X)
        n, width = X.shape
        df = np.bincount(X.indices, minlength=width)
        keep = (df >= self.min_df) & (df <= self.max_df * n)
        if self.max_features is not None and keep.sum() > self.max_features:
            tf = np.bincount(X.indices, weights=X.data, minlength=width)
            tf[~keep] = -1
            top = np.argpartition(-tf, self.max_features)[: self.max_features]
            keep = np.zeros_like(keep)
            keep[top] = True
        kept = np.flatnonzero(keep)
        self.columns_ = np.full(width, -1, dtype=np.int32)
        self.columns_[kept] = np.arange(len(kept), dtype=np.int32)
        self.idf_ = (np.log((1 + n) / (1 + df[kept])) + 1).astype(np.float32)
        self.n_features_in_ = width
        return self

    def transform(self, X) -> sp.csr_matrix:
        if not sp.isspmatrix_csr(X):
            X = sp.csr_matrix(X)
        # Positions of kept entries, then take(): about twice as fast as boolean
        # masks and a cumulative sum over every entry (this runs per model per batch).
        batch = _BATCH.get()
        cols = batch.kept_columns(self, X) if batch is not None else None
        if cols is None:
            cols = self.columns_[X.indices]
        idx = np.flatnonzero(cols >= 0)
        cols = cols.take(idx)
        data = X.data.take(idx)
        if data.dtype != np.float32:
            data = data.astype(np.float32)
        data *= self.idf_.take(cols)
        indptr = np.searchsorted(idx, X.indptr)  # kept entries before each row's start
        out = sp.csr_matrix((data, cols, indptr), shape=(X.shape[0], len(self.idf_)))
        out.has_sorted_indices = bool(X.has_sorted_indices)  # renumbering keeps the order
        _normalize_rows(out)
        return out


def _normalize_rows(X: sp.csr_matrix) -> None:
    """In place: L2-normalise each row (empty rows stay empty)."""
    from sklearn.utils.sparsefuncs_fast import inplace_csr_row_normalize_l2

    inplace_csr_row_normalize_l2(X)


# -- one n-gram analysis per batch for every model -------------------------------


class ColumnUnion:
    """The columns some model reads (of one HashedNgrams parameter set), numbered 0..U-1.

    Why: every model's :class:`HashedTfidf` looks up each entry of the
    shared count in its own 2**20-entry column table (4 MB), a cache miss
    per entry, three times a batch.  Within :func:`shared_batch` the
    entries' union numbers are looked up once, and each model then reads a
    table over the union only (its ``columns_`` at the union's columns,
    ~0.7 MB): about 2 us a letter less per model, same columns.
    """

    def __init__(self, mask: np.ndarray) -> None:
        self.mask = mask
        self.cols = np.flatnonzero(mask)
        self.rank = np.full(len(mask), -1, dtype=np.int32)
        self.rank[self.cols] = np.arange(len(self.cols), dtype=np.int32)
        # id(tfidf) -> (tfidf, its columns_ at the union's columns); the object
        # is kept so that its id cannot be reused by another one.
        self._tables: dict[int, tuple[HashedTfidf, np.ndarray]] = {}

    def table(self, tfidf: HashedTfidf) -> np.ndarray:
        """``tfidf.columns_`` restricted to the union, indexed by union number."""
        hit = self._tables.get(id(tfidf))
        if hit is None or hit[0] is not tfidf:
            hit = self._tables[id(tfidf)] = (tfidf, tfidf.columns_[self.cols])
        return hit[1]


Useful = np.ndarray | ColumnUnion


class _Batch:
    """Texts of one tagging batch and the counts computed for them, per parameter set."""

    def __init__(
        self, texts: Sequence[str], useful: dict[tuple[tuple[str, object], ...], Useful]
    ) -> None:
        self.texts = list(texts)
        self.useful = useful
        # Rows by object identity: the models get these very str objects (or a subset).
        self.row = {id(t): i for i, t in enumerate(self.texts)}
        self.done: dict[tuple[tuple[str, object], ...], sp.csr_matrix] = {}
        # id(full count) -> (the count, its column union, union numbers of its entries).
        self.ranked: dict[int, list] = {}
        # Results other modules compute once per batch (classify.compiled's fused scores).
        self.memo: dict[int, tuple[object, object]] = {}

    def counts(self, texts: list[str], params: dict[str, object]) -> sp.csr_matrix | None:
        """The batch's counts for `texts` (all rows or a subset), or None if not from this batch."""
        found = self.lookup(texts, params)
        if found is None:
            return None
        full, rows = found
        return full if rows is None else full[rows]

    def lookup(
        self, texts: Sequence[str], params: dict[str, object]
    ) -> tuple[sp.csr_matrix, np.ndarray | None] | None:
        """The whole batch's count and the rows of `texts` in it (None: all rows, in order),
        or None if some text is not one of the batch's str objects."""
        get = self.row.get
        rows = [get(id(t)) for t in texts]
        if None in rows:
            return None
        key = params_key(params)
        full = self.done.get(key)
        if full is None:
            useful = self.useful.get(key)
            union = useful if isinstance(useful, ColumnUnion) else None
            full = self.done[key] = hashed_counts(
                self.texts,
                useful=useful.mask if union is not None else useful,
                **params,  # type: ignore[arg-type]
            )
            if union is not None:
                self.ranked[id(full)] = [full, union, None]
        if len(rows) == len(self.texts) and rows == list(range(len(rows))):
            return full, None
        return full, np.asarray(rows, dtype=np.int64)

    def union_numbers(self, X: sp.csr_matrix) -> tuple[ColumnUnion, np.ndarray] | None:
        """The column union of a shared count and the union number of each of its entries
        (looked up once per batch, whoever asks first)."""
        entry = self.ranked.get(id(X))
        if entry is None or entry[0] is not X:
            return None
        if entry[2] is None:
            entry[2] = entry[1].rank.take(X.indices)
        return entry[1], entry[2]

    def kept_columns(self, tfidf: HashedTfidf, X: sp.csr_matrix) -> np.ndarray | None:
        """``tfidf.columns_[X.indices]`` through the column union when X is a shared count."""
        found = self.union_numbers(X)
        if found is None or len(tfidf.columns_) != len(found[0].mask):
            return None
        union, numbers = found
        return union.table(tfidf).take(numbers)


_BATCH: contextvars.ContextVar[_Batch | None] = contextvars.ContextVar("hashed_batch", default=None)


class SharedCount(NamedTuple):
    """What :func:`shared_count` finds: the batch's count and where the asked texts are in it."""

    #: The whole batch's count (union columns only when the tagger gave a ColumnUnion).
    matrix: sp.csr_matrix
    #: Rows of the asked texts in ``matrix``; None: all rows, in order.
    rows: np.ndarray | None
    #: The column union and the union number of every entry of ``matrix``, or None.
    numbers: tuple[ColumnUnion, np.ndarray] | None
    #: Per-batch results of other consumers: id(owner) -> (owner, result).
    memo: dict[int, tuple[object, object]]


def shared_count(texts: Sequence[str], params: dict[str, object]) -> SharedCount | None:
    """Inside :func:`shared_batch`: the batch's count for ``params`` and the rows of
    ``texts`` in it, so that a consumer can compute something once for the whole
    batch (``classify.compiled`` scores the three models' TF-IDF layers in one
    product); None outside a batch or for texts that are not the batch's."""
    batch = _BATCH.get()
    if batch is None:
        return None
    found = batch.lookup(texts, params)
    if found is None:
        return None
    full, rows = found
    return SharedCount(full, rows, batch.union_numbers(full), batch.memo)


def params_key(params: dict[str, object]) -> tuple[tuple[str, object], ...]:
    return tuple(sorted(params.items()))


def useful_columns(models: Sequence[object]) -> dict[tuple[tuple[str, object], ...], np.ndarray]:
    """Per HashedNgrams parameter set: the columns any of the models can use.

    Only when every HashedNgrams step (of that parameter set) in the models
    is directly followed by a :class:`HashedTfidf` (which drops all other
    columns) is a mask returned for it; otherwise all columns stay.
    """
    from sklearn.pipeline import Pipeline

    masks: dict[tuple[tuple[str, object], ...], np.ndarray] = {}
    unsafe: set[tuple[tuple[str, object], ...]] = set()

    def walk(obj: object, seen: set[int]) -> None:
        if id(obj) in seen:
            return
        seen.add(id(obj))
        if isinstance(obj, Pipeline):
            steps = [s for _, s in obj.steps]
            for k, step in enumerate(steps):
                if isinstance(step, HashedNgrams):
                    key = params_key(step.params())
                    nxt = steps[k + 1] if k + 1 < len(steps) else None
                    if isinstance(nxt, HashedTfidf) and not hasattr(nxt, "columns_"):
                        seen.add(
                            id(step)
                        )  # an unfitted template (e.g. StackingClassifier.estimators)
                        continue
                    if isinstance(nxt, HashedTfidf):
                        mask = masks.setdefault(key, np.zeros(1 << step.n_bits, dtype=bool))
                        if len(nxt.columns_) == len(mask):
                            mask |= nxt.columns_ >= 0
                            seen.add(id(step))  # accounted for: not "used alone" below
                            continue
                    unsafe.add(key)
        elif isinstance(obj, HashedNgrams):  # used outside a Pipeline: needs every column
            unsafe.add(params_key(obj.params()))
            return
        children: list[object] = []
        if isinstance(obj, list | tuple):
            children = list(obj)
        elif isinstance(obj, dict):
            children = list(obj.values())
        elif hasattr(obj, "__dict__") and not isinstance(obj, np.ndarray | type):
            children = list(vars(obj).values())
        for child in children:
            if isinstance(child, str | bytes | int | float | np.ndarray) or child is None:
                continue
            walk(child, seen)

    seen: set[int] = set()
    for model in models:
        walk(model, seen)
    return {k: v for k, v in masks.items() if k not in unsafe}


@contextmanager
def shared_batch(
    texts: Sequence[str],
    useful: dict[tuple[tuple[str, object], ...], Useful] | None = None,
) -> Iterator[None]:
    """Within the block, every :class:`HashedNgrams` given these texts (or some of
    them, as the same str objects) reuses one computation per parameter set.

    The tagger wraps its three models in this: the n-grams of a batch are
    hashed and counted once instead of three times, with no change to any
    model's output (consumers must not modify the returned matrix;
    :class:`HashedTfidf` makes a new one).  ``useful`` comes from
    :func:`useful_columns`: columns no model reads are not even counted
    (given as :class:`ColumnUnion`, the models' IDF steps also find their
    columns through the union's numbering, see there).
    """
    token = _BATCH.set(_Batch(texts, useful or {}))
    try:
        yield
    finally:
        _BATCH.reset(token)


# -- near-duplicate letters ------------------------------------------------------


def shingle_vectors(texts: Sequence[str], n: int = 3) -> sp.csr_matrix:
    """L2-normalised binary character n-gram (shingle) vectors: their dot product is the
    cosine similarity of two texts' shingle sets (punctuation and spaces ignored)."""
    X = hashed_counts(
        texts,
        n_bits=22,
        word_ngrams=None,
        char_ngrams=(n, n),
        sublinear_tf=False,
        drop_nonword=True,
    )
    X.data[:] = 1
    _normalize_rows(X)
    return X


def near_duplicate_groups(texts: Sequence[str], threshold: float = 0.8) -> np.ndarray:
    """Cluster number of every text: texts whose character-trigram sets have a cosine
    similarity of at least ``threshold`` (directly or through others) share a cluster.

    Why: the topic data holds re-posted and lightly edited letters (about 10 %
    of the 8,242 pre-cut letters are in a cluster of two or more at 0.8).  A
    random split puts copies on both sides and overstates accuracy on unseen
    letters; cross-validation grouped by these clusters does not.
    """
    from scipy.sparse.csgraph import connected_components

    X = shingle_vectors(texts)
    sim = (X @ X.T).tocoo()
    pair = (sim.data >= threshold) & (sim.row < sim.col)
    graph = sp.coo_matrix(
        (np.ones(int(pair.sum())), (sim.row[pair], sim.col[pair])), shape=(len(texts),) * 2
    )
    return connected_components(graph, directed=False)[1]
