"""Seeded, clock-driven content for the practice site (and tests, benchmarks, the demo).

Every calendar day of every channel has its own random stream
(``seed:channel:day``), so a day's content is the same whatever the clock,
and what is *visible* depends only on the clock: posts appear as their time
passes, letters get their reply once the reply time is reached, so a
server left running keeps producing new posts and late answers.

Realism: reply delays follow a log-normal with a median of about 11 days
for letters (a long tail, ~8 % never answered); some days carry an event
that causes a burst of related messages on every source; rumours spread
in Weibo comments and are refuted by an official post a day or two later;
a share of letters is posted again, nearly verbatim, on the forum.
"""

from __future__ import annotations

import hashlib
import math
import random
import time as _time
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from functools import lru_cache

from crawlers.sandbox import texts
from govpulse.schema import TZ

ANCHOR = date(2020, 1, 1)


def _rng(*parts: object) -> random.Random:
    digest = hashlib.blake2b(":".join(map(str, parts)).encode(), digest_size=8).digest()
    return random.Random(int.from_bytes(digest, "big"))


def _num(text: str) -> int:
    """A stable two-digit number for a name (hash() differs between processes)."""
    return int(hashlib.blake2b(text.encode(), digest_size=4).hexdigest(), 16) % 90 + 10


class Clock:
    """Sandbox time: starts at `start` and runs `speed` times faster than real time."""

    def __init__(self, start: datetime | None = None, speed: float = 1.0) -> None:
        self.start = (start or datetime.now(TZ)).astimezone(TZ)
        self.speed = speed
        self._t0 = _time.monotonic()

    def now(self) -> datetime:
        elapsed = (_time.monotonic() - self._t0) * self.speed
        return (self.start + timedelta(seconds=elapsed)).replace(microsecond=0)


@dataclass(frozen=True, slots=True)
class Channel:
    """An account, board, leader (留言板 forum) or mailbox site."""

    key: str  # e.g. "weibo:1000000001", "liuyan:101", "site:chuzhou", "forum:41"
    kind: str
    code: str  # uid / fid / site name
    name: str
    region: str
    rate: float  # messages per day


@dataclass(slots=True)
class Letter:
    """One generated citizen message (letter, thread, post or comment) and its reply."""

    id: str
    channel: str
    title: str
    body: str
    author: str
    posted_at: datetime
    topic: str
    department: str
    region: str
    category: str
    reply_at: datetime | None
    reply_body: str
    replier: str
    votes: int = 0
    extra: dict = field(default_factory=dict)

    def answered(self, now: datetime) -> bool:
        return self.reply_at is not None and self.reply_at <= now

    def state(self, now: datetime) -> str:
        if self.answered(now):
            return "已办理"
        return "办理中" if now - self.posted_at > timedelta(days=2) else "待回复"


@dataclass(slots=True)
class Comment:
    """A Weibo comment; `official_reply` is the account's inline answer, if any."""

    id: str
    post_id: str
    author: str
    author_uid: str
    body: str
    posted_at: datetime
    likes: int
    official_reply: tuple[str, datetime] | None
    replies: list[Comment] = field(default_factory=list)


@dataclass(slots=True)
class Post:
    """A government Weibo post; comments are generated on demand."""

    id: str
    account: str
    body: str
    posted_at: datetime
    comment_count: int
    long: bool
    kind: str  # notice | refutation
    rumour: int | None = None


class World:
    """All generated content.  Cheap to build; days are generated lazily and cached."""

    def __init__(self, seed: int = 42, history_days: int = 60, scale: float = 1.0) -> None:
        self.seed = seed
        self.history_days = history_days
        self.scale = scale
        r = _rng(seed, "channels")
        channels: list[Channel] = []
        names = ["平安", "发布", "交通", "环保", "城管", "12345"]
        for i, tail in enumerate(names):
            region = texts.REGIONS[i % len(texts.REGIONS)]
            channels.append(
                Channel(
                    f"weibo:{1000000001 + i}",
                    "weibo",
                    str(1000000001 + i),
                    f"{region}{tail}",
                    region,
                    1.5 * scale,
                )
            )
        leaders = ["市委书记", "市长", "县委书记", "县长"]
        for i, leader in enumerate(leaders):
            region = texts.REGIONS[(i + 3) % len(texts.REGIONS)]
            channels.append(
                Channel(
                    f"liuyan:{101 + i}",
                    "liuyan",
                    str(101 + i),
                    f"{region}{leader}",
                    region,
                    3.0 * scale,
                )
            )
        channels.append(
            Channel("site:chuzhou", "site", "chuzhou", "滁州市市长信箱", "滁州市", 4.0 * scale)
        )
        channels.append(
            Channel(
                "site:chengdu12345",
                "site",
                "chengdu12345",
                "成都市12345市长信箱",
                "成都市",
                5.0 * scale,
            )
        )
        for i, board in enumerate(["问政四川", "民生热线", "城建交通"]):
            channels.append(
                Channel(
                    f"forum:{41 + i}", "forum", str(41 + i), board, texts.REGIONS[i], 3.0 * scale
                )
            )
        r.shuffle(names)
        self.channels = {c.key: c for c in channels}

    # -- helpers -------------------------------------------------------------
    def channels_of(self, kind: str) -> list[Channel]:
        return [c for c in self.channels.values() if c.kind == kind]

    def day_range(self, now: datetime) -> range:
        today = (now.astimezone(TZ).date() - ANCHOR).days
        return range(today - self.history_days, today + 1)

    @staticmethod
    def day_start(day: int) -> datetime:
        return datetime.combine(ANCHOR + timedelta(days=day), datetime.min.time(), TZ)

    def event_of_day(self, day: int) -> int | None:
        """Index of the event (burst) happening that day, if any (about one day in eight)."""
        r = _rng(self.seed, "event", day)
        return r.randrange(len(texts.EVENTS)) if r.random() < 0.125 else None

    def rumour_of_day(self, day: int) -> int | None:
        r = _rng(self.seed, "rumour", day)
        return r.randrange(len(texts.RUMOURS)) if r.random() < 0.15 else None

    # -- people and text -------------------------------------------------------
    @staticmethod
    def person(r: random.Random) -> str:
        if r.random() < 0.5:
            return r.choice(texts.SURNAMES) + "*" * r.choice((1, 2))
        return r.choice(texts.NICK_PARTS) + r.choice(texts.NICK_TAILS) + str(r.randrange(10, 999))

    @staticmethod
    def pii(r: random.Random) -> str:
        roll = r.random()
        if roll < 0.2:
            return f"我的联系电话：1{r.choice('3578')}{r.randrange(10**8, 10**9)}。"
        if roll < 0.25:
            return f"本人身份证号{r.randrange(110000, 659999)}19{r.randrange(60, 99)}0{r.randrange(1, 9)}1{r.randrange(0, 9)}{r.randrange(100, 999)}{r.choice('0123456789X')}。"
        if roll < 0.3:
            return f"车牌号川A{r.choice('BCDEFG')}{r.randrange(1000, 9999)}。"
        if roll < 0.33:
            return f"邮箱zhang{r.randrange(10, 99)}@example.com。"
        return ""

    def letter_text(
        self, r: random.Random, region: str, event: int | None
    ) -> tuple[str, str, str, str, str]:
        """(title, body, topic, department, reply) of one letter."""
        place = r.choice(texts.PLACES)
        if event is not None and r.random() < 0.6:
            _short, title, problem, dept = texts.EVENTS[event]
            topic = "城乡建设"
            request = "尽快恢复并及时通报进展"
            title = f"{region}{place}{title}"
        else:
            topic = r.choice(list(texts.TOPICS))
            dept, items = texts.TOPICS[topic]
            t, problem, request = r.choice(items)
            title = f"关于{region}{place}{t}的问题" if r.random() < 0.5 else f"{place}{t}"
        months = r.randint(1, 11)
        body = (
            f"{r.choice(texts.OPENINGS)}我是{region}{place}的居民，{problem}。"
            f"这种情况已经持续{months}个月，多次向有关部门反映都没有结果。"
            f"希望{dept}{request}。{self.pii(r)}谢谢！"
        )
        reply = (
            f"{r.choice(texts.REPLY_OPENINGS)}您反映的“{title}”问题已收悉。"
            f"经{region}{dept}调查，{r.choice(texts.REPLY_ACTIONS)}。感谢您对我们工作的关心和支持！"
        )
        return title, body, topic, f"{region}{dept}", reply

    @staticmethod
    def delay(r: random.Random, median_days: float, never: float) -> timedelta | None:
        if r.random() < never:
            return None
        days = math.exp(r.gauss(math.log(median_days), 1.1))
        return timedelta(seconds=int(min(days, 1200) * 86400) + 600)

    # -- letters (mailbox sites, 留言板, forum threads) ---------------------------
    @lru_cache(maxsize=4096)  # noqa: B019 - the World lives as long as its cache should
    def letters_of_day(self, key: str, day: int) -> tuple[Letter, ...]:
        ch = self.channels[key]
        r = _rng(self.seed, key, day)
        event = self.event_of_day(day)
        rate = ch.rate * (3.0 if event is not None else 1.0)
        n = max(0, int(r.gauss(rate, math.sqrt(rate)) + 0.5))
        out = []
        median = 3.0 if ch.kind == "forum" else 11.0
        for i in range(n):
            title, body, topic, dept, reply = self.letter_text(r, ch.region, event)
            posted = self.day_start(day) + timedelta(seconds=r.randrange(7 * 3600, 23 * 3600))
            d = self.delay(r, median, 0.08)
            category = r.choice(["投诉", "求助", "咨询", "建言"])
            out.append(
                Letter(
                    id=f"{ch.code[-3:]}{day:05d}{i:03d}"
                    if ch.kind != "site"
                    else f"{_num(ch.code)}{day:05d}{i:03d}",
                    channel=key,
                    title=title,
                    body=body,
                    author=self.person(r),
                    posted_at=posted,
                    topic=topic,
                    department=dept,
                    region=ch.region,
                    category=category,
                    reply_at=posted + d if d else None,
                    reply_body=reply,
                    replier=dept,
                    votes=int(r.paretovariate(1.5)) - 1,
                )
            )
        if ch.kind == "forum":
            out.extend(self._cross_posts(key, day, len(out)))
        out.sort(key=lambda x: (x.posted_at, x.id))
        return tuple(out)

    def _cross_posts(self, key: str, day: int, start: int) -> list[Letter]:
        """Letters of the mailbox sites re-posted (near-verbatim) on a forum board."""
        out = []
        for site in self.channels_of("site"):
            for letter in self.letters_of_day(site.key, day):
                r = _rng(self.seed, "dup", letter.id)
                if (
                    r.random() < 0.1
                    and int(letter.id) % len(self.channels_of("forum"))
                    == int(key.split(":")[1]) % 3
                ):
                    out.append(
                        Letter(
                            id=f"{key[-2:]}{day:05d}{start + len(out):03d}",
                            channel=key,
                            title=letter.title,
                            body=letter.body + "（已向市长信箱反映，再发一次希望引起重视）",
                            author=letter.author,
                            posted_at=letter.posted_at + timedelta(hours=r.randint(1, 20)),
                            topic=letter.topic,
                            department=letter.department,
                            region=letter.region,
                            category=letter.category,
                            reply_at=None,
                            reply_body="",
                            replier="",
                            extra={"copy_of": letter.id},
                        )
                    )
        return out

    def letters(self, key: str, now: datetime) -> list[Letter]:
        """Visible letters of a channel, newest first."""
        out: list[Letter] = []
        for day in reversed(self.day_range(now)):
            out.extend(x for x in reversed(self.letters_of_day(key, day)) if x.posted_at <= now)
        return out

    def letter(self, key: str, letter_id: str) -> Letter | None:
        try:
            day = int(letter_id[-8:-3])
        except ValueError:
            return None
        for x in self.letters_of_day(key, day):
            if x.id == letter_id:
                return x
        return None

    # -- Weibo -------------------------------------------------------------------
    @lru_cache(maxsize=4096)  # noqa: B019
    def posts_of_day(self, key: str, day: int) -> tuple[Post, ...]:
        ch = self.channels[key]
        r = _rng(self.seed, key, "posts", day)
        out = []
        n = max(1, int(r.gauss(ch.rate, 1) + 0.5))
        for i in range(n):
            topic = r.choice(list(texts.TOPICS))
            body = r.choice(texts.WEIBO_NOTICES).format(
                region=ch.region,
                place=r.choice(texts.PLACES),
                dept=texts.TOPICS[topic][0],
                topic=topic,
            )
            long = r.random() < 0.2
            if long:
                body += "具体安排如下：" + "".join(
                    f"{k + 1}. {r.choice(texts.REPLY_ACTIONS)}；" for k in range(8)
                )
            count = int(r.paretovariate(0.9) * 4 * self.scale)
            posted = self.day_start(day) + timedelta(seconds=r.randrange(8 * 3600, 22 * 3600))
            out.append(
                Post(
                    f"49{ch.code[-2:]}{day:05d}{i:03d}000",
                    key,
                    body,
                    posted,
                    min(count, 1500),
                    long,
                    "notice",
                )
            )
        for prev in (1, 2):  # refute a rumour that spread one or two days ago
            rumour = self.rumour_of_day(day - prev)
            if rumour is not None and _rng(self.seed, key, "refute", day).random() < 0.5:
                claim, fact = texts.RUMOURS[rumour]
                posted = self.day_start(day) + timedelta(hours=10 + prev)
                body = f"【辟谣】近日网传“{claim}”。经核实，{fact}。请广大网友不信谣、不传谣。"
                out.append(
                    Post(
                        f"49{ch.code[-2:]}{day:05d}9{prev}0000",
                        key,
                        body,
                        posted,
                        8,
                        False,
                        "refutation",
                        rumour,
                    )
                )
                break
        out.sort(key=lambda p: (p.posted_at, p.id))
        return tuple(out)

    def posts(self, key: str, now: datetime) -> list[Post]:
        out: list[Post] = []
        for day in reversed(self.day_range(now)):
            out.extend(p for p in reversed(self.posts_of_day(key, day)) if p.posted_at <= now)
        return out

    def post(self, mid: str) -> Post | None:
        for ch in self.channels_of("weibo"):
            if mid.startswith(f"49{ch.code[-2:]}"):
                try:
                    day = int(mid[4:9])
                except ValueError:
                    return None
                return next((p for p in self.posts_of_day(ch.key, day) if p.id == mid), None)
        return None

    @lru_cache(maxsize=512)  # noqa: B019
    def comments_of(self, mid: str) -> tuple[Comment, ...]:
        post = self.post(mid)
        if post is None:
            return ()
        r = _rng(self.seed, "comments", mid)
        day = (post.posted_at.date() - ANCHOR).days
        rumour = self.rumour_of_day(day)
        event = self.event_of_day(day)
        out = []
        for i in range(post.comment_count):
            posted = post.posted_at + timedelta(seconds=int(r.expovariate(1 / 7200)) + 30)
            if rumour is not None and post.kind == "notice" and r.random() < 0.15:
                body = f"网传{texts.RUMOURS[rumour][0]}，是真的吗？朋友圈都在转，大家赶紧转发扩散！"
            elif event is not None and r.random() < 0.4:
                body = f"{r.choice(texts.PLACES)}{texts.EVENTS[event][1]}了，{texts.EVENTS[event][2]}，有人管吗？"
            else:
                topic = r.choice(list(texts.TOPICS))
                _t, problem, request = r.choice(texts.TOPICS[topic][1])
                body = f"{r.choice(texts.PLACES)}{problem}，希望{request}。{self.pii(r)}"
            d = self.delay(r, 1.0, 0.5)
            answer = None
            if d is not None:
                answer = (
                    f"您好，您反映的情况已转交{texts.TOPICS[r.choice(list(texts.TOPICS))][0]}核实处理，请保持电话畅通。",
                    posted + d,
                )
            c = Comment(
                f"{mid[:-3]}{i + 1:06d}"[-16:].rjust(16, "5"),
                mid,
                self.person(r),
                str(2000000000 + r.randrange(10**6)),
                body,
                posted,
                int(r.paretovariate(1.2)) - 1,
                answer,
            )
            for k in range(r.choice((0, 0, 0, 1, 2, 4))):
                c.replies.append(
                    Comment(
                        f"{c.id}{k}",
                        mid,
                        self.person(r),
                        str(2000000000 + r.randrange(10**6)),
                        r.choice(["同样的问题", "顶一下", "我们小区也是这样", "希望尽快解决"]),
                        posted + timedelta(minutes=5 + k),
                        0,
                        None,
                    )
                )
            out.append(c)
        out.sort(key=lambda c: (c.posted_at, c.id), reverse=True)
        return tuple(out)
