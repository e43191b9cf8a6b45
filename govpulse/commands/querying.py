"""`govpulse search`, `stats` and `export`: read the store from the command line."""

from __future__ import annotations

import csv
import dataclasses
import json
import unicodedata
from pathlib import Path

import click

from govpulse.commands.common import filter_options, now
from govpulse.context import AppContext
from govpulse.schema import FIELD_NAMES, Message
from store.base import GROUP_FIELDS, SORT_FIELDS, Filters, Sla

_SORTS = [*SORT_FIELDS, *(f"-{s}" for s in SORT_FIELDS)]
EXCEL_MAX_ROWS = 1_048_575  # one row is the header


def _snippet(text: str, width: int = 60) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


@click.command("search")
@click.argument("query", required=False, default="")
@filter_options
@click.option("--sort", type=click.Choice(_SORTS), default="-posted_at", show_default=True)
@click.option("--page", default=1, show_default=True)
@click.option("--per-page", default=20, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print hits as JSON lines.")
@click.pass_obj
def search_cmd(
    app: AppContext,
    query: str,
    filters: Filters,
    sort: str,
    page: int,
    per_page: int,
    as_json: bool,
) -> None:
    """Full-text search (Chinese words, AND) with filters."""
    result = app.store().search(query, filters, sort=sort, page=page, per_page=per_page)
    if as_json:
        for msg in result.hits:
            click.echo(json.dumps(msg.to_dict(), ensure_ascii=False))
        return
    click.echo(f"{result.total} matches (page {result.page}, {per_page} a page)")
    for msg in result.hits:
        when = msg.posted_at.strftime("%Y-%m-%d %H:%M") if msg.posted_at else "—"
        state = msg.status.value
        click.echo(
            f"{when}  {msg.source.value:<7} {state:<8} {msg.department or '—'}  {_snippet(msg.title or msg.body)}  [{msg.id}]"
        )


def _pad(text: str, width: int) -> str:
    """Left-align to a display width (CJK characters take two columns)."""
    out, used = [], 0
    for ch in text:
        w = 2 if unicodedata.east_asian_width(ch) in "WF" else 1
        if used + w > width - 1:
            break
        out.append(ch)
        used += w
    return "".join(out) + " " * (width - used)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.1f}"


@click.command("stats")
@filter_options
@click.option(
    "--group-by",
    type=click.Choice(GROUP_FIELDS),
    default="department",
    show_default=True,
    help="Timeliness table grouping.",
)
@click.option(
    "--sla",
    "sla_days",
    type=int,
    help="Deadline in days (default: settings sla.days / sla.by_source).",
)
@click.option(
    "--calendar-days/--working-days",
    default=None,
    help="Unit of delays and deadlines (default: setting sla.working_days).",
)
@click.option("--top", default=20, show_default=True, help="Rows per table.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_obj
def stats_cmd(
    app: AppContext,
    filters: Filters,
    group_by: str,
    sla_days: int | None,
    calendar_days: bool | None,
    top: int,
    as_json: bool,
) -> None:
    """Counts by source, topic and status, and a reply-timeliness table."""
    store = app.store()
    sla = Sla.from_settings(app.settings)
    if sla_days is not None:
        sla = Sla(days=sla_days, by_source={}, working_days=sla.working_days)
    if calendar_days is not None:
        sla = Sla(days=sla.days, by_source=sla.by_source, working_days=not calendar_days)
    total = store.count(filters=filters)
    facets = store.facets(["source", "topic", "status", "urgency"], filters=filters, size=top)
    rows = store.timeliness(group_by, filters=filters, sla=sla, now=now())
    if as_json:
        click.echo(json.dumps({
            "total": total,
            "facets": facets,
            "timeliness": [
                {**dataclasses.asdict(r), "answer_rate": r.answer_rate,
                 "within_sla_rate": r.within_sla_rate}
                for r in rows
            ],
            "unit": "working days" if sla.working_days else "calendar days",
        }, ensure_ascii=False, indent=2, default=str))  # fmt: skip
        return
    click.echo(f"messages: {total}")
    for name, counts in facets.items():
        click.echo(f"by {name}: " + ("  ".join(f"{v} {n}" for v, n in counts) or "—"))
    unit = "working days" if sla.working_days else "calendar days"
    click.echo(f"\nreply timeliness by {group_by} ({unit}; deadline {sla.days} days"
               + (f", per source {dict(sla.by_source)}" if sla.by_source else "") + ")")  # fmt: skip
    header = f"{'group':<24}{'letters':>8}{'answered':>9}{'rate':>7}{'median':>8}{'p90':>8}{'in SLA':>8}{'open':>7}{'overdue':>8}"
    click.echo(header)
    for r in rows[:top]:
        click.echo(
            f"{_pad(r.group, 24)}{r.letters:>8}{r.answered:>9}{r.answer_rate:>7.0%}"
            f"{_fmt(r.median_delay):>8}{_fmt(r.p90_delay):>8}{r.within_sla_rate:>8.0%}{r.open:>7}{r.overdue:>8}"
        )
    if len(rows) > top:
        click.echo(f"… {len(rows) - top} more groups (--top N)")


def _export_row(msg: Message) -> dict[str, object]:
    row = msg.to_dict()
    row["urgency_reasons"] = "; ".join(msg.urgency_reasons)
    row["rumour_reasons"] = "; ".join(msg.rumour_reasons)
    row["extra"] = json.dumps(msg.extra, ensure_ascii=False) if msg.extra else ""
    row["reply_delay_days"] = msg.reply_delay_days
    return row


@click.command("export")
@click.argument("out", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--query", "-q", default="", help="Full-text query.")
@filter_options
@click.pass_obj
def export_cmd(app: AppContext, out: Path, query: str, filters: Filters) -> None:
    """Export matching messages to CSV (.csv) or Excel (.xlsx)."""
    store = app.store()
    columns = [*FIELD_NAMES, "reply_delay_days"]
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".xlsx"):
        raise click.BadParameter("OUT must end in .csv or .xlsx", param_hint="OUT")
    count = 0
    if suffix == ".csv":
        # utf-8-sig so Excel on Windows opens Chinese text correctly.
        with out.open("w", newline="", encoding="utf-8-sig") as fh:
            writer = csv.DictWriter(fh, fieldnames=columns)
            writer.writeheader()
            for msg in store.iter_messages(query, filters):
                writer.writerow(_export_row(msg))
                count += 1
    else:
        total = store.count(query, filters)
        if total > EXCEL_MAX_ROWS:
            raise click.ClickException(f"{total} rows exceed Excel's limit; export to .csv")
        import pandas as pd

        frame = pd.DataFrame(
            [_export_row(m) for m in store.iter_messages(query, filters)], columns=columns
        )
        frame.to_excel(out, index=False)
        count = len(frame)
    click.echo(f"{count} messages written to {out}")
