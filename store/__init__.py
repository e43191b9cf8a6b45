"""Message stores: the embedded SQLite default and Elasticsearch/OpenSearch.

``open_store(url)`` picks the backend from the URL scheme.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from store.base import (
    Filters,
    SearchResult,
    Sla,
    Store,
    StoreError,
    StoreUnavailable,
    TimelinessRow,
    UpsertStats,
)

__all__ = [
    "Filters",
    "SearchResult",
    "Sla",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "TimelinessRow",
    "UpsertStats",
    "open_store",
]


def open_store(url: str, settings: Mapping[str, Any] | None = None) -> Store:
    """Open the store named by `url` (sqlite:///path or http(s)://host:port)."""
    if url.startswith("sqlite:"):
        from store.sqlite import SQLiteStore

        return SQLiteStore.from_url(url, settings)
    if url.startswith(("http://", "https://")):
        try:
            from store.elastic import ElasticStore
        except ModuleNotFoundError as exc:
            if exc.name == "store.elastic":
                raise StoreError("the Elasticsearch backend is not installed") from None
            raise
        return ElasticStore.from_url(url, settings)
    raise StoreError(f"unknown store URL {url!r}: use sqlite:///path or http(s)://host:9200")
