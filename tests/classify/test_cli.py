"""train / evaluate / classify / reclassify through the real `govpulse` click group."""

from __future__ import annotations

import json
from datetime import datetime

import pandas as pd
import pytest
from click.testing import CliRunner

from govpulse.cli import main
from govpulse.schema import TZ, Label, Message, Source, make_id

OUT_COLS = ["topic", "topic_score", "urgency", "urgency_reasons", "rumour_score", "rumour_reasons"]


def run(*args: str, env: dict[str, str] | None = None):
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


@pytest.fixture
def letters(tmp_path):
    df = pd.DataFrame(
        {
            "留言编号": [1, 2, 3, 4],
            "留言主题": ["小区停水三天", "建议增设公交线路", "", "楼道燃气泄漏"],
            "留言详情": [
                "小区停水三天，无法做饭。",
                "建议在新区增设公交线路。",
                "😀",
                "<p>闻到燃气味</p>",
            ],
        }
    )
    path = tmp_path / "letters.csv"
    df.to_csv(path, index=False)
    return path


def test_classify_csv_keeps_input_columns_and_adds_outputs(tiny_model_dir, letters, tmp_path):
    out = tmp_path / "out.csv"
    res = run("classify", str(letters), "--out", str(out), "--model-dir", str(tiny_model_dir))
    assert res.exit_code == 0, res.output
    df = pd.read_csv(out, encoding="utf-8-sig")
    assert list(df.columns) == ["留言编号", "留言主题", "留言详情", *OUT_COLS]
    # the tiny fixture model is unsure (topic may fall below the floor), but it scores
    assert df["topic_score"].notna().sum() == 3 and pd.isna(df.loc[2, "topic_score"])
    assert df.loc[3, "urgency"] == "特急"
    assert df["rumour_score"].notna().sum() == 3  # no source column: every row with text


def test_classify_jsonl_and_excel_with_explicit_columns(tiny_model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    rows = [
        {
            "source": "weibo",
            "content": "转发扩散！据说自来水有毒",
            "reposts": 900,
            "verified": False,
        },
        {"source": "mailbox", "content": "咨询公积金提取需要哪些材料"},
    ]
    src.write_text("\n".join(json.dumps(r, ensure_ascii=False) for r in rows), encoding="utf-8")
    out = tmp_path / "out.xlsx"
    res = run(
        "classify",
        str(src),
        "--out",
        str(out),
        "--text-col",
        "content",
        "--model-dir",
        str(tiny_model_dir),
    )
    assert res.exit_code == 0, res.output
    df = pd.read_excel(out)
    assert df.loc[0, "rumour_score"] >= 0 and pd.isna(df.loc[1, "rumour_score"])
    jl = tmp_path / "out.jsonl"
    assert (
        run("classify", str(src), "--out", str(jl), "--model-dir", str(tiny_model_dir)).exit_code
        == 0
    )
    assert len(jl.read_text(encoding="utf-8").splitlines()) == 2


def test_classify_gbk_csv(tiny_model_dir, tmp_path):
    src = tmp_path / "gbk.csv"
    src.write_bytes("title,text\n小区停水,停水三天了\n".encode("gbk"))
    out = tmp_path / "o.csv"
    assert (
        run("classify", str(src), "--out", str(out), "--model-dir", str(tiny_model_dir)).exit_code
        == 0
    )
    assert pd.read_csv(out, encoding="utf-8-sig").loc[0, "title"] == "小区停水"


def test_missing_column_is_named(tiny_model_dir, letters, tmp_path):
    res = CliRunner().invoke(
        main, ["classify", str(letters), "--out", str(tmp_path / "o.csv"), "--text-col", "正文X"]
    )
    assert res.exit_code != 0 and "正文X" in res.output and "留言详情" in res.output
    src = tmp_path / "nocols.csv"
    src.write_text("a,b\n1,2\n", encoding="utf-8")
    res = CliRunner().invoke(main, ["classify", str(src), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "no text column" in res.output


def test_empty_and_missing_input(tmp_path):
    empty = tmp_path / "e.csv"
    empty.write_text("", encoding="utf-8")
    res = CliRunner().invoke(main, ["classify", str(empty), "--out", str(tmp_path / "o.csv")])
    assert res.exit_code != 0 and "empty" in res.output
    res = CliRunner().invoke(
        main, ["classify", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "o.csv")]
    )
    assert res.exit_code != 0 and "no such file" in res.output


def test_tampered_model_dir_is_a_clear_error(tiny_model_dir, letters, tmp_path):
    import shutil

    d = tmp_path / "m"
    shutil.copytree(tiny_model_dir, d)
    (d / "urgency.skops").write_bytes(b"garbage")
    res = CliRunner().invoke(
        main, ["classify", str(letters), "--out", str(tmp_path / "o.csv"), "--model-dir", str(d)]
    )
    assert res.exit_code != 0 and "checksum" in res.output


def test_train_then_evaluate_topic(fixtures_dir, tmp_path):
    out = tmp_path / "models"
    data = str(fixtures_dir / "topic_small.csv")
    res = CliRunner().invoke(
        main, ["train", "topic", "--data", data, "--out", str(out), "--folds", "2"]
    )
    assert res.exit_code != 0 and "too few for 2-fold" in res.output
    res = run("train", "topic", "--data", data, "--out", str(out), "--folds", "0")
    assert res.exit_code == 0, res.output
    assert (out / "topic.skops").is_file()
    card = json.loads((out / "topic.card.json").read_text(encoding="utf-8"))
    assert card["data"]["rows"] == 35 and card["sha256"]
    res = run("evaluate", "topic", "--data", data, "--model-dir", str(out))
    assert res.exit_code == 0, res.output
    assert (
        "confusion matrix" in res.output and "城乡建设" in res.output and "macro-F1" in res.output
    )


def test_train_urgency_with_cross_validation(fixtures_dir, tmp_path):
    out = tmp_path / "models"
    res = run(
        "train",
        "urgency",
        "--data",
        str(fixtures_dir / "urgency_small.csv"),
        "--out",
        str(out),
        "--folds",
        "2",
    )
    assert res.exit_code == 0, res.output
    assert "cross-validated" in res.output and "macro-F1" in res.output
    card = json.loads((out / "urgency.card.json").read_text(encoding="utf-8"))
    assert 0 <= card["metrics"]["macro_f1"] <= 1 and card["metrics"]["n"] == 24


def test_train_rumour_card_carries_its_calibration(fixtures_dir, tmp_path):
    """`govpulse train rumour` records the learned calibration, as `make models` does."""
    out = tmp_path / "models"
    data = str(fixtures_dir / "rumour_small.csv")
    res = run("train", "rumour", "--data", data, "--out", str(out), "--folds", "0")
    assert res.exit_code == 0, res.output
    card = json.loads((out / "rumour.card.json").read_text(encoding="utf-8"))
    calibration = card["calibration"]
    assert calibration["flag_threshold"] == 0.5
    assert isinstance(calibration["method"], str) and calibration["method"]
    assert {"platt_a", "platt_b", "threshold_on_uncalibrated_scale"} <= set(calibration)


def test_train_new_topic_label(fixtures_dir, tmp_path):
    df = pd.read_csv(fixtures_dir / "topic_small.csv")
    extra = pd.DataFrame(
        {
            "留言主题": [f"快递丢件{i}" for i in range(5)],
            "留言详情": ["快递包裹丢失，快递公司不赔偿。"] * 5,
            "一级标签": ["邮政快递"] * 5,
        }
    )
    src = tmp_path / "t.csv"
    pd.concat([df, extra]).to_csv(src, index=False)
    out = tmp_path / "m"
    assert (
        run("train", "topic", "--data", str(src), "--out", str(out), "--folds", "0").exit_code == 0
    )
    card = json.loads((out / "topic.card.json").read_text(encoding="utf-8"))
    assert "邮政快递" in card["data"]["classes"]


def test_train_label_column_errors(fixtures_dir, tmp_path):
    res = CliRunner().invoke(
        main,
        [
            "train",
            "urgency",
            "--data",
            str(fixtures_dir / "urgency_small.csv"),
            "--label-col",
            "级别",
            "--out",
            str(tmp_path),
        ],
    )
    assert res.exit_code != 0 and "级别" in res.output


def test_evaluate_rumour_reports_auc(tiny_model_dir, fixtures_dir):
    res = run(
        "evaluate",
        "rumour",
        "--data",
        str(fixtures_dir / "rumour_small.csv"),
        "--model-dir",
        str(tiny_model_dir),
        "--json",
    )
    assert res.exit_code == 0, res.output
    metrics = json.loads(res.output[res.output.index("{") :])
    assert "roc_auc" in metrics and metrics["n"] == 24


def _store_env(tmp_path):
    return {
        "GOVPULSE_STORE_URL": f"sqlite:///{tmp_path / 'g.db'}",
        "GOVPULSE_DATA_DIR": str(tmp_path),
    }


def test_reclassify_and_train_with_corrections(tiny_model_dir, fixtures_dir, tmp_path):
    from store import open_store

    env = _store_env(tmp_path)
    now = datetime(2024, 3, 1, 9, 0, tzinfo=TZ)
    msgs = [
        Message(
            id=make_id(Source.MAILBOX, str(i)),
            source=Source.MAILBOX,
            channel="市长信箱",
            title=t,
            body=b,
            posted_at=now,
        ).validate()
        for i, (t, b) in enumerate(
            [
                ("小区停水", "停水三天无法做饭"),
                ("咨询公积金", "请问公积金怎么提取"),
                ("楼道燃气泄漏", "闻到燃气味"),
            ]
        )
    ]
    with open_store(env["GOVPULSE_STORE_URL"]) as store:
        store.upsert_many(msgs)
        store.add_label(Label(msgs[1].id, "urgency", "低", "staff", now))
    res = run("reclassify", "--model-dir", str(tiny_model_dir), env=env)
    assert res.exit_code == 0, res.output
    assert "re-tagged 3 messages" in res.output
    with open_store(env["GOVPULSE_STORE_URL"]) as store:
        stored = store.get_many([m.id for m in msgs])
    assert all(m.topic_score is not None and m.urgency is not None for m in stored)
    assert stored[2].urgency.value == "特急" and stored[2].urgency_reasons
    out = tmp_path / "m"
    res = run(
        "train",
        "urgency",
        "--data",
        str(fixtures_dir / "urgency_small.csv"),
        "--out",
        str(out),
        "--folds",
        "0",
        "--include-corrections",
        env=env,
    )
    assert res.exit_code == 0, res.output
    assert "corrections from the store: 1" in res.output
    assert json.loads((out / "urgency.card.json").read_text(encoding="utf-8"))["data"]["rows"] == 25
