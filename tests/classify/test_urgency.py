"""Urgency cues (negation, lexicons) and how decide_urgency combines model and rules.

The sentences are invented, in the shape of mailbox letters (title, then body).
"""

from __future__ import annotations

import numpy as np
import pytest

from classify import cues
from classify.decide import URGENCY_CLASS_WEIGHTS, decide_urgency

CLASSES = ["一般", "低", "特急", "紧急"]


def _hits(text: str, lexicon: tuple[str, ...]) -> tuple[str, ...]:
    return cues.hits(cues.flatten(text), lexicon)


@pytest.mark.parametrize(
    "text",
    [
        "楼下饭店没有发生火灾，但油烟很大",
        "万一发生火灾，后果不堪设想",
        "一旦发生火灾消防车进不来",
        "小区电动车乱停存在火灾隐患",
        "请尽快加固以免倒塌",
        "物业说不是起火，是有人烧纸",
    ],
)
def test_negated_or_hypothetical_danger_words_are_not_critical_cues(text):
    assert not set(_hits(text, cues.CRITICAL_CUES)) & {"火灾", "倒塌", "起火"}
    assert cues.counts(cues.flatten(text), (cues.CRITICAL_CUES,)) == [
        len(_hits(text, cues.CRITICAL_CUES))
    ]


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("昨晚小区三栋发生火灾，三楼住户被困", "火灾"),
        ("没有人管，今天楼道又起火了", "起火"),  # the negation is in the previous clause
        ("老房子墙体开裂，随时可能倒塌", "倒塌"),
        ("村主任带人殴打我父亲，现在还在医院", "殴打"),
        # a negation far before the cue (more than NEGATION_WINDOW characters) does not count
        ("我们从来没有想过自家的房子会在一夜之间倒塌", "倒塌"),
    ],
)
def test_danger_words_stated_as_facts_are_found(text, cue):
    assert cue in _hits(text, cues.CRITICAL_CUES)


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("邻居昨天被砍了两刀，凶手还在村里转悠", "被砍"),
        ("一伙人冲进店里打砸，老板不敢开门", "打砸"),
        ("我父亲前天在地里被打，至今躺在床上", "被打"),
        ("亲戚被骗进窝点，现在还困在里面出不来", "困在"),
        ("楼上掉下的砖头砸伤了路过的小孩", "砸伤"),
        ("单元电梯这周掉层两次，大家不敢坐", "掉层"),
        ("路口的坑一直没人填，迟早会出人命", "出人命"),
    ],
)
def test_session6_critical_cues_for_present_harm_are_found(text, cue):
    """Session 6 cues: violence, people held, falling objects, lifts that dropped."""
    assert cue in _hits(text, cues.CRITICAL_CUES)
    flat = cues.flatten(text)
    assert cues.counts(flat, (cues.CRITICAL_CUES,)) == [len(_hits(text, cues.CRITICAL_CUES))]


@pytest.mark.parametrize(
    ("text", "cue"),
    [
        ("物业加固了外墙，以免砸伤行人", "砸伤"),
        ("如果电梯掉层，后果不堪设想", "掉层"),
        ("一旦有人被打，就立刻报警", "被打"),
    ],
)
def test_session6_critical_cues_are_dropped_when_hypothetical(text, cue):
    assert cue not in _hits(text, cues.CRITICAL_CUES)


def test_session6_cues_are_model_features_only_not_title_rule_cues():
    """They count for the model; the title rule (CRITICAL_HEAD_CUES) is unchanged."""
    for cue in ("被砍", "打砸", "被打", "困在", "掉层", "出人命"):
        assert cue in cues.CRITICAL_CUES
        assert cue not in cues.CRITICAL_HEAD_CUES
    proba = np.array([0.9, 0.05, 0.01, 0.04])  # 一般, 低, 特急, 紧急
    level, reasons = decide_urgency(proba, CLASSES, "电梯掉层两次 物业不管", 0.0)
    assert level == "一般"
    assert any("掉层" in r for r in reasons if r.startswith("关键词(特急)"))


def test_negation_also_applies_to_urgent_cues_but_not_to_rumour_cues():
    assert "停水" not in _hits("我们小区没有停水，只是水压低", cues.URGENT_CUES)
    assert "停水" in _hits("小区已经停水三天，老人孩子没法做饭", cues.URGENT_CUES)
    # rumour lexicons are matched as they are
    assert "转发扩散" in _hits("没有转发扩散这条消息", cues.RUMOUR_CUES)


def test_one_asserted_occurrence_is_enough():
    text = "万一发生火灾怎么办？上周隔壁楼真的发生火灾了"
    assert "火灾" in _hits(text, cues.CRITICAL_CUES)
    assert cues.asserted(cues.flatten(text), "火灾")
    assert not cues.asserted(cues.flatten("万一发生火灾怎么办"), "火灾")


def test_clear_caches_forgets_negation_results():
    cues.hits(cues.flatten("小区昨晚发生火灾"), cues.CRITICAL_CUES)
    assert cues._found_asserted.cache_info().currsize > 0
    cues.clear_caches()
    assert cues._found_asserted.cache_info().currsize == 0


def test_urgency_lexicons_have_no_duplicates_and_low_cues_are_questions_not_policy_words():
    for lex in (cues.CRITICAL_CUES, cues.CRITICAL_HEAD_CUES, cues.URGENT_CUES, cues.LOW_CUES):
        assert len(lex) == len(set(lex))
    # generic words that appear in complaints as often as in questions were dropped
    assert not {"规定", "规划", "政策", "感谢"} & set(cues.LOW_CUES)
    assert not {"安全隐患", "隐患", "尽快"} & set(cues.URGENT_CUES)
    assert {"请问", "咨询", "建议", "如何申请"} <= set(cues.LOW_CUES)


def _proba(**p: float) -> np.ndarray:
    return np.array([p.get(c, 0.0) for c in CLASSES])


def test_weighting_lifts_a_close_critical_call_and_says_so():
    weight = URGENCY_CLASS_WEIGHTS["特急"]
    p = _proba(一般=0.5, 特急=0.5 / weight + 0.05, 紧急=0.05)
    level, reasons = decide_urgency(p, CLASSES, "小区门口有人吵架 希望派出所来看看", 0.0)
    assert level == "特急"
    assert reasons[0].startswith("model: 特急 p=")
    assert any(r.startswith("加权: 特急×") for r in reasons)
    # a clear 一般 stays 一般 and carries no weighting reason
    level, reasons = decide_urgency(
        _proba(一般=0.8, 特急=0.1, 紧急=0.1), CLASSES, "小区路灯坏了", 0.0
    )
    assert level == "一般"
    assert not any(r.startswith("加权") for r in reasons)


def test_a_critical_cue_in_the_title_decides_unless_negated():
    p = _proba(一般=0.85, 特急=0.05, 紧急=0.1)
    level, reasons = decide_urgency(p, CLASSES, "三栋楼道起火 有人被困 请马上派人", 0.0)
    assert level == "特急"
    assert "规则: 标题危险关键词 起火、被困" in reasons
    assert any(r.startswith("关键词(特急): ") and "起火" in r for r in reasons)
    level, reasons = decide_urgency(p, CLASSES, "楼道没有起火 只是物业在烧垃圾", 0.0)
    assert level == "一般"
    assert not any(r.startswith("规则") for r in reasons)


def test_the_title_rule_respects_rule_min_p_and_a_model_without_the_critical_class():
    p = _proba(一般=0.85, 特急=0.05, 紧急=0.1)
    text = "村主任殴打村民 请求严惩"
    assert decide_urgency(p, CLASSES, text, 0.0)[0] == "特急"
    assert decide_urgency(p, CLASSES, text, 0.2)[0] == "一般"
    three = ["一般", "低", "紧急"]
    level, reasons = decide_urgency(np.array([0.7, 0.1, 0.2]), three, text, 0.0)
    assert level == "一般" and reasons[0] == "model: 一般 p=0.70"


def test_urgent_and_low_cues_are_reported_as_reasons():
    level, reasons = decide_urgency(
        _proba(紧急=0.7, 一般=0.3), CLASSES, "小区停气五天 老人无法做饭 请问何时恢复", 0.0
    )
    assert level == "紧急"
    assert any(r.startswith("关键词(紧急): ") and "停气" in r for r in reasons)
    assert any(r.startswith("关键词(低): ") and "请问" in r for r in reasons)


def test_heldout_figures_by_sample_keep_only_the_chosen_letters(tiny_model_dir, fixtures_dir):
    """build_models reports the held-out part and its random-sample subsets (tiny real model)."""
    from classify import training as T
    from classify.build_models import heldout_by_sample
    from classify.modelio import load_model

    model, _card = load_model(tiny_model_dir, "urgency")
    ds = T.load_dataset("urgency", str(fixtures_dir / "urgency_small.csv"))
    samples = np.array(["keyword" if k % 3 == 0 else "random" for k in range(len(ds))])
    parts = heldout_by_sample(
        model,
        ds,
        samples,
        {"random": ("random",), "none": ("initial",), "all": ("keyword", "random")},
    )
    assert set(parts) == {"random", "all"}  # an empty subset is skipped
    assert parts["random"]["n"] == int((samples == "random").sum())
    assert parts["all"]["n"] == len(ds)
    assert parts["all"] == {
        **T.evaluate("urgency", model, ds),
        "validation": parts["all"]["validation"],
    }


@pytest.mark.parametrize(
    "title",
    [
        "瑞凯酒店违章建筑隐患重大 2013年酒店起火事故未能引起重视",
        "钼业公司中毒事故善后事宜 伤者出院一月有余",
        "房屋倒塌是否属于危房改造范围",
        "万科魅力之城近百户房屋楼板、墙面开裂",  # 开裂: a model feature, not a rule cue
    ],
)
def test_dated_settled_or_crack_titles_do_not_fire_the_title_rule(title):
    p = _proba(一般=0.85, 特急=0.05, 紧急=0.1)
    level, reasons = decide_urgency(p, CLASSES, title, 0.0)
    assert level == "一般"
    assert not any(r.startswith("规则") for r in reasons)


def test_current_event_reads_only_the_head_and_keeps_present_events():
    flat = cues.flatten("三栋楼道起火 有人被困 请马上派人")
    assert cues.current_event(flat, "起火") and cues.current_event(flat, "被困")
    assert not cues.current_event(cues.flatten("2018年10月弱电井起火"), "起火")
    # a cue not in the head at all is not judged here (the rule never asks)
    assert cues.current_event(flat, "爆炸")


def test_title_cue_columns_count_the_head_apart_from_the_whole_letter():
    from classify.features import urgency_cue_counts

    texts = [
        "小区燃气泄漏 请马上处理",
        "物业服务差 " + "停车难 " * 10 + "楼道里闻到燃气",
        "请问公积金怎么提取",
        "",
    ]
    three = urgency_cue_counts(texts).toarray()
    six = urgency_cue_counts(texts, head_chars=cues.HEAD_CHARS).toarray()
    assert three.shape == (4, 3) and six.shape == (4, 6)
    np.testing.assert_array_equal(six[:, :3], three)
    assert six[0, 3] > 0 and six[1, 0] > 0 and six[1, 3] == 0  # deep in the letter: whole only
    assert six[2, 5] > 0 and six[3].sum() == 0


@pytest.mark.parametrize(
    "text",
    [
        "楼道没有起火 只是物业在烧垃圾 请问怎么投诉",
        "万一发生火灾怎么办 小区停水三天",
        "三栋楼道起火 有人被困 " + "昨晚又停电 " * 5,
        "物业服务差 " + "停车难 " * 10 + "楼道里闻到燃气",
        "请问公积金怎么提取",
        "",
    ],
)
def test_head_counts_equal_head_hits_without_a_second_pass(text):
    flat = cues.flatten(text)
    lexicons = (cues.CRITICAL_HEAD_CUES, cues.URGENT_CUES, cues.LOW_CUES)
    want = [len(cues.head_hits(flat, lex, cues.HEAD_CHARS)) for lex in lexicons]
    cues.clear_caches()
    assert cues.head_counts(flat, lexicons, cues.HEAD_CHARS) == want
    # any other tuple of cues is answered by head_hits
    assert cues.head_counts(flat, (("停水", "起火"),), 12) == [
        len(cues.head_hits(flat, ("停水", "起火"), 12))
    ]


def test_batch_decisions_equal_one_row_at_a_time():
    """decide_urgency_rows (argmax of the whole batch) gives each row's level and reasons
    as taking max() of that row's probabilities would: ties (the first maximum wins),
    weighting changes, the title rule and cue reasons, and rows holding NaN."""
    from classify.decide import decide_urgency_rows

    texts = [
        "三栋楼道起火 有人被困 请马上派人",
        "楼道没有起火 只是物业在烧垃圾",
        "小区停气五天 老人无法做饭 请问何时恢复",
        "小区路灯坏了",
        "村主任殴打村民 请求严惩",
    ] * 8
    rng = np.random.default_rng(5)
    proba = rng.dirichlet(np.ones(len(CLASSES)), len(texts))
    proba[:6] = 0.25  # ties: the first class wins, before and after weighting
    proba[6, :2] = proba[6, 1::-1]
    proba[7] = np.nan
    weights = [URGENCY_CLASS_WEIGHTS.get(c, 1.0) for c in CLASSES]
    got = decide_urgency_rows(proba, CLASSES, texts, 0.0)
    for row, text, (level, reasons) in zip(proba.tolist(), texts, got, strict=True):
        scores = [p * w for p, w in zip(row, weights, strict=True)]
        best = CLASSES[scores.index(max(scores))]
        raw = row.index(max(row))
        assert (level == best) or (level == "特急" and any(r.startswith("规则") for r in reasons))
        assert reasons[0] == f"model: {level} p={row[CLASSES.index(level)]:.2f}"
        assert any(r.startswith("加权") for r in reasons) == (best != CLASSES[raw])
        one = decide_urgency(np.array(row), CLASSES, text, 0.0)
        assert one == (level, reasons)


def test_reading_agreement_compares_readers_labels_and_model(tmp_path):
    """build_models scores blind readings and the model's out-of-fold labels on the same letters."""
    from classify.build_models import reading_agreement

    gold = np.array(["a", "b", "a", "b", "c", "c"], dtype=object)
    oof = np.array(["a", "b", "b", "b", "c", "a"], dtype=object)
    path = tmp_path / "readings.csv"
    path.write_text(
        "row,keys,reader_1,reader_2\n0,blind_key,a,a\n2,blind_key,b,b\n4,blind_key,c,a\n5,blind_key,a,a\n",
        encoding="utf-8",
    )
    out = reading_agreement(gold, oof, path)
    assert out["letters"] == 4
    assert out["readers_vs_each_other"]["accuracy"] == 0.75
    assert out["labels_vs_reader_1"]["accuracy"] == 0.5  # rows 0 and 4 match
    assert out["labels_vs_model_out_of_fold"]["accuracy"] == 0.5  # rows 0 and 4
    # rows 2 and 5: both readers agree against the label; the model gives b (readers) and a (readers)
    assert out["readers_agree_against_the_label"] == {
        "n": 2,
        "model_gives_the_label": 0,
        "model_gives_the_readers_label": 2,
    }
    bad = tmp_path / "bad.csv"
    bad.write_text("row,keys,reader_1,reader_2\n9,blind_key,a,a\n", encoding="utf-8")
    with pytest.raises(ValueError, match="row 9"):
        reading_agreement(gold, oof, bad)
