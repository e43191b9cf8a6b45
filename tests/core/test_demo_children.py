"""The demo's children stop when the demo is gone, even after a SIGKILL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="POSIX process groups")

# A stand-in demo: starts one child the way Demo.spawn does (own session, PARENT_ENV),
# prints the child's pid, then waits to be killed.
PARENT = """
import os, subprocess, sys, time
from govpulse.demo import PARENT_ENV
child = subprocess.Popen(
    [sys.executable, "-c", "from govpulse.demo import follow_parent; import time; "
     "follow_parent(); time.sleep(120)"],
    env={**os.environ, PARENT_ENV: str(os.getpid())},
    start_new_session=True,
)
print(child.pid, flush=True)
time.sleep(120)
"""


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie re-parented to init is reaped soon; treat "Z" as gone.
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.exists() and stat.read_text().split(")")[-1].split()[0] == "Z")


def test_child_stops_when_demo_is_killed():
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdout=subprocess.PIPE, text=True)
    try:
        child = int(parent.stdout.readline())
        time.sleep(1.5)
        assert _alive(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 15
        while _alive(child) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not _alive(child), "the child outlived its killed demo"
    finally:
        if parent.poll() is None:
            parent.kill()
        parent.stdout.close()
