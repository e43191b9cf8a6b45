"""Benchmark the embedded store: import throughput, query and aggregate latency, size.

Usage: python bench/store.py [--sizes 100000,1000000] [--repeat 3] [--workers 2] [--elastic]

For each size it generates realistic messages (bench/messages.py), imports
them into a fresh SQLite store and measures:

* import throughput (messages/s, median of --repeat imports of --rate-size
  messages into an empty store), beside the baseline of the same run:
  pure-Python ``jieba.lcut`` over the same texts (the tokenisation the brief
  quotes at ~1,500 letters/s); and once for a longer import
  (--sustained-size, 100,000 by default), where the growing indexes make
  each transaction dearer;
* full-text query latency (median, p95) over a set of 2–4 character queries;
* facet + timeliness aggregate latency (median, p95), calendar and working days;
* database size on disk.

Query latencies come with a same-run baseline, because the machine is
shared and absolute figures swing 2-3x with its load: a fixed unit of
SQLite work (counting one 90-day range of the covering index, ~120,000
entries at 1M messages) timed between the measured calls; each p95 is also
given as a multiple of that unit.  ``--compare-raw`` also times the
aggregates with the summary tables off (``use_summaries=False``: the
pre-v4 raw-row queries) in the same run.

Prints a markdown table.  Built stores are cached under artifacts/bench/
(store-N.db); a cached store from an older schema is migrated when opened
(about 30 s per million messages, once).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from messages import QUERIES, generate

from govpulse.schema import TZ
from store.base import Filters, Sla
from store.sqlite import SQLiteStore

CACHE = Path(__file__).resolve().parent.parent / "artifacts" / "bench"
NOW = datetime(2025, 1, 1, tzinfo=TZ)


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def time_calls(fn, repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t) * 1000)
    return out


def jieba_baseline(texts: list[str]) -> float:
    import jieba

    jieba.setLogLevel(60)
    jieba.initialize()
    t = time.perf_counter()
    for text in texts:
        jieba.lcut(text)
    return len(texts) / (time.perf_counter() - t)


def import_rate(n: int, workers: int, repeat: int) -> tuple[float, float]:
    """(median messages/s of our import, jieba.lcut letters/s on the same texts)."""
    messages = list(generate(n, seed=11))
    rates = []
    for i in range(repeat):
        path = CACHE / f"rate-{i}.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        store = SQLiteStore(path, index_workers=workers)
        t = time.perf_counter()
        store.upsert_many(messages)
        rates.append(n / (time.perf_counter() - t))
        store.close()
    sample = [m.text + (m.reply_body or "") for m in messages[: min(n, 5000)]]
    return statistics.median(rates), jieba_baseline(sample)


def sustained_rate(n: int, workers: int) -> float:
    """Messages/s of one import of `n` messages into a fresh store (many transactions).

    The short runs of `import_rate` write into an empty store; here the
    indexes, summary tables and WAL grow as they would during a large
    import, and the closing ANALYZE is included.
    """
    path = CACHE / "sustained.db"
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    messages = list(generate(n, seed=13))
    store = SQLiteStore(path, index_workers=workers)
    try:
        t = time.perf_counter()
        store.upsert_many(messages)
        return n / (time.perf_counter() - t)
    finally:
        store.close()
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)


def build(n: int, workers: int) -> tuple[SQLiteStore, float]:
    path = CACHE / f"store-{n}.db"
    t = time.perf_counter()
    if not path.exists():
        tmp = CACHE / f"store-{n}.tmp.db"
        store = SQLiteStore(tmp, index_workers=workers)
        chunk = 50_000
        for start in range(0, n, chunk):
            store.upsert_many(generate(min(chunk, n - start), seed=start + 1))
        store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        shutil.move(tmp, path)
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
    elapsed = time.perf_counter() - t
    return SQLiteStore(path), elapsed


def reference_unit(store: SQLiteStore, repeat: int) -> list[float]:
    """Times of a fixed unit of SQLite work: the machine-speed baseline of this run."""
    conn = store._conn()
    since = int((NOW - timedelta(days=90)).timestamp())
    sql = (
        "SELECT source, COUNT(*) FROM messages INDEXED BY ix_messages_cover "
        "WHERE posted_at >= ? GROUP BY source"
    )
    return time_calls(lambda: conn.execute(sql, (since,)).fetchall(), repeat)


def measure(store: SQLiteStore, repeat: int) -> dict[str, float]:
    unit = reference_unit(store, repeat)
    fts = []
    for q in QUERIES:
        fts += time_calls(lambda q=q: store.search(q, per_page=20), repeat)
    recent = Filters(since=NOW - timedelta(days=90))
    dept = Filters.make(department="住建局")
    agg = []
    for sla in (Sla(working_days=True), Sla(working_days=False)):
        agg += time_calls(lambda sla=sla: store.timeliness("department", sla=sla, now=NOW), repeat)
        agg += time_calls(
            lambda sla=sla: store.timeliness("department", recent, sla=sla, now=NOW), repeat
        )
    facets = time_calls(lambda: store.facets(["source", "topic", "status", "department"]), repeat)
    facets += time_calls(lambda: store.facets(["source", "topic", "status"], filters=dept), repeat)
    hist = time_calls(lambda: store.histogram("day", filters=recent, split_by="source"), repeat)
    unit += reference_unit(store, repeat)
    return {
        "unit": statistics.median(unit),
        "fts_p50": statistics.median(fts),
        "fts_p95": pct(fts, 0.95),
        "agg_p50": statistics.median(agg),
        "agg_p95": pct(agg, 0.95),
        "facet_p50": statistics.median(facets),
        "facet_p95": pct(facets, 0.95),
        "hist_p95": pct(hist, 0.95),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="100000", help="comma-separated store sizes")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--rate-size", type=int, default=20000, help="messages per throughput run")
    parser.add_argument(
        "--sustained-size",
        type=int,
        default=100_000,
        help="messages of one longer import into a fresh store (0: skip)",
    )
    parser.add_argument("--elastic", action="store_true", help="also run bench/store_elastic.py")
    parser.add_argument(
        "--compare-raw",
        action="store_true",
        help="also time the aggregates with the summary tables off (the raw-row queries)",
    )
    args = parser.parse_args()
    CACHE.mkdir(parents=True, exist_ok=True)

    rate, baseline = import_rate(args.rate_size, args.workers, args.repeat)
    print(f"\n## Store benchmark ({os.cpu_count()} cores, {args.workers} index workers)\n")
    print("| figure | value |")
    print("|---|---|")
    print(
        f"| import, messages/s (median of {args.repeat}, {args.rate_size:,} messages) | {rate:,.0f} |"
    )
    print(
        f"| baseline: pure-Python jieba.lcut, letters/s (same run, same texts) | {baseline:,.0f} |"
    )
    print(f"| ratio import / jieba.lcut | {rate / baseline:.1f}× |")
    if args.sustained_size:
        sustained = sustained_rate(args.sustained_size, args.workers)
        print(
            f"| import, messages/s ({args.sustained_size:,} messages into a fresh store, once) "
            f"| {sustained:,.0f} ({sustained / baseline:.1f}× jieba.lcut) |"
        )
    for n in [int(s) for s in args.sizes.split(",")]:
        store, build_s = build(n, args.workers)
        m = measure(store, args.repeat)
        size_mb = sum(p.stat().st_size for p in CACHE.glob(f"store-{n}.db*")) / 1e6
        unit = m["unit"]
        print(f"| {n:,} msgs: baseline unit, 90-day index count (ms, median) | {unit:.1f} |")
        for label, key in (
            ("full-text query", "fts"),
            ("timeliness aggregate", "agg"),
            ("facets", "facet"),
        ):
            p50, p95 = m[f"{key}_p50"], m[f"{key}_p95"]
            print(
                f"| {n:,} msgs: {label} p50 / p95 (ms) | {p50:.1f} / {p95:.1f} "
                f"(p95 = {p95 / unit:.1f} units) |"
            )
        print(
            f"| {n:,} msgs: day histogram (90 days) p95 (ms) | {m['hist_p95']:.1f} "
            f"({m['hist_p95'] / unit:.1f} units) |"
        )
        if args.compare_raw:
            raw = SQLiteStore(store.path, use_summaries=False)
            r = measure(raw, args.repeat)
            raw.close()
            for label, key in (("timeliness aggregate", "agg"), ("facets", "facet")):
                print(
                    f"| {n:,} msgs: {label} p95, raw rows (summaries off), same run (ms) | "
                    f"{r[f'{key}_p95']:.1f} ({r[f'{key}_p95'] / m[f'{key}_p95']:.1f}x the summary path) |"
                )
        print(f"| {n:,} msgs: database size (MB) | {size_mb:,.0f} |")
        if build_s > 1:
            print(f"| {n:,} msgs: build time (s) | {build_s:,.0f} |")
        store.close()
    if args.elastic:
        import store_elastic  # bench/store_elastic.py

        store_elastic.main([])


if __name__ == "__main__":
    main()
