"""Benchmark: letters/s of all three classifiers together vs pure-Python jieba alone.

Usage: ``python bench/classify.py [--runs 5] [--letters 3000]``.

Reads raw letters (title + body) from ../shared/data/mailbox (or
GOVPULSE_SHARED_DATA) and times, in the same process and run:

* baseline: ``jieba.lcut`` of each letter (what a plain jieba pipeline pays
  just to tokenise);
* govpulse: ``Tagger.tag_rows`` in batches of 500 with the shipped topic,
  urgency and rumour models (rumour scored for every letter, i.e. the worst
  case), which includes the preparation (``classify.text.prepare_chars``:
  normalisation only, the shipped models read character n-grams and need
  no jieba cut), the shared hashed n-gram counts (``classify.hashing``, one
  per batch for all three models) and the three models (scored by
  ``classify.compiled``, which gives their ``predict_proba`` without
  scikit-learn's wrappers, the three TF-IDF -> linear layers in one
  product per batch: ``compile_models``);
* preparation alone: ``prepare_chars`` (what the shipped models read) and,
  for reference, ``prepare`` (normalisation + rjieba cut + stop words, what
  word models read);
* the crawl pipeline's calls: batches of ``crawl.store_batch`` (200) messages
  (the classify step tags each store batch at once), and for comparison
  one message per call (what it did before).

Prints the median of several runs for each, the ratio, and peak memory (max
RSS).  Tagging and jieba are also timed in CPU seconds of the process
(``time.process_time``): on a machine shared with other jobs, wall-clock
time includes waiting for a core, CPU time much less so (per core is what
the goal asks).  BLAS threads are pinned to 1 so the figure is per core.  Skips with a
message (exit 0) when the shared data is absent.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import resource
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
SHARED = Path(os.environ.get("GOVPULSE_SHARED_DATA", ROOT.parent / "shared" / "data"))


def load_letters(limit: int) -> list[tuple[str, str]]:
    import pandas as pd

    files = [
        ("tipdm2020c_letters_with_replies.csv", "留言主题", "留言详情"),
        ("tipdm2020c_letters_unlabelled.csv", "留言主题", "留言详情"),
        ("shangluo_mayor_mailbox.csv", "title", "query"),
    ]
    out: list[tuple[str, str]] = []
    for name, title, body in files:
        frame = pd.read_csv(SHARED / "mailbox" / name, dtype=str).fillna("")
        out.extend(zip(frame[title], frame[body], strict=True))
        if len(out) >= limit:
            break
    return out[:limit]


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def main() -> int:
    parser = argparse.ArgumentParser(description="classifier throughput benchmark")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--letters", type=int, default=3000)
    parser.add_argument("--model-dir", default=None, help="models to time (default: shipped)")
    args = parser.parse_args()
    if not (SHARED / "mailbox").is_dir():
        print(f"SKIP: shared data not found at {SHARED} (set GOVPULSE_SHARED_DATA)")
        return 0
    warnings.filterwarnings("ignore")
    import jieba

    from classify.tagger import Tagger

    letters = load_letters(args.letters)
    n = len(letters)
    chars = sum(len(a) + len(b) for a, b in letters)
    print(
        f"{n} raw letters, mean {chars / n:.0f} characters; {args.runs} runs each; OMP_NUM_THREADS=1"
    )
    jieba.setLogLevel(60)
    jieba.initialize()
    rss_before = peak_rss_mb()
    tagger = Tagger.load(args.model_dir) if args.model_dir else Tagger.load_default()
    rows = [{"title": a, "body": b, "rumour": True} for a, b in letters]
    tagger.tag_rows(rows[:50])  # warm-up: lazy dictionary and model set-up
    rss_loaded = peak_rss_mb()

    from classify.text import prepare, prepare_chars

    base_t, ours_t, cut_t, chars_t = [], [], [], []
    base_cpu, ours_cpu = [], []  # CPU seconds of this process: what a busy machine inflates least
    for _ in range(args.runs):
        start, cpu = time.perf_counter(), time.process_time()
        for a, b in letters:
            jieba.lcut(f"{a}\n{b}")
        base_t.append(time.perf_counter() - start)
        base_cpu.append(time.process_time() - cpu)
        start = time.perf_counter()
        for a, b in letters:
            prepare(a, b)
        cut_t.append(time.perf_counter() - start)
        start = time.perf_counter()
        for a, b in letters:
            prepare_chars(a, b)
        chars_t.append(time.perf_counter() - start)
        start, cpu = time.perf_counter(), time.process_time()
        for i in range(0, n, 500):
            tagger.tag_rows(rows[i : i + 500])
        ours_t.append(time.perf_counter() - start)
        ours_cpu.append(time.process_time() - cpu)
    # The crawl pipeline tags each store batch (crawl.store_batch = 200) in one call.
    crawl_t = []
    for _ in range(args.runs):
        start = time.perf_counter()
        for i in range(0, n, 200):
            tagger.tag_rows(rows[i : i + 200])
        crawl_t.append(time.perf_counter() - start)
    crawl = n / statistics.median(crawl_t)
    # One message per call (per-call overhead), as the crawl pipeline used to tag.
    singles = rows[: min(n, 300)]
    start = time.perf_counter()
    for row in singles:
        tagger.tag_rows([row])
    single = len(singles) / (time.perf_counter() - start)
    base = n / statistics.median(base_t)
    ours = n / statistics.median(ours_t)
    print(f"jieba.lcut alone (baseline):          {base:9.0f} letters/s  (median of {args.runs})")
    cut = n / statistics.median(cut_t)
    print(f"govpulse tokenisation only (prepare):  {cut:9.0f} letters/s  ({cut / base:.1f}x jieba)")
    chars = n / statistics.median(chars_t)
    print(
        f"preparation for char models only:      {chars:9.0f} letters/s  ({chars / base:.1f}x jieba)"
    )
    print(f"govpulse topic+urgency+rumour tagging: {ours:9.0f} letters/s  (median of {args.runs})")
    print(f"ratio govpulse / jieba-alone:          {ours / base:9.2f}x")
    base_c, ours_c = n / statistics.median(base_cpu), n / statistics.median(ours_cpu)
    print(
        f"per CPU-second (process time):         {ours_c:9.0f} letters/s  "
        f"(jieba {base_c:.0f}, ratio {ours_c / base_c:.2f}x)"
    )
    print(
        f"crawl pipeline, batches of 200:        {crawl:9.0f} letters/s  ({crawl / base:.2f}x jieba)"
    )
    print(f"one message per call (old crawl path): {single:9.0f} letters/s  ({len(singles)} calls)")
    print(
        f"runs (s): baseline {[round(t, 2) for t in base_t]}  govpulse {[round(t, 2) for t in ours_t]}"
    )
    print(
        f"peak RSS: {rss_before:.0f} MB before models, {rss_loaded:.0f} MB with models loaded, "
        f"{peak_rss_mb():.0f} MB at the end"
    )
    for task, card in tagger.cards.items():
        m = card.get("metrics", {})
        head = {
            # Grouped by near-duplicate cluster: letters never seen (cards before it: cv5).
            "topic": ("grouped_cv5" if "grouped_cv5" in m else "cv5", "macro_f1"),
            "urgency": ("heldout", "macro_f1"),
            "rumour": ("time_split", "roc_auc"),
        }[task]
        value = m.get(head[0], {}).get(head[1])
        print(f"model card {task}: {head[0]} {head[1]} = {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
