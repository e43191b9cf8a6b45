"""The Elasticsearch / OpenSearch store: the same contract as the embedded store, on a cluster.

Layout (prefix ``govpulse`` by default, ``store.es_prefix``): messages live
in ``govpulse-messages-vN`` behind the alias ``govpulse-messages``;
crawl events and labels have their own aliased indices.  Mappings are in
`store.elastic_mapping`; ``govpulse store reindex`` builds the next
version and swaps the alias atomically.

Answers match `store.sqlite.SQLiteStore` on the same data because both use
`store.common` for merging, hashing and percentiles, both derive the same
index-only values at write time, and every aggregate here is exact:
composite aggregations are walked to the end (no top-N approximation) and
percentiles are interpolated client-side from exact frequency tables
rather than taken from the cluster's approximate ``percentiles``.
No painless scripts, runtime fields or point-in-time are used, so the
same code runs on Elasticsearch 7.10+/8/9 and OpenSearch 1/2/3.

Zero loss: writes that the cluster cannot take (unreachable, 429/5xx,
read-only block) are appended to a local `Spool` and replayed in order;
while anything is spooled, new writes queue behind it so order holds.
"""

from __future__ import annotations

import hashlib
import logging
import math
import random
import re
import threading
import time
from collections import defaultdict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from govpulse import tokenize
from govpulse.schema import TZ, CrawlEvent, Label, Message
from govpulse.workdays import workday_ordinal
from store.base import (
    FILTER_FIELDS,
    GROUP_FIELDS,
    INTERVALS,
    SORT_FIELDS,
    Filters,
    SearchResult,
    Sla,
    Store,
    StoreError,
    StoreUnavailable,
    TimelinessRow,
    UpsertStats,
    facet_names,
)
from store.common import content_hash, from_epoch, merge, quantile_from_counts, to_epoch
from store.elastic_client import ConnectionOptions, RequestError, SearchClient, make_client
from store.elastic_mapping import (
    CRAWL_EVENT_PROPERTIES,
    LABEL_PROPERTIES,
    MESSAGE_PROPERTIES,
    doc_to_event,
    doc_to_label,
    doc_to_message,
    event_to_doc,
    index_settings,
    label_to_doc,
    mappings,
    message_to_doc,
)
from store.elastic_spool import Spool

log = logging.getLogger(__name__)

UNKNOWN_GROUP = "(未知)"  # what SQLite's COALESCE(group, '(未知)') yields
#: Asia/Shanghai has been +08:00 since 1991; a fixed offset matches SQLite exactly.
TIME_ZONE = "+08:00"
MAX_WINDOW = 10_000
MAX_ID_BYTES = 512  # Elasticsearch/OpenSearch _id limit
CONFLICT_ROUNDS = 12  # optimistic-concurrency retries before a write goes to the spool
_PREFIX_RE = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,100}$")
_DATE_FIELDS = ("posted_at", "replied_at", "fetched_at", "updated_at")


def _chunks(items: Iterable[Any], size: int) -> Iterator[list[Any]]:
    batch: list[Any] = []
    for item in items:
        batch.append(item)
        if len(batch) >= size:
            yield batch
            batch = []
    if batch:
        yield batch


def default_spool_path(url: str, prefix: str, settings: Mapping[str, Any] | None) -> Path:
    """``<data_dir>/spool/elastic-<hash of url+prefix>.sqlite``: one spool per target."""
    data_dir = (settings or {}).get("data_dir") or ""
    if data_dir:
        base = Path(str(data_dir)).expanduser()
    elif Path("data").is_dir():
        base = Path("data")
    else:
        from platformdirs import user_data_dir

        base = Path(user_data_dir("govpulse", appauthor=False))
    digest = hashlib.blake2b(f"{url}|{prefix}".encode(), digest_size=6).hexdigest()
    return base / "spool" / f"elastic-{digest}.sqlite"


class ElasticStore(Store):
    """`Store` on Elasticsearch or OpenSearch (see the module docstring)."""

    def __init__(
        self,
        client: SearchClient | Any,
        *,
        url: str = "",
        prefix: str = "govpulse",
        spool_path: str | Path,
        batch_size: int = 2000,
        refresh: bool = True,
        retries: int = 3,
        backoff_s: float = 0.5,
        shards: int = 1,
        replicas: int = 1,
        spool_retry_s: float = 30.0,
        max_window: int = MAX_WINDOW,
        search_total_cap: int = 10_000,
    ) -> None:
        """`client` is a `SearchClient` or a zero-argument factory that builds one.

        A factory lets the store open while the cluster is down: writes are
        spooled until the first request succeeds.
        """
        if not _PREFIX_RE.match(prefix):
            raise StoreError(f"index prefix {prefix!r}: use lower-case letters, digits, - _ .")
        self._client_factory = (
            client if callable(client) and not hasattr(client, "request") else None
        )
        self._client: SearchClient | None = None if self._client_factory else client
        self.url = url or f"elasticsearch://{prefix}"
        self.prefix = prefix
        self.messages_alias = f"{prefix}-messages"
        self.events_alias = f"{prefix}-crawl-events"
        self.labels_alias = f"{prefix}-labels"
        self.batch_size = max(1, int(batch_size))
        self.refresh = refresh
        self.retries = max(0, int(retries))
        self.backoff_s = backoff_s
        self.shards = shards
        self.replicas = replicas
        self.spool_retry_s = spool_retry_s
        #: index.max_result_window of new indices; deeper pages use search_after.
        self.max_window = max(1, int(max_window))
        #: Search totals above this are a lower bound ("gte"); 0 counts exactly.
        self.search_total_cap = int(search_total_cap)
        self.spool = Spool(spool_path)
        #: Messages/events/labels spooled by this process (cumulative).
        self.spooled = 0
        self._ready = False
        self._lock = threading.RLock()
        self._last_replay_attempt = float("-inf")
        self._seq_last = 0

    @classmethod
    def from_url(cls, url: str, settings: Mapping[str, Any] | None = None) -> ElasticStore:
        """Open the store at http(s)://[user:password@]host:port with settings."""
        settings = settings or {}
        options = ConnectionOptions.from_url(url, settings)
        flavour = str(settings.get("store.es_client", "auto") or "auto")
        prefix = str(settings.get("store.es_prefix", "govpulse") or "govpulse")
        spool_path = settings.get("store.es_spool_path") or default_spool_path(
            options.url, prefix, settings
        )
        return cls(
            lambda: make_client(options, flavour),
            url=options.url,
            prefix=prefix,
            spool_path=spool_path,
            batch_size=int(settings.get("store.batch_size", 2000)),
            refresh=bool(settings.get("store.es_refresh", True)),
            retries=int(settings.get("store.es_retries", 3)),
            backoff_s=float(settings.get("store.es_retry_backoff_s", 0.5)),
            shards=int(settings.get("store.es_shards", 1)),
            replicas=int(settings.get("store.es_replicas", 1)),
            spool_retry_s=float(settings.get("store.es_spool_retry_s", 30.0)),
            search_total_cap=int(settings.get("store.search_total_cap", 10_000)),
        )

    # -- plumbing ----------------------------------------------------------
    @property
    def client(self) -> SearchClient:
        if self._client is None:
            assert self._client_factory is not None
            self._client = self._client_factory()
        return self._client

    def _req(
        self, method: str, path: str, body: Any = None, ndjson: bool = False, **params: Any
    ) -> Any:
        try:
            return self.client.request(
                method, path, body=body, params=params or None, ndjson=ndjson
            )
        except StoreUnavailable:
            # The cluster may come back empty (restored, rebuilt): check the
            # indices again before the next write instead of trusting the cache.
            self._ready = False
            raise
        except RequestError as exc:
            if exc.error_type != "index_not_found_exception" or not self._ready:
                raise
            # Our alias vanished under us: recreate the layout and try once more.
            self._ready = False
            self.ensure_indices()
            return self.client.request(
                method, path, body=body, params=params or None, ndjson=ndjson
            )

    def _retrying(
        self, method: str, path: str, body: Any = None, ndjson: bool = False, **params: Any
    ) -> Any:
        """A request retried with exponential back-off while the cluster is busy or away."""
        for attempt in range(self.retries + 1):
            try:
                return self._req(method, path, body, ndjson, **params)
            except StoreUnavailable:
                if attempt == self.retries:
                    raise
                time.sleep(self.backoff_s * 2**attempt)
        raise AssertionError("unreachable")

    def _exists(self, path: str) -> bool:
        try:
            return bool(self._req("HEAD", path))
        except RequestError as exc:
            if exc.status == 404:
                return False
            raise

    def versioned_indices(self) -> list[str]:
        """Existing message index versions, oldest first."""
        try:
            found = self._req("GET", f"/{self.messages_alias}-v*")
        except RequestError as exc:
            if exc.status == 404:
                return []
            raise
        return sorted(
            found,
            key=lambda name: (
                int(name.rsplit("-v", 1)[1]) if name.rsplit("-v", 1)[1].isdigit() else -1
            ),
        )

    def current_index(self) -> str | None:
        """The concrete index the messages alias points at."""
        try:
            found = self._req("GET", f"/_alias/{self.messages_alias}")
        except RequestError as exc:
            if exc.status == 404:
                return None
            raise
        return sorted(found)[-1] if found else None

    def _template_body(self) -> dict[str, Any]:
        return {
            "index_patterns": [f"{self.messages_alias}-v*"],
            "priority": 100,
            "template": {
                "settings": index_settings(self.shards, self.replicas, "1s", self.max_window),
                "mappings": mappings(MESSAGE_PROPERTIES),
            },
            "_meta": {"managed_by": "govpulse"},
        }

    def create_message_index(self, name: str, alias: bool) -> None:
        """Create a versioned message index (explicit mapping; template as a safety net)."""
        body: dict[str, Any] = {
            "settings": index_settings(self.shards, self.replicas, "1s", self.max_window),
            "mappings": mappings(MESSAGE_PROPERTIES),
        }
        if alias:
            body["aliases"] = {self.messages_alias: {"is_write_index": True}}
        self._create(name, body)

    def _create(self, name: str, body: dict[str, Any]) -> None:
        try:
            self._req("PUT", f"/{name}", body)
        except RequestError as exc:
            # Another process created it first: fine, it has the same mapping.
            if exc.error_type not in (
                "resource_already_exists_exception",
                "index_already_exists_exception",
            ):
                raise

    def ensure_indices(self) -> None:
        """Create the template, the indices and their aliases if they are missing."""
        if self._ready:
            return
        with self._lock:
            if self._ready:
                return
            self._req("PUT", f"/_index_template/{self.messages_alias}", self._template_body())
            if not self._exists(f"/_alias/{self.messages_alias}"):
                self.create_message_index(f"{self.messages_alias}-v1", alias=True)
            for alias, props in (
                (self.events_alias, CRAWL_EVENT_PROPERTIES),
                (self.labels_alias, LABEL_PROPERTIES),
            ):
                if not self._exists(f"/_alias/{alias}"):
                    self._create(
                        f"{alias}-v1",
                        {
                            "settings": index_settings(
                                self.shards, self.replicas, "1s", self.max_window
                            ),
                            "mappings": mappings(props),
                            "aliases": {alias: {"is_write_index": True}},
                        },
                    )
            self._ready = True

    def _refresh(self, *aliases: str) -> None:
        if self.refresh:
            self._req("POST", f"/{','.join(aliases)}/_refresh")

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
        self.spool.close()

    # -- writing -----------------------------------------------------------
    def upsert_many(self, messages: Iterable[Message]) -> UpsertStats:
        stats = UpsertStats()
        wrote = False
        for chunk in _chunks(messages, self.batch_size):
            valid: list[Message] = []
            for msg in chunk:
                try:
                    valid.append(msg.validate())
                except ValueError as exc:
                    stats.failed.append((getattr(msg, "id", "?") or "?", str(exc)))
                    continue
                if len(str(msg.id).encode()) > MAX_ID_BYTES:
                    # The cluster would fail the whole bulk request for one such id.
                    valid.pop()
                    stats.failed.append((msg.id[:80], f"id: longer than {MAX_ID_BYTES} bytes"))
            if not valid:
                continue
            with self._lock:
                if not self._drain_spool():
                    self._spool_messages(valid, "earlier writes still spooled")
                    continue
                try:
                    stats += self._write_messages(valid)
                    wrote = True
                except StoreUnavailable as exc:
                    self._spool_messages(valid, str(exc))
        if wrote:
            try:
                self._refresh(self.messages_alias)
            except StoreUnavailable:
                log.warning(
                    "refresh after write failed; the writes are durable, visible within a second"
                )
        return stats

    def _spool_messages(self, messages: list[Message], reason: str) -> None:
        n = self.spool.append("message", (m.to_dict() for m in messages), reason)
        self.spooled += n
        log.warning(
            "cluster unavailable (%s): spooled %d messages to %s", reason, n, self.spool.path
        )

    def _write_messages(self, batch: list[Message]) -> UpsertStats:
        """Merge `batch` into stored documents and bulk-write what changed."""
        self.ensure_indices()
        stats = UpsertStats()
        unique: dict[str, Message] = {}
        for msg in batch:  # last one wins inside a batch, as sequential upserts would
            unique[msg.id] = merge(unique[msg.id], msg) if msg.id in unique else msg
        for attempt in range(CONFLICT_ROUNDS):
            if attempt:  # jitter so two writers racing on one letter stop colliding
                time.sleep(random.uniform(0, 0.005 * 2 ** min(attempt, 7)))
            existing = self._mget(list(unique))
            now = from_epoch(int(time.time()))
            ops: list[dict[str, Any]] = []
            kinds: dict[str, str] = {}
            for msg_id, msg in unique.items():
                old = existing.get(msg_id)
                if old is None:
                    if msg.updated_at is None:
                        msg.updated_at = now
                    ops.append(
                        {
                            "create": {
                                "_index": self.messages_alias,
                                "_id": msg_id,
                                "require_alias": True,
                            }
                        }
                    )
                    ops.append(message_to_doc(msg, content_hash(msg)))
                    kinds[msg_id] = "inserted"
                    continue
                source, seq_no, primary_term = old
                old_msg = doc_to_message(source)
                merged = merge(old_msg, msg).validate()
                digest = content_hash(merged)
                if digest == source.get("content_hash"):
                    stats.unchanged += 1
                    continue
                merged.updated_at = now
                merged.fetched_at = msg.fetched_at or old_msg.fetched_at
                head: dict[str, Any] = {
                    "_index": self.messages_alias,
                    "_id": msg_id,
                    "require_alias": True,
                }
                if seq_no is not None:
                    head.update(if_seq_no=seq_no, if_primary_term=primary_term)
                ops.append({"index": head})
                ops.append(message_to_doc(merged, digest))
                kinds[msg_id] = "updated"
            if not ops:
                break
            conflicts: set[str] = set()
            for msg_id, status, reason in self._bulk(ops):
                if status < 300:
                    if kinds[msg_id] == "inserted":
                        stats.inserted += 1
                    else:
                        stats.updated += 1
                elif status == 409:  # someone else wrote it meanwhile: merge again
                    conflicts.add(msg_id)
                else:
                    stats.failed.append((msg_id, reason))
                    self.spool.reject("message", msg_id, unique[msg_id].to_dict(), reason)
            if not conflicts:
                break
            unique = {k: v for k, v in unique.items() if k in conflicts}
        else:
            # Never drop a write: the spool replays it later, and replay merges.
            self._spool_messages(list(unique.values()), "kept conflicting with concurrent writers")
        return stats

    def _mget(self, ids: list[str]) -> dict[str, tuple[dict[str, Any], int | None, int | None]]:
        if not ids:
            return {}
        resp = self._retrying("POST", f"/{self.messages_alias}/_mget", {"ids": ids})
        out: dict[str, tuple[dict[str, Any], int | None, int | None]] = {}
        for doc in resp.get("docs", []):
            if doc.get("found"):
                out[doc["_id"]] = (doc["_source"], doc.get("_seq_no"), doc.get("_primary_term"))
        return out

    def _bulk(self, ops: list[dict[str, Any]]) -> list[tuple[str, int, str]]:
        """Send bulk operations; retry busy items with back-off; return (id, status, reason).

        Raises `StoreUnavailable` when the cluster stays away or keeps
        refusing some items: the caller spools the whole batch (replay is
        idempotent because upserts merge).
        """
        pending = ops
        results: dict[str, tuple[int, str]] = {}
        for attempt in range(self.retries + 1):
            try:
                resp = self._retrying("POST", "/_bulk", pending, ndjson=True)
            except RequestError as exc:
                if len(pending) <= 2:
                    doc_id = str(next(iter(pending[0].values())).get("_id"))
                    return [
                        *((k, s, r) for k, (s, r) in results.items()),
                        (doc_id, exc.status, str(exc)),
                    ]
                # The whole request was refused (one malformed action fails all):
                # send the operations one by one so the good ones still land.
                items = []
                for i in range(0, len(pending), 2):
                    items.extend(self._bulk(pending[i : i + 2]))
                return [*((k, s, r) for k, (s, r) in results.items()), *items]
            retry: list[dict[str, Any]] = []
            busy_reason = ""
            for i, item in enumerate(resp.get("items", [])):
                info = next(iter(item.values()))
                status = int(info.get("status", 500))
                error = info.get("error") or {}
                reason = (
                    f"{error.get('type', '')}: {error.get('reason', '')}"
                    if isinstance(error, dict)
                    else str(error)
                )
                etype = error.get("type") if isinstance(error, dict) else None
                if etype == "index_not_found_exception" and self._ready:
                    # require_alias refused: the alias is gone (cluster rebuilt). Recreate, retry.
                    self._ready = False
                    self.ensure_indices()
                    retry.extend(pending[2 * i : 2 * i + 2])
                    busy_reason = reason
                    continue
                if status in (429, 502, 503, 504) or etype == "cluster_block_exception":
                    retry.extend(pending[2 * i : 2 * i + 2])
                    busy_reason = reason
                    continue
                results[str(info.get("_id"))] = (status, reason)
            if not retry:
                break
            if attempt == self.retries:
                raise StoreUnavailable(
                    f"cluster kept refusing {len(retry) // 2} documents: {busy_reason}"
                )
            time.sleep(self.backoff_s * 2**attempt)
            pending = retry
        return [(k, s, r) for k, (s, r) in results.items()]

    def _drain_spool(self, force: bool = False) -> bool:
        """Replay spooled writes in order; True when the spool is empty afterwards."""
        if self.spool.pending() == 0:
            return True
        now = time.monotonic()
        if not force and now - self._last_replay_attempt < self.spool_retry_s:
            return False
        self._last_replay_attempt = now
        try:
            self.replay_spool()
        except StoreUnavailable as exc:
            log.info("spool replay deferred: %s", exc)
            return False
        return self.spool.pending() == 0

    def replay_spool(self, batch: int | None = None) -> int:
        """Write spooled items to the cluster in order; return how many were replayed.

        Raises `StoreUnavailable` (keeping what is left) if the cluster is
        still away.  Runs of the same kind are written together.
        """
        done = 0
        size = batch or self.batch_size
        with self._lock:
            while True:
                entries = self.spool.head(size)
                if not entries:
                    break
                # Take the leading run of one kind so order across kinds holds.
                run = list(entries)
                first_kind = run[0].kind
                cut = next((i for i, e in enumerate(run) if e.kind != first_kind), len(run))
                run = run[:cut]
                if first_kind == "message":
                    msgs = []
                    for e in run:
                        try:
                            msgs.append(Message.from_dict(e.payload))
                        except ValueError as exc:
                            self.spool.reject("message", e.payload.get("id"), e.payload, str(exc))
                    stats = self._write_messages(msgs) if msgs else UpsertStats()
                    if stats.failed:
                        log.warning(
                            "replay: %d spooled messages refused: %s",
                            len(stats.failed),
                            stats.failed[:3],
                        )
                    self._refresh(self.messages_alias)
                elif first_kind == "crawl_event":
                    self._write_docs(self.events_alias, [e.payload for e in run])
                else:
                    self._write_docs(self.labels_alias, [e.payload for e in run])
                self.spool.remove_through(run[-1].seq)
                done += len(run)
        if done:
            log.info("replayed %d spooled writes", done)
        return done

    def _next_seq(self) -> int:
        with self._lock:
            self._seq_last = max(self._seq_last + 1, time.time_ns())
            return self._seq_last

    def _write_docs(self, alias: str, docs: list[dict[str, Any]]) -> None:
        self.ensure_indices()
        ops: list[dict[str, Any]] = []
        for doc in docs:
            # The id is derived from seq so a replayed event cannot be stored twice.
            ops.append({"index": {"_index": alias, "_id": str(doc["seq"]), "require_alias": True}})
            ops.append(doc)
        for doc_id, status, reason in self._bulk(ops):
            if status >= 300:
                kind = "crawl_event" if alias == self.events_alias else "label"
                self.spool.reject(
                    kind, doc_id, next(d for d in docs if str(d["seq"]) == doc_id), reason
                )
        self._refresh(alias)

    def _add_doc(self, kind: str, alias: str, doc: dict[str, Any]) -> None:
        with self._lock:
            if self._drain_spool():
                try:
                    self._write_docs(alias, [doc])
                    return
                except StoreUnavailable as exc:
                    reason = str(exc)
            else:
                reason = "earlier writes still spooled"
            self.spooled += self.spool.append(kind, [doc], reason)
            log.warning("cluster unavailable (%s): spooled one %s", reason, kind)

    def add_crawl_event(self, event: CrawlEvent) -> None:
        self._add_doc("crawl_event", self.events_alias, event_to_doc(event, self._next_seq()))

    def add_label(self, label: Label) -> None:
        self._add_doc("label", self.labels_alias, label_to_doc(label, self._next_seq()))

    def delete_before(self, cutoff: datetime) -> int:
        self.ensure_indices()
        resp = self._retrying(
            "POST",
            f"/{self.messages_alias}/_delete_by_query",
            {"query": {"range": {"posted_at": {"lt": to_epoch(cutoff), "format": "epoch_second"}}}},
            refresh="true",
            conflicts="proceed",
        )
        return int(resp.get("deleted", 0))

    # -- queries -----------------------------------------------------------
    def _query(
        self, query: str, filters: Filters | None, extra: Sequence[dict[str, Any]] = ()
    ) -> dict[str, Any]:
        """The bool query for a text query plus filters (same meaning as SQLite's WHERE)."""
        filters = filters or Filters()
        must: list[dict[str, Any]] = []
        flt: list[dict[str, Any]] = list(extra)
        must_not: list[dict[str, Any]] = []
        for name in FILTER_FIELDS:
            values = getattr(filters, name)
            if values:
                flt.append({"terms": {name: list(values)}})
        if filters.ids:
            flt.append({"terms": {"id": list(filters.ids)}})
        rng: dict[str, Any] = {}
        if filters.since is not None:
            rng["gte"] = to_epoch(filters.since)
        if filters.until is not None:
            rng["lt"] = to_epoch(filters.until)
        if rng:
            flt.append({"range": {"posted_at": {**rng, "format": "epoch_second"}}})
        if filters.min_rumour is not None:
            flt.append({"range": {"rumour_score": {"gte": float(filters.min_rumour)}}})
        if filters.parent_id is not None:
            flt.append({"term": {"parent_id": filters.parent_id}})
        if not filters.include_duplicates:
            must_not.append({"exists": {"field": "duplicate_of"}})
        if query and query.strip():
            tokens = tokenize.cut_query(query)
            if not tokens:
                return {"match_none": {}}
            # One term per token: AND, exactly the tokens the FTS index matches.
            must.extend({"term": {"tokens": t}} for t in dict.fromkeys(tokens))
        if not (must or flt or must_not):
            return {"match_all": {}}
        return {"bool": {"must": must, "filter": flt, "must_not": must_not}}

    def _search(self, body: dict[str, Any], alias: str | None = None) -> dict[str, Any]:
        self.ensure_indices()
        return self._req("POST", f"/{alias or self.messages_alias}/_search", body)

    def _walk(
        self, alias: str, query: dict[str, Any], sort: list[Any], batch: int, source: Any = True
    ) -> Iterator[dict[str, Any]]:
        """Every hit of `query` in `sort` order, paged with search_after (no window limit)."""
        after: list[Any] | None = None
        batch = max(1, min(batch, self.max_window))
        while True:
            body: dict[str, Any] = {
                "query": query,
                "sort": sort,
                "size": batch,
                "_source": source,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(body, alias)["hits"]["hits"]
            yield from hits
            if len(hits) < batch:
                return
            after = hits[-1]["sort"]

    def _composite(
        self, query: dict[str, Any], sources: list[dict[str, Any]], page: int = 10_000
    ) -> Iterator[tuple[dict[str, Any], int]]:
        """Every bucket of a composite aggregation (exact, paged with after_key)."""
        after: dict[str, Any] | None = None
        while True:
            comp: dict[str, Any] = {"size": page, "sources": sources}
            if after is not None:
                comp["after"] = after
            resp = self._search(
                {
                    "size": 0,
                    "query": query,
                    "track_total_hits": False,
                    "aggs": {"c": {"composite": comp}},
                }
            )
            agg = resp["aggregations"]["c"]
            for bucket in agg["buckets"]:
                yield bucket["key"], int(bucket["doc_count"])
            after = agg.get("after_key")
            if not agg["buckets"] or after is None or len(agg["buckets"]) < page:
                return

    def _composite_many(
        self, query: dict[str, Any], aggs: dict[str, list[dict[str, Any]]], page: int = 10_000
    ) -> dict[str, list[tuple[dict[str, Any], int]]]:
        """Several composite walks over one query, sharing requests (one scan per page)."""
        out: dict[str, list[tuple[dict[str, Any], int]]] = {name: [] for name in aggs}
        after: dict[str, dict[str, Any] | None] = dict.fromkeys(aggs)
        pending = list(aggs)
        while pending:
            body_aggs = {}
            for name in pending:
                comp: dict[str, Any] = {"size": page, "sources": aggs[name]}
                if after[name] is not None:
                    comp["after"] = after[name]
                body_aggs[name] = {"composite": comp}
            resp = self._search(
                {"size": 0, "query": query, "track_total_hits": False, "aggs": body_aggs}
            )
            still = []
            for name in pending:
                agg = resp["aggregations"][name]
                out[name].extend((b["key"], int(b["doc_count"])) for b in agg["buckets"])
                after[name] = agg.get("after_key")
                if len(agg["buckets"]) >= page and after[name] is not None:
                    still.append(name)
            pending = still
        return out

    def get(self, message_id: str) -> Message | None:
        found = self.get_many([message_id])
        return found[0] if found else None

    def get_many(self, ids: Sequence[str]) -> list[Message]:
        self.ensure_indices()
        found: dict[str, Message] = {}
        ids = list(ids)
        for start in range(0, len(ids), 1000):
            for msg_id, (source, _, _) in self._mget(
                list(dict.fromkeys(ids[start : start + 1000]))
            ).items():
                found[msg_id] = doc_to_message(source)
        return [found[i] for i in ids if i in found]

    @staticmethod
    def _sort(sort: str, query: str) -> list[Any]:
        desc = sort.startswith("-")
        key = sort.lstrip("-+")
        if key not in SORT_FIELDS:
            raise StoreError(f"cannot sort by {key!r}; use one of {', '.join(SORT_FIELDS)}")
        if key == "relevance":
            if query and tokenize.cut_query(query):
                return ["_score", {"id": "asc"}]
            key, desc = "posted_at", True
        # NULLs last in both directions, then id: SQLite's order.
        return [{key: {"order": "desc" if desc else "asc", "missing": "_last"}}, {"id": "asc"}]

    def search(
        self,
        query: str = "",
        filters: Filters | None = None,
        sort: str = "-posted_at",
        page: int = 1,
        per_page: int = 20,
        exact_total: bool = False,
    ) -> SearchResult:
        page = max(1, int(page))
        per_page = max(1, min(int(per_page), 10_000))
        q = self._query(query, filters)
        track: bool | int = True
        if not exact_total and self.search_total_cap > 0:
            track = self.search_total_cap
        order = self._sort(sort, query)
        offset = (page - 1) * per_page
        body: dict[str, Any] = {
            "query": q,
            "sort": order,
            "size": per_page,
            "track_total_hits": track,
        }
        if offset + per_page <= self.max_window:
            body["from"] = offset
        else:
            # Deep page: step over the first `offset` hits with search_after.
            after = self._skip(q, order, offset)
            if after is None:
                total = self.count(query, filters)
                return SearchResult(total, [], page, per_page)
            body["search_after"] = after
        resp = self._search(body)
        total = int(resp["hits"]["total"]["value"])
        relation = str(resp["hits"]["total"].get("relation", "eq"))
        if relation != "eq" and isinstance(track, int) and not isinstance(track, bool):
            total = min(total, track)  # the cap, as SQLite reports it
        hits = [doc_to_message(h["_source"]) for h in resp["hits"]["hits"]]
        return SearchResult(total, hits, page, per_page, "eq" if relation == "eq" else "gte")

    def _skip(self, query: dict[str, Any], sort: list[Any], offset: int) -> list[Any] | None:
        """Sort values of the hit at position `offset` (1-based), or None if fewer hits."""
        after: list[Any] | None = None
        remaining = offset
        while remaining > 0:
            size = min(remaining, self.max_window)
            body: dict[str, Any] = {
                "query": query,
                "sort": sort,
                "size": size,
                "_source": False,
                "track_total_hits": False,
            }
            if after is not None:
                body["search_after"] = after
            hits = self._search(body)["hits"]["hits"]
            if len(hits) < size:
                return None
            after = hits[-1]["sort"]
            remaining -= size
        return after

    def iter_messages(
        self, query: str = "", filters: Filters | None = None, batch_size: int = 1000
    ) -> Iterator[Message]:
        q = self._query(query, filters)
        for hit in self._walk(self.messages_alias, q, [{"id": "asc"}], batch_size):
            yield doc_to_message(hit["_source"])

    def count(self, query: str = "", filters: Filters | None = None) -> int:
        self.ensure_indices()
        resp = self._req(
            "POST", f"/{self.messages_alias}/_count", {"query": self._query(query, filters)}
        )
        return int(resp["count"])

    def facets(
        self,
        fields: Sequence[str],
        query: str = "",
        filters: Filters | None = None,
        size: int = 20,
    ) -> dict[str, list[tuple[str, int]]]:
        names = facet_names(fields)
        walks = self._composite_many(
            self._query(query, filters),
            {name: [{"v": {"terms": {"field": name}}}] for name in names},
        )
        out: dict[str, list[tuple[str, int]]] = {}
        for name in fields:
            counts = [(str(k["v"]), n) for k, n in walks[name]]
            counts.sort(key=lambda vn: (-vn[1], vn[0]))
            out[name] = counts[:size]
        return out

    def histogram(
        self,
        interval: str = "day",
        query: str = "",
        filters: Filters | None = None,
        split_by: str | None = None,
        date_field: str = "posted_at",
    ) -> list[tuple[datetime, str | None, int]]:
        if interval not in INTERVALS:
            raise StoreError(f"interval must be one of {', '.join(INTERVALS)}")
        if date_field not in _DATE_FIELDS:
            raise StoreError(f"cannot bucket on {date_field!r}")
        if split_by is not None and split_by not in GROUP_FIELDS:
            raise StoreError(f"cannot split by {split_by!r}")
        q = self._query(query, filters, [{"exists": {"field": date_field}}])
        sources: list[dict[str, Any]] = [
            {
                "b": {
                    "date_histogram": {
                        "field": date_field,
                        "calendar_interval": interval,
                        "time_zone": TIME_ZONE,
                    }
                }
            }
        ]
        if split_by:
            sources.append({"s": {"terms": {"field": split_by, "missing_bucket": True}}})
        rows = [
            (from_epoch(int(k["b"]) // 1000), None if k.get("s") is None else str(k["s"]), n)
            for k, n in self._composite(q, sources)
        ]
        rows.sort(key=lambda r: (r[0], r[1] is not None, r[1] or ""))
        return rows  # type: ignore[return-value]

    # -- timeliness --------------------------------------------------------
    @staticmethod
    def _age_clause(sla: Sla, now: datetime) -> dict[str, Any]:
        """Open letters older than their source's deadline (SQLite: age > sla)."""

        def older_than(days: int) -> dict[str, Any]:
            if sla.working_days:  # now_wd - posted_wd > days
                return {"range": {"posted_wd": {"lt": workday_ordinal(now) - days}}}
            # (now - posted_at) / 86400 > days, in whole seconds
            return {
                "range": {
                    "posted_at": {
                        "lt": int(now.timestamp()) - days * 86400,
                        "format": "epoch_second",
                    }
                }
            }

        clauses = [
            {"bool": {"filter": [{"term": {"source": src}}, older_than(int(days))]}}
            for src, days in sla.by_source.items()
        ]
        default = older_than(sla.days)
        if sla.by_source:
            clauses.append(
                {
                    "bool": {
                        "filter": [default],
                        "must_not": [{"terms": {"source": list(sla.by_source)}}],
                    }
                }
            )
        else:
            clauses.append(default)
        return {"bool": {"should": clauses, "minimum_should_match": 1}}

    def _answered_query(self, filters: Filters | None, delay_field: str) -> dict[str, Any]:
        """Answered (status != open) letters whose delay is known."""
        q = self._query("", filters, [{"exists": {"field": delay_field}}])
        q["bool"]["must_not"].append({"term": {"status": "open"}})
        return q

    def _open_overdue_filters(self, sla: Sla, now: datetime) -> list[dict[str, Any]]:
        return [
            {"term": {"status": "open"}},
            {"exists": {"field": "posted_at"}},
            self._age_clause(sla, now),
        ]

    def timeliness(
        self,
        group_by: str = "department",
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
    ) -> list[TimelinessRow]:
        if group_by not in GROUP_FIELDS:
            raise StoreError(f"cannot group by {group_by!r}")
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        group_src = {"g": {"terms": {"field": group_by, "missing_bucket": True}}}

        def group_of(key: dict[str, Any]) -> str:
            return UNKNOWN_GROUP if key["g"] is None else str(key["g"])

        overdue: dict[str, int] = defaultdict(int)
        for key, n in self._composite(
            self._query("", filters, self._open_overdue_filters(sla, now)), [group_src]
        ):
            overdue[group_of(key)] += n
        # One exact walk gives the counts and the delay frequency tables per
        # group and source (delay is missing for open or never-dated letters).
        delay_field = "delay_wd" if sla.working_days else "delay_s"
        letters: dict[str, int] = defaultdict(int)
        open_: dict[str, int] = defaultdict(int)
        freq: dict[str, dict[float, int]] = defaultdict(lambda: defaultdict(int))
        within: dict[str, int] = defaultdict(int)
        sources = [
            group_src,
            {"st": {"terms": {"field": "status"}}},
            {"src": {"terms": {"field": "source"}}},
            {"d": {"terms": {"field": delay_field, "missing_bucket": True}}},
        ]
        for key, n in self._composite(self._query("", filters), sources):
            g = group_of(key)
            letters[g] += n
            if key["st"] == "open":
                open_[g] += n
                continue
            if key["d"] is None:
                continue
            raw = int(key["d"])
            limit = sla.for_source(key["src"])
            if sla.working_days:
                value: float = raw
                ok = raw <= limit
            else:
                value = raw / 86400.0
                ok = raw <= limit * 86400
            freq[g][value] += n
            within[g] += n if ok else 0
        out = []
        for g, total in letters.items():
            pairs = sorted(freq[g].items()) if g in freq else []
            count = sum(n for _, n in pairs)
            mean = (math.fsum(v * n for v, n in pairs) / count) if count else None
            out.append(
                TimelinessRow(
                    group=g,
                    letters=total,
                    answered=total - open_[g],
                    open=open_[g],
                    overdue=overdue[g],
                    within_sla=within[g],
                    median_delay=quantile_from_counts(pairs, 0.5),
                    p90_delay=quantile_from_counts(pairs, 0.9),
                    mean_delay=mean,
                )
            )
        out.sort(key=lambda r: (-r.letters, r.group))
        return out

    def delay_distribution(
        self, filters: Filters | None = None, sla: Sla | None = None, now: datetime | None = None
    ) -> list[tuple[int, int, int]]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        counts: dict[int, list[int]] = defaultdict(lambda: [0, 0])
        delay_field = "delay_wd" if sla.working_days else "delay_s"
        answered_q = self._answered_query(filters, delay_field)
        for key, n in self._composite(answered_q, [{"d": {"terms": {"field": delay_field}}}]):
            raw = int(key["d"])
            days = raw if sla.working_days else int(raw / 86400.0)
            counts[max(0, days)][0] += n
        open_q = self._query(
            "", filters, [{"term": {"status": "open"}}, {"exists": {"field": "posted_at"}}]
        )
        if sla.working_days:
            now_wd = workday_ordinal(now)
            for key, n in self._composite(open_q, [{"p": {"terms": {"field": "posted_wd"}}}]):
                counts[max(0, now_wd - int(key["p"]))][1] += n
        else:
            now_s = int(now.timestamp())
            for key, n in self._composite(open_q, [{"p": {"terms": {"field": "posted_at"}}}]):
                counts[max(0, int((now_s - int(key["p"]) // 1000) / 86400.0))][1] += n
        return [(d, a, c) for d, (a, c) in sorted(counts.items())]

    def overdue(
        self,
        filters: Filters | None = None,
        sla: Sla | None = None,
        now: datetime | None = None,
        limit: int = 100,
    ) -> list[Message]:
        sla = sla or Sla()
        now = now or datetime.now(TZ)
        q = self._query("", filters, self._open_overdue_filters(sla, now))
        out: list[Message] = []
        if limit <= 0:
            return out
        for hit in self._walk(
            self.messages_alias,
            q,
            [{"posted_at": "asc"}, {"id": "asc"}],
            min(limit, self.max_window),
        ):
            out.append(doc_to_message(hit["_source"]))
            if len(out) >= limit:
                break
        return out

    # -- crawl events and labels -------------------------------------------
    def crawl_events(
        self, source: str | None = None, since: datetime | None = None, limit: int = 100
    ) -> list[CrawlEvent]:
        flt: list[dict[str, Any]] = []
        if source:
            flt.append({"term": {"source": source}})
        if since:
            flt.append({"range": {"at": {"gte": to_epoch(since), "format": "epoch_second"}}})
        if limit <= 0:
            return []
        out = []
        sort = [{"at": "desc"}, {"seq": "desc"}]
        for hit in self._walk(
            self.events_alias, {"bool": {"filter": flt}}, sort, min(limit, self.max_window)
        ):
            out.append(doc_to_event(hit["_source"]))
            if len(out) >= limit:
                break
        return out

    def labels(self, task: str | None = None, message_id: str | None = None) -> list[Label]:
        flt: list[dict[str, Any]] = []
        if task:
            flt.append({"term": {"task": task}})
        if message_id:
            flt.append({"term": {"message_id": message_id}})
        sort = [{"at": "desc"}, {"seq": "desc"}]
        return [
            doc_to_label(h["_source"])
            for h in self._walk(self.labels_alias, {"bool": {"filter": flt}}, sort, 1000)
        ]

    # -- maintenance ---------------------------------------------------------
    def iter_after(self, after_id: str = "", batch_size: int = 1000) -> Iterator[Message]:
        """Every message with id > `after_id`, by id: lets `store copy` resume cheaply."""
        q: dict[str, Any] = {"range": {"id": {"gt": after_id}}} if after_id else {"match_all": {}}
        for hit in self._walk(self.messages_alias, q, [{"id": "asc"}], batch_size):
            yield doc_to_message(hit["_source"])

    def reindex(
        self,
        batch_size: int | None = None,
        keep_old: bool = False,
        progress: Any = None,
    ) -> dict[str, Any]:
        """Build the next versioned index with the current mapping and swap the alias.

        Documents are rebuilt from their messages (so new derived fields are
        filled), the new index loads with refresh off and no replicas, then
        two catch-up passes copy what changed meanwhile (``updated_at``),
        and one ``_aliases`` call moves the alias: readers and writers never
        see a missing index.  The old index is deleted unless `keep_old`.
        """
        self.ensure_indices()
        old = self.current_index()
        if old is None:
            raise StoreError(f"alias {self.messages_alias} points at no index")
        versions = [
            int(n.rsplit("-v", 1)[1])
            for n in self.versioned_indices()
            if n.rsplit("-v", 1)[1].isdigit()
        ]
        new = f"{self.messages_alias}-v{max(versions, default=0) + 1}"
        self._req("PUT", f"/_index_template/{self.messages_alias}", self._template_body())
        self._create(
            new,
            {
                "settings": index_settings(self.shards, 0, "-1", self.max_window),
                "mappings": mappings(MESSAGE_PROPERTIES),
            },
        )
        size = batch_size or self.batch_size
        started = int(time.time()) - 5  # margin for clock skew between writers
        copied = self._copy_index(old, new, {"match_all": {}}, size, progress)
        for _ in range(2):
            since = int(time.time()) - 5
            changed = {"range": {"updated_at": {"gte": started, "format": "epoch_second"}}}
            copied += self._copy_index(old, new, changed, size, None)
            started = since
        self._req(
            "PUT",
            f"/{new}/_settings",
            {"index": {"refresh_interval": "1s", "number_of_replicas": self.replicas}},
        )
        self._req("POST", f"/{new}/_refresh")
        self._req(
            "POST",
            "/_aliases",
            {
                "actions": [
                    {"remove": {"index": old, "alias": self.messages_alias}},
                    {"add": {"index": new, "alias": self.messages_alias, "is_write_index": True}},
                ]
            },
        )
        # Writes that raced the swap landed in the old index: one last pass.
        last = {"range": {"updated_at": {"gte": started, "format": "epoch_second"}}}
        copied += self._copy_index(old, new, last, size, None)
        if not keep_old:
            self._req("DELETE", f"/{old}")
        self._refresh(self.messages_alias)
        return {
            "old": old,
            "new": new,
            "documents": self.count(),
            "copied": copied,
            "kept_old": keep_old,
        }

    def _copy_index(
        self, src: str, dst: str, query: dict[str, Any], size: int, progress: Any
    ) -> int:
        done = 0
        batch: list[dict[str, Any]] = []

        def flush() -> None:
            nonlocal done
            if not batch:
                return
            for doc_id, status, reason in self._bulk(batch):
                if status >= 300:
                    raise StoreError(f"reindex: document {doc_id} refused: {reason}")
            done += len(batch) // 2
            if progress is not None:
                progress(len(batch) // 2)
            batch.clear()

        for hit in self._walk(src, query, [{"id": "asc"}], size):
            msg = doc_to_message(hit["_source"])
            # Rebuilt from the message so derived fields follow the new mapping.
            batch.append({"index": {"_index": dst, "_id": msg.id}})
            batch.append(message_to_doc(msg, content_hash(msg)))
            if len(batch) >= 2 * size:
                flush()
        flush()
        return done

    def info(self) -> dict[str, Any]:
        """What `govpulse store info` prints."""
        out: dict[str, Any] = {
            "url": self.url,
            "alias": self.messages_alias,
            "spool": str(self.spool.path),
            "spool_pending": self.spool.pending(),
            "rejected": self.spool.rejected_count(),
        }
        try:
            self.ensure_indices()
            out["flavour"] = self.client.flavour
            out["index"] = self.current_index()
            out["versions"] = self.versioned_indices()
            out["messages"] = self.count()
        except StoreUnavailable as exc:
            out["error"] = str(exc)
        return out
