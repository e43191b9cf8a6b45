"""`govpulse import`: load letter exports (CSV, JSONL, Excel) into the store."""

from __future__ import annotations

import csv
import sys
from collections.abc import Iterator
from pathlib import Path

import click
from tqdm import tqdm

from govpulse import importer, tagging
from govpulse.context import AppContext
from govpulse.importer import ImportError_, import_file, load_saved_mapping
from govpulse.schema import Message, Source
from store.base import StoreError

_SHOW = 20  # problems printed; the rest go to --errors FILE


def _parse_map(items: tuple[str, ...]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        for part in item.split(","):
            if not part.strip():
                continue
            if "=" not in part:
                raise click.BadParameter(f"{part!r}: use COLUMN=field", param_hint="--map")
            col, target = part.split("=", 1)
            out[col.strip()] = target.strip()
    return out


@click.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option(
    "--source",
    type=click.Choice([s.value for s in Source]),
    default="mailbox",
    show_default=True,
    help="Source of the letters.",
)
@click.option("--channel", help="Mailbox/board name (default: the file name).")
@click.option(
    "--map",
    "maps",
    multiple=True,
    metavar="COL=FIELD[,...]",
    help="Map a column onto a schema field ('-' ignores it).",
)
@click.option(
    "--mapping", "mapping_name", metavar="NAME", help="Use a mapping saved with --save-mapping."
)
@click.option("--save-mapping", metavar="NAME", help="Save the mapping used under NAME.")
@click.option(
    "--errors",
    "errors_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write every problem row to this CSV.",
)
@click.option(
    "--classify/--no-classify",
    default=True,
    show_default=True,
    help="Tag topic/urgency/rumour with the installed models.",
)
@click.option("--batch", default=1000, show_default=True, help="Messages classified at a time.")
@click.pass_obj
def import_cmd(
    app: AppContext,
    file: Path,
    source: str,
    channel: str | None,
    maps: tuple[str, ...],
    mapping_name: str | None,
    save_mapping: str | None,
    errors_file: Path | None,
    classify: bool,
    batch: int,
) -> None:
    """Import a CSV, JSONL or Excel export of letters.  Safe to re-run.

    Bad rows are reported with their row number and skipped; the exit code
    is non-zero only when nothing could be imported.
    """
    mapping_dir = app.data_dir / "mappings"
    overrides: dict[str, str] = {}
    try:
        if mapping_name:
            overrides.update(load_saved_mapping(mapping_dir, mapping_name))
        overrides.update(_parse_map(maps))
        mapping, rows = import_file(file, Source(source), channel, overrides)
    except ImportError_ as exc:
        raise click.ClickException(str(exc)) from None
    if save_mapping:
        click.echo(
            f"mapping saved to {importer.save_mapping(mapping_dir, save_mapping, mapping)}",
            err=True,
        )
    click.echo("columns: " + ", ".join(f"{c}→{t}" for c, t in mapping.items()), err=True)

    tagger = tagging.load_tagger(app.settings) if classify else None
    store = app.store()
    problems: list[tuple[int, str, str]] = []  # (row, kind, reason)
    total = 0

    def tagged() -> Iterator[Message]:
        """Rows as messages, tagged `batch` at a time, streamed into one store write.

        One `upsert_many` call over the whole file lets the store prepare
        the next transaction while SQLite writes the last one.
        """
        nonlocal total
        pending: list[Message] = []
        for number, msg, warnings, error in progress:
            total = number
            if error:
                problems.append((number, "skipped", error))
                continue
            problems.extend((number, "warning", w) for w in warnings)
            pending.append(msg)  # type: ignore[arg-type]
            if len(pending) >= batch:
                tagging.tag(tagger, pending)
                yield from pending
                pending = []
        if pending:
            tagging.tag(tagger, pending)
            yield from pending

    progress = tqdm(rows, desc="import", unit=" rows", file=sys.stderr, disable=None)
    try:
        stats = store.upsert_many(tagged())
    except StoreError as exc:
        raise click.ClickException(f"store failed after {total} rows: {exc}") from None
    progress.close()
    for msg_id, reason in stats.failed:
        problems.append((0, "skipped", f"{msg_id}: {reason}"))

    ok = stats.inserted + stats.updated + stats.unchanged
    skipped = sum(kind == "skipped" for _, kind, _ in problems)
    click.echo(
        f"{total} rows: {stats.inserted} new, {stats.updated} updated, {stats.unchanged} unchanged, "
        f"{skipped} skipped, {len(problems) - skipped} warnings"
    )
    for number, kind, reason in problems[:_SHOW]:
        click.echo(f"  row {number}: {kind}: {reason}", err=True)
    if len(problems) > _SHOW:
        click.echo(f"  … {len(problems) - _SHOW} more (use --errors FILE for all)", err=True)
    if errors_file:
        with errors_file.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.writer(fh)
            writer.writerow(["row", "kind", "reason"])
            writer.writerows(problems)
    if ok == 0:
        raise click.ClickException("nothing could be imported")
