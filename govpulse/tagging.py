"""Optional classification of messages on their way into the store."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from govpulse.schema import Message

log = logging.getLogger(__name__)


def load_tagger(settings: Mapping[str, Any] | None = None) -> Any | None:
    """The configured classifier, or None (with one warning) when it is not installed."""
    try:
        from classify.tagger import ModelUnavailable, Tagger
    except ImportError as exc:
        log.warning("classifier not installed (%s); messages are stored untagged", exc)
        return None
    try:
        return Tagger.from_settings(settings) if settings is not None else Tagger.load_default()
    except ModelUnavailable as exc:
        log.warning("classifier model unavailable (%s); messages are stored untagged", exc)
        return None


def tag(tagger: Any | None, messages: Sequence[Message]) -> None:
    """Tag messages in place if a tagger is loaded."""
    if tagger is not None and messages:
        tagger.tag(list(messages))
