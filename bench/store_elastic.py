"""Benchmark the Elasticsearch/OpenSearch store beside the embedded SQLite store, same run.

Usage: python bench/store_elastic.py [--size 100000] [--rate-size 20000] [--repeat 3]
                                     [--url http://host:9200]

Without --url it starts osmem-server (the in-memory OpenSearch-compatible
test server) on 127.0.0.1; with --url it uses that cluster (indices under
the prefix ``govpulse-bench``, dropped afterwards).  Figures:

* bulk ingest, docs/s: median of --repeat fresh loads of --rate-size
  messages, SQLite on the same messages as the same-run baseline, ratio;
* at --size documents: full-text query, facets, timeliness and histogram
  latency p50/p95 (ms) on both backends, ratio of the p95s.

Both backends get identical generated messages (bench/messages.py).
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(ROOT))  # before bench/, so "store" is the package, not bench/store.py

from messages import QUERIES, generate  # noqa: E402

from govpulse.schema import TZ, Message  # noqa: E402
from store.base import Filters, Sla, Store  # noqa: E402
from store.elastic import ElasticStore  # noqa: E402
from store.elastic_client import ConnectionOptions, make_client  # noqa: E402
from store.sqlite import SQLiteStore  # noqa: E402

NOW = datetime(2025, 1, 1, tzinfo=TZ)
PREFIX = "govpulse-bench"


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def open_elastic(url: str, prefix: str, spool_dir: Path, flavour: str) -> ElasticStore:
    client = make_client(ConnectionOptions.from_url(url), flavour)
    return ElasticStore(
        client,
        url=url,
        prefix=prefix,
        spool_path=spool_dir / f"{prefix}.spool.sqlite",
        refresh=False,  # bulk-load mode: one refresh at the end
        replicas=0,
        batch_size=2000,
    )


def drop(store: ElasticStore) -> None:
    for path in (f"/{store.prefix}-*", f"/_index_template/{store.messages_alias}"):
        with contextlib.suppress(Exception):
            store._req("DELETE", path)


def ingest_rates(
    url: str, flavour: str, messages: list[Message], repeat: int, tmp: Path
) -> tuple[float, float]:
    """(median ES docs/s, median SQLite docs/s) loading the same messages into fresh stores."""
    es_rates, sqlite_rates = [], []
    for i in range(repeat):
        batch = [Message(**{f: getattr(m, f) for f in m.__slots__}) for m in messages]  # type: ignore[attr-defined]
        es = open_elastic(url, f"{PREFIX}-rate{i}", tmp, flavour)
        es.ensure_indices()
        t = time.perf_counter()
        stats = es.upsert_many(batch)
        es.refresh = True
        es._refresh(es.messages_alias)
        es_rates.append(len(batch) / (time.perf_counter() - t))
        assert stats.inserted == len(batch) and es.spool.pending() == 0, stats
        drop(es)
        es.close()
        batch = [Message(**{f: getattr(m, f) for f in m.__slots__}) for m in messages]  # type: ignore[attr-defined]
        db = SQLiteStore(tmp / f"rate{i}.db")
        t = time.perf_counter()
        db.upsert_many(batch)
        sqlite_rates.append(len(batch) / (time.perf_counter() - t))
        db.close()
    return statistics.median(es_rates), statistics.median(sqlite_rates)


def measure(store: Store, repeat: int) -> dict[str, list[float]]:
    recent = Filters(since=NOW - timedelta(days=90))
    out: dict[str, list[float]] = {"query": [], "facets": [], "timeliness": [], "histogram": []}
    for q in QUERIES:
        out["query"] += timed(lambda q=q: store.search(q, per_page=20), repeat)
    out["facets"] += timed(
        lambda: store.facets(["source", "topic", "status", "department"]), repeat
    )
    out["facets"] += timed(
        lambda: store.facets(["source", "topic"], filters=Filters.make(department="住建局")), repeat
    )
    for sla in (Sla(working_days=True), Sla(working_days=False)):
        out["timeliness"] += timed(
            lambda sla=sla: store.timeliness("department", sla=sla, now=NOW), repeat
        )
    out["histogram"] += timed(
        lambda: store.histogram("day", filters=recent, split_by="source"), repeat
    )
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=100_000, help="documents for the query figures")
    parser.add_argument("--rate-size", type=int, default=20_000, help="messages per ingest run")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--url", default="", help="a real cluster (default: start osmem-server)")
    parser.add_argument("--client", default="auto", choices=["auto", "elasticsearch", "opensearch"])
    args = parser.parse_args(argv)

    server = None
    url = args.url
    if not url:
        from osmem_server import OsmemServer

        server = OsmemServer.start(japanese=False)
        url = server.url
    try:
        with tempfile.TemporaryDirectory(prefix="govpulse-bench-") as tmpdir:
            tmp = Path(tmpdir)
            sample = list(generate(args.rate_size, seed=11))
            es_rate, sqlite_rate = ingest_rates(url, args.client, sample, args.repeat, tmp)

            es = open_elastic(url, f"{PREFIX}-main", tmp, args.client)
            db = SQLiteStore(tmp / "main.db")
            t = time.perf_counter()
            for start in range(0, args.size, 20_000):
                chunk = list(generate(min(20_000, args.size - start), seed=start + 1))
                es.upsert_many(chunk)
                db.upsert_many([Message(**{f: getattr(m, f) for f in m.__slots__}) for m in chunk])  # type: ignore[attr-defined]
            es.refresh = True
            es._refresh(es.messages_alias)
            load_s = time.perf_counter() - t
            assert es.count() == db.count() == args.size, (es.count(), db.count())
            # Same answers before timing anything.
            assert es.count("供暖") == db.count("供暖")
            assert es.facets(["department"]) == db.facets(["department"])
            m_es, m_db = measure(es, args.repeat), measure(db, args.repeat)
            flavour = es.client.flavour
            drop(es)
            es.close()
            db.close()
    finally:
        if server is not None:
            server.close()

    target = "osmem-server (in-memory)" if server is not None else url
    print(f"\n## Elasticsearch/OpenSearch store vs SQLite ({flavour} client, {target})\n")
    print("| figure | Elastic | SQLite (same run) | ratio Elastic/SQLite |")
    print("|---|---|---|---|")
    print(
        f"| bulk ingest, docs/s (median of {args.repeat}, {args.rate_size:,} msgs) "
        f"| {es_rate:,.0f} | {sqlite_rate:,.0f} | {es_rate / sqlite_rate:.2f}× |"
    )
    for name in ("query", "facets", "timeliness", "histogram"):
        a, b = m_es[name], m_db[name]
        print(
            f"| {args.size:,} docs: {name} p50 / p95 (ms, {len(a)} calls) "
            f"| {statistics.median(a):.1f} / {pct(a, 0.95):.1f} "
            f"| {statistics.median(b):.1f} / {pct(b, 0.95):.1f} | {pct(a, 0.95) / pct(b, 0.95):.2f}× (p95) |"
        )
    print(f"| load of {args.size:,} docs into both (s) | {load_s:,.0f} | | |")


if __name__ == "__main__":
    main()
