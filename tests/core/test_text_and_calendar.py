"""Tokeniser, working days and the survival curve."""

from datetime import date, datetime

import jieba
import pytest

from govpulse import tokenize
from govpulse.analytics import share_unanswered_after, survival_curve
from govpulse.schema import TZ
from govpulse.workdays import add_working_days, is_workday, working_days_between


def test_normalise_folds_width_and_strips_noise():
    text = "ＡＢＣ１２３ 请看 https://t.cn/abc 和 @某某某 [doge] 😀 好"
    assert tokenize.normalise(text) == "ABC123 请看 和 好"


def test_broken_surrogates_do_not_crash():
    assert tokenize.cut("供暖\ud800不足") == ["供暖", "不足"]
    assert "供暖" in tokenize.index_text("供暖\udfff")


def test_government_words_stay_whole():
    tokens = tokenize.cut("我打了12345热线反映公积金和社保问题，信访局没有回复")
    for word in ("12345热线", "公积金", "社保", "信访局"):
        assert word in tokens


def test_index_tokens_contain_two_character_parts():
    tokens = tokenize.cut_for_index("中华人民共和国社会保险法")
    assert {"人民", "共和国", "社会", "保险"} <= set(tokens)


def test_same_tokens_as_jieba_on_plain_chinese():
    jieba.setLogLevel(60)
    text = "小区供暖不足，家里只有十三度，老人孩子都冻感冒了"
    assert tokenize.cut(text) == [t for t in jieba.lcut(text) if t.strip("，")]


def test_query_tokens_drop_stop_words_but_never_everything():
    assert "的" not in tokenize.cut_query("小区的供暖")
    assert tokenize.cut_query("的") == ["的"]
    assert tokenize.cut("") == [] and tokenize.cut("😀😀") == []


@pytest.mark.parametrize(
    ("day", "work"),
    [
        (date(2024, 10, 1), False),  # National Day
        (date(2024, 9, 29), True),  # Sunday make-up working day
        (date(2024, 10, 8), True),
        (date(2024, 10, 5), False),
    ],
)
def test_chinese_calendar(day, work):
    assert is_workday(day) is work


def test_working_days_between_skips_golden_week():
    start = datetime(2024, 9, 30, 9, 0, tzinfo=TZ)
    end = datetime(2024, 10, 8, 9, 0, tzinfo=TZ)
    assert working_days_between(start, end) == 1
    assert add_working_days(date(2024, 9, 30), 1) == date(2024, 10, 8)
    assert working_days_between(start, start) == 0


def test_ordinal_table_counts_the_official_working_days():
    """The fast table agrees with chinese_calendar day by day, inside and outside its years."""
    from datetime import timedelta

    from govpulse.workdays import EPOCH, workday_ordinal

    day, count = EPOCH, 0
    while day <= date(2040, 12, 31):
        assert workday_ordinal(day) == count, day
        count += is_workday(day)
        day += timedelta(days=1)


def test_survival_curve_censors_open_letters():
    # 4 letters: answered after 1 and 3 days; open ones aged 2 and 5 days.
    curve = survival_curve([(1, 1, 0), (2, 0, 1), (3, 1, 0), (5, 0, 1)])
    assert curve[0] == (0, 1.0)
    assert curve[1] == (1, pytest.approx(0.75))
    # at day 3, 2 letters remain at risk (one censored at day 2): 0.75 * (1 - 1/2)
    assert curve[2] == (3, pytest.approx(0.375))
    assert share_unanswered_after(curve, 2) == pytest.approx(0.75)
    assert share_unanswered_after(curve, 10) == pytest.approx(0.375)
    assert survival_curve([]) == [(0, 1.0)]
