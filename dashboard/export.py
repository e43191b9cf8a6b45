"""Export the current search view to CSV or Excel.

``/export.csv?<view query>`` and ``/export.xlsx?<view query>`` take the
same query string as the 检索 page, so the file holds what the screen
shows (all pages, up to ``dashboard.export_max_rows``).  CSV is streamed;
Excel is written with openpyxl's write-only mode.  Cells that a
spreadsheet would run as formulas (=, +, -, @ first) are prefixed with an
apostrophe (CSV/formula injection).
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import flask

from dashboard.components import COLUMN_NAMES
from dashboard.context import DashContext
from dashboard.queries import EXPORT_COLUMNS, iter_export_rows
from dashboard.urlstate import UrlStateError, parse
from store.base import StoreError

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: Any) -> Any:
    """Neutralise values a spreadsheet would evaluate as formulas."""
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_chunks(rows: Iterator[dict[str, Any]]) -> Iterator[str]:
    """CSV text in chunks, with a BOM so Excel opens UTF-8 Chinese correctly."""
    buf = io.StringIO()
    writer = csv.writer(buf)
    buf.write("\ufeff")
    writer.writerow([COLUMN_NAMES.get(c, c) for c in EXPORT_COLUMNS])
    for n, row in enumerate(rows, 1):
        writer.writerow([safe_cell(row.get(c)) for c in EXPORT_COLUMNS])
        if n % 500 == 0:
            yield buf.getvalue()
            buf.seek(0)
            buf.truncate()
    yield buf.getvalue()


def xlsx_bytes(rows: Iterator[dict[str, Any]]) -> bytes:
    from openpyxl import Workbook
    from openpyxl.cell import WriteOnlyCell

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("检索结果")
    ws.append([COLUMN_NAMES.get(c, c) for c in EXPORT_COLUMNS])
    for row in rows:
        cells = []
        for c in EXPORT_COLUMNS:
            value = safe_cell(row.get(c))
            if isinstance(value, str):
                # openpyxl rejects control characters that letters sometimes contain.
                value = "".join(ch for ch in value if ch in "\t\n\r" or ord(ch) >= 32)
            cell = WriteOnlyCell(ws, value=value)
            if isinstance(value, str) and value.startswith("'"):
                cell.data_type = "s"
            cells.append(cell)
        ws.append(cells)
    out = io.BytesIO()
    wb.save(out)
    return out.getvalue()


def install(server: flask.Flask, ctx: DashContext) -> None:
    """Add the two export routes (behind the login guard of dashboard.auth)."""

    def _rows():
        view = parse(flask.request.query_string.decode("utf-8", "replace"))
        max_rows = int(ctx.settings["dashboard.export_max_rows"])
        return iter_export_rows(ctx.store(), view.q, view.filters(), max_rows)

    def _name(ext: str) -> str:
        return f"govpulse-{datetime.now().strftime('%Y%m%d-%H%M%S')}.{ext}"

    @server.route("/export.csv")
    def export_csv():
        try:
            rows = _rows()
            first = list(_take(rows, 1))
        except (UrlStateError, StoreError) as exc:
            return flask.Response(f"导出失败：{exc}", status=400, mimetype="text/plain")
        body = csv_chunks(_chain(first, rows))
        return flask.Response(
            flask.stream_with_context(body),
            mimetype="text/csv",
            headers={"Content-Disposition": f'attachment; filename="{_name("csv")}"'},
        )

    @server.route("/export.xlsx")
    def export_xlsx():
        try:
            data = xlsx_bytes(_rows())
        except (UrlStateError, StoreError) as exc:
            return flask.Response(f"导出失败：{exc}", status=400, mimetype="text/plain")
        return flask.Response(
            data,
            mimetype="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            headers={"Content-Disposition": f'attachment; filename="{_name("xlsx")}"'},
        )


def _take(rows: Iterator[dict[str, Any]], n: int) -> Iterator[dict[str, Any]]:
    for _, row in zip(range(n), rows, strict=False):
        yield row


def _chain(first: list[dict[str, Any]], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield from first
    yield from rest
