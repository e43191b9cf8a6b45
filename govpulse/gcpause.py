"""Pausing Python's cycle collector around bulk work that makes no reference cycles.

Why: a bulk step (a store batch, a tagging batch) allocates several
container objects per message, which sets off collections that walk every
live object (the caller's messages, the loaded models): measured at 5 % of
an import's writing thread and 2-3 % of tagging.  The objects made hold no
reference cycles, so nothing waits to be freed; the collector runs again
after the step.
"""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator


@contextlib.contextmanager
def cycle_collection_paused() -> Iterator[None]:
    """Disable the cycle collector inside the block; switch it back on only if it was on,
    so nested or concurrent uses leave it as they found it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


@contextlib.contextmanager
def survivors_frozen() -> Iterator[bool]:
    """Let a long bulk job freeze what its paused steps leave alive; unfreeze at the end.

    Why: objects made while the collector is paused (a store transaction's
    prepared rows, ~50,000 lists) are all young when it is switched back
    on, so the next allocation sets off a collection that walks every one
    of them, and a few steps later another one: ~0.3 s of a 100,000-message
    import.  Frozen at the end of each paused step (`gc.freeze`, made for
    this kind of long-lived data), they are skipped until the job ends and
    `gc.unfreeze` hands them back to the oldest generation; the
    collections in between see only what is made between steps.

    Yields whether freezing is allowed: not when something else froze
    objects before (a server that froze at start-up), whose objects the
    final unfreeze would release.
    """
    allowed = gc.get_freeze_count() == 0
    try:
        yield allowed
    finally:
        if allowed:
            gc.unfreeze()


def freeze_survivors() -> None:
    """Move every object the collector tracks now to the permanent generation (see above)."""
    gc.freeze()
