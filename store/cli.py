"""``govpulse store …``: move data between stores and maintain the Elasticsearch indices.

``copy SRC DST`` works between any two stores (SQLite -> Elasticsearch is
the usual move when a province outgrows one machine).  It is resumable:
messages are read in id order and the last id written is checkpointed to
a small JSON file after every batch, so a copy that dies half-way picks
up where it stopped; because upserts merge, re-writing a batch is harmless.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import click

from govpulse.context import AppContext
from govpulse.schema import Message
from store import open_store
from store.base import Store, StoreError, UpsertStats


def _default_checkpoint(data_dir: Path, src: str, dst: str) -> Path:
    digest = hashlib.blake2b(f"{src}\n{dst}".encode(), digest_size=8).hexdigest()
    return data_dir / f"store-copy-{digest}.json"


def _read_checkpoint(path: Path) -> dict[str, Any]:
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StoreError(
            f"unreadable checkpoint {path}: {exc}; delete it or use --restart"
        ) from None
    return data if isinstance(data, dict) else {}


def _write_checkpoint(path: Path, data: dict[str, Any]) -> None:
    # Write-then-rename so a crash never leaves half a checkpoint.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, ensure_ascii=False), encoding="utf-8")
    os.replace(tmp, path)


def _messages_after(src: Store, after_id: str, batch_size: int) -> Iterator[Message]:
    """Source messages with id > after_id, in id order (fast path when the store has one)."""
    iter_after = getattr(src, "iter_after", None)
    if callable(iter_after):
        yield from iter_after(after_id, batch_size)
        return
    for msg in src.iter_messages(batch_size=batch_size):
        if msg.id > after_id:
            yield msg


def copy_store(
    src: Store,
    dst: Store,
    checkpoint: Path,
    batch_size: int = 2000,
    restart: bool = False,
    progress: Callable[[int], None] | None = None,
) -> dict[str, Any]:
    """Copy messages, crawl events and labels from `src` to `dst`, resumably.

    Returns totals of this run.  Crawl events and labels are copied oldest
    first after the messages, with a count checkpoint, so resuming neither
    skips nor repeats them.
    """
    state = {} if restart else _read_checkpoint(checkpoint)
    if state and (state.get("src"), state.get("dst")) != (src.url, dst.url):
        raise StoreError(f"checkpoint {checkpoint} belongs to another copy; use --restart")
    state.setdefault("src", src.url)
    state.setdefault("dst", dst.url)
    state.setdefault("last_id", "")
    state.setdefault("events", 0)
    state.setdefault("labels", 0)
    state.setdefault("done", False)
    totals = UpsertStats()
    if state["done"]:
        return {"messages": totals, "events": 0, "labels": 0, "resumed": True, "already_done": True}
    resumed = bool(state["last_id"] or state["events"] or state["labels"])
    batch: list[Message] = []

    def flush() -> None:
        if not batch:
            return
        totals.__iadd__(dst.upsert_many(batch))
        state["last_id"] = batch[-1].id
        _write_checkpoint(checkpoint, state)
        if progress is not None:
            progress(len(batch))
        batch.clear()

    for msg in _messages_after(src, state["last_id"], batch_size):
        batch.append(msg)
        if len(batch) >= batch_size:
            flush()
    flush()

    events = list(reversed(src.crawl_events(limit=10**9)))
    copied_events = 0
    for event in events[state["events"] :]:
        dst.add_crawl_event(event)
        state["events"] += 1
        copied_events += 1
        if copied_events % 500 == 0:
            _write_checkpoint(checkpoint, state)
    labels = list(reversed(src.labels()))
    copied_labels = 0
    for label in labels[state["labels"] :]:
        dst.add_label(label)
        state["labels"] += 1
        copied_labels += 1
        if copied_labels % 500 == 0:
            _write_checkpoint(checkpoint, state)
    state["done"] = True
    _write_checkpoint(checkpoint, state)
    return {
        "messages": totals,
        "events": copied_events,
        "labels": copied_labels,
        "resumed": resumed,
        "already_done": False,
    }


@click.group("store")
def store_group() -> None:
    """Inspect, copy and re-index message stores."""


def _open(url: str, settings: Mapping[str, Any]) -> Store:
    try:
        return open_store(url, settings)
    except StoreError as exc:
        raise click.ClickException(f"{url}: {exc}") from None


@store_group.command("copy")
@click.argument("src")
@click.argument("dst")
@click.option(
    "--batch-size",
    type=click.IntRange(1, 50_000),
    default=None,
    help="Messages per batch (default: store.batch_size).",
)
@click.option(
    "--checkpoint",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Checkpoint file (default: in the data dir).",
)
@click.option(
    "--restart", is_flag=True, help="Ignore an existing checkpoint and copy everything again."
)
@click.pass_obj
def copy_cmd(
    app: AppContext,
    src: str,
    dst: str,
    batch_size: int | None,
    checkpoint: Path | None,
    restart: bool,
) -> None:
    """Copy every message, crawl event and label from SRC to DST (store URLs).

    Example: govpulse store copy sqlite:///data/govpulse.db http://es:9200
    Interrupted copies resume from the checkpoint when run again.
    """
    if src == dst:
        raise click.UsageError("SRC and DST are the same store")
    size = batch_size or int(app.settings["store.batch_size"])
    checkpoint = checkpoint or _default_checkpoint(app.data_dir, src, dst)
    source = _open(src, app.settings)
    target = _open(dst, app.settings)
    spooled = 0
    try:
        from tqdm import tqdm

        ensure = getattr(target, "ensure_indices", None)
        if callable(ensure):
            ensure()  # fail fast: a copy into a cluster that is down would only fill the spool
        with tqdm(unit="msg", desc="copy", disable=not sys.stderr.isatty()) as bar:
            result = copy_store(source, target, checkpoint, size, restart, progress=bar.update)
        spool = getattr(target, "spool", None)
        spooled = spool.pending() if spool is not None else 0
    except StoreError as exc:
        raise click.ClickException(
            f"copy stopped: {exc} (run again to resume from {checkpoint})"
        ) from None
    finally:
        source.close()
        target.close()
    if spooled:
        click.echo(
            f"warning: {spooled} writes are spooled because {dst} was unavailable; "
            f"they are kept and sent by: govpulse --store {dst} store replay",
            err=True,
        )
    if result["already_done"]:
        click.echo(f"already copied (checkpoint {checkpoint}); use --restart to copy again")
        return
    stats: UpsertStats = result["messages"]
    click.echo(
        f"{'resumed; ' if result['resumed'] else ''}messages: {stats.inserted} inserted, "
        f"{stats.updated} updated, {stats.unchanged} unchanged, {len(stats.failed)} failed; "
        f"crawl events: {result['events']}; labels: {result['labels']}"
    )
    for msg_id, reason in stats.failed[:20]:
        click.echo(f"  failed {msg_id}: {reason}", err=True)
    if stats.failed:
        sys.exit(1)


def _app_store(app: AppContext) -> Store:
    try:
        return app.store()
    except StoreError as exc:
        raise click.ClickException(f"{app.store_url}: {exc}") from None


def _elastic(app: AppContext) -> Any:
    store = _app_store(app)
    from store.elastic import ElasticStore

    if not isinstance(store, ElasticStore):
        raise click.UsageError(
            f"{app.store_url} is not an Elasticsearch/OpenSearch store (use --store http://host:9200)"
        )
    return store


@store_group.command("reindex")
@click.option(
    "--batch-size", type=click.IntRange(1, 50_000), default=None, help="Documents per bulk request."
)
@click.option("--keep-old", is_flag=True, help="Keep the previous index version (for rollback).")
@click.pass_obj
def reindex_cmd(app: AppContext, batch_size: int | None, keep_old: bool) -> None:
    """Build the next versioned message index and swap the alias atomically."""
    store = _elastic(app)
    try:
        result = store.reindex(batch_size=batch_size, keep_old=keep_old)
    except StoreError as exc:
        raise click.ClickException(f"reindex failed, alias unchanged: {exc}") from None
    click.echo(
        f"{store.messages_alias}: {result['old']} -> {result['new']} "
        f"({result['documents']} documents{', old index kept' if keep_old else ''})"
    )


@store_group.command("replay")
@click.pass_obj
def replay_cmd(app: AppContext) -> None:
    """Write spooled messages/events/labels to the cluster now."""
    store = _elastic(app)
    try:
        done = store.replay_spool()
    except StoreError as exc:
        raise click.ClickException(
            f"cluster still unavailable ({store.spool.pending()} spooled): {exc}"
        ) from None
    click.echo(f"replayed {done}; {store.spool.pending()} still spooled")


@store_group.command("info")
@click.pass_obj
def info_cmd(app: AppContext) -> None:
    """Show the store, its index version, message count and spool."""
    store = _app_store(app)
    try:
        info = (
            store.info()
            if hasattr(store, "info")
            else {"url": store.url, "messages": store.count()}
        )
    except StoreError as exc:
        raise click.ClickException(f"{store.url}: {exc}") from None
    for key, value in info.items():
        click.echo(f"{key}: {value}")
    if "error" in info:
        sys.exit(1)


@store_group.command("summaries")
@click.option("--rebuild", is_flag=True, help="Recount the summary tables from the rows.")
@click.pass_obj
def summaries_cmd(app: AppContext, rebuild: bool) -> None:
    """Check the embedded store's summary tables against a recount (exit 1 on a difference).

    The summaries are kept in the writing transaction, so a difference
    means a bug or a hand edit of the database; --rebuild repairs it.
    """
    store = _app_store(app)
    from store.sqlite import SQLiteStore

    if not isinstance(store, SQLiteStore):
        raise click.UsageError(f"{app.store_url} has no summary tables (SQLite stores only)")
    if rebuild:
        store.rebuild_summaries()
        click.echo("summary tables recounted from the rows")
    problems = store.check_summaries()
    for line in problems[:20]:
        click.echo(line)
    click.echo(f"{len(problems)} differences")
    if problems:
        sys.exit(1)
