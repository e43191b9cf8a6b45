"""Rumour scoring: forward-chained calibration, the short-text guard, the shipped model's figures."""

from __future__ import annotations

import json
import random
import warnings
from datetime import datetime

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from classify import training as T
from classify.decide import SHORT_TEXT_CHARS, SHORT_TEXT_SCORE, adjust_rumour, short_text
from classify.forward import ForwardCalibratedClassifier, forward_blocks
from classify.modelio import load_model, save_model
from classify.pipelines import RUMOUR_META
from classify.tagger import Tagger, default_model_dir
from govpulse.schema import TZ, Message, Source, make_id

# -- forward blocks -----------------------------------------------------------


def test_forward_blocks_train_strictly_before_each_block():
    times = pd.Series(pd.date_range("2012-01-01", periods=10, freq="D", tz="UTC"))
    times[3] = pd.NaT
    blocks = forward_blocks(times, (0.5, 0.75))
    assert len(blocks) == 2
    (tr1, va1), (tr2, va2) = blocks
    known = times.dropna()
    for tr, va in blocks:
        assert times[tr].max() < times[va].min()  # no later post in a training part
        assert not tr[3] and not va[3]  # no time: in neither
    assert not (va1 & va2).any()
    assert (va1 | va2).sum() == len(known) - int(
        0.5 * len(known)
    )  # from the 50 % quantile to the end
    assert times[va2].max() == known.max()
    assert tr2.sum() > tr1.sum()


def test_forward_blocks_without_times():
    assert forward_blocks(pd.Series([None, None]), (0.6, 0.8)) == []


# -- the calibrating wrapper on drifting synthetic data -----------------------


def drifting(n: int = 600, seed: int = 0) -> tuple[np.ndarray, np.ndarray, pd.Series]:
    """One feature whose positive class moves towards the negatives as time goes on.

    A model fitted on the early posts scores later positives lower, which is
    what the forward calibration has to learn (threshold below 0.5).
    """
    rng = np.random.default_rng(seed)
    t = np.sort(rng.uniform(0, 1, n))
    y = (rng.uniform(0, 1, n) < 0.5).astype(int)
    x = rng.normal(0, 1, n) + y * (3.0 - 2.0 * t)
    times = pd.Series(pd.Timestamp("2012-01-01", tz="UTC") + pd.to_timedelta(t * 365, unit="D"))
    return x.reshape(-1, 1), y, times


def test_forward_calibration_lowers_the_threshold_under_drift():
    X, y, times = drifting()
    model = ForwardCalibratedClassifier(LogisticRegression(class_weight="balanced")).fit(
        X, y, times=times
    )
    assert model.calibration_.startswith("platt on ")
    assert model.forward_n_ == int(0.4 * len(y))  # the last 40 % of the time range
    assert model.a_ > 0
    assert model.threshold_ < 0.5  # later rumours score lower: flag earlier
    raw = model.estimator_.predict_proba(X)[:, 1]
    cal = model.predict_proba(X)
    np.testing.assert_allclose(cal.sum(axis=1), 1.0)
    assert roc_auc_score(y, cal[:, 1]) == pytest.approx(roc_auc_score(y, raw))  # ranking kept
    # 0.5 after the map is the learned threshold on the estimator's own scale.
    assert np.array_equal(model.predict(X), (raw >= model.threshold_ - 1e-9).astype(int))
    assert np.array_equal(model.predict(X), (cal[:, 1] >= 0.5).astype(int))


def test_without_times_the_estimator_scale_is_kept():
    X, y, _ = drifting()
    model = ForwardCalibratedClassifier(LogisticRegression()).fit(X, y)
    assert model.calibration_.startswith("none")
    assert model.threshold_ == pytest.approx(0.5)
    np.testing.assert_allclose(model.predict_proba(X), model.estimator_.predict_proba(X))


def test_too_few_posts_in_the_blocks_keeps_the_estimator_scale():
    X, y, times = drifting(n=30)
    model = ForwardCalibratedClassifier(LogisticRegression()).fit(X, y, times=times)
    assert model.calibration_.startswith("none (too few")
    assert (model.a_, model.b_) == (1.0, 0.0)


def test_clone_keeps_parameters_and_refits_the_same():
    X, y, times = drifting()
    first = ForwardCalibratedClassifier(LogisticRegression(), quantiles=(0.5, 0.75))
    second = clone(first)
    assert second.get_params()["quantiles"] == (0.5, 0.75)
    a = first.fit(X, y, times=times).predict_proba(X)
    b = second.fit(X, y, times=times).predict_proba(X)
    np.testing.assert_allclose(a, b)


# -- the real rumour pipeline on invented posts ---------------------------------

RUMOUR_HEADS = ["转发扩散！", "紧急通知：", "内部消息，", "据说", "网传", "震惊！"]
RUMOUR_CLAIMS = [
    "明天自来水有毒千万不要喝",
    "超市的鸡蛋是假的吃了会致癌",
    "有人贩子在学校门口偷孩子",
    "这种水果打了药千万别买",
    "全市明天停电三天快去囤水",
    "某小区发生爆炸死了很多人",
]
PLAIN = [
    "市交通局发布春运期间公交线路调整安排",
    "今天天气晴好，公园的樱花开了",
    "区图书馆周末举办亲子阅读活动欢迎报名",
    "本周六上午社区开展义诊活动",
    "市气象台预计明天有小雨请注意出行",
    "新建的体育馆下月起免费向市民开放",
]


def invented_posts(n: int = 160, seed: int = 1) -> pd.DataFrame:
    """Short invented Weibo posts over two years (no shared data)."""
    rnd = random.Random(seed)
    rows = []
    start = datetime(2012, 1, 1)
    for k in range(n):
        rumour = k % 2
        text = (
            rnd.choice(RUMOUR_HEADS) + rnd.choice(RUMOUR_CLAIMS) + "！"
            if rumour
            else rnd.choice(PLAIN) + "。"
        )
        rows.append(
            {
                "file": f"{k}_p{k}_{1000 + k % 40}.json",
                "label": rumour,
                "time_utc": (start + pd.Timedelta(days=4 * k + rnd.randint(0, 3))).isoformat(),
                "text": text,
                "reposts": rnd.randint(100, 5000) if rumour else rnd.randint(0, 300),
                "comments": rnd.randint(0, 300),
                "likes": rnd.randint(0, 50),
                "followers": rnd.randint(10, 5000) if rumour else rnd.randint(10_000, 900_000),
                "verified": (not rumour) and rnd.random() < 0.7,
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def invented_dataset(tmp_path_factory) -> T.Dataset:
    path = tmp_path_factory.mktemp("rumour") / "invented.csv"
    invented_posts().to_csv(path, index=False)
    return T.load_dataset("rumour", str(path))


@pytest.fixture(scope="module")
def invented_model(invented_dataset) -> ForwardCalibratedClassifier:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return T.fit("rumour", invented_dataset)


def test_training_passes_post_times_to_the_calibration(invented_dataset, invented_model):
    assert T.fit_params("rumour", invented_dataset)["times"].notna().all()
    assert T.fit_params("topic", invented_dataset) == {}
    assert isinstance(invented_model, ForwardCalibratedClassifier)
    assert invented_model.calibration_.startswith("platt on ")
    assert 0.0 < invented_model.threshold_ < 1.0


def test_calibrated_rumour_model_round_trips_through_skops(
    invented_dataset, invented_model, tmp_path
):
    save_model(invented_model, tmp_path, "rumour", {"data": {}, "metrics": {}})
    loaded, _ = load_model(tmp_path, "rumour")
    np.testing.assert_allclose(
        loaded.predict_proba(invented_dataset.X), invented_model.predict_proba(invented_dataset.X)
    )
    assert (loaded.a_, loaded.b_) == (invented_model.a_, invented_model.b_)


def test_merge_keeps_the_training_times(invented_dataset):
    extra = invented_dataset.subset(np.arange(len(invented_dataset)) < 3)
    extra.times = None  # corrections carry no times
    merged = T.merge(invented_dataset, extra)
    assert len(merged.times) == len(merged)
    assert merged.times.iloc[: len(invented_dataset)].notna().all()
    assert merged.times.iloc[len(invented_dataset) :].isna().all()


# -- the short-text guard -------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "chars"),
    [("好", 1), ("哈哈", 2), ("转发微博", 4), ("ok!!", 2), ("__a", 1), ("转 发 扩 散 !", 4)],
)
def test_short_texts_are_recognised(text, chars):
    assert short_text(text) == chars


@pytest.mark.parametrize("text", ["转发扩散据说", "abcde", "!!!哈 哈 哈 哈 哈", "据说明天全市停电"])
def test_texts_with_enough_characters_are_not_short(text):
    assert short_text(text) is None


def test_guard_caps_the_score_with_a_reason_and_keeps_the_discounts():
    score, reasons = adjust_rumour(0.97, "转发", False, False, 0.3, 0.5)
    assert score == SHORT_TEXT_SCORE
    assert reasons[0] == "model: p=0.97"
    assert any(r.startswith("文本过短: 2字") and f"少于{SHORT_TEXT_CHARS}字" in r for r in reasons)
    replied, reasons = adjust_rumour(0.97, "转发", True, False, 0.3, 0.5)
    assert replied == pytest.approx(SHORT_TEXT_SCORE * 0.5)
    assert "已有官方答复" in reasons
    low, _ = adjust_rumour(0.02, "哈哈", False, False, 0.3, 0.5)
    assert low == 0.02  # a cap, not a floor


def test_guard_leaves_ordinary_posts_alone():
    score, reasons = adjust_rumour(0.8, "据说明天全市停电三天,大家快去囤水", False, False, 0.3, 0.5)
    assert score == 0.8
    assert not any(r.startswith("文本过短") for r in reasons)


def weibo(body: str, **kw) -> Message:
    return Message(
        id=make_id(Source.WEIBO, body),
        source=Source.WEIBO,
        channel="test",
        title="",
        body=body,
        posted_at=datetime(2024, 1, 2, 10, 0, tzinfo=TZ),
        **kw,
    ).validate()


def test_tagger_gives_near_empty_posts_a_low_score_with_reason(tiny_model_dir):
    tagger = Tagger.load(tiny_model_dir)
    short, repost, long = (
        weibo("哈哈😂", reposts=5000),
        weibo("转发微博"),
        weibo("转发扩散！据说明天自来水有毒，千万不要喝，告诉家人！", reposts=5000),
    )
    tagger.tag([short, repost, long])
    for m in (short, repost):
        assert m.rumour_score is not None and m.rumour_score <= SHORT_TEXT_SCORE
        assert any(r.startswith("文本过短") for r in m.rumour_reasons)
    assert not any(r.startswith("文本过短") for r in long.rumour_reasons)


# -- the shipped model ----------------------------------------------------------


def shipped_card() -> dict:
    return json.loads((default_model_dir() / "rumour.card.json").read_text(encoding="utf-8"))


def test_shipped_rumour_card_records_the_learned_threshold_and_goal_figures():
    card = shipped_card()
    cal = card["calibration"]
    assert cal["method"].startswith("platt on ")
    assert cal["flag_threshold"] == 0.5
    assert 0.0 < cal["threshold_on_uncalibrated_scale"] < 0.5
    ts = card["metrics"]["time_split"]
    assert ts["roc_auc"] >= 0.93 and ts["macro_f1"] >= 0.85
    assert card["metrics"]["grouped_cv5"]["macro_f1"] >= 0.85


def test_shipped_rumour_model_is_calibrated_and_guarded():
    tagger = Tagger.load_default()
    model = tagger.models["rumour"]
    assert isinstance(model, ForwardCalibratedClassifier)
    assert model.threshold_ == pytest.approx(
        shipped_card()["calibration"]["threshold_on_uncalibrated_scale"], abs=1e-4
    )
    frame = pd.DataFrame(
        {"tokens": ["据说明天全市停电三天,大家快去囤水"], **{k: [None] for k in RUMOUR_META}}
    )
    raw = model.estimator_.predict_proba(frame)[0, 1]
    assert (model.predict_proba(frame)[0, 1] >= 0.5) == (raw >= model.threshold_)
    m = weibo("转发")
    tagger.tag([m])
    assert m.rumour_score <= SHORT_TEXT_SCORE
