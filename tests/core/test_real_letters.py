"""Real letters from ../shared/data: import them and check stats against pandas."""

from __future__ import annotations

from datetime import datetime

import pandas as pd
import pytest
from click.testing import CliRunner

from govpulse.cli import main
from govpulse.schema import TZ
from store.base import Sla
from store.sqlite import SQLiteStore

pytestmark = pytest.mark.shared
NOW = datetime(2024, 1, 1, tzinfo=TZ)


def _import(db, path):
    result = CliRunner().invoke(
        main, ["--store", f"sqlite:///{db}", "import", str(path), "--no-classify"]
    )
    assert result.exit_code == 0, result.output
    return result.output


def test_people_liuyan_timeliness_matches_pandas(shared_data, tmp_path):
    path = shared_data / "mailbox" / "people_liuyan_gas_2022.csv"
    db = tmp_path / "g.db"
    out = _import(db, path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    assert f"{len(df)} rows: {len(df)} new" in out
    posted = pd.to_datetime(df.replyDate.str.strip()).dt.tz_localize("Asia/Shanghai")
    replied = pd.to_datetime(df.handleTime.str.strip().replace("", None)).dt.tz_localize(
        "Asia/Shanghai"
    )
    # Answered = the board shows a reply; unanswered posts stay open and are counted.
    answered = (df.handleContent.str.strip() != "") | replied.notna()
    delay = (replied - posted).dt.total_seconds() / 86400
    frame = pd.DataFrame(
        {"dept": df.reply_object.str.strip(), "answered": answered, "delay": delay}
    )
    store = SQLiteStore(db)
    got = {
        r.group: r
        for r in store.timeliness("department", sla=Sla(days=15, working_days=False), now=NOW)
    }
    assert sum(r.letters for r in got.values()) == len(df)
    for dept, sub in frame.groupby("dept"):
        row = got[dept]
        assert row.letters == len(sub)
        assert row.answered == int(sub.answered.sum())
        assert row.open == len(sub) - int(sub.answered.sum())
        timed = sub[sub.answered].delay.dropna()
        if len(timed):
            assert row.median_delay == pytest.approx(timed.quantile(0.5))
            assert row.p90_delay == pytest.approx(timed.quantile(0.9))


def test_teddy_cup_letters_median_delay_is_about_eleven_days(shared_data, tmp_path):
    path = shared_data / "mailbox" / "tipdm2020c_letters_with_replies.csv"
    db = tmp_path / "g.db"
    out = _import(db, path)
    df = pd.read_csv(path, dtype=str, keep_default_na=False)
    posted = pd.to_datetime(df["留言时间"].str.strip(), format="mixed", errors="coerce")
    replied = pd.to_datetime(df["答复时间"].str.strip(), format="mixed", errors="coerce")
    delay = (replied - posted).dt.total_seconds() / 86400
    valid = delay[delay >= 0]
    store = SQLiteStore(db)
    (row,) = store.timeliness("source", sla=Sla(working_days=False), now=NOW)
    assert row.letters == len(df) and "0 skipped" in out
    assert row.median_delay == pytest.approx(valid.quantile(0.5))
    assert row.p90_delay == pytest.approx(valid.quantile(0.9))
    assert 9 < row.median_delay < 13
    # Full-text search finds real letters by a two-character word.
    assert store.count("物业") == int(
        (df["留言主题"] + df["留言详情"] + df["答复意见"]).str.contains("物业").sum()
    )
