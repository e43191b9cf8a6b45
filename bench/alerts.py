"""How well and how early the hot-topic detector (govpulse.trends) catches real bursts.

1. Weibo hot-search replay (``../shared/data/weibo/hot_search_snapshots.csv``:
   the top-50 list at 11:00 and 23:00, 2019-11 .. 2021-03).  Each topic on
   a list is one row; its terms are cut with govpulse's tokeniser.  At every
   snapshot the detector compares each term's count on the current list
   with its counts on the previous 7 days of lists (14 buckets).

   Ground truth: a term is *really hot* when it appears in a top-10 topic.
   A detection is a term that starts rising (not rising in the previous 7
   days).  It is a hit when the term is in the top 10 within [-1, +4]
   snapshots of the detection (-1: the same event, caught half a day
   late).  Lead time = first top-10 appearance minus detection time
   (positive: caught before the term reached the top 10).
   Recall = share of sustained top-10 events (a term in the top 10 on at
   least 2 of 6 consecutive snapshots, after 7 quiet days) detected within
   [-4, +1] snapshots of their first top-10 appearance.  Baselines in the same run: "volume" flags any term
   in >= min_count topics of the current list (no history); "new" flags
   terms absent from the previous 7 days.

2. Practice-site replay (crawlers.sandbox): letters, forum threads and
   Weibo comments from the seeded world, whose event days are known.  The
   detector runs every hour with a 24-hour window; a day is detected when
   a rising event contains a term of that day's event (or rumour) text.

3. Speed: median of N replays of (1), detector vs the volume baseline.

Skips cleanly when the shared data is absent.  Run:
    python bench/alerts.py [--data ../shared/data] [--runs 5]
"""

from __future__ import annotations

import argparse
import bisect
import csv
import os
import statistics
import sys
import time
from collections import defaultdict
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from govpulse.schema import TZ  # noqa: E402
from govpulse.trends import TrendRow, detect_rising, merge_events, message_terms  # noqa: E402

SNAPSHOT = timedelta(hours=12)
QUIET = 14  # snapshots = 7 days
HIT_BEFORE, HIT_AFTER = 1, 4
RECALL_BEFORE, RECALL_AFTER = 4, 1


def load_snapshots(path: Path) -> list[tuple[datetime, list[tuple[int, list[str]]]]]:
    """[(snapshot time, [(rank, terms)])] in time order."""
    by_time: dict[datetime, list[tuple[int, list[str]]]] = defaultdict(list)
    cache: dict[str, list[str]] = {}
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            at = datetime.strptime(row["snapshot_time_cst"], "%Y-%m-%d %H:%M").replace(tzinfo=TZ)
            topic = row["topic"]
            if topic not in cache:
                cache[topic] = message_terms(topic)
            by_time[at].append((int(row["rank"]), cache[topic]))
    return sorted(by_time.items())


def rising_per_snapshot(
    snaps, k: float, min_count: int, volume_adjust: bool = True
) -> list[set[str]]:
    """Terms the detector calls rising at each snapshot."""
    out: list[set[str]] = []
    for i, (at, _) in enumerate(snaps):
        rows = [
            TrendRow(t, terms, "weibo", f"{j}:{rank}")
            for j in range(max(0, i - QUIET), i + 1)
            for t, items in [snaps[j]]
            for rank, terms in items
        ]
        now = at + timedelta(minutes=1)  # the window [now-12h, now) holds this snapshot only
        trends = detect_rising(
            rows,
            now,
            window=SNAPSHOT,
            baseline=SNAPSHOT * QUIET,
            limit=0,
            k=k,
            min_count=min_count,
            only_rising=True,
            volume_adjust=volume_adjust,
        )
        out.append({t.term for t in trends})
    return out


def volume_per_snapshot(snaps, min_count: int) -> list[set[str]]:
    out = []
    for _, items in snaps:
        counts: dict[str, int] = defaultdict(int)
        for _, terms in items:
            for t in set(terms):
                counts[t] += 1
        out.append({t for t, c in counts.items() if c >= min_count})
    return out


def new_per_snapshot(snaps) -> list[set[str]]:
    out = []
    for i, (_, items) in enumerate(snaps):
        recent = {t for j in range(max(0, i - QUIET), i) for _, terms in snaps[j][1] for t in terms}
        out.append({t for _, terms in items for t in terms} - recent if i >= QUIET else set())
    return out


def onsets(flags: list[set[str]]) -> list[tuple[str, int]]:
    """(term, index) where a term is flagged after QUIET snapshots without being flagged."""
    last: dict[str, int] = {}
    out = []
    for i, terms in enumerate(flags):
        for t in terms:
            if i >= QUIET and (t not in last or i - last[t] > QUIET):
                out.append((t, i))
            last[t] = i
    return out


def score(flags: list[set[str]], top10: list[set[str]]) -> dict[str, float]:
    det = onsets(flags)
    n = len(top10)
    hits, leads = 0, []
    for term, i in det:
        window = [
            j for j in range(max(0, i - HIT_BEFORE), min(n, i + HIT_AFTER + 1)) if term in top10[j]
        ]
        if window:
            hits += 1
            leads.append((window[0] - i) * 12)
    # Recall is measured on sustained events: terms in the top 10 on >= 2 of 6 snapshots.
    sustained = [
        {t for t in top10[j] if sum(t in top10[x] for x in range(j, min(n, j + 6))) >= 2}
        for j in range(n)
    ]
    truth = onsets(sustained)
    flagged_at: dict[str, list[int]] = defaultdict(list)
    for i, terms in enumerate(flags):
        for t in terms:
            flagged_at[t].append(i)
    caught = sum(
        1
        for term, j in truth
        if any(j - RECALL_BEFORE <= i <= j + RECALL_AFTER for i in flagged_at.get(term, ()))
    )
    return {
        "detections": len(det),
        "precision": hits / len(det) if det else 0.0,
        "recall": caught / len(truth) if truth else 0.0,
        "truth_events": len(truth),
        "median_lead_h": statistics.median(leads) if leads else float("nan"),
        "early_or_on_time": sum(1 for x in leads if x >= 0) / len(leads) if leads else 0.0,
        "per_day": len(det) / (n / 2),
    }


def hot_search(data: Path, runs: int, k: float, min_count: int) -> None:
    path = data / "weibo" / "hot_search_snapshots.csv"
    if not path.is_file():
        print(f"skip hot-search replay: {path} not found")
        return
    snaps = load_snapshots(path)
    top10 = [{t for rank, terms in items if rank <= 10 for t in terms} for _, items in snaps]
    print(
        f"\n## Weibo hot search: {len(snaps)} snapshots, window 12 h, baseline 7 d, "
        f"k={k}, min_count={min_count}"
    )
    results = {
        f"detector k={k:g}": score(rising_per_snapshot(snaps, k, min_count), top10),
        f"detector k={k - 1:g}": score(rising_per_snapshot(snaps, k - 1, min_count), top10),
        f"detector k={k:g} raw counts": score(
            rising_per_snapshot(snaps, k, min_count, volume_adjust=False), top10
        ),
        "baseline: volume only": score(volume_per_snapshot(snaps, min_count), top10),
        "baseline: new term": score(new_per_snapshot(snaps), top10),
    }
    header = (
        f"{'method':<24}{'detections':>11}{'/day':>7}{'precision':>11}{'recall':>8}"
        f"{'median lead h':>15}{'on time':>9}"
    )
    print(header)
    print("-" * len(header))
    for name, r in results.items():
        print(
            f"{name:<24}{r['detections']:>11}{r['per_day']:>7.2f}{r['precision']:>11.3f}"
            f"{r['recall']:>8.3f}{r['median_lead_h']:>15.1f}{r['early_or_on_time']:>9.2f}"
        )
    print(
        f"(recall truth: {results['baseline: volume only']['truth_events']} sustained top-10 "
        f"events; 'on time' = share of hits caught no later than the top-10 entry)"
    )

    det_times, base_times = [], []
    for _ in range(runs):
        t0 = time.perf_counter()
        rising_per_snapshot(snaps, k, min_count)
        det_times.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        volume_per_snapshot(snaps, min_count)
        base_times.append(time.perf_counter() - t0)
    d, b = statistics.median(det_times), statistics.median(base_times)
    print(
        f"\nspeed, median of {runs} replays of {len(snaps)} snapshots: detector {d:.3f} s "
        f"({len(snaps) / d:.0f} snapshots/s, 15 buckets each), volume baseline {b:.3f} s, "
        f"ratio {d / b:.1f}x"
    )


def sandbox(days: int, k: float, min_count: int) -> None:
    try:
        from crawlers.sandbox import texts
        from crawlers.sandbox.generator import World
    except ImportError as exc:
        print(f"skip practice-site replay: {exc}")
        return
    world = World(seed=42, history_days=days)
    end = World.day_start(days + 10)
    now_day = (end.date() - World.day_start(0).date()).days
    rows: list[TrendRow] = []
    for day in range(now_day - days, now_day):
        for key, ch in world.channels.items():
            if ch.kind == "weibo":
                for post in world.posts_of_day(key, day):
                    for c in world.comments_of(post.id):
                        rows.append(TrendRow(c.posted_at, message_terms(c.body), "weibo", c.id))
            else:
                for x in world.letters_of_day(key, day):
                    rows.append(
                        TrendRow(x.posted_at, message_terms(f"{x.title}\n{x.body}"), ch.kind, x.id)
                    )
    rows.sort(key=lambda r: r.at)
    print(
        f"\n## Practice site: {len(rows)} messages over {days} days, hourly checks, "
        f"window 24 h, baseline 7 d, k={k}, min_count={min_count}"
    )

    def truth_terms(day: int) -> set[str]:
        terms: set[str] = set()
        e = world.event_of_day(day)
        if e is not None:
            terms |= set(message_terms(" ".join(texts.EVENTS[e][:3])))
        r = world.rumour_of_day(day)
        if r is not None:
            terms |= set(message_terms(texts.RUMOURS[r][0]))
        return terms

    first_day = now_day - days + 8  # leave a full baseline
    event_days = [d for d in range(first_day, now_day) if world.event_of_day(d) is not None]
    print(
        f"{'rule variant':<22}{'event days':>11}{'caught':>8}{'recall':>8}{'daily events':>14}"
        f"{'precision':>11}{'median hour caught':>20}"
    )
    times = [r.at for r in rows]
    variants = [
        ("volume-adjusted", True, 1),
        ("raw counts", False, 1),
        ("adjusted, 2 sources", True, 2),
    ]
    for label, adjust, min_sources in variants:
        caught_hour: dict[int, int] = {}
        detections = hits = 0
        for day in range(first_day, now_day):
            start = World.day_start(day)
            for hour in range(1, 25):
                now = start + timedelta(hours=hour)
                lo = now - timedelta(days=8)
                trends = detect_rising(
                    rows[bisect.bisect_left(times, lo) : bisect.bisect_left(times, now)],
                    now,
                    limit=50,
                    k=k,
                    min_count=min_count,
                    only_rising=True,
                    volume_adjust=adjust,
                )
                events = merge_events([t for t in trends if len(t.sources) >= min_sources])
                today = truth_terms(day)
                if (
                    day in event_days
                    and day not in caught_hour
                    and any({t.term for t in ev} & today for ev in events)
                ):
                    caught_hour[day] = hour
                if hour == 24:  # precision: the end-of-day list a duty officer would read
                    truth = today | truth_terms(day - 1)  # yesterday's burst is still in the window
                    detections += len(events)
                    hits += sum(1 for ev in events if {t.term for t in ev} & truth)
        hours = sorted(caught_hour.values())
        print(
            f"{label:<22}{len(event_days):>11}{len(caught_hour):>8}"
            f"{len(caught_hour) / max(len(event_days), 1):>8.3f}{detections:>14}"
            f"{hits / max(detections, 1):>11.3f}"
            f"{(statistics.median(hours) if hours else float('nan')):>20.1f}"
        )
    print(
        "(precision over the end-of-day lists; an event counts when it shares a term with that "
        "day's or yesterday's event or rumour; hour = clock hour when first caught, posting "
        "starts at 07:00; 2 sources = alerts.hot_min_sources=2)"
    )


def store_speed(runs: int, n: int) -> None:
    """Cost of the hot-topic rule on a real SQLite store vs just reading the messages."""
    import random
    import tempfile

    from bench.messages import generate
    from govpulse.trends import rising_terms
    from store.sqlite import SQLiteStore

    now = datetime(2024, 6, 10, 12, 0, tzinfo=TZ)
    rng = random.Random(7)
    msgs = []
    for m in generate(n, seed=3):
        m.posted_at = now - timedelta(seconds=rng.randrange(8 * 86400))
        m.replied_at = None
        m.reply_body = None
        msgs.append(m.validate())
    with tempfile.TemporaryDirectory() as tmp:
        store = SQLiteStore(Path(tmp) / "bench.db")
        store.upsert_many(msgs)
        det, base = [], []
        for _ in range(runs):
            t0 = time.perf_counter()
            rising_terms(store, now, limit=20)
            det.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            for _m in store.iter_messages():
                pass
            base.append(time.perf_counter() - t0)
        store.close()
    d, b = statistics.median(det), statistics.median(base)
    print(f"\n## Hot-topic rule on SQLite, {n} messages in 8 days, median of {runs} runs")
    print(
        f"rising_terms {d:.3f} s ({n / d:.0f} msgs/s); baseline: reading the same messages "
        f"{b:.3f} s; ratio {d / b:.1f}x (the rest is tokenising and counting)"
    )


def main() -> None:
    default = os.environ.get("GOVPULSE_SHARED_DATA", str(ROOT.parent / "shared" / "data"))
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", default=default, help="shared data folder")
    parser.add_argument("--runs", type=int, default=5, help="timed replays (median reported)")
    parser.add_argument("--k", type=float, default=3.0)
    parser.add_argument("--min-count", type=int, default=2, help="hot-search min topics per term")
    parser.add_argument("--sandbox-days", type=int, default=60)
    parser.add_argument("--store-messages", type=int, default=20000)
    args = parser.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        print(f"skip hot-search replay: shared data not found at {data}")
    else:
        hot_search(data, args.runs, args.k, args.min_count)
    sandbox(args.sandbox_days, args.k, 5)
    store_speed(args.runs, args.store_messages)


if __name__ == "__main__":
    main()
