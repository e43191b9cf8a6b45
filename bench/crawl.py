"""Crawl the practice site through the full pipeline; compare with `scrapy bench`.

Prints a markdown table: pages/s and items/s of `govpulse crawl forum` and
`govpulse crawl mailbox` (politeness delays off, AutoThrottle off, local
sandbox, SQLite store) beside `scrapy bench`'s pages/s measured in the same
script, median of --runs runs each, and the ratio.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from crawlers.sandbox.generator import World
from crawlers.sandbox.server import Sandbox, serve_in_thread

SECONDS = 10


def rate(stats_text: str) -> tuple[float, float]:
    """pages/s and items/s from a Scrapy stats dump (same formula for both crawls)."""
    elapsed = float(re.search(r"'elapsed_time_seconds': ([\d.]+)", stats_text).group(1))
    pages = int(re.search(r"'response_received_count': (\d+)", stats_text).group(1))
    m = re.search(r"'item_scraped_count': (\d+)", stats_text)
    return pages / elapsed, (int(m.group(1)) if m else 0) / elapsed


def scrapy_bench() -> float:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "scrapy",
            "bench",
            "-s",
            f"CLOSESPIDER_TIMEOUT={SECONDS}",
            "-s",
            "LOG_LEVEL=INFO",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tempfile.gettempdir(),
    )
    if "'response_received_count'" not in out.stderr:
        raise SystemExit("scrapy bench printed no stats:\n" + out.stderr[-2000:])
    return rate(out.stderr)[0]


def govpulse_crawl(base: str, spider: str) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(
            os.environ,
            GOVPULSE_DATA_DIR=tmp,
            GOVPULSE_CRAWL_BASE_URL=base,
            GOVPULSE_CRAWL_DOWNLOAD_DELAY="0",
            GOVPULSE_CRAWL_AUTOTHROTTLE="false",
            GOVPULSE_CRAWL_CONCURRENT_PER_DOMAIN="16",
            GOVPULSE_CRAWL_CLASSIFY="false",
            GOVPULSE_CRAWL_INCREMENTAL="false",
            GOVPULSE_CRAWL_MAX_LIST_PAGES="1000",
            GOVPULSE_CRAWL_JOBDIR="off",
            GOVPULSE_CRAWL_CLOSE_AFTER_SECONDS=str(SECONDS),
            GOVPULSE_CRAWL_STORE_BATCH="500",
        )
        out = subprocess.run(
            [sys.executable, "-m", "govpulse.cli", "crawl", spider],
            capture_output=True,
            text=True,
            timeout=180,
            cwd=tmp,
            env=env,
        )
    if "'response_received_count'" not in out.stderr:
        raise SystemExit(f"govpulse crawl {spider} printed no stats:\n" + out.stderr[-2000:])
    return rate(out.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    server, base = serve_in_thread(Sandbox(World(seed=1, history_days=120, scale=3.0), faults=0.0))
    try:
        bench = [scrapy_bench() for _ in range(args.runs)]
        rows = []
        for spider in ("forum", "mailbox"):
            runs = [govpulse_crawl(base, spider) for _ in range(args.runs)]
            rows.append(
                (
                    spider,
                    statistics.median(r[0] for r in runs),
                    statistics.median(r[1] for r in runs),
                )
            )
    finally:
        server.shutdown()
    b = statistics.median(bench)
    print(
        f"| crawl (median of {args.runs}, {SECONDS}s runs) | pages/s | items/s | ratio to scrapy bench pages/s |"
    )
    print("|---|---|---|---|")
    print(f"| scrapy bench (baseline, same run) | {b:.1f} | – | 1.00× |")
    for spider, pps, ips in rows:
        print(
            f"| govpulse crawl {spider} (sandbox, full pipeline) | {pps:.1f} | {ips:.1f} | {pps / b:.2f}× |"
        )


if __name__ == "__main__":
    main()
