"""The Tagger interface other areas call: fills the six classifier fields in place."""

from __future__ import annotations

from datetime import datetime

import pytest

from classify.tagger import ModelUnavailable, Tagger, TaggerConfig
from govpulse.schema import TZ, Message, Source, Topic, Urgency, make_id


def msg(source: Source, title: str, body: str, **kw) -> Message:
    return Message(
        id=make_id(source, title + body[:10]),
        source=source,
        channel="test",
        title=title,
        body=body,
        posted_at=datetime(2024, 1, 2, 10, 0, tzinfo=TZ),
        **kw,
    ).validate()


@pytest.fixture(scope="module")
def tagger(tiny_model_dir) -> Tagger:
    return Tagger.load(tiny_model_dir)


def test_fills_all_fields(tagger):
    m = msg(Source.MAILBOX, "公司拖欠员工社保", "公司半年没有缴纳社保，请人社局督促补缴。")
    tagger.tag([m])
    assert isinstance(m.topic, Topic) and 0 <= m.topic_score <= 1
    assert isinstance(m.urgency, Urgency)
    assert m.urgency_reasons and m.urgency_reasons[0].startswith("model: ")
    assert m.rumour_score is None and m.rumour_reasons == []  # mailbox letters are not rumours
    m.validate()


def test_critical_cue_in_title_gives_critical_with_reason(tagger):
    m = msg(Source.MAILBOX, "楼道燃气泄漏", "闻到很浓的燃气味，请马上处理。")
    tagger.tag([m])
    assert m.urgency is Urgency.CRITICAL
    assert any("燃气泄漏" in r for r in m.urgency_reasons)


def test_rumour_scored_for_weibo_and_lowered_by_reply_and_refutation(tagger):
    text = "转发扩散！据说明天自来水有毒，千万不要喝，告诉家人！"
    plain = msg(Source.WEIBO, "", text, reposts=3000)
    answered = msg(Source.WEIBO, "", text, reposts=3000, reply_body="已转交相关部门处理。")
    refuted_reply = msg(Source.WEIBO, "", text, reposts=3000, reply_body="经核实，该消息不实。")
    tagger.tag([plain, answered, refuted_reply])
    assert plain.rumour_score is not None and 0 <= plain.rumour_score <= 1
    assert answered.rumour_score == pytest.approx(plain.rumour_score * 0.5, abs=1e-3)
    assert "已有官方答复" in answered.rumour_reasons
    assert refuted_reply.rumour_score == pytest.approx(plain.rumour_score * 0.15, abs=1e-3)
    assert any(r.startswith("官方答复辟谣") for r in refuted_reply.rumour_reasons)
    assert any(r.startswith("传谣用语") for r in plain.rumour_reasons)


def test_refutation_words_lower_the_score_only_from_an_official_voice(tagger):
    """A verified account's 辟谣 is discounted; an ordinary user's "这不是谣言" is only noted."""
    text = "辟谣：网传明天自来水有毒的消息不实，请大家不要转发。"
    user = msg(Source.WEIBO, "", text, reposts=3000, extra={"verified": False})
    official = msg(Source.WEIBO, "", text, reposts=3000, extra={"verified": True})
    tagger.tag([user, official])
    assert not any(r.startswith(("认证账号辟谣", "官方答复辟谣")) for r in user.rumour_reasons)
    assert any(r.startswith("提及辟谣用语(非认证账号") for r in user.rumour_reasons)
    assert any(r.startswith("认证账号辟谣: 辟谣") for r in official.rumour_reasons)
    model_p = [float(r.split("=")[1]) for r in official.rumour_reasons if r.startswith("model: p=")]
    assert official.rumour_score == pytest.approx(model_p[0] * 0.3, abs=2e-3)
    user_p = [float(r.split("=")[1]) for r in user.rumour_reasons if r.startswith("model: p=")]
    assert user.rumour_score == pytest.approx(user_p[0], abs=5e-3)  # reasons print 2 decimals


def test_rumour_metadata_from_extra(tagger):
    text = "据说明天全市停电三天，大家快去囤水"
    a = msg(Source.WEIBO, "", text, extra={"followers": 20000000, "verified": True})
    b = msg(Source.WEIBO, "", text, extra={"followers": 50, "verified": False})
    tagger.tag([a, b])
    assert "认证账号" in a.rumour_reasons and "认证账号" not in b.rumour_reasons


def test_untaggable_messages_get_empty_fields(tagger):
    emoji = msg(Source.WEIBO, "", "😀😀😀[微笑]")
    html_only = msg(Source.FORUM, "", "<div><br/></div>&nbsp;")
    english = msg(Source.FORUM, "", "Where is the new bus stop?")
    tagger.tag([emoji, html_only, english])
    for m in (emoji, html_only):
        assert m.topic is None and m.topic_score is None and m.urgency is None
        assert m.rumour_score is None
    assert english.topic_score is not None  # some tokens: tagged, with a low-confidence score


def test_huge_letter(tagger):
    m = msg(Source.MAILBOX, "小区停水", "小区停水三天。" * 150_000)
    tagger.tag([m])
    assert m.urgency is not None


def test_topic_floor_leaves_topic_empty(tiny_model_dir):
    t = Tagger.load(tiny_model_dir, TaggerConfig(floor=1.01))
    m = msg(Source.MAILBOX, "幼儿园入园难", "孩子入园难")
    t.tag([m])
    assert m.topic is None and m.topic_score is not None


def test_empty_list_is_fine(tagger):
    tagger.tag([])


def test_missing_task_model(tiny_model_dir, tmp_path):
    import shutil

    for name in ("topic.skops", "topic.card.json"):
        shutil.copy(tiny_model_dir / name, tmp_path / name)
    with pytest.raises(ModelUnavailable, match="urgency"):
        Tagger.load(tmp_path)
    t = Tagger.load(tmp_path, fallback_dir=tiny_model_dir)
    assert set(t.models) == {"topic", "urgency", "rumour"}


def test_default_models_classify_obvious_letters():
    t = Tagger.load_default()
    letters = [
        msg(
            Source.MAILBOX,
            "社保卡丢失怎么补办",
            "本人社保卡丢失，请问到人社局哪个窗口补办，养老保险会不会受影响。",
        ),
        msg(Source.MAILBOX, "学校违规补课收费", "中学暑假组织学生补课并收取补课费，请教育局查处。"),
        msg(
            Source.MAILBOX,
            "化工厂偷排废气",
            "工业园化工厂夜间偷排废气，刺鼻难闻，请环保局查处污染。",
        ),
    ]
    t.tag(letters)
    assert [m.topic for m in letters] == [Topic.LABOUR, Topic.EDUCATION, Topic.ENVIRONMENT]
    assert all(m.topic_score > 0.5 for m in letters)


def test_from_settings_accepts_partial_dicts(tiny_model_dir):
    t = Tagger.from_settings(
        {"classify.model_dir": str(tiny_model_dir), "classify.topic_floor": "0.3"}
    )
    assert t.config.floor == 0.3 and t.config.unsure_below == 0.5
    assert t.cards["topic"]["data"]["file"] == "topic_small.csv"


def test_no_cycle_collection_runs_while_a_batch_is_tagged(tagger, monkeypatch):
    """The collector is paused inside tag_rows (govpulse/gcpause.py) and on again after."""
    import gc

    rows = [{"title": f"小区停水{i}", "body": "已经三天没有水了，请尽快处理。"} for i in range(50)]
    inside: list[bool] = [False]
    during: list[int] = []
    tag = tagger._tag_rows

    def spy(batch):  # type: ignore[no-untyped-def]
        inside[0] = True
        try:
            return tag(batch)
        finally:
            inside[0] = False

    def count(phase: str, info: dict) -> None:
        if phase == "start" and inside[0]:
            during.append(info["generation"])

    monkeypatch.setattr(tagger, "_tag_rows", spy)
    old = gc.get_threshold()
    gc.set_threshold(1, 1, 1)  # would collect at almost every allocation
    gc.callbacks.append(count)
    try:
        tagger.tag_rows(rows)
        assert during == []
        assert gc.isenabled()
    finally:
        gc.callbacks.remove(count)
        gc.set_threshold(*old)
