"""The Tagger: fills topic, urgency and rumour fields of messages in place.

This is the interface the crawl pipeline, ``govpulse import``, the dashboard
and ``govpulse reclassify`` call.  Each message is prepared once per input
form its models read (``classify.text.PREPARE``; the shipped models all read
``prepare_chars``, no jieba cut) and the same string feeds all three models.

Score semantics (documented in docs/classify.md):

* ``topic_score`` is the calibrated probability of the chosen topic.  Below
  ``unsure_below`` (default 0.5) the topic is a guess and the dashboard shows
  it as unsure; below ``floor`` (default 0.2) no topic is set (None).
* ``urgency`` combines the model with the cue lexicon: a critical cue
  (燃气泄漏, 跳楼 …) lifts the level to 特急 when the model gives 特急 at least
  ``rule_min_p``; the reasons list names the cues and the model evidence.
* ``rumour_score`` is set for weibo and forum messages only; mailbox letters
  are addressed to the government and are not rumours, so they get None.
  The score is halved when the message already has an official reply and
  multiplied by 0.3 when an official refutation is found: a refutation
  phrase (辟谣, 不实 …) in that reply or in a post by a verified account.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sklearn

from classify import cues
from classify.compiled import Scorer, compile_models
from classify.decide import adjust_rumour, decide_urgency_rows
from classify.hashing import ColumnUnion, shared_batch, useful_columns
from classify.modelio import ModelUnavailable, load_model, model_path
from classify.pipelines import RUMOUR_META, TASKS, input_form
from classify.text import PREPARE
from govpulse.gcpause import cycle_collection_paused
from govpulse.schema import Message, Source, Topic, Urgency

__all__ = ["ModelUnavailable", "Tagger", "TaggerConfig", "default_model_dir"]

RUMOUR_SOURCES = frozenset({Source.WEIBO, Source.FORUM})


def default_model_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("classify") / "models"))


@dataclass(frozen=True, slots=True)
class TaggerConfig:
    """Thresholds of the tagger (settings ``classify.*``)."""

    unsure_below: float = 0.5
    floor: float = 0.2
    rule_min_p: float = 0.0
    reply_factor: float = 0.5
    refutation_factor: float = 0.3

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> TaggerConfig:
        # .get with defaults: callers such as the crawl pipeline pass partial dicts.
        d = cls()
        return cls(
            unsure_below=float(settings.get("classify.topic_unsure_below", d.unsure_below)),
            floor=float(settings.get("classify.topic_floor", d.floor)),
            rule_min_p=float(settings.get("classify.urgency_rule_min_p", d.rule_min_p)),
        )


@dataclass(slots=True)
class Tagging:
    """What the tagger decided for one text (also what `govpulse classify` writes)."""

    topic: str | None = None
    topic_score: float | None = None
    urgency: str | None = None
    urgency_reasons: list[str] | None = None
    rumour_score: float | None = None
    rumour_reasons: list[str] | None = None


class Tagger:
    """Topic, urgency and rumour models loaded from one folder of skops files."""

    def __init__(
        self,
        models: Mapping[str, Any],
        cards: Mapping[str, dict[str, Any]] | None = None,
        config: TaggerConfig | None = None,
    ) -> None:
        missing = [t for t in TASKS if t not in models]
        if missing:
            raise ModelUnavailable(f"no model for: {', '.join(missing)}")
        self.models = dict(models)
        self.cards = dict(cards or {})
        self.config = config or TaggerConfig()
        # Columns any model reads: the shared n-gram count of a batch skips the rest.
        # Numbered once, so each model's IDF step reads a small column table (ColumnUnion).
        self._useful = {
            key: ColumnUnion(mask)
            for key, mask in useful_columns(list(self.models.values())).items()
        }
        # The text form each model was trained on; each form is prepared once per message.
        self._forms = {task: input_form(model) for task, model in self.models.items()}
        # The same probabilities without scikit-learn's wrappers (classify.compiled),
        # the three TF-IDF -> linear layers in one product per batch (compile_models);
        # None for a model of a shape it does not know: its predict_proba is used.
        self._compiled: dict[str, Scorer | None] = compile_models(self.models, self._useful)

    # -- loading -----------------------------------------------------------
    @classmethod
    def load_default(cls, config: TaggerConfig | None = None) -> Tagger:
        """The models shipped in the package (classify/models/*.skops)."""
        return cls.load(default_model_dir(), config=config)

    @classmethod
    def load(
        cls,
        model_dir: Path | str,
        config: TaggerConfig | None = None,
        fallback_dir: Path | str | None = None,
    ) -> Tagger:
        """Load all three models from model_dir (tasks missing there come from fallback_dir)."""
        models: dict[str, Any] = {}
        cards: dict[str, dict[str, Any]] = {}
        for task in TASKS:
            folder = Path(model_dir)
            if fallback_dir is not None and not model_path(folder, task).exists():
                folder = Path(fallback_dir)
            models[task], cards[task] = load_model(folder, task)
        return cls(models, cards, config)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any]) -> Tagger:
        """Models from ``classify.model_dir`` (falling back to the shipped ones per task)."""
        config = TaggerConfig.from_settings(settings)
        model_dir = str(settings.get("classify.model_dir") or "")
        if not model_dir:
            return cls.load_default(config)
        return cls.load(Path(model_dir).expanduser(), config, fallback_dir=default_model_dir())

    # -- tagging -----------------------------------------------------------
    def tag(self, messages: list[Message]) -> None:
        """Fill topic, topic_score, urgency, urgency_reasons, rumour_score, rumour_reasons."""
        if not messages:
            return
        rows = [
            {
                "title": m.title,
                "body": m.body,
                "rumour": Source(m.source) in RUMOUR_SOURCES,
                "has_reply": bool(m.reply_body and m.reply_body.strip()),
                "reply": m.reply_body,
                "reposts": m.reposts,
                "comments": m.comments,
                "likes": m.likes or m.votes,
                "followers": _extra(m.extra, "followers", "author_followers", "user_followers"),
                "verified": _extra(m.extra, "verified", "author_verified", "user_verified"),
            }
            for m in messages
        ]
        for m, t in zip(messages, self.tag_rows(rows), strict=True):
            m.topic = Topic(t.topic) if t.topic in Topic._value2member_map_ else None
            m.topic_score = t.topic_score
            m.urgency = Urgency(t.urgency) if t.urgency else None
            m.urgency_reasons = list(t.urgency_reasons or [])
            m.rumour_score = t.rumour_score
            m.rumour_reasons = list(t.rumour_reasons or [])

    def tag_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[Tagging]:
        """Tag plain rows: keys title, body, and for rumour scoring rumour=True plus metadata
        (reposts, comments, likes, followers, verified) and the official reply (has_reply, reply)."""
        # Inputs are built here (finite by construction): skip scikit-learn's
        # per-call checks, which dominate when a caller tags one message at a time.
        with (
            sklearn.config_context(assume_finite=True, skip_parameter_validation=True),
            cycle_collection_paused(),  # 2-3 % of tagging (govpulse/gcpause.py)
        ):
            return self._tag_rows(rows)

    def _tag_rows(self, rows: Sequence[Mapping[str, Any]]) -> list[Tagging]:
        cues.clear_caches()  # cue look-ups are cached within a batch only
        texts = {
            form: [PREPARE[form](r.get("title"), r.get("body")) for r in rows]
            for form in dict.fromkeys(self._forms.values())
        }
        out = [Tagging() for _ in rows]
        live = [i for i in range(len(rows)) if any(t[i] for t in texts.values())]
        if not live:
            return out
        live_texts = {form: [t[i] for i in live] for form, t in texts.items()}
        # The three models' HashedNgrams steps share one n-gram count per batch
        # (rows are matched by the identity of the text objects, whatever their form).
        with shared_batch([t for ts in live_texts.values() for t in ts], self._useful):
            self._topic(live, live_texts[self._forms["topic"]], out)
            self._urgency(live, live_texts[self._forms["urgency"]], out)
            rum = [i for i in live if rows[i].get("rumour")]
            if rum:
                rum_texts = texts[self._forms["rumour"]]
                self._rumour(rum, [rum_texts[i] for i in rum], [rows[i] for i in rum], out)
        return out

    def _proba(
        self, task: str, texts: list[str], meta: dict[str, list[Any]] | None = None
    ) -> np.ndarray:
        """The model's predict_proba, through its compiled form when it has one."""
        compiled = self._compiled[task]
        if compiled is not None:
            return compiled(texts, meta or {})
        if meta is None:
            return self.models[task].predict_proba(texts)
        return self.models[task].predict_proba(pd.DataFrame({"tokens": texts, **meta}))

    def _topic(self, idx: list[int], texts: list[str], out: list[Tagging]) -> None:
        model = self.models["topic"]
        proba = self._proba("topic", texts)
        classes = [str(c) for c in model.classes_]
        best = proba.argmax(axis=1)
        for i, b, p in zip(idx, best, proba[np.arange(len(idx)), best], strict=True):
            score = round(float(p), 4)
            out[i].topic_score = score
            out[i].topic = classes[b] if score >= self.config.floor else None

    def _urgency(self, idx: list[int], texts: list[str], out: list[Tagging]) -> None:
        model = self.models["urgency"]
        proba = self._proba("urgency", texts)
        classes = [str(c) for c in model.classes_]
        decided = decide_urgency_rows(proba, classes, texts, self.config.rule_min_p)
        for i, (level, reasons) in zip(idx, decided, strict=True):
            out[i].urgency = level
            out[i].urgency_reasons = reasons

    def _rumour(
        self,
        idx: list[int],
        texts: list[str],
        rows: list[Mapping[str, Any]],
        out: list[Tagging],
    ) -> None:
        model = self.models["rumour"]
        meta = {k: [r.get(k) for r in rows] for k in RUMOUR_META}
        classes = [int(c) for c in model.classes_]
        proba = self._proba("rumour", texts, meta)[:, classes.index(1)]
        for i, text, row, p in zip(idx, texts, rows, proba, strict=True):
            out[i].rumour_score, out[i].rumour_reasons = adjust_rumour(
                float(p),
                text,
                has_reply=bool(row.get("has_reply")),
                verified=_truthy(row.get("verified")),
                refutation_factor=self.config.refutation_factor,
                reply_factor=self.config.reply_factor,
                reply_text=row.get("reply"),
            )


def _extra(extra: Mapping[str, Any] | None, *keys: str) -> Any:
    for key in keys:
        if extra and extra.get(key) not in (None, ""):
            return extra[key]
    return None


def _truthy(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value) and value == value


def iter_batches(items: Iterable[Any], size: int) -> Iterable[list[Any]]:
    """Yield lists of at most `size` items."""
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch
