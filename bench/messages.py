"""Realistic synthetic messages for benchmarks (no shared data needed).

Letters are assembled from clauses of the kind citizens write (a place, a
problem, how long it has lasted, what they ask), Weibo comments are short,
reply delays follow a long-tailed distribution with some letters never
answered — the shapes the real mailbox data shows.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import datetime, timedelta

from govpulse.schema import TZ, Message, make_id

PLACES = [
    "A市A1区",
    "A市A3区",
    "B县城关镇",
    "C区星城街道",
    "D市高新区",
    "E县河西村",
    "F区幸福里小区",
]
PROBLEMS = [
    ("小区供暖温度不达标，家里只有十三度", "城乡建设", "住建局"),
    ("物业公司乱收停车费", "城乡建设", "住建局"),
    ("工地夜间施工噪音扰民", "环境保护", "生态环境局"),
    ("企业拖欠农民工工资三个月", "劳动和社会保障", "人社局"),
    ("社保卡补办手续繁琐", "劳动和社会保障", "人社局"),
    ("学校周边交通拥堵存在安全隐患", "交通运输", "交通局"),
    ("公交线路调整后出行不便", "交通运输", "交通局"),
    ("幼儿园收费不合理", "教育文体", "教育局"),
    ("医院挂号难排队时间长", "卫生计生", "卫健委"),
    ("农贸市场商户占道经营", "商贸旅游", "市场监管局"),
    ("河道污水直排气味难闻", "环境保护", "生态环境局"),
    ("天然气每天晚上停气无法做饭", "城乡建设", "住建局"),
]
DURATIONS = ["已经一个多月", "从去年冬天开始", "反映多次无果", "至今没有解决", "多次拨打12345热线"]
ASKS = ["希望相关部门尽快处理", "请领导督促解决", "恳请给予答复", "希望能够加强监管", "请尽快核查"]
#: Full-text queries the benchmarks time: 2–4 character words and two-word ANDs.
QUERIES = [
    "供暖",
    "工资",
    "噪音",
    "交通拥堵",
    "公积金",
    "社保卡",
    "物业 停车费",
    "天然气 停气",
    "幼儿园",
    "污水",
]
COMMENTS = [
    "支持",
    "什么时候能解决",
    "我们小区也是这样",
    "转发扩散",
    "谢谢回复",
    "已经反映过很多次了",
]


def generate(n: int, seed: int = 1, start: datetime | None = None) -> Iterator[Message]:
    """Yield n messages: 60% letters, 25% forum threads, 15% Weibo comments."""
    rng = random.Random(seed)
    start = start or datetime(2023, 1, 1, tzinfo=TZ)
    span = 730 * 86400
    for i in range(n):
        r = rng.random()
        source = "mailbox" if r < 0.6 else "forum" if r < 0.85 else "weibo"
        problem, topic, dept = rng.choice(PROBLEMS)
        place = rng.choice(PLACES)
        posted = start + timedelta(seconds=rng.randrange(span))
        if source == "weibo":
            title = ""
            body = f"{rng.choice(COMMENTS)}，{place}{problem}"
        else:
            title = f"{place}{problem[:10]}"
            body = (
                "，".join(
                    [
                        f"{place}{problem}",
                        rng.choice(DURATIONS),
                        rng.choice(ASKS),
                        rng.choice(DURATIONS),
                    ]
                )
                + "。"
                + "".join(rng.choice(PROBLEMS)[0] + "。" for _ in range(rng.randint(1, 4)))
            )
        answered = rng.random() < 0.8
        replied = posted + timedelta(days=rng.lognormvariate(2.4, 0.9)) if answered else None
        yield Message(
            id=make_id(source, f"bench{seed}-{i}"),
            source=source,
            channel=f"{source}-{i % 40}",
            title=title,
            body=body,
            region=place[:2],
            department=dept if rng.random() < 0.9 else rng.choice(["发改委", "公安局", "民政局"]),
            posted_at=posted,
            replied_at=replied,
            reply_body="网友您好，您反映的问题已转相关部门办理。" if answered else None,
            status="answered" if answered else "open",
            topic=topic,
            likes=rng.randint(0, 200),
            reposts=rng.randint(0, 50),
        )
