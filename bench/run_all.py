"""Run every benchmark and collect their tables into one markdown document.

Usage: python bench/run_all.py [--only store,alerts] [--out artifacts/bench/RESULTS.md]
                               [--timeout SECONDS]

What `make bench` runs.  Each bench script (store, store_elastic, crawl,
classify, dashboard, alerts, load) measures one part of govpulse against a
same-run baseline and prints a markdown table; this runs them one after the
other as subprocesses, with arguments bounded for the 2-core machine the
project (and CI) has, and writes one document -- a section per script with
the command line, its wall time and its output -- to
artifacts/bench/RESULTS.md, then prints it.  Scripts run one at a time so
they do not disturb each other's timings.

A script that fails, times out or skips (e.g. ../shared/data absent) is
reported with its exit code and last lines, and the run goes on.  Exit
status: 0 when every script exited 0, else 1.  The large stores the
dashboard and load benches use are built once and cached under
artifacts/bench/ (the first run takes longer).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import platform
import re
import shlex
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / "bench"
DEFAULT_OUT = ROOT / "artifacts" / "bench" / "RESULTS.md"
TAIL_LINES = 25


@dataclass(frozen=True)
class Bench:
    """One bench script and the bounded arguments it runs with here."""

    name: str
    args: tuple[str, ...]
    #: Longest wall time (s) before it is stopped (includes building cached stores).
    timeout: float
    what: str

    @property
    def command(self) -> list[str]:
        return [sys.executable, str(BENCH / f"{self.name}.py"), *self.args]


BENCHES: tuple[Bench, ...] = (
    Bench(
        "store",
        ("--sizes", "100000", "--repeat", "3", "--rate-size", "20000", "--workers", "2"),
        1800,
        "embedded store: import rate, query and aggregate latency, size",
    ),
    Bench(
        "store_elastic",
        ("--size", "20000", "--rate-size", "2000", "--repeat", "3"),
        1200,
        "Elasticsearch/OpenSearch store (osmem-server) beside SQLite",
    ),
    Bench("crawl", ("--runs", "3"), 1200, "crawl throughput against `scrapy bench`"),
    Bench(
        "classify",
        ("--runs", "3", "--letters", "3000"),
        1200,
        "classifier letters/s against plain jieba (needs ../shared/data)",
    ),
    Bench(
        "dashboard",
        ("--size", "1000000", "--baseline-size", "10000", "--repeat", "3"),
        2700,
        "dashboard callback bodies on a 1M-message store",
    ),
    Bench(
        "alerts",
        ("--runs", "3"),
        1800,
        "hot-topic detector: precision, recall, lead time (needs ../shared/data)",
    ),
    Bench(
        "load",
        ("--size", "1000000", "--users", "20", "--seconds", "60", "--workers", "2"),
        2400,
        "dashboard server under 20 concurrent users, 1M messages",
    ),
)
NAMES = tuple(b.name for b in BENCHES)


@dataclass
class Outcome:
    bench: Bench
    returncode: int | None  # None: timed out
    seconds: float
    stdout: str
    stderr: str
    limit: float

    @property
    def status(self) -> str:
        if self.returncode is None:
            return f"timed out after {self.limit:.0f} s"
        if self.returncode != 0:
            return f"failed (exit {self.returncode})"
        if _skipped(self.stdout):
            return "skipped (see output)"
        return "ok"


def _skipped(stdout: str) -> bool:
    lines = [line.strip().lower() for line in stdout.splitlines() if line.strip()]
    return bool(lines) and all(line.startswith("skip") for line in lines)


def run(bench: Bench, timeout: float | None) -> Outcome:
    """Run one script in its own process group; stop the group when it overruns."""
    limit = timeout or bench.timeout
    start = time.monotonic()
    proc = subprocess.Popen(
        bench.command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = proc.communicate(timeout=limit)
        code: int | None = proc.returncode
    except subprocess.TimeoutExpired:
        # SIGTERM first so a script can stop what it started (load.py's server).
        _signal_group(proc, signal.SIGTERM)
        try:
            stdout, stderr = proc.communicate(timeout=90)
        except subprocess.TimeoutExpired:
            _signal_group(proc, signal.SIGKILL)
            stdout, stderr = proc.communicate()
        code = None
    finally:
        if proc.poll() is None:
            _signal_group(proc, signal.SIGKILL)
            proc.wait()
    return Outcome(bench, code, time.monotonic() - start, stdout or "", stderr or "", limit)


def _signal_group(proc: subprocess.Popen[str], sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, sig)  # the group we created for this script only


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    return out.stdout.strip() or "unknown"


def as_markdown(text: str) -> str:
    """A script's output fitted under its section: headings one level below the
    section's, and plain-text column tables fenced so they keep their columns."""
    blocks = re.split(r"\n\s*\n", text.strip())
    out = []
    for block in blocks:
        lines = block.splitlines()
        if _fixed_width(lines):
            head = [line for line in lines[:1] if line.startswith("#")]
            rest = lines[len(head) :]
            block = "\n".join([*map(_demote, head), "", "```", *rest, "```"])
        else:
            block = "\n".join(_demote(line) for line in lines)
        out.append(block)
    return "\n\n".join(out)


def _fixed_width(lines: list[str]) -> bool:
    """Plain-text columns (several lines with gaps of 3+ spaces), not markdown."""
    body = [line for line in lines if not line.startswith("#")]
    if any(line.lstrip().startswith(("|", "```")) for line in body):
        return False
    return sum(bool(_GAP.search(line)) for line in body) >= 2


_GAP = re.compile(r"\S {3,}\S")
_HEADING = re.compile(r"^(#{1,5}) ")


def _demote(line: str) -> str:
    match = _HEADING.match(line)
    if not match:
        return line
    level = max(3, len(match.group(1)) + 1)
    return "#" * level + line[len(match.group(1)) :]


def section(outcome: Outcome) -> str:
    bench = outcome.bench
    cmd = shlex.join(["python", f"bench/{bench.name}.py", *bench.args])
    parts = [
        f"## {bench.name}: {bench.what}",
        "",
        f"- command: `{cmd}`",
        f"- wall time: {outcome.seconds:.1f} s",
        f"- status: {outcome.status}",
        "",
    ]
    body = as_markdown(outcome.stdout)
    if outcome.returncode == 0 and body:
        parts += [body, ""]
    elif outcome.returncode == 0:
        parts += ["(no output)", ""]
    else:
        tail = (outcome.stdout.rstrip() + "\n" + outcome.stderr.rstrip()).strip().splitlines()
        code = "none (timed out)" if outcome.returncode is None else str(outcome.returncode)
        parts += [
            f"Exit code {code}; last {min(TAIL_LINES, len(tail))} lines of its output:",
            "",
            "```",
            *(tail[-TAIL_LINES:] or ["(no output)"]),
            "```",
            "",
        ]
    return "\n".join(parts)


def document(outcomes: list[Outcome], subset: bool, started: datetime) -> str:
    total = sum(o.seconds for o in outcomes)
    head = [
        "# govpulse benchmarks",
        "",
        f"Run {started:%Y-%m-%d %H:%M} UTC at commit {_git_commit()} by `bench/run_all.py`"
        + (f" (subset: {', '.join(o.bench.name for o in outcomes)})" if subset else "")
        + f"; Python {platform.python_version()}, {os.cpu_count()} CPUs; "
        f"total wall time {total:.0f} s.  Each script ran alone, one after another.",
        "",
        "| script | status | wall time (s) |",
        "|---|---|---:|",
        *(f"| {o.bench.name} | {o.status} | {o.seconds:.1f} |" for o in outcomes),
        "",
    ]
    return "\n".join(head + [section(o) for o in outcomes])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(NAMES)}")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="markdown file to write")
    parser.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="per-script limit in seconds (default: each its own)",
    )
    args = parser.parse_args()
    wanted = [n.strip() for n in args.only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in NAMES]
    if unknown:
        parser.error(f"unknown bench {', '.join(unknown)}; choose from {', '.join(NAMES)}")
    benches = [b for b in BENCHES if not wanted or b.name in wanted]
    started = datetime.now(UTC)
    outcomes = []
    for bench in benches:
        print(
            f"[run_all] {bench.name}: {shlex.join(bench.command[1:])}", file=sys.stderr, flush=True
        )
        outcome = run(bench, args.timeout)
        print(
            f"[run_all] {bench.name}: {outcome.status} in {outcome.seconds:.1f} s",
            file=sys.stderr,
            flush=True,
        )
        outcomes.append(outcome)
    text = document(outcomes, bool(wanted), started)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text, encoding="utf-8")
    print(text)
    print(f"[run_all] wrote {args.out}", file=sys.stderr)
    return 0 if all(o.returncode == 0 for o in outcomes) else 1


if __name__ == "__main__":
    raise SystemExit(main())
