"""Import existing letter exports (CSV, JSONL, Excel) into Messages.

Offices already hold years of letters in spreadsheets exported from their
mailbox systems.  Columns are mapped onto the schema by a mapping: known
Chinese and English column names are recognised automatically (留言主题,
留言详情, 留言时间, 答复意见, 答复时间 …), ``--map 列名=field`` overrides,
and a mapping can be saved by name for the next export.

Rows that cannot become a message are reported with their row number and
reason and skipped; a bad *reply* time keeps the letter and drops only the
time (with a warning), so nothing the citizen wrote is lost.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from govpulse.schema import (
    MAX_COUNT,
    TZ,
    Message,
    Source,
    Topic,
    ValidationError,
    make_id,
    mask_author,
)
from govpulse.timeparse import TimeParseError, parse_time

#: Schema fields an import column can map to ("extra.NAME" keeps a raw column too).
TARGETS = (
    "source_id", "title", "body", "author", "region", "department", "channel", "url",
    "posted_at", "reply_body", "replied_at", "replier", "status", "likes", "reposts",
    "comments", "votes", "topic", "province", "city", "county",
)  # fmt: skip

#: Column names seen in real exports -> target field.
KNOWN_COLUMNS: dict[str, str] = {
    # 2020 Teddy Cup / provincial message board exports
    "留言编号": "source_id", "留言用户": "author", "留言主题": "title", "留言时间": "posted_at",
    "留言详情": "body", "答复意见": "reply_body", "答复时间": "replied_at",
    "点赞数": "votes", "一级标签": "topic", "一级分类": "topic",
    # People's Daily 地方领导留言板 exports
    "replyID": "source_id", "tid": "source_id", "replyDate": "posted_at", "title": "title",
    "reply_object": "department", "province": "province", "city": "city", "county": "county",
    "stateInfo": "status", "replyName": "author", "replyContentMain": "body",
    "handleTime": "replied_at", "handleContent": "reply_body", "url": "url",
    "typeNameD": "extra.type", "domainName": "extra.domain",
    # city mayor mailboxes
    "mail_id": "source_id", "query": "body", "query_date": "posted_at", "reply": "reply_body",
    "reply_date": "replied_at", "reply_agency": "replier",
    # generic English / Chinese names
    "id": "source_id", "subject": "title", "content": "body", "text": "body", "body": "body",
    "author": "author", "department": "department", "region": "region", "posted_at": "posted_at",
    "reply_body": "reply_body", "replied_at": "replied_at", "replier": "replier",
    "status": "status", "likes": "likes", "reposts": "reposts", "comments": "comments",
    "votes": "votes", "topic": "topic", "标题": "title", "内容": "body", "正文": "body",
    "时间": "posted_at", "发布时间": "posted_at", "部门": "department", "回复": "reply_body",
    "回复时间": "replied_at", "回复内容": "reply_body", "办理状态": "status", "地区": "region",
}  # fmt: skip

_STATUS_WORDS = {
    "已办理": "answered", "已回复": "answered", "已答复": "answered", "办结": "closed",
    "已办结": "closed", "办理中": "open", "待回复": "open", "未回复": "open", "受理中": "open",
    "answered": "answered", "open": "open", "closed": "closed",
}  # fmt: skip


_TOPICS = frozenset(t.value for t in Topic)


class ImportError_(ValueError):
    """The file as a whole cannot be imported (unreadable, no usable columns)."""


@dataclass
class RowProblem:
    row: int
    reason: str
    fatal: bool  # True: row skipped; False: imported with a field dropped


@dataclass
class ImportReport:
    rows: int = 0
    imported: list[Message] = field(default_factory=list)
    problems: list[RowProblem] = field(default_factory=list)

    @property
    def skipped(self) -> int:
        return sum(p.fatal for p in self.problems)


def read_rows(path: Path) -> Iterator[dict[str, Any]]:
    """Yield the rows of a CSV (UTF-8 or GB18030), JSONL or Excel file as dicts."""
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm", ".xls"):
        import pandas as pd

        try:
            df = pd.read_excel(path, dtype=str, keep_default_na=False)
        except Exception as exc:  # openpyxl raises many types for a bad file
            raise ImportError_(f"{path}: not a readable Excel file ({exc})") from exc
        yield from df.to_dict(orient="records")
        return
    raw = path.read_bytes()
    for encoding in ("utf-8-sig", "gb18030"):
        try:
            text = raw.decode(encoding)
            break
        except UnicodeDecodeError:
            continue
    else:  # pragma: no cover - gb18030 decodes any byte string
        raise ImportError_(f"{path}: neither UTF-8 nor GB18030")
    if suffix in (".jsonl", ".ndjson", ".json"):
        for lineno, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                obj = json.loads(line)
            except json.JSONDecodeError as exc:
                yield {"__error__": f"invalid JSON on line {lineno}: {exc.msg}"}
                continue
            yield obj if isinstance(obj, dict) else {"__error__": "line is not a JSON object"}
        return
    reader = csv.DictReader(io.StringIO(text, newline=""))
    if not reader.fieldnames:
        raise ImportError_(f"{path}: empty file or no header row")
    yield from reader


def build_mapping(columns: list[str], overrides: Mapping[str, str] | None = None) -> dict[str, str]:
    """Column -> target for the columns present; overrides win and are checked."""
    mapping: dict[str, str] = {}
    for col in columns:
        key = col.strip()
        if key in KNOWN_COLUMNS:
            mapping[col] = KNOWN_COLUMNS[key]
    for col, target in (overrides or {}).items():
        if col not in columns:
            raise ImportError_(f"--map names column {col!r}, which the file does not have")
        if target not in TARGETS and not target.startswith("extra.") and target != "-":
            raise ImportError_(
                f"--map {col}={target}: unknown field; use one of {', '.join(TARGETS)}"
            )
        if target == "-":
            mapping.pop(col, None)
        else:
            mapping[col] = target
    targets = set(mapping.values())
    if not targets & {"title", "body"}:
        raise ImportError_(
            "no column maps to title or body; columns are: "
            + ", ".join(columns)
            + " (use --map COLUMN=body)"
        )
    return mapping


def _count(value: Any) -> int:
    text = str(value).strip().replace(",", "")
    if not text:
        return 0
    value = int(float(text[:-1]) * 10_000) if text.endswith("万") else int(float(text))
    if not 0 <= value <= MAX_COUNT:
        raise ValueError("out of range")
    return value


def row_to_message(
    row: Mapping[str, Any],
    mapping: Mapping[str, str],
    source: Source,
    channel: str,
    now: datetime,
) -> tuple[Message, list[str]]:
    """Build one Message from a row; return it with non-fatal warnings.

    Raises ValidationError / ValueError with a reason when the row is unusable.
    """
    if "__error__" in row:
        raise ValueError(row["__error__"])
    values: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    for col, target in mapping.items():
        value = row.get(col)
        if value is None:
            continue
        value = value.strip() if isinstance(value, str) else value
        if target.startswith("extra."):
            if value != "":
                extra[target[6:]] = value
        elif value != "" and target not in values:
            values[target] = value
    warnings: list[str] = []
    title = str(values.get("title", "")).strip()
    body = str(values.get("body", "")).strip()
    posted_at = None
    if "posted_at" in values:
        try:
            posted_at = parse_time(values["posted_at"], now=now)
        except TimeParseError as exc:
            warnings.append(f"posted_at dropped: {exc}")
    replied_at = None
    if "replied_at" in values:
        try:
            replied_at = parse_time(values["replied_at"], now=now)
        except TimeParseError as exc:
            warnings.append(f"replied_at dropped: {exc}")
    if replied_at and posted_at and replied_at < posted_at:
        warnings.append(f"replied_at {replied_at:%Y-%m-%d} is before posted_at; dropped")
        replied_at = None
    source_id = str(values.get("source_id", "")).strip()
    if not source_id:
        # No id column: a content hash keeps re-imports idempotent.
        basis = f"{title}\x00{body}\x00{values.get('posted_at', '')}"
        source_id = "h" + hashlib.blake2b(basis.encode(), digest_size=10).hexdigest()
    region = values.get("region") or "".join(
        str(values[k]) for k in ("province", "city", "county") if values.get(k)
    )
    status_raw = str(values.get("status", "")).strip()
    reply_body = values.get("reply_body") or None
    status = _STATUS_WORDS.get(status_raw, "answered" if reply_body or replied_at else "open")
    if status_raw and status_raw not in _STATUS_WORDS:
        warnings.append(f"unknown status {status_raw!r}; derived from the reply")
    if status_raw:
        extra.setdefault("state", status_raw)
    topic = values.get("topic") or None
    if topic is not None and topic not in _TOPICS:
        extra["source_topic"] = topic
        topic = None
    counts: dict[str, int] = {}
    for name in ("likes", "reposts", "comments", "votes"):
        if name in values:
            try:
                counts[name] = _count(values[name])
            except (ValueError, OverflowError):
                warnings.append(f"{name} {values[name]!r} is not a valid count; set to 0")
    msg = Message(
        id=make_id(source, f"{channel}:{source_id}"),
        source=source,
        channel=str(values.get("channel") or channel),
        url=values.get("url") or None,
        title=title,
        body=body,
        author=mask_author(values.get("author")),
        region=region or None,
        department=values.get("department") or None,
        posted_at=posted_at,
        reply_body=reply_body,
        replied_at=replied_at,
        replier=values.get("replier") or None,
        status=status,
        topic=topic,
        extra=extra,
        fetched_at=now,
        **counts,
    )
    msg.validate()
    return msg, warnings


def import_file(
    path: Path,
    source: Source = Source.MAILBOX,
    channel: str | None = None,
    overrides: Mapping[str, str] | None = None,
    now: datetime | None = None,
) -> tuple[dict[str, str], Iterator[tuple[int, Message | None, list[str], str | None]]]:
    """Return the mapping used and an iterator of (row number, message, warnings, error)."""
    now = now or datetime.now(TZ)
    channel = channel or path.stem
    rows = read_rows(path)
    try:
        first = next(rows)
    except StopIteration:
        raise ImportError_(f"{path}: no rows") from None
    columns = [c for c in first if c != "__error__"]
    mapping = build_mapping(columns, overrides)

    # JSON lines need not share keys: map each distinct key set on its own.
    by_keys: dict[frozenset[str], dict[str, str]] = {frozenset(columns): mapping}

    def row_mapping(row: dict[str, Any]) -> dict[str, str]:
        keys = frozenset(k for k in row if k != "__error__")
        if keys not in by_keys:
            present = {c: t for c, t in (overrides or {}).items() if c in keys}
            by_keys[keys] = build_mapping(sorted(keys), present)
        return by_keys[keys]

    def generate() -> Iterator[tuple[int, Message | None, list[str], str | None]]:
        for number, row in enumerate(_chain(first, rows), 1):
            try:
                row_map = mapping if "__error__" in row else row_mapping(row)
                msg, warnings = row_to_message(row, row_map, source, channel, now)
            except (ValidationError, ValueError) as exc:
                yield number, None, [], str(exc)
                continue
            yield number, msg, warnings, None

    return mapping, generate()


def _chain(first: dict[str, Any], rest: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    yield first
    yield from rest


def load_saved_mapping(directory: Path, name: str) -> dict[str, str]:
    path = directory / f"{name}.json"
    if not path.is_file():
        raise ImportError_(f"no saved mapping {name!r} in {directory}")
    return json.loads(path.read_text(encoding="utf-8"))


def save_mapping(directory: Path, name: str, mapping: Mapping[str, str]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{name}.json"
    path.write_text(json.dumps(dict(mapping), ensure_ascii=False, indent=2), encoding="utf-8")
    return path
