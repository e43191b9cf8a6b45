"""Stop a child process when the process that started it is gone, even if it was SIGKILLed.

Why one module: demo children (``govpulse.demo.follow_parent``) and the
store's index workers (``store.sqlite_workers``) both outlived a killed
parent before, each holding a port or the store's files.  A daemon thread
polls for re-parenting instead of ``prctl(PR_SET_PDEATHSIG)``: Linux sends
that signal when the *thread* that forked the child ends, and pools and
children may be started from scheduler threads that end while the process
lives on.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable


def watch_parent(parent: int, on_gone: Callable[[], None], every: float = 1.0) -> threading.Thread:
    """Call `on_gone` (in a daemon thread) once this process's parent is no longer `parent`."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(every)
        on_gone()

    thread = threading.Thread(target=watch, name="govpulse-parent-watch", daemon=True)
    thread.start()
    return thread
