"""Reading labelled and unlabelled tables (CSV, Excel, JSONL) and finding their columns.

`govpulse classify` is run on exports nobody here has seen, so columns are
detected from common names (留言主题/留言详情, title/text/content …) and a
missing column is an error that names it and lists what the file has.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from classify.text import PREPARE


class DataError(ValueError):
    """An input file that cannot be used as given (missing column, unreadable, empty)."""


TEXT_COLUMNS = (
    "留言详情",
    "text",
    "content",
    "body",
    "内容",
    "正文",
    "详情",
    "query",
    "replyContentMain",
    "message",
    "tokens",
)
TITLE_COLUMNS = ("留言主题", "title", "标题", "主题", "subject")
LABEL_COLUMNS = {
    "topic": ("一级标签", "一级分类", "topic", "label", "标签"),
    "urgency": ("urgency", "紧急程度", "label", "标签"),
    "rumour": ("label", "rumour", "is_rumour", "谣言"),
}
TIME_COLUMNS = ("time_utc", "posted_at", "留言时间", "time", "created_at", "date")


#: Shared-data folder used to resolve id-only label files (urgency_labels.csv).
def shared_data_dir() -> Path:
    return Path(os.environ.get("GOVPULSE_SHARED_DATA", "../shared/data"))


def read_table(path: str | Path) -> pd.DataFrame:
    """Read CSV (UTF-8 or GB18030), Excel or JSON Lines into strings-as-objects frame."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: no such file")
    suffix = path.suffix.lower()
    try:
        if suffix in (".xlsx", ".xlsm", ".xls"):
            frame = pd.read_excel(path, dtype=object)
        elif suffix in (".jsonl", ".ndjson", ".json"):
            frame = pd.read_json(path, lines=suffix != ".json", dtype=False)
        else:
            try:
                frame = pd.read_csv(path, dtype=object, encoding="utf-8-sig")
            except UnicodeDecodeError:
                frame = pd.read_csv(path, dtype=object, encoding="gb18030")
    except DataError:
        raise
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except Exception as exc:  # pandas/openpyxl raise many kinds on a malformed file
        raise DataError(f"{path}: cannot read as a table ({type(exc).__name__}: {exc})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def pick_column(
    frame: pd.DataFrame, given: str | None, candidates: Sequence[str], what: str, required: bool
) -> str | None:
    """Return the column to use: the one given (must exist) or the first candidate present."""
    if given:
        if given not in frame.columns:
            raise DataError(
                f"{what} column {given!r} not found; the file has: {', '.join(map(str, frame.columns))}"
            )
        return given
    lower = {str(c).lower(): c for c in frame.columns}
    for name in candidates:
        if name.lower() in lower:
            return lower[name.lower()]
    if required:
        raise DataError(
            f"no {what} column found (tried {', '.join(candidates)}); pass --{what}-col; "
            f"the file has: {', '.join(map(str, frame.columns))}"
        )
    return None


def _cell(value: object) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


def text_columns(
    frame: pd.DataFrame, text_col: str | None, title_col: str | None
) -> tuple[str | None, str | None]:
    """Detect (title, text) columns; at least one must exist."""
    title = pick_column(frame, title_col, TITLE_COLUMNS, "title", required=False)
    text = pick_column(frame, text_col, TEXT_COLUMNS, "text", required=title is None)
    return title, text


def prepared_tokens(
    frame: pd.DataFrame, title: str | None, text: str | None, form: str = "tokens"
) -> list[str]:
    """Model input of the given form (``classify.text.PREPARE``) for every row.

    A pre-cut ``tokens`` column is used as it is, for either form: the
    character n-grams of the "chars" form ignore the spaces between tokens.
    """
    if text == "tokens" and title is None:
        return [" ".join(_cell(v).split()) for v in frame[text]]
    prepare = PREPARE[form]
    titles = frame[title] if title else [""] * len(frame)
    texts = frame[text] if text else [""] * len(frame)
    return [prepare(_cell(a), _cell(b)) for a, b in zip(titles, texts, strict=True)]


def is_holdout(source_file: str, letter_id: str, share: int = 3) -> bool:
    """Fixed 30 % test part of the urgency labels (hash of source_file:id)."""
    digest = hashlib.blake2b(f"{source_file}:{letter_id}".encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % 10 < share


#: (id column, title column, text column) of each mailbox file.
MAILBOX_FILES = {
    "tipdm2020c_letters_with_replies": ("留言编号", "留言主题", "留言详情"),
    "tipdm2020c_letters_unlabelled": ("留言编号", "留言主题", "留言详情"),
    "tipdm2020c_letters_with_votes": ("留言编号", "留言主题", "留言详情"),
    "people_liuyan_gas_2022": ("replyID", "title", "replyContentMain"),
    "shangluo_mayor_mailbox": ("mail_id", "title", "query"),
}


def _norm_id(value: object) -> str:
    text = _cell(value).strip()
    if text.endswith(".0") and text[:-2].isdigit():
        text = text[:-2]
    return text


def resolve_label_ids(labels: pd.DataFrame, mailbox_dir: Path) -> pd.DataFrame:
    """Join an id-only label file (source_file,id,label) with the letters' text."""
    parts = []
    for source_file, group in labels.groupby("source_file"):
        if source_file not in MAILBOX_FILES:
            raise DataError(f"unknown source_file {source_file!r} in label file")
        id_col, title_col, text_col = MAILBOX_FILES[str(source_file)]
        path = mailbox_dir / f"{source_file}.csv"
        if not path.is_file():
            raise DataError(
                f"{path}: letters for the urgency labels not found (set GOVPULSE_SHARED_DATA)"
            )
        letters = pd.read_csv(path, dtype=object)
        letters["_id"] = letters[id_col].map(_norm_id)
        letters = letters.drop_duplicates("_id").set_index("_id")
        ids = group["id"].map(_norm_id)
        missing = sorted(set(ids) - set(letters.index))
        if missing:
            raise DataError(f"{len(missing)} labelled ids not in {path.name}, e.g. {missing[:3]}")
        rows = letters.loc[ids]
        parts.append(
            pd.DataFrame(
                {
                    "source_file": source_file,
                    "id": ids.to_numpy(),
                    "title": rows[title_col].map(_cell).to_numpy(),
                    "text": rows[text_col].map(_cell).to_numpy(),
                    "label": group["label"].to_numpy(),
                }
            )
        )
    return pd.concat(parts, ignore_index=True)
