"""Message schema: ids, validation errors, round trips, derived values."""

from datetime import datetime, timedelta

import pytest

from govpulse.schema import (
    TZ,
    Message,
    Source,
    Status,
    Topic,
    ValidationError,
    make_id,
    mask_author,
)


def letter(**kw):
    base = dict(
        id=make_id("mailbox", "42"), source="mailbox", channel="市长信箱", title="路灯不亮",
        body="小区路灯坏了", posted_at=datetime(2024, 1, 2, 10, 0, tzinfo=TZ),
    )  # fmt: skip
    base.update(kw)
    return Message(**base)


def test_id_is_stable_and_source_specific():
    assert make_id("weibo", "123") == make_id(Source.WEIBO, "123")
    assert make_id("weibo", "123") != make_id("forum", "123")
    with pytest.raises(ValidationError):
        make_id("weibo", " ")


def test_author_is_never_the_raw_name():
    assert mask_author("张三") != "张三" and mask_author("张三") == mask_author("张三")
    assert mask_author("陈***") == "陈***"
    assert mask_author("") is None


def test_validate_coerces_and_derives():
    msg = letter(topic="城乡建设", likes="7", reply_body="已处理",
                 replied_at=datetime(2024, 1, 5, 10, 0, 0, 999, tzinfo=TZ)).validate()  # fmt: skip
    assert msg.topic is Topic.URBAN and msg.likes == 7
    assert msg.status is Status.ANSWERED  # a reply implies answered
    assert msg.reply_delay == timedelta(days=3) and msg.reply_delay_days == 3.0
    assert msg.replied_at.microsecond == 0


@pytest.mark.parametrize(
    ("kw", "field"),
    [
        ({"source": "tieba"}, "source"),
        ({"topic": "外星人"}, "topic"),
        ({"channel": ""}, "channel"),
        ({"title": "", "body": "  "}, "body"),
        ({"likes": -1}, "likes"),
        ({"votes": "many"}, "votes"),
        ({"posted_at": datetime(2024, 1, 1)}, "posted_at"),
        ({"rumour_score": 1.5}, "rumour_score"),
        ({"replied_at": datetime(2023, 1, 1, tzinfo=TZ)}, "replied_at"),
    ],
)
def test_validation_names_the_field(kw, field):
    with pytest.raises(ValidationError) as info:
        letter(**kw).validate()
    assert info.value.field == field and field in str(info.value)


def test_huge_text_is_clipped_not_rejected():
    msg = letter(body="很长" * 300_000).validate()
    assert len(msg.body) == 200_000


def test_dict_round_trip():
    msg = letter(
        urgency="紧急", urgency_reasons=["关键词: 欠薪"], extra={"type": "投诉"}
    ).validate()
    again = Message.from_dict(msg.to_dict())
    assert again == msg
    with pytest.raises(ValidationError):
        Message.from_dict({**msg.to_dict(), "nonsense": 1})
