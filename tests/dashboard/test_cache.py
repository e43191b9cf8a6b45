"""The speed machinery must not change what the dashboard shows.

TermIndex (kept per-day terms) must equal `rising_terms` for any filter,
also after messages arrive; the shared result cache must be shared
between contexts (worker processes), follow store writes, and serve a
stale view only while recomputing it.
"""

from __future__ import annotations

import time
from datetime import timedelta

import pytest

from dashboard.cache import STALE_MIN_COST_S
from dashboard.context import DashContext
from govpulse.schema import Message, Topic, make_id
from govpulse.term_index import TermIndex
from govpulse.trends import rising_terms
from store.base import Filters

from .conftest import NOW


def _facts(trends):
    return [
        (
            t.term,
            t.count,
            t.baseline_mean,
            t.score,
            t.sparkline,
            t.sources,
            t.sample_ids,
            t.baseline_std,
            t.rising,
            t.window_ids,
        )
        for t in trends
    ]


FILTERS = [
    None,
    Filters(),
    Filters(source=("weibo",)),
    Filters(region=("南山区", "东城区"), include_duplicates=False),
    Filters(topic=tuple(t.value for t in Topic)[:4], min_rumour=0.3),
    Filters(department=("市住建局",), status=("open",)),
]


@pytest.mark.parametrize("hours", [24, 72])
@pytest.mark.parametrize("filters", FILTERS)
def test_term_index_equals_rising_terms(filled_store, tmp_path, hours, filters):
    index = TermIndex(tmp_path / "c.db", namespace="t")
    args = {
        "window": timedelta(hours=hours),
        "baseline": timedelta(days=max(7, hours * 7 // 24)),
        "limit": 0,
        "filters": filters,
        "min_count": 1,
    }
    expected = _facts(rising_terms(filled_store, NOW, **args))
    assert expected, "the fixture must have trends to compare"
    assert _facts(index.rising(filled_store, NOW, **args)) == expected
    # A second index on the same file (another worker process) reads the kept days.
    other = TermIndex(tmp_path / "c.db", namespace="t")
    assert _facts(other.rising(filled_store, NOW, **args)) == expected
    assert other.builds == 0


def test_term_index_follows_new_and_late_messages(filled_store, tmp_path):
    index = TermIndex(tmp_path / "c.db", namespace="t")
    index.rising(filled_store, NOW)
    built = index.builds
    assert index.rising(filled_store, NOW, marker="same") == index.rising(
        filled_store, NOW, marker="same"
    )
    assert index.builds == built  # nothing re-read while nothing changed
    late = [
        Message(
            id=make_id("weibo", f"late-{i}"),
            source="weibo",
            channel="@平安南山",
            body=f"东城区地铁站扶梯故障，乘客被困{i}",
            posted_at=NOW - timedelta(hours=h),
        ).validate()
        for i, h in enumerate([2, 3, 4, 5, 6, 7, 50, 75])
    ]
    filled_store.upsert_many(late)
    got = index.rising(filled_store, NOW, limit=0, marker="changed")
    # Only the days that gained messages were re-read.
    assert 1 <= index.builds - built <= 3
    assert _facts(got) == _facts(rising_terms(filled_store, NOW, limit=0))
    assert "扶梯" in {t.term for t in got}


def test_term_index_falls_back_for_id_filters(filled_store, tmp_path):
    ids = tuple(m.id for m in filled_store.search(per_page=50).hits)
    index = TermIndex(None)
    f = Filters(ids=ids)
    assert _facts(index.rising(filled_store, NOW, filters=f, min_count=1)) == _facts(
        rising_terms(filled_store, NOW, filters=f, min_count=1)
    )


def _ctx(settings, data_dir, store, **overrides):
    if overrides:
        settings = settings.with_overrides({k: str(v) for k, v in overrides.items()})
    return DashContext(settings=settings, data_dir=data_dir, store_source=store, clock=lambda: NOW)


def test_shared_cache_is_shared_and_follows_writes(filled_store, dash_settings, tmp_path):
    calls = []

    def compute():
        calls.append(1)
        return filled_store.count()

    a = _ctx(dash_settings, tmp_path / "data", filled_store, **{"dashboard.cache_stale_seconds": 0})
    b = _ctx(dash_settings, tmp_path / "data", filled_store, **{"dashboard.cache_stale_seconds": 0})
    first = a.cached(("n",), compute)
    assert b.cached(("n",), compute) == first and len(calls) == 1  # the other "worker" reuses it
    filled_store.upsert_many(
        [
            Message(
                id=make_id("forum", "new-1"), source="forum", channel="问政论坛", body="新帖子"
            ).validate()
        ]
    )
    assert b.cached(("n",), compute) == first + 1 and len(calls) == 2  # a write invalidates
    assert a.cached(("n",), compute) == first + 1 and len(calls) == 2


def test_stale_view_is_served_while_recomputed(filled_store, dash_settings, tmp_path):
    ctx = _ctx(
        dash_settings, tmp_path / "data", filled_store, **{"dashboard.cache_stale_seconds": 600}
    )
    values = iter([1, 2])

    def slow(value):  # only a view that is slow to compute is worth serving stale
        time.sleep(STALE_MIN_COST_S)
        return value

    assert ctx.cached(("v",), lambda: slow(next(values))) == 1
    filled_store.upsert_many(
        [
            Message(
                id=make_id("forum", "new-2"), source="forum", channel="问政论坛", body="又一帖"
            ).validate()
        ]
    )
    assert ctx.cached(("v",), lambda: slow(next(values))) == 1  # stale, refresh started
    deadline = time.monotonic() + 30
    while ctx.cached(("v",), lambda: 2) != 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert ctx.cached(("v",), lambda: 3) == 2  # refreshed, and now fresh
    with ctx.fresh():  # the warmer never serves stale
        filled_store.upsert_many(
            [
                Message(
                    id=make_id("forum", "new-3"), source="forum", channel="问政论坛", body="第三帖"
                ).validate()
            ]
        )
        assert ctx.cached(("v",), lambda: 4) == 4


def test_cheap_view_is_recomputed_not_served_stale(filled_store, dash_settings, tmp_path):
    """A view computed on a nearly empty store is cheap: after a write it is never shown stale."""
    ctx = _ctx(
        dash_settings, tmp_path / "data", filled_store, **{"dashboard.cache_stale_seconds": 600}
    )
    assert ctx.cached(("cheap",), lambda: "before") == "before"
    filled_store.upsert_many(
        [Message(id=make_id("forum", "new-4"), source="forum", channel="问政论坛", body="帖")]
    )
    assert ctx.cached(("cheap",), lambda: "after") == "after"


CALLS: list = []


def _count_calls(store, filters):
    CALLS.append(filters)
    return store.count(filters=filters)


def test_filter_order_does_not_split_the_cache(dash_ctx):
    CALLS.clear()
    a = dash_ctx.query(_count_calls, Filters(source=("weibo", "forum")))
    b = dash_ctx.query(_count_calls, Filters(source=("forum", "weibo")))
    assert a == b and len(CALLS) == 1


def test_warm_defaults_fills_the_cache(dash_ctx):
    from dashboard.pages import hot
    from dashboard.warm import warm_defaults
    from store.base import Filters as F

    with dash_ctx.fresh():
        warm_defaults(dash_ctx)
    built = dash_ctx.terms().builds
    assert built > 0
    # The default rising terms now come from the cache: no day is re-read.
    assert not hot.rising(dash_ctx, F()).empty
    assert dash_ctx.terms().builds == built


def test_days_are_re_read_for_age_only_by_refresh(filled_store, tmp_path):
    index = TermIndex(tmp_path / "c.db", namespace="t", age_in_queries=False)
    first = _facts(index.rising(filled_store, NOW, limit=0))
    built = index.builds
    for entry in index._days.values():
        entry.built -= 7200  # every kept day is now two hours old
    assert _facts(index.rising(filled_store, NOW, limit=0)) == first
    assert index.builds == built  # a query does not pay for re-reading old days
    start = NOW.date() - timedelta(days=8)
    # The warming process (its file copies are as old as the ones above).
    warmer = TermIndex(tmp_path / "c.db", namespace="t", max_age=timedelta(0))
    assert warmer.refresh(filled_store, start, NOW.date()) == 9
    assert _facts(index.rising(filled_store, NOW, limit=0)) == first
    # This process picked up the re-read days from the shared file.
    assert all(e.built > time.time() - 60 for e in index._days.values())
    assert index.builds == built
