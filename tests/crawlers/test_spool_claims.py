"""Concurrent crawl processes replaying one spool folder: each file replayed once, nothing lost."""

from __future__ import annotations

import json
import multiprocessing as mp
from pathlib import Path

from crawlers.spool import Spool
from govpulse.schema import Message, make_id
from store.sqlite import SQLiteStore


def _messages(name: str, n: int) -> list[Message]:
    return [
        Message(id=make_id("forum", f"{name}{i}"), source="forum", channel="问政", title=f"{name}{i}", body="正文")
        for i in range(n)
    ]  # fmt: skip


def _replay(args: tuple[str, str]) -> int:
    folder, db = args
    store = SQLiteStore(db)
    try:
        return Spool(Path(folder)).replay(store)
    finally:
        store.close()


def test_parallel_replays_share_the_work(tmp_path, sqlite_store):
    spool = Spool(tmp_path / "spool")
    for name in ("forum", "mailbox", "weibo"):
        spool.write(name, _messages(name, 40))
    # A claim left behind by a crashed process (pid that cannot exist) is taken over.
    orphan = tmp_path / "spool" / "forum.jsonl.replaying.999999999.dead"
    lines = [json.dumps(m.to_dict(), ensure_ascii=False) for m in _messages("orphan", 5)]
    orphan.write_text("\n".join(lines) + "\n", encoding="utf-8")
    path = sqlite_store.path
    with mp.get_context("fork").Pool(4) as pool:
        results = pool.map(_replay, [(str(tmp_path / "spool"), str(path))] * 4)
    assert sum(results) == 125  # each file replayed exactly once
    assert sqlite_store.count() == 125
    assert spool.pending() == 0
