"""Benchmark the dashboard callbacks on a large embedded store.

Usage: python bench/dashboard.py [--size 1000000] [--baseline-size 10000] [--repeat 5]

Builds (once, cached under artifacts/bench/) a store of realistic messages
(bench/messages.py, plus urgency and rumour scores and a burst of one term
in the last day so the hot-topic and rumour pages have work to do), then
times the body of every page callback -- the same query + figure functions
the Dash callbacks call -- with a few filter variations each.

Prints p50/p95 per callback for the large store and, as the same-run
baseline, for a small store, with the ratio.  Goal: p95 <= 300 ms.
"""

from __future__ import annotations

import argparse
import random
import shutil
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from messages import generate

from govpulse.schema import TZ, Message, Urgency, make_id
from store.sqlite import SQLiteStore

CACHE = Path(__file__).resolve().parent.parent / "artifacts" / "bench"
START = datetime(2023, 1, 1, tzinfo=TZ)
NOW = datetime(2025, 1, 1, 10, 0, tzinfo=TZ)
REASONS = ["无官方来源", "传播量突增", "绝对化表述", "情绪化用语", "与已辟谣内容相似"]


def enrich(messages: Iterator[Message], seed: int) -> Iterator[Message]:
    """Add what the classifier would: urgency, rumour score and reasons."""
    rng = random.Random(seed)
    urgencies = list(Urgency)
    for m in messages:
        m.urgency = rng.choices(urgencies, weights=[1, 4, 30, 10])[0]
        m.rumour_score = round(rng.betavariate(1.2, 6), 3)
        if m.rumour_score >= 0.5:
            m.rumour_reasons = rng.sample(REASONS, 2)
        m.comments = rng.randint(0, 80)
        yield m


def burst(n: int, seed: int = 99) -> Iterator[Message]:
    """n messages about one new issue in the 20 hours before NOW."""
    rng = random.Random(seed)
    for i in range(n):
        posted = NOW - timedelta(hours=rng.uniform(0.2, 20))
        yield Message(
            id=make_id("weibo", f"burst-{seed}-{i}"),
            source="weibo",
            channel="@平安A市",
            body=f"A市A1区自来水发黄有异味，已经好几天了，到底能不能喝？{i}",
            region="A市",
            department="水务局",
            posted_at=posted,
            status="open",
            topic="城乡建设",
            urgency="紧急",
            rumour_score=round(rng.uniform(0.3, 0.95), 3),
            reposts=rng.randint(0, 900),
        ).validate()


def build(n: int) -> SQLiteStore:
    """The cached store of n messages (built on first use)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / f"dashboard-{n}.db"
    if not path.exists():
        tmp = CACHE / f"dashboard-{n}.tmp.db"
        for suffix in ("", "-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
        store = SQLiteStore(tmp)
        chunk = 50_000
        t = time.perf_counter()
        for start in range(0, n, chunk):
            size = min(chunk, n - start)
            store.upsert_many(enrich(generate(size, seed=start + 1, start=START), seed=start))
            print(
                f"  built {start + size:,}/{n:,} ({time.perf_counter() - t:.0f}s)", file=sys.stderr
            )
        store.upsert_many(burst(max(50, n // 2000)))
        store._conn().execute("PRAGMA wal_checkpoint(TRUNCATE)")
        store.close()
        shutil.move(tmp, path)
        for suffix in ("-wal", "-shm"):
            Path(str(tmp) + suffix).unlink(missing_ok=True)
    return SQLiteStore(path)


def cases(ctx, cached) -> list[tuple[str, Callable[[], object]]]:
    """(name, zero-argument call) for each page callback and filter variation.

    Names ending in "#n" are variations of one case and are pooled.  `ctx`
    has the per-process cache off; `cached` has it on (a page revisited, or
    the table re-sorted, within dashboard.cache_seconds).
    """
    from dashboard.pages import alerts, detail, hot, overview, rumours, search, timeliness
    from dashboard.urlstate import parse

    store = ctx.store()
    some_id = store.search(per_page=1).hits[0].id
    last30 = "since=2024-12-03&until=2025-01-01"
    last90 = "since=2024-10-03&until=2025-01-01"
    by_sort = [{"column_id": "overdue", "direction": "desc"}]
    out: list[tuple[str, Callable[[], object]]] = []
    views = {
        "default (30 d)": [f"?{last30}", f"?{last30}&source=mailbox"],
        "all time": ["", "?source=mailbox"],
    }
    for label, queries in views.items():
        for i, q in enumerate(queries):
            out.append((f"总览 overview, {label} #{i}", lambda q=q: overview.render(ctx, parse(q))))
            out.append(
                (
                    f"总览 rising terms, uncached #{i}",
                    lambda q=q: overview.render_terms(ctx, parse(q)),
                )
            )
            out.append(
                (
                    f"总览 rising terms, cached #{i}",
                    lambda q=q: overview.render_terms(cached, parse(q)),
                )
            )
    for label, queries in {
        "90 days": [f"?{last90}", f"?{last90}&source=forum"],
        "all time": ["", "?source=mailbox"],
    }.items():
        for i, q in enumerate(queries):
            v = parse(q)
            out.append(
                (f"回复时效 charts, {label} #{i}", lambda v=v: timeliness.render_charts(ctx, v))
            )
            out.append(
                (
                    f"回复时效 table sort/page, {label}, uncached #{i}",
                    lambda v=v: timeliness.render_table(ctx, v, 1, by_sort),
                )
            )
            out.append(
                (
                    f"回复时效 table sort/page, {label}, cached #{i}",
                    lambda v=v: timeliness.render_table(cached, v, 1, by_sort),
                )
            )
            out.append(
                (
                    f"回复时效 overdue click, {label} #{i}",
                    lambda v=v: timeliness.render_overdue(ctx, v, "住建局"),
                )
            )
    for i, q in enumerate(["", f"?{last30}", "?source=weibo"]):
        out.append((f"谣言 rumours #{i}", lambda q=q: rumours.render(ctx, parse(q), 0, None)))
    for i, q in enumerate(["", "?source=weibo"]):
        out.append((f"热点 hot, uncached #{i}", lambda q=q: hot.render(ctx, parse(q))))
        out.append((f"热点 hot, cached #{i}", lambda q=q: hot.render(cached, parse(q))))
    for i, q in enumerate(
        [
            "?q=噪音",
            "?q=物业+停车费&source=mailbox",
            "?q=供暖&page=5",
            "?source=forum",
            f"?q=自来水&{last30}",
        ]
    ):
        out.append((f"检索 search #{i}", lambda q=q: search.render(ctx, parse(q))))
    out.append(("消息详情 detail", lambda: detail.layout(ctx, parse(f"?id={some_id}"))))
    out.append(("预警 alerts log", lambda: alerts.render_log(ctx)))
    for name, page in (("overview", overview), ("timeliness", timeliness), ("search", search)):
        out.append(
            (f"page layout {name} (filter options)", lambda p=page: p.layout(ctx, parse("")))
        )
    return out


def run(store: SQLiteStore, repeat: int, data_dir: Path) -> dict[str, list[float]]:
    from dashboard.context import DashContext
    from govpulse.settings import load

    # Per-process caching off (ctx): every call pays the full query cost.
    settings = load(env={}, cli={"data_dir": str(data_dir), "dashboard.cache_seconds": "0"})
    ctx = DashContext(settings=settings, data_dir=data_dir, store_source=store, clock=lambda: NOW)
    cached = DashContext(
        settings=settings.with_overrides({"dashboard.cache_seconds": "3600"}),
        data_dir=data_dir,
        store_source=store,
        clock=lambda: NOW,
    )
    times: dict[str, list[float]] = {}
    for name, call in cases(ctx, cached):
        call()  # warm SQLite's page cache once, as a running server would be
        for _ in range(repeat):
            t = time.perf_counter()
            call()
            times.setdefault(_group(name), []).append((time.perf_counter() - t) * 1000)
    return times


def _group(name: str) -> str:
    return name.split(" #")[0]


def pct(values: list[float], q: float) -> float:
    values = sorted(values)
    return values[min(len(values) - 1, round(q * (len(values) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=1_000_000)
    parser.add_argument("--baseline-size", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    data_dir = CACHE / "dashboard-data"
    data_dir.mkdir(parents=True, exist_ok=True)
    big = run(build(args.size), args.repeat, data_dir)
    small = run(build(args.baseline_size), args.repeat, data_dir)
    print(
        f"\nDashboard callbacks, {args.size:,} messages vs {args.baseline_size:,} (baseline), "
        f"{args.repeat} runs per variation after one warm-up, per-process cache off unless marked cached; times in ms\n"
    )
    print("| callback | p50 | p95 | baseline p50 | baseline p95 | p95 ratio | p95 ≤ 300 ms |")
    print("|---|---:|---:|---:|---:|---:|:---:|")
    for name, values in big.items():
        base = small[name]
        ok = "yes" if pct(values, 0.95) <= 300 else "NO"
        print(
            f"| {name} | {statistics.median(values):.0f} | {pct(values, 0.95):.0f} | "
            f"{statistics.median(base):.0f} | {pct(base, 0.95):.0f} | "
            f"{pct(values, 0.95) / max(pct(base, 0.95), 0.01):.1f}x | {ok} |"
        )


if __name__ == "__main__":
    main()
