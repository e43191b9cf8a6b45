"""Item pipelines: normalise -> validate -> mask -> dedupe -> classify -> store.

Each step does one thing, counts what it did under ``govpulse/<step>/...``
in the crawl stats, and drops an item only with a reason (DropItem).
"""
