"""One n-gram analysis per message for all three models (the tagger's fast path).

Each shipped pipeline has its own word and character TF-IDF vectorizers, but
they all analyse the prepared text the same way (word uni/bigrams of the
tokens, character 2–3-grams of the joined tokens); only their vocabularies
and IDF weights differ.  Calling the three pipelines one after the other
therefore builds the same n-grams three times and looks each one up in three
dictionaries (``_count_vocab`` was ~70 % of tagging time).

:class:`SharedFeatures` analyses each text once per analyzer, looks every
n-gram up once in the union of the vocabularies, and derives each model's
count matrix by a sparse column selection; each vectorizer's own fitted
``TfidfTransformer`` then weights it.  The result is the same matrix as the
vectorizer's ``transform`` (counts are integers, so bit for bit), hence the
same predictions: the models are unchanged and need no retraining.
``tests/classify/test_shared.py`` checks the equality against the plain
pipelines.

:class:`FastModel` runs one model on those shared matrices for the pipeline
shapes built by ``classify.pipelines`` (topic, urgency, rumour).  A model of
any other shape (a user-trained one made differently) is run through its own
``predict_proba``, so the fast path can never change an answer, only skip.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from itertools import chain, repeat
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import StackingClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion, Pipeline

#: Parameters that decide what a vectorizer's analyzer produces.  Vectorizers
#: equal on all of them share one analysis.
_ANALYZER_PARAMS = (
    "input",
    "encoding",
    "decode_error",
    "strip_accents",
    "lowercase",
    "preprocessor",
    "tokenizer",
    "stop_words",
    "token_pattern",
    "ngram_range",
    "analyzer",
)


def _analyzer_key(vec: TfidfVectorizer) -> tuple[Any, ...]:
    params = vec.get_params(deep=False)
    key = []
    for name in _ANALYZER_PARAMS:
        value = params.get(name)
        if isinstance(value, list):
            value = tuple(value)
        elif isinstance(value, (set, frozenset)):
            value = tuple(sorted(value))
        key.append(value if not callable(value) else ("callable", id(value)))
    return tuple(key)


class _Group:
    """Vectorizers sharing one analyzer: the union vocabulary and per-vectorizer selections."""

    def __init__(self, first: TfidfVectorizer) -> None:
        self.analyzer = first.build_analyzer()
        self.first = first
        self.vocab: dict[str, int] = {}
        self.members: list[TfidfVectorizer] = []
        self.selections: list[sp.csr_matrix] = []
        self.fast: _CharKeys | _WordKeys | None = None

    def add(self, vec: TfidfVectorizer) -> int:
        for term in vec.vocabulary_:
            if term not in self.vocab:
                self.vocab[term] = len(self.vocab)
        self.members.append(vec)
        return len(self.members) - 1

    def finish(self) -> None:
        size = len(self.vocab)
        for vec in self.members:
            rows = np.fromiter(
                (self.vocab[t] for t in vec.vocabulary_), dtype=np.int64, count=len(vec.vocabulary_)
            )
            cols = np.fromiter(vec.vocabulary_.values(), dtype=np.int64, count=len(rows))
            sel = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float64), (rows, cols)),
                shape=(size, len(vec.vocabulary_)),
            )
            self.selections.append(sel)
        self.fast = _CharKeys.make(self.first, self.vocab) or _WordKeys.make(self.first, self.vocab)
        self.size = size
        if self.fast is not None:
            self.vocab = {}  # integer keys replace the string look-up: free the memory

    def counts(self, texts: Sequence[str]) -> sp.csr_matrix:
        """Union-vocabulary counts of the texts (one analysis and lookup per n-gram)."""
        if self.fast is not None:
            rows, gids = self.fast.lookup(texts)
            matrix = sp.csr_matrix(
                (np.ones(len(rows), dtype=np.float64), (rows, gids)),
                shape=(len(texts), self.size),
            )
            matrix.sum_duplicates()
            return matrix
        get = self.vocab.get
        analyse = self.analyzer
        indices: list[int] = []
        indptr = [0]
        for text in texts:
            ids = [i for i in map(get, analyse(text)) if i is not None]
            indices.extend(ids)
            indptr.append(len(indices))
        data = np.ones(len(indices), dtype=np.float64)
        matrix = sp.csr_matrix(
            (data, np.asarray(indices, dtype=np.int64), np.asarray(indptr, dtype=np.int64)),
            shape=(len(texts), len(self.vocab)),
        )
        matrix.sum_duplicates()
        return matrix


# -- n-grams as integers: numpy lookups instead of one dict lookup per n-gram --

_CP_BITS = 21  # Unicode code points are < 2**21; +1 keeps every key of n chars >= 2**(21*(n-1))


def _lookup(keys: np.ndarray, rows: np.ndarray, table: tuple[np.ndarray, np.ndarray]):
    index, gids = table
    if not len(keys) or not len(index):
        return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    pos = index.get_indexer(keys)  # a C hash table: -1 for n-grams outside the vocabulary
    found = pos >= 0
    return rows[found].astype(np.int64), gids[pos[found]]


def _table(keys: list[int], gids: list[int]) -> tuple[np.ndarray, np.ndarray]:
    index = pd.Index(np.asarray(keys, dtype=np.uint64))
    if not index.is_unique:
        raise ValueError("n-gram keys are not unique")
    return index, np.asarray(gids, dtype=np.int64)


class _CharKeys:
    """Character n-grams (n <= 3) of a batch as uint64 keys, exactly as sklearn's 'char' analyzer."""

    def __init__(self, preprocess: Any, lo: int, hi: int, vocab: Mapping[str, int]) -> None:
        self.preprocess = preprocess
        self.lo, self.hi = lo, hi
        keys, gids = [], []
        for term, gid in vocab.items():
            key = 0
            for ch in term:
                key = (key << _CP_BITS) | (ord(ch) + 1)
            keys.append(key)
            gids.append(gid)
        self.table = _table(keys, gids)

    @classmethod
    def make(cls, vec: TfidfVectorizer, vocab: Mapping[str, int]) -> _CharKeys | None:
        lo, hi = vec.ngram_range
        if vec.analyzer != "char" or not 1 <= lo <= hi <= 3 or vec.input != "content":
            return None
        if any(not 1 <= len(t) <= 3 for t in vocab):
            return None
        keys = cls(vec.build_preprocessor(), lo, hi, vocab)
        # The analyzer folds whitespace runs with the vectorizer's own pattern.
        keys.white_spaces = vec._white_spaces
        return keys

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        white = self.white_spaces
        docs = [white.sub(" ", self.preprocess(t)) for t in texts]
        lens = np.fromiter(map(len, docs), dtype=np.int64, count=len(docs))
        cp = np.frombuffer(
            "".join(docs).encode("utf-32-le", "surrogatepass"), dtype=np.uint32
        ).astype(np.uint64)
        cp += 1
        row = np.repeat(np.arange(len(docs), dtype=np.int64), lens)
        all_keys, all_rows = [], []
        for n in range(self.lo, self.hi + 1):
            m = len(cp) - n + 1
            if m <= 0:
                continue
            key = cp[:m].copy()
            for j in range(1, n):
                key <<= np.uint64(_CP_BITS)
                key |= cp[j : j + m]
            inside = row[:m] == row[n - 1 : n - 1 + m]
            all_keys.append(key[inside])
            all_rows.append(row[:m][inside])
        if not all_keys:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return _lookup(np.concatenate(all_keys), np.concatenate(all_rows), self.table)


class _WordKeys:
    """Word uni/bigrams of whitespace-split tokens as integer keys (token ids)."""

    def __init__(self, tokenize: Any, hi: int, vocab: Mapping[str, int]) -> None:
        self.tokenize = tokenize
        self.hi = hi
        self.tokens: dict[str, int] = {}
        for term in vocab:
            for tok in term.split(" "):
                self.tokens.setdefault(tok, len(self.tokens) + 1)
        self.base = len(self.tokens) + 1
        keys, gids = [], []
        for term, gid in vocab.items():
            parts = term.split(" ")
            key = self.tokens[parts[0]]
            if len(parts) == 2:
                key = key * self.base + self.tokens[parts[1]]
            keys.append(key)
            gids.append(gid)
        self.table = _table(keys, gids)

    @classmethod
    def make(cls, vec: TfidfVectorizer, vocab: Mapping[str, int]) -> _WordKeys | None:
        from classify.text import split_tokens

        lo, hi = vec.ngram_range
        plain = (
            vec.analyzer == "word"
            and vec.tokenizer is split_tokens
            and vec.preprocessor is None
            and not vec.lowercase
            and vec.strip_accents is None
            and vec.stop_words is None
            and vec.input == "content"
        )
        if not plain or lo != 1 or hi not in (1, 2):
            return None
        if any(t == "" or len(t.split(" ")) > hi or "" in t.split(" ") for t in vocab):
            return None
        if len(vocab) and (len(vocab) + 2) ** 2 >= 2**62:
            return None
        return cls(split_tokens, hi, vocab)

    def lookup(self, texts: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
        get = self.tokens.get
        toks = [self.tokenize(t) for t in texts]
        lens = np.fromiter(map(len, toks), dtype=np.int64, count=len(toks))
        ids = np.fromiter(
            map(get, chain.from_iterable(toks), repeat(0)), dtype=np.int64, count=int(lens.sum())
        )
        row = np.repeat(np.arange(len(toks), dtype=np.int64), lens)
        known = ids > 0
        keys = [ids[known].astype(np.uint64)]
        rows = [row[known]]
        if self.hi == 2 and len(ids) > 1:
            pair = known[:-1] & known[1:] & (row[:-1] == row[1:])
            keys.append((ids[:-1][pair] * self.base + ids[1:][pair]).astype(np.uint64))
            rows.append(row[:-1][pair])
        return _lookup(np.concatenate(keys), np.concatenate(rows), self.table)


class SharedFeatures:
    """TF-IDF matrices of many fitted vectorizers from one analysis per analyzer."""

    def __init__(self, vectorizers: Sequence[TfidfVectorizer]) -> None:
        self._groups: list[_Group] = []
        self._where: dict[int, tuple[int, int]] = {}
        by_key: dict[tuple[Any, ...], int] = {}
        for vec in vectorizers:
            if id(vec) in self._where:
                continue
            key = _analyzer_key(vec)
            if key not in by_key:
                by_key[key] = len(self._groups)
                self._groups.append(_Group(vec))
            g = by_key[key]
            self._where[id(vec)] = (g, self._groups[g].add(vec))
        for group in self._groups:
            group.finish()

    def __contains__(self, vec: object) -> bool:
        return id(vec) in self._where

    def transform(self, texts: Sequence[str]) -> FeatureCache:
        """Analyse the texts once; the returned cache gives each vectorizer's matrix."""
        return FeatureCache(self, texts)


class FeatureCache:
    """Per-batch: union counts per analyzer group, TF-IDF per vectorizer on demand."""

    def __init__(self, shared: SharedFeatures, texts: Sequence[str]) -> None:
        self._shared = shared
        self._texts = list(texts)
        self._counts: dict[int, sp.csr_matrix] = {}
        self._tfidf: dict[int, sp.csr_matrix] = {}

    def __len__(self) -> int:
        return len(self._texts)

    def subset(self, rows: Sequence[int]) -> FeatureCache:
        """The same cache restricted to some rows (e.g. messages that get a rumour score)."""
        sub = FeatureCache(self._shared, [self._texts[i] for i in rows])
        idx = np.asarray(rows, dtype=np.int64)
        sub._counts = {g: m[idx] for g, m in self._counts.items()}
        return sub

    def tfidf(self, vec: TfidfVectorizer) -> sp.csr_matrix:
        """What ``vec.transform(texts)`` returns, computed from the shared counts."""
        key = id(vec)
        if key not in self._tfidf:
            g, member = self._shared._where[key]
            if g not in self._counts:
                self._counts[g] = self._shared._groups[g].counts(self._texts)
            counts = self._counts[g] @ self._shared._groups[g].selections[member]
            counts = sp.csr_matrix(counts, dtype=vec.dtype)
            counts.sort_indices()
            if vec.binary:
                counts.data.fill(1)
            self._tfidf[key] = vec._tfidf.transform(counts, copy=False)
        return self._tfidf[key]


# -- running the shipped pipeline shapes on a FeatureCache -------------------


def _union_parts(union: FeatureUnion) -> list[tuple[str, Any]] | None:
    if union.transformer_weights:
        return None
    return [(n, t) for n, t in union.transformer_list if t not in ("drop", None)]


def _vectorizers(model: Any) -> list[TfidfVectorizer]:
    """TF-IDF vectorizers of a model of a supported shape (empty when unsupported)."""
    plan = _plan(model)
    return plan[1] if plan else []


def _plan(model: Any) -> tuple[str, list[TfidfVectorizer]] | None:
    """('union', vecs) for features+clf pipelines, ('stack', vecs) for the rumour stack."""
    if not isinstance(model, Pipeline):
        return None
    if len(model.steps) == 2 and isinstance(model.steps[0][1], FeatureUnion):
        parts = _union_parts(model.steps[0][1])
        if parts is None:
            return None
        vecs = [t for _, t in parts if isinstance(t, TfidfVectorizer)]
        return ("union", vecs) if vecs else None
    if len(model.steps) == 1 and isinstance(model.steps[0][1], StackingClassifier):
        stack = model.steps[0][1]
        if getattr(stack, "passthrough", False):
            return None
        text = stack.estimators_[0] if stack.estimators_ else None
        ct = _text_columns(text)
        if ct is None:
            return None
        return ("stack", [t for _, t, _ in ct])
    return None


def _text_columns(text: Any) -> list[tuple[str, TfidfVectorizer, str]] | None:
    """The text half of the rumour stack: Pipeline(ColumnTransformer(vectorizers on one column), clf)."""
    if not isinstance(text, Pipeline) or len(text.steps) != 2:
        return None
    ct = text.steps[0][1]
    if not isinstance(ct, ColumnTransformer) or ct.transformer_weights:
        return None
    out = []
    for name, trans, cols in ct.transformers_:
        if isinstance(trans, str) and (trans == "drop" or len(cols) == 0):
            continue  # dropped columns, or an empty remainder
        if not isinstance(trans, TfidfVectorizer) or not isinstance(cols, str):
            return None
        out.append((name, trans, cols))
    return out or None


class FastModel:
    """One model's predict_proba from a FeatureCache (falls back to the plain pipeline)."""

    def __init__(self, model: Any, shared: SharedFeatures | None) -> None:
        self.model = model
        plan = _plan(model) if shared is not None else None
        if plan is not None and not all(v in shared for v in plan[1]):  # type: ignore[operator]
            plan = None
        self.kind = plan[0] if plan else "plain"
        self.classes_ = model.classes_

    def predict_proba(self, cache: FeatureCache, texts: list[str], frame: Any = None) -> np.ndarray:
        """Class probabilities; `frame` is the model's own input when it is not the texts."""
        if self.kind == "union":
            return self._union(cache, texts)
        if self.kind == "stack":
            return self._stack(cache, frame)
        return self.model.predict_proba(texts if frame is None else frame)

    def _union(self, cache: FeatureCache, texts: list[str]) -> np.ndarray:
        union, clf = self.model.steps[0][1], self.model.steps[1][1]
        blocks = []
        for _, trans in _union_parts(union) or []:
            if isinstance(trans, TfidfVectorizer):
                blocks.append(cache.tfidf(trans))
            else:
                blocks.append(trans.transform(texts))
        # As FeatureUnion stacks its parts.
        sparse = any(sp.issparse(b) for b in blocks)
        X = sp.hstack(blocks).tocsr() if sparse else np.hstack(blocks)
        return clf.predict_proba(X)

    def _stack(self, cache: FeatureCache, frame: pd.DataFrame) -> np.ndarray:
        stack = self.model.steps[0][1]
        predictions = []
        for k, (est, method) in enumerate(zip(stack.estimators_, stack.stack_method_, strict=True)):
            if est == "drop":
                continue
            if k == 0:
                ct, clf = est.steps[0][1], est.steps[1][1]
                blocks = [cache.tfidf(t) for _, t, _ in _text_columns(est) or []]
                X = (
                    sp.hstack(blocks).tocsr()
                    if ct.sparse_output_
                    else np.hstack([b.toarray() for b in blocks])
                )
                predictions.append(getattr(clf, method)(X))
            else:
                predictions.append(getattr(est, method)(frame))
        return stack.final_estimator_.predict_proba(
            stack._concatenate_predictions(frame, predictions)
        )


def fast_models(models: Mapping[str, Any]) -> tuple[SharedFeatures | None, dict[str, FastModel]]:
    """A SharedFeatures over all supported models' vectorizers, and one FastModel per task."""
    vecs = [v for m in models.values() for v in _vectorizers(m)]
    try:
        shared = SharedFeatures(vecs) if vecs else None
    except (AttributeError, TypeError, ValueError):  # unfitted or odd vectorizer: plain path
        shared = None
    return shared, {task: FastModel(m, shared) for task, m in models.items()}
