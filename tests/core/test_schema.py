"""Message schema: ids, validation errors, round trips, derived values."""

from datetime import UTC, datetime, timedelta

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


class _Text(str):
    """A str subclass: validation must still hand back plain, clipped str values."""


@pytest.mark.parametrize(
    ("kw", "field", "expected"),
    [
        ({"source": "tieba"}, "source", "source: 'tieba' is not one of: weibo, mailbox, forum"),
        ({"status": ""}, "status", "status: required"),
        ({"title": "\u3000", "body": " \t\n"}, "body", "body: title and body are both empty"),
        ({"likes": 10**12 + 1}, "likes", "likes: implausible count 1000000000001"),
        ({"votes": -3}, "votes", "votes: negative count -3"),
        ({"comments": 2.5j}, "comments", "comments: not a count: 2.5j"),
        ({"fetched_at": "2024-01-01"}, "fetched_at", "fetched_at: not a datetime: '2024-01-01'"),
        (
            {"updated_at": datetime(2024, 1, 1)},
            "updated_at",
            "updated_at: naive datetime; attach Asia/Shanghai first",
        ),
    ],
)
def test_validation_error_messages_are_exact(kw, field, expected):
    """The fast paths for already-valid values must not change what invalid ones report."""
    with pytest.raises(ValidationError) as info:
        letter(**kw).validate()
    assert info.value.field == field and str(info.value) == expected


def test_values_already_valid_pass_and_others_are_coerced():
    """Enum members, in-range ints and whole-second Asia/Shanghai datetimes are kept;
    everything else gets the coercion it always got."""

    posted = datetime(2024, 1, 2, 10, 0, tzinfo=TZ)
    msg = letter(
        source=Source.MAILBOX, status="closed", topic=_Text("城乡建设"), urgency="",
        likes=True, reposts=0, comments=None, votes=10**12, posted_at=posted,
        replied_at=datetime(2024, 1, 3, 2, 0, 0, 500, tzinfo=UTC),
        fetched_at=datetime(2024, 1, 4, 10, 0, 0, 7, tzinfo=TZ), title=_Text("\u3000路灯"),
        body="",
    ).validate()  # fmt: skip
    assert msg.source is Source.MAILBOX and msg.status is Status.CLOSED
    assert msg.topic is Topic.URBAN and msg.urgency is None
    assert [type(v) for v in (msg.likes, msg.comments)] == [int, int]
    assert (msg.likes, msg.reposts, msg.comments, msg.votes) == (1, 0, 0, 10**12)
    assert msg.posted_at == posted and msg.posted_at.tzinfo is TZ
    assert msg.replied_at == datetime(2024, 1, 3, 10, 0, tzinfo=TZ)
    assert msg.replied_at.tzinfo is TZ and msg.replied_at.microsecond == 0
    assert msg.fetched_at == datetime(2024, 1, 4, 10, 0, tzinfo=TZ)
    assert type(msg.title) is str and msg.title == "\u3000路灯"
    with pytest.raises(ValidationError, match="topic: 'x' is not one of"):
        letter(topic=_Text("x")).validate()
