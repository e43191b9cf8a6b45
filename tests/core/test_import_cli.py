"""`govpulse import`, `search`, `stats`, `export` end to end through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from govpulse.cli import main
from store.sqlite import SQLiteStore

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "import"


@pytest.fixture
def run(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    db = tmp_path / "g.db"

    def invoke(*args: str, ok: bool = True):
        result = CliRunner().invoke(
            main, ["--store", f"sqlite:///{db}", "--set", f"data_dir={tmp_path}", *args]
        )
        if ok:
            assert result.exit_code == 0, result.output + str(result.exception)
        return result

    invoke.db = db
    return invoke


def test_import_reports_bad_rows_and_keeps_the_rest(run):
    result = run("import", str(FIXTURES / "letters.csv"), "--no-classify", "--errors", "errs.csv")
    out = result.output
    assert "5 rows: 4 new, 0 updated, 0 unchanged, 1 skipped, 2 warnings" in out
    assert "row 2: skipped: body: title and body are both empty" in out
    assert "row 3: warning: posted_at dropped" in out
    assert "row 4: warning: replied_at 2023-12-01 is before posted_at; dropped" in out
    errs = pd.read_csv("errs.csv")
    assert list(errs.row) == [2, 3, 4]
    store = SQLiteStore(run.db)
    # Nothing the citizen wrote is lost: the row with a bad time is stored without it.
    hit = store.search("路灯").hits[0]
    assert hit.posted_at is None and hit.body == "小区路灯坏了一个月"
    answered = store.search("供暖").hits[0]
    assert answered.status.value == "answered" and answered.reply_delay_days == pytest.approx(
        3.0208, abs=1e-3
    )
    assert answered.author != "U1"
    # Re-running is safe.
    again = run("import", str(FIXTURES / "letters.csv"), "--no-classify")
    assert "0 new, 0 updated, 4 unchanged" in again.output
    assert store.count() == 4


def test_gbk_jsonl_and_excel(run, tmp_path):
    gbk = run("import", str(FIXTURES / "letters_gbk.csv"), "--no-classify")
    assert "2 new" in gbk.output
    jl = run("import", str(FIXTURES / "letters.jsonl"), "--no-classify", "--source", "forum")
    assert "2 new" in jl.output and "invalid JSON on line 2" in jl.output
    assert "not a JSON object" in jl.output
    xlsx = tmp_path / "letters.xlsx"
    pd.DataFrame(
        {
            "主题": ["停水三天", "路面塌陷"],
            "内容物": ["整栋楼停水", "有大坑"],
            "日期": ["2024-04-01", "2024-04-02"],
        }
    ).to_excel(xlsx, index=False)
    bad = run("import", str(xlsx), "--no-classify", ok=False)
    assert bad.exit_code != 0 and "no column maps to title or body" in bad.output
    good = run(
        "import",
        str(xlsx),
        "--no-classify",
        "--map",
        "主题=title,内容物=body,日期=posted_at",
        "--save-mapping",
        "city",
    )
    assert "2 new" in good.output
    reuse = run("import", str(xlsx), "--no-classify", "--mapping", "city")
    assert "2 unchanged" in reuse.output
    found = json.loads(run("search", "停水", "--json").output.splitlines()[0])
    assert found["title"] == "停水三天" and found["posted_at"].startswith(
        "2024-04-01T00:00:00+08:00"
    )


def test_nothing_importable_exits_non_zero(run, tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("留言主题,留言详情\n,\n", encoding="utf-8")
    result = run("import", str(empty), "--no-classify", ok=False)
    assert result.exit_code == 1 and "nothing could be imported" in result.output
    wrong_map = run("import", str(FIXTURES / "letters.csv"), "--map", "不存在=body", ok=False)
    assert "does not have" in wrong_map.output


def test_search_stats_export(run, tmp_path):
    run("import", str(FIXTURES / "letters.csv"), "--no-classify")
    out = run("search", "供暖").output
    assert out.startswith("1 matches") and "小区供暖不足" in out
    stats = json.loads(run("stats", "--json", "--calendar-days", "--group-by", "source").output)
    assert stats["total"] == 4
    row = stats["timeliness"][0]
    assert (row["group"], row["letters"], row["answered"]) == ("mailbox", 4, 2)
    run("export", "out.csv", "--status", "open")
    frame = pd.read_csv(tmp_path / "out.csv")
    assert len(frame) == 2 and set(frame.status) == {"open"}
    run("export", "out.xlsx", "-q", "供暖")
    assert pd.read_excel(tmp_path / "out.xlsx").title.tolist() == ["小区供暖不足"]
    assert "--set" not in run("settings", "--all").output


def test_import_streams_many_transactions_with_exact_counts(run, tmp_path):
    """A file larger than a store batch goes through one pipelined upsert_many call."""
    rows = [
        {"留言编号": f"L{i}", "留言主题": f"主题{i}", "留言详情": f"小区供暖问题{i}",
         "留言时间": f"2024-01-{1 + i % 28:02d} 10:00:00"}
        for i in range(130)
    ]  # fmt: skip
    rows.append(dict(rows[7]))  # a repeat of an earlier row, several batches later
    pd.DataFrame(rows).to_csv(tmp_path / "many.csv", index=False)
    args = ("import", str(tmp_path / "many.csv"), "--no-classify", "--batch", "20")
    result = run("--set", "store.batch_size=25", *args)
    assert "131 rows: 130 new, 0 updated, 1 unchanged" in result.output
    store = SQLiteStore(run.db)
    assert store.count() == store.count("供暖") == 130
    assert store.check_summaries() == []
    store.close()
