"""De-duplicate: by id within a run, and near-duplicate text across sources (MinHash LSH).

Near-duplicates are linked (``Message.duplicate_of`` = the first message
seen with that text), never dropped: the same complaint on the mayor's
mailbox and on the forum is two messages, one issue.
"""

from __future__ import annotations

import logging
from typing import Any

from datasketch import MinHash, MinHashLSH
from scrapy.exceptions import DropItem

from govpulse.schema import Message

log = logging.getLogger(__name__)

NUM_PERM = 64


def shingles(text: str, k: int = 3) -> set[bytes]:
    """Character k-grams of the text without spaces/punctuation (robust for Chinese)."""
    clean = "".join(ch for ch in text[:5000] if ch.isalnum())  # the opening decides; bounds cost
    return {clean[i : i + k].encode() for i in range(max(len(clean) - k + 1, 1))}


def minhash(text: str) -> MinHash:
    m = MinHash(num_perm=NUM_PERM)
    m.update_batch(list(shingles(text)))
    return m


class NearDuplicateIndex:
    """An LSH index of message texts; `find_or_add` returns the earlier twin's id."""

    def __init__(self, threshold: float = 0.8, min_chars: int = 20) -> None:
        self.lsh = MinHashLSH(threshold=threshold, num_perm=NUM_PERM)
        self.min_chars = min_chars
        self.threshold = threshold
        self.hashes: dict[str, MinHash] = {}

    def find_or_add(self, message_id: str, text: str) -> str | None:
        if len(text) < self.min_chars:
            return None
        if message_id in self.hashes:
            return None
        m = minhash(text)
        best, best_sim = None, 0.0
        for other in self.lsh.query(m):
            sim = m.jaccard(self.hashes[other])
            if sim >= self.threshold and sim > best_sim:
                best, best_sim = other, sim
        self.lsh.insert(message_id, m)
        self.hashes[message_id] = m
        return best


class DedupePipeline:
    """Fourth step: drop exact repeats of an id in one run; link near-duplicates."""

    def __init__(self, stats: Any, threshold: float, min_chars: int) -> None:
        self.stats = stats
        self.seen: set[str] = set()
        self.index = NearDuplicateIndex(threshold, min_chars)

    @classmethod
    def from_crawler(cls, crawler: Any) -> DedupePipeline:
        gp = crawler.settings.get("GOVPULSE") or {}
        return cls(
            crawler.stats,
            float(gp.get("crawl.dedupe_threshold", 0.8)),
            int(gp.get("crawl.dedupe_min_chars", 20)),
        )

    def process_item(self, item: Message, spider: Any = None) -> Message:
        # The same id twice in a run is a list row seen again (e.g. pagination shifted
        # while crawling); the later copy carries nothing the first did not, unless it
        # has a reply, in which case it goes on and the store merges it.
        key = f"{item.id}:{bool(item.reply_body)}"
        if key in self.seen:
            self.stats.inc_value("govpulse/dedupe/same_id")
            raise DropItem(f"duplicate id {item.id} in this run")
        self.seen.add(key)
        if item.duplicate_of is None and item.extra.get("kind") not in ("reply",):
            twin = self.index.find_or_add(item.id, item.text)
            if twin and twin != item.id:
                item.duplicate_of = twin
                self.stats.inc_value("govpulse/dedupe/near_duplicate")
                log.debug("%s is a near-duplicate of %s", item.id, twin)
        return item
