"""One store per crawl, shared by the spider (incremental checks) and the store pipeline."""

from __future__ import annotations

import logging
from typing import Any

from store import StoreError, open_store
from store.base import Store

log = logging.getLogger(__name__)


def crawl_store(crawler: Any) -> Store | None:
    """The crawl's store, opened once; None (logged) when it cannot be opened."""
    if not hasattr(crawler, "_govpulse_store"):
        url = crawler.settings.get("GOVPULSE_STORE_URL")
        try:
            crawler._govpulse_store = (
                open_store(url, crawler.settings.get("GOVPULSE")) if url else None
            )
        except (StoreError, OSError) as exc:
            log.error("store %s unavailable (%s): items go to the spool", url, exc)
            crawler.stats.inc_value("govpulse/store_unavailable")
            crawler._govpulse_store = None
    return crawler._govpulse_store


def close_crawl_store(crawler: Any) -> None:
    store = getattr(crawler, "_govpulse_store", None)
    if store is not None:
        store.close()
    crawler._govpulse_store = None
