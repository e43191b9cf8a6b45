"""A local JSONL spool for items the store could not take (store down or locked).

Nothing is lost: the store pipeline appends the batch here and replays the
spool the next time a crawl opens the store.  One file per spider; replay
renames the file first, so a crash during replay leaves it for next time.
"""

from __future__ import annotations

import json
import logging
import os
import uuid
from pathlib import Path

from govpulse.schema import Message, ValidationError
from store.base import Store

log = logging.getLogger(__name__)


class Spool:
    """Append-only JSONL files under <data_dir>/spool/."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def path(self, name: str) -> Path:
        return self.folder / f"{name}.jsonl"

    def write(self, name: str, messages: list[Message]) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        with self.path(name).open("a", encoding="utf-8") as fh:
            for m in messages:
                fh.write(json.dumps(m.to_dict(), ensure_ascii=False) + "\n")
            fh.flush()

    def pending(self) -> int:
        """Number of spooled messages waiting for replay."""
        if not self.folder.is_dir():
            return 0
        return sum(sum(1 for _ in p.open(encoding="utf-8")) for p in self.folder.glob("*.jsonl*"))

    def replay(self, store: Store, batch: int = 500) -> int:
        """Upsert every spooled message into `store`; return how many were replayed.

        Several crawls may replay at once: each claims a file by renaming it
        to a name of its own (atomic), so no file is replayed twice at the
        same time; a claim left by a process that died is taken over.
        """
        if not self.folder.is_dir():
            return 0
        done = 0
        candidates = sorted(self.folder.glob("*.jsonl")) + sorted(
            p for p in self.folder.glob("*.jsonl.replaying*") if not _claimed_by_live_process(p)
        )
        for path in candidates:
            base = path.name.split(".jsonl")[0]
            work = self.folder / f"{base}.jsonl.replaying.{os.getpid()}.{uuid.uuid4().hex[:8]}"
            try:
                path.rename(work)
            except FileNotFoundError:
                continue  # another crawl claimed it first
            messages: list[Message] = []
            with work.open(encoding="utf-8") as fh:
                for n, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        messages.append(Message.from_dict(json.loads(line)))
                    except (ValueError, ValidationError) as exc:
                        log.error("spool %s line %d unreadable, skipped: %s", work, n, exc)
            for i in range(0, len(messages), batch):
                store.upsert_many(messages[i : i + batch])
            work.unlink()
            done += len(messages)
            log.info("replayed %d spooled messages from %s", len(messages), path.name)
        return done


def _claimed_by_live_process(path: Path) -> bool:
    """True if `path` (…jsonl.replaying.<pid>.<tag>) is being replayed by a running process."""
    parts = path.name.split(".")
    pid = next((int(p) for p in parts[3:4] if p.isdigit()), None)
    if pid is None:
        return False
    if pid == os.getpid():
        return True  # this process is replaying it (or will, after an error, next crawl)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
