"""Dashboard fixtures: a small store of real-shaped messages, users, a fixed clock.

Messages are built from tests/fixtures/dashboard/messages.json (hand-written
letters and posts, some carrying HTML/script payloads) plus generated
volume so charts and trends have data.
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from govpulse.schema import TZ, CrawlEvent, Message, Source, Status, Topic, Urgency, make_id

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "dashboard"
NOW = datetime(2024, 6, 14, 15, 0, tzinfo=TZ)
XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">'
DEPARTMENTS = ("市住建局", "市人社局", "市教育局", "市交通运输局", "市生态环境局")
REGIONS = ("东城区", "西城区", "南山区")
TERMS = ("噪音扰民", "停车难", "物业费", "学位紧张", "公交线路")


def fixture_messages() -> list[Message]:
    """The hand-written messages (with XSS payloads) from the JSON fixture."""
    rows = json.loads((FIXTURES / "messages.json").read_text(encoding="utf-8"))
    out = []
    for row in rows:
        row = dict(row)
        row["id"] = make_id(row["source"], row.pop("source_id"))
        for key in ("posted_at", "replied_at"):
            if row.get(key):
                row[key] = datetime.fromisoformat(row[key])
        out.append(Message(**row).validate())
    return out


def generated_messages(n: int = 240, seed: int = 7) -> list[Message]:
    """Varied letters over the 60 days before NOW, with a burst of 噪音扰民 today."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        source = rng.choice(list(Source))
        posted = NOW - timedelta(days=rng.uniform(0.1, 60), hours=rng.randint(0, 5))
        term = rng.choice(TERMS)
        if i < 30:  # burst in the last day
            posted = NOW - timedelta(hours=rng.uniform(0.5, 20))
            term = "噪音扰民"
        answered = rng.random() < 0.6 and posted < NOW - timedelta(days=1)
        replied = posted + timedelta(days=rng.uniform(0.5, 25)) if answered else None
        if replied and replied > NOW:
            replied = NOW - timedelta(hours=1)
        m = Message(
            id=make_id(source, f"gen-{i}"),
            source=source,
            channel={"weibo": "@平安南山", "mailbox": "市长信箱", "forum": "问政论坛"}[
                source.value
            ],
            title=f"关于{rng.choice(REGIONS)}{term}问题的反映{i}",
            body=f"本人反映{term}的情况，已经持续很久，希望相关部门尽快处理。编号{i}",
            region=rng.choice(REGIONS),
            department=rng.choice(DEPARTMENTS),
            posted_at=posted,
            replied_at=replied,
            reply_body="您好，已转相关单位办理。" if replied else None,
            replier="市政府办公厅" if replied else None,
            status=Status.ANSWERED if replied else Status.OPEN,
            topic=rng.choice(list(Topic)),
            topic_score=round(rng.uniform(0.4, 0.99), 2),
            urgency=rng.choice(list(Urgency)),
            rumour_score=round(rng.uniform(0.0, 1.0), 2),
            rumour_reasons=["未经证实的说法"] if i % 3 == 0 else [],
            reposts=rng.randint(0, 500),
            comments=rng.randint(0, 200),
        )
        out.append(m.validate())
    return out


@pytest.fixture
def filled_store(sqlite_store):
    sqlite_store.upsert_many(fixture_messages() + generated_messages())
    sqlite_store.add_crawl_event(
        CrawlEvent(
            source="weibo",
            spider="weibo_comments",
            kind="finished",
            at=NOW - timedelta(hours=2),
            items=120,
            pages=12,
        )
    )
    sqlite_store.add_crawl_event(
        CrawlEvent(
            source="mailbox",
            spider="mayor_mailbox",
            kind="finished",
            at=NOW - timedelta(days=3),
            items=40,
        )
    )
    sqlite_store.add_crawl_event(
        CrawlEvent(
            source="mailbox",
            spider="mayor_mailbox",
            kind="captcha",
            at=NOW - timedelta(hours=1),
            ok=False,
            detail="验证码页面",
        )
    )
    return sqlite_store


@pytest.fixture
def dash_settings(tmp_path):
    from govpulse.settings import load

    # No background threads (warmer, stale-while-revalidate refresh): a thread
    # still reading after a test's store is closed would crash the interpreter.
    # test_cache.py turns them on where it tests them.
    return load(
        env={},
        cli={
            "data_dir": str(tmp_path / "data"),
            "dashboard.page_size": "10",
            "dashboard.warm_seconds": "0",
            "dashboard.cache_stale_seconds": "0",
        },
    )


@pytest.fixture
def dash_ctx(filled_store, dash_settings, tmp_path):
    from dashboard.context import DashContext

    return DashContext(
        settings=dash_settings,
        data_dir=tmp_path / "data",
        store_source=filled_store,
        clock=lambda: NOW,
    )


@pytest.fixture
def users(dash_ctx):
    store = dash_ctx.users()
    store.add("leader1", "leader-pass-1", "leader")
    store.add("staff1", "staff-pass-1", "staff")
    store.add("admin1", "admin-pass-1", "admin")
    return store
