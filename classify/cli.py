"""``govpulse train | evaluate | classify | reclassify``: the classifier commands."""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import click

from govpulse.context import AppContext

log = logging.getLogger(__name__)

TASK = click.Choice(["topic", "urgency", "rumour"])
OUTPUT_COLUMNS = (
    "topic",
    "topic_score",
    "urgency",
    "urgency_reasons",
    "rumour_score",
    "rumour_reasons",
)
META_COLUMNS = ("reposts", "comments", "likes", "followers", "verified")


def _progress(items: Iterable[Any], total: int, label: str) -> Iterator[Any]:
    from tqdm import tqdm

    yield from tqdm(items, total=total, desc=label, unit="row", file=sys.stderr, disable=None)


def _fail(exc: Exception) -> click.ClickException:
    return click.ClickException(str(exc))


def _tagger(app: AppContext, model_dir: str | None):
    from classify.tagger import ModelUnavailable, Tagger, TaggerConfig, default_model_dir

    try:
        if model_dir:
            config = TaggerConfig.from_settings(app.settings)
            return Tagger.load(model_dir, config, fallback_dir=default_model_dir())
        return Tagger.from_settings(app.settings)
    except ModelUnavailable as exc:
        raise _fail(exc) from None


@click.command("train")
@click.argument("task", type=TASK)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Labelled CSV/Excel/JSONL file.",
)
@click.option(
    "--text-col", help="Column with the message text (default: detected, e.g. 留言详情/text)."
)
@click.option("--title-col", help="Column with the title (default: detected, e.g. 留言主题/title).")
@click.option("--label-col", help="Column with the label (default: detected, e.g. 一级标签/label).")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(file_okay=False),
    help="Model folder (default: <data_dir>/models).",
)
@click.option(
    "--include-corrections",
    is_flag=True,
    help="Add staff corrections stored as labels in the store.",
)
@click.option(
    "--folds",
    default=5,
    show_default=True,
    type=click.IntRange(0, 20),
    help="Cross-validation folds for the model card (0: skip).",
)
@click.pass_obj
def train_cmd(
    app: AppContext,
    task: str,
    data_path: str,
    text_col: str | None,
    title_col: str | None,
    label_col: str | None,
    out_dir: str | None,
    include_corrections: bool,
    folds: int,
) -> None:
    """Train the TASK model on a labelled file and save it with its model card.

    New topics are added by training on an export whose label column uses them.
    Point classify.model_dir at the output folder to use the model.
    """
    from classify import training as T
    from classify.data import DataError
    from classify.modelio import save_model

    out = Path(out_dir) if out_dir else app.data_dir / "models"
    try:
        click.echo(f"reading {data_path} …", err=True)
        ds = T.load_dataset(
            task,
            data_path,
            text_col,
            title_col,
            label_col,
            progress=lambda it, n: _progress(it, n, "preparing"),
        )
        for note in ds.notes:
            click.echo(note, err=True)
        if include_corrections:
            extra = T.corrections_dataset(task, app.store())
            click.echo(
                f"corrections from the store: {0 if extra is None else len(extra)}", err=True
            )
            ds = T.merge(ds, extra)
        metrics: dict[str, Any] = {}
        if folds >= 2:
            click.echo(f"cross-validating ({folds} folds) …", err=True)
            metrics = T.cross_validate(
                task, ds, folds=folds, progress=lambda m: click.echo(m, err=True)
            )
            click.echo(T.format_report(metrics, f"{task}: cross-validated"))
        click.echo(f"fitting on {len(ds)} rows …", err=True)
        model = T.fit(task, ds)
        card = {
            "data": {
                "file": str(data_path),
                "rows": len(ds),
                "classes": sorted(map(str, set(ds.y))),
            },
            "metrics": metrics,
            "trained_by": f"govpulse train {task}",
        }
        if task == "rumour":
            from classify.forward import calibration_card

            card["calibration"] = calibration_card(model)
        path = save_model(model, out, task, card)
    except DataError as exc:
        raise _fail(exc) from None
    click.echo(f"saved {path}")
    if not out_dir:
        click.echo(f"use it with: --set classify.model_dir={out}", err=True)


@click.command("evaluate")
@click.argument("task", type=TASK)
@click.option(
    "--data",
    "data_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Labelled CSV/Excel/JSONL file.",
)
@click.option("--text-col", help="Column with the message text.")
@click.option("--title-col", help="Column with the title.")
@click.option("--label-col", help="Column with the label.")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False),
    help="Model folder (default: classify.model_dir or shipped).",
)
@click.option("--json", "as_json", is_flag=True, help="Print the metrics as JSON.")
@click.pass_obj
def evaluate_cmd(
    app: AppContext,
    task: str,
    data_path: str,
    text_col: str | None,
    title_col: str | None,
    label_col: str | None,
    model_dir: str | None,
    as_json: bool,
) -> None:
    """Score the TASK model on a labelled file: per-class table, confusion matrix, macro-F1/AUC."""
    from classify import training as T
    from classify.data import DataError
    from classify.modelio import ModelUnavailable, load_model, model_path
    from classify.pipelines import input_form
    from classify.tagger import TaggerConfig, default_model_dir

    folders = [Path(p) for p in (model_dir, app.settings["classify.model_dir"]) if p]
    folder = next((f for f in folders if model_path(f, task).exists()), default_model_dir())
    try:
        model, _card = load_model(folder, task)
    except ModelUnavailable as exc:
        raise _fail(exc) from None
    rule_min_p = TaggerConfig.from_settings(app.settings).rule_min_p
    try:
        ds = T.load_dataset(
            task,
            data_path,
            text_col,
            title_col,
            label_col,
            progress=lambda it, n: _progress(it, n, "preparing"),
            form=input_form(model),  # an older model reads the form it was trained on
        )
        metrics = T.evaluate(task, model, ds, rule_min_p)
    except DataError as exc:
        raise _fail(exc) from None
    if as_json:
        click.echo(json.dumps(metrics, ensure_ascii=False, indent=2))
    else:
        click.echo(T.format_report(metrics, f"{task}: {data_path}"))


def _write_table(frame: Any, path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in (".xlsx", ".xlsm"):
        frame.to_excel(path, index=False)
    elif suffix in (".jsonl", ".ndjson"):
        frame.to_json(path, orient="records", lines=True, force_ascii=False)
    elif suffix == ".json":
        frame.to_json(path, orient="records", force_ascii=False, indent=1)
    else:
        frame.to_csv(path, index=False, encoding="utf-8-sig" if suffix == ".csv" else "utf-8")


@click.command("classify")
@click.argument("input_path", metavar="INPUT", type=click.Path(dir_okay=False))
@click.option(
    "--out",
    "out_path",
    required=True,
    type=click.Path(dir_okay=False),
    help="Output CSV/Excel/JSONL (format from the extension).",
)
@click.option(
    "--text-col",
    help="Column with the message text (default: detected, e.g. 留言详情/text/content).",
)
@click.option("--title-col", help="Column with the title (default: detected, e.g. 留言主题/title).")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False),
    help="Model folder (default: classify.model_dir or shipped).",
)
@click.pass_obj
def classify_cmd(
    app: AppContext,
    input_path: str,
    out_path: str,
    text_col: str | None,
    title_col: str | None,
    model_dir: str | None,
) -> None:
    """Tag every row of INPUT; write its columns plus topic, urgency and rumour fields.

    Rumour scores are given to every row unless a `source` column says a row
    is a mailbox letter (then it stays empty).  Optional columns reposts,
    comments, likes, followers and verified feed the rumour model.
    """
    import pandas as pd

    from classify.data import DataError, read_table, text_columns
    from classify.tagger import iter_batches

    try:
        frame = read_table(input_path)
        title, text = text_columns(frame, text_col, title_col)
    except DataError as exc:
        raise _fail(exc) from None
    tagger = _tagger(app, model_dir)
    has_source = "source" in frame.columns

    def rows() -> Iterator[dict[str, Any]]:
        for rec in frame.to_dict("records"):
            source = str(rec.get("source") or "").strip().lower() if has_source else ""
            yield {
                "title": _cell(rec.get(title)) if title else "",
                "body": _cell(rec.get(text)) if text else "",
                "rumour": source != "mailbox",
                **{k: rec.get(k) for k in META_COLUMNS},
            }

    batch = int(app.settings["classify.batch_size"])
    results = []
    for chunk in iter_batches(_progress(rows(), len(frame), "classifying"), batch):
        results.extend(tagger.tag_rows(chunk))
    out = frame.copy()
    for name in OUTPUT_COLUMNS:
        if name in out.columns:
            click.echo(
                f"warning: input column {name!r} is replaced by the classifier's output", err=True
            )
    out["topic"] = [r.topic for r in results]
    out["topic_score"] = [r.topic_score for r in results]
    out["urgency"] = [r.urgency for r in results]
    out["urgency_reasons"] = ["; ".join(r.urgency_reasons or []) for r in results]
    out["rumour_score"] = [r.rumour_score for r in results]
    out["rumour_reasons"] = ["; ".join(r.rumour_reasons or []) for r in results]
    empty = sum(1 for r in results if r.topic_score is None)
    path = Path(out_path)
    try:
        _write_table(pd.DataFrame(out), path)
    except OSError as exc:
        raise click.ClickException(f"{path}: cannot write ({exc})") from None
    click.echo(
        f"classified {len(results)} rows -> {path}"
        + (f" ({empty} without text left untagged)" if empty else "")
    )


def _cell(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return ""
    return str(value)


@click.command("reclassify")
@click.option(
    "--source",
    "sources",
    multiple=True,
    help="Only this source (weibo, mailbox, forum); repeatable.",
)
@click.option("--since", type=click.DateTime(), help="Only messages posted on or after this date.")
@click.option(
    "--model-dir",
    type=click.Path(file_okay=False),
    help="Model folder (default: classify.model_dir or shipped).",
)
@click.pass_obj
def reclassify_cmd(
    app: AppContext, sources: tuple[str, ...], since: Any, model_dir: str | None
) -> None:
    """Re-tag stored messages after a model change (through the Store interface)."""
    from classify.tagger import iter_batches
    from govpulse.schema import TZ
    from store.base import Filters, UpsertStats

    tagger = _tagger(app, model_dir)
    store = app.store()
    filters = Filters.make(
        source=list(sources) or None, since=since.replace(tzinfo=TZ) if since else None
    )
    total = store.count(filters=filters)
    batch = int(app.settings["classify.batch_size"])
    stats = UpsertStats()
    for chunk in iter_batches(
        _progress(store.iter_messages(filters=filters, batch_size=batch), total, "re-tagging"),
        batch,
    ):
        tagger.tag(chunk)
        stats += store.upsert_many(chunk)
    click.echo(
        f"re-tagged {total} messages: {stats.updated} changed, {stats.unchanged} unchanged, {len(stats.failed)} failed"
    )
    for mid, reason in stats.failed[:10]:
        click.echo(f"  failed {mid}: {reason}", err=True)
