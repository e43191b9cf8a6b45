"""Query, figure and callback-body tests on a small real store (no browser)."""

from __future__ import annotations

import base64
import csv
import dataclasses
import io
from datetime import timedelta
from types import SimpleNamespace

import numpy as np
import pytest

from dashboard import export, figures, queries
from dashboard.pages import alerts, detail, hot, overview, rumours, search, timeliness
from dashboard.pages.labels import LabelRefused, save_label
from dashboard.urlstate import UrlStateError, ViewState, from_controls, parse
from govpulse.schema import Status
from store.base import Filters

from .conftest import NOW, XSS, fixture_messages

STAFF = SimpleNamespace(
    username="staff1", role="staff", is_authenticated=True, can_label=True, can_silence=True
)
LEADER = SimpleNamespace(
    username="leader1", role="leader", is_authenticated=True, can_label=False, can_silence=False
)


def test_url_state_round_trip_and_errors():
    view = parse(
        "?q=噪音&source=weibo,mailbox&since=2024-06-01&until=2024-06-14&page=3&sort=-posted_at&group=replier"
    )
    assert (
        view.lists["source"] == ("weibo", "mailbox")
        and view.page == 3
        and view.get("group") == "replier"
    )
    assert parse(view.to_query()) == view
    f = view.filters()
    assert f.source == ("weibo", "mailbox")
    assert f.until - f.since == timedelta(days=14)  # until is inclusive in the UI
    for bad in (
        "?since=yesterday",
        "?sort=drop table",
        "?page=x",
        "?since=2024-06-02&until=2024-06-01",
    ):
        with pytest.raises(UrlStateError):
            parse(bad)
    assert parse("?unknown=1&q=").to_query() == ""
    assert (
        from_controls(q=" 停车 ", source=["forum"], since=None).to_query()
        == "?q=%E5%81%9C%E8%BD%A6&source=forum"
    )


def _array(value):
    """A figure dict's array: plain list, or plotly's base64 typed array."""
    if isinstance(value, dict):
        return np.frombuffer(base64.b64decode(value["bdata"]), dtype=value["dtype"])
    return np.asarray(value)


def test_overview_counts_match_the_store(dash_ctx, filled_store):
    out = overview.render(dash_ctx, ViewState())
    start = NOW.replace(hour=0, minute=0, second=0)
    today = [
        m
        for m in filled_store.iter_messages(
            filters=Filters(since=start, until=start + timedelta(days=1))
        )
    ]
    assert out[1] == str(len(today))
    assert out[2] == str(sum(1 for m in today if m.urgency in ("特急", "紧急")))
    assert out[3] == str(sum(1 for m in today if (m.rumour_score or 0) >= 0.5))
    assert out[4] == str(filled_store.count(filters=Filters(status=("open",))))
    by_source = out[5]  # a figure dict, cached with its query (arrays as plotly's typed arrays)
    assert sum(int(_array(t["y"]).sum()) for t in by_source["data"]) == filled_store.count()
    assert "噪音扰民" in str(overview.render_terms(dash_ctx, ViewState()))
    crawl = str(out[8])
    assert "captcha: 验证码页面" in crawl and "需处理" in crawl


def test_status_counts_same_with_and_without_dates(filled_store):
    since = NOW - timedelta(days=20)
    for source in ((), ("weibo",), ("mailbox", "forum")):
        bounded = Filters(source=source, since=since, until=NOW + timedelta(days=1))
        expected = {
            s.value: filled_store.count(filters=dataclasses.replace(bounded, status=(s.value,)))
            for s in Status
        }
        assert queries.status_counts(filled_store, bounded) == expected
        unbounded = Filters(source=source)
        assert queries.status_counts(filled_store, unbounded) == {
            s.value: filled_store.count(filters=Filters(source=source, status=(s.value,)))
            for s in Status
        }


def test_crawl_health_flags_problems_and_stale_sources(filled_store):
    df = queries.crawl_health(filled_store, NOW)
    rows = {r.spider: r for r in df.itertuples()}
    assert rows["mayor_mailbox"].warning and rows["mayor_mailbox"].last_problem.startswith(
        "captcha"
    )
    assert not rows["weibo_comments"].warning
    later = queries.crawl_health(filled_store, NOW + timedelta(days=2))
    assert later["warning"].all()  # no successful crawl for two days


def test_timeliness_keeps_open_letters_and_sorts_server_side(dash_ctx, filled_store):
    df = queries.timeliness(filled_store, Filters(), dash_ctx.sla(), NOW)
    assert df["letters"].sum() == filled_store.count()
    assert df["open"].sum() == filled_store.count(filters=Filters(status=("open",)))
    page, pages = queries.sort_and_page(df, [{"column_id": "overdue", "direction": "desc"}], 0, 3)
    assert len(page) == 3 and pages == -(-len(df) // 3)
    assert list(page["overdue"]) == sorted(df["overdue"], reverse=True)[:3]
    data, count = timeliness.render_table(
        dash_ctx, ViewState(), 1, [{"column_id": "group", "direction": "asc"}]
    )
    assert count == 1 and data  # 6 groups, page size 10 -> one page; page index clamps
    calendar = queries.timeliness(filled_store, Filters(), dash_ctx.sla(working_days=False), NOW)
    assert (calendar["median_delay"].fillna(0) >= df["median_delay"].fillna(0) - 1e-9).all()


def test_timeliness_charts_survival_and_overdue(dash_ctx, filled_store):
    _search_str, note, ranking, _surv, trend = timeliness.render_charts(dash_ctx, ViewState())
    assert "15个工作日" in note and ranking.data and trend["data"]
    curve = queries.survival(filled_store, Filters(), dash_ctx.sla(), NOW)
    assert curve["days"].iloc[0] == 0 and curve["unanswered"].is_monotonic_decreasing
    assert curve["unanswered"].iloc[-1] > 0  # open letters are censored, so the curve never hits 0
    box = timeliness.render_overdue(dash_ctx, ViewState(), "市住建局")
    expected = len(
        filled_store.overdue(filters=Filters(department=("市住建局",)), sla=dash_ctx.sla(), now=NOW)
    )
    assert f"超期未答复来信 {expected} 件" in str(box)


def test_answer_trend_counts_answered_and_closed(filled_store):
    df = queries.answer_trend(filled_store, Filters())
    assert df["letters"].sum() == filled_store.count()
    assert df["answered"].sum() == filled_store.count(
        filters=Filters(status=("answered", "closed"))
    )


def test_hot_page_shows_the_burst(dash_ctx):
    _, fig, clusters = hot.render(dash_ctx, ViewState())
    assert fig.data[0].name == "噪音扰民" and fig.data[0].y[-1] == 30
    assert "噪音扰民" in str(clusters) and "/message?id=" in str(clusters)
    quiet = hot.render(dash_ctx, from_controls(source=["weibo"], region=["不存在区"]))
    assert "没有明显上升" in str(quiet[2])


def test_rumours_ranked_with_reviews_and_reply_state(dash_ctx, filled_store):
    _, rows, pages, _fig = rumours.render(dash_ctx, ViewState(), 0, None)
    scores = [r["rumour_score"] for r in rows]
    assert scores == sorted(scores, reverse=True) and min(scores) >= 0.5
    assert pages == -(-filled_store.count(filters=Filters(min_rumour=0.5)) // 10)
    target = rows[0]["id"]
    save_label(filled_store, target, "rumour", "false_alarm", NOW, user=STAFF)
    _, rows, _, _ = rumours.render(dash_ctx, ViewState(), 0, None)
    assert rows[0]["review"] == "误报"
    _, by_spread, _, _ = rumours.render(
        dash_ctx, ViewState(), 0, [{"column_id": "spread", "direction": "desc"}]
    )
    assert by_spread[0]["title"].startswith("听说明天全市停水")  # 1200 reposts


def test_labels_respect_roles_and_values(filled_store):
    mid = fixture_messages()[0].id
    with pytest.raises(LabelRefused):
        save_label(filled_store, mid, "topic", "教育文体", NOW, user=LEADER)
    with pytest.raises(LabelRefused):
        save_label(filled_store, mid, "topic", "<b>not a topic</b>", NOW, user=STAFF)
    with pytest.raises(LabelRefused):
        save_label(filled_store, "nope", "topic", "教育文体", NOW, user=STAFF)
    assert filled_store.labels(message_id=mid) == []
    save_label(filled_store, mid, "topic", "教育文体", NOW, note="不是施工问题", user=STAFF)
    (label,) = filled_store.labels(message_id=mid)
    assert (label.task, label.value, label.user) == ("topic", "教育文体", "staff1")


def test_detail_corrections_and_timeline(dash_ctx, filled_store):
    m = fixture_messages()[0]
    out = detail.save_corrections(dash_ctx, m.id, "城乡建设", "特急", "reviewed", "", user=STAFF)
    assert "urgency=特急" in str(out) and "topic" not in str(out)  # unchanged topic not re-labelled
    refused = detail.save_corrections(dash_ctx, m.id, "教育文体", None, None, "", user=LEADER)
    assert "只读" in str(refused)
    page = detail.layout(dash_ctx, parse(f"?id={m.id}"))
    text = str(page)
    assert "staff1 标注 urgency = 特急" in text and "夜间施工" in text
    assert "找不到这条消息" in str(detail.layout(dash_ctx, parse("?id=missing")))


def test_detail_renders_payloads_as_text(dash_ctx):
    from dash import html

    m = fixture_messages()[1]  # url is javascript:alert(1)
    page = detail.layout(dash_ctx, parse(f"?id={m.id}"))
    anchors = [c for c in _walk(page) if isinstance(c, html.A)]
    assert all(a.href.startswith("http") for a in anchors)
    xss_page = detail.layout(dash_ctx, parse(f"?id={fixture_messages()[0].id}"))
    bodies = [c for c in _walk(xss_page) if getattr(c, "id", None) == "detail-body"]
    assert bodies[0].children.endswith(XSS)  # a plain string child: React renders it as text


def test_search_pages_highlights_and_export_links(dash_ctx, filled_store):
    view = parse("?q=噪音扰民&source=weibo")
    _url, summary, hits, _pageinfo, prev_off, next_off, _xlsx, csv_link = search.render(
        dash_ctx, view
    )
    total = filled_store.count("噪音扰民", Filters(source=("weibo",)))
    assert summary.startswith(f"共 {total} 条") and prev_off and not next_off
    assert "Mark('噪音扰民')" in str(hits)
    assert csv_link == "/export.csv?q=%E5%99%AA%E9%9F%B3%E6%89%B0%E6%B0%91&source=weibo"
    last = search.render(dash_ctx, view.with_(page=-(-total // 10)))
    assert last[5] is True and last[4] is False
    empty = search.render(dash_ctx, parse("?q=完全不存在的词语组合"))
    assert "没有找到" in str(empty[2])


def test_search_with_a_capped_total_says_at_least_and_keeps_paging(dash_ctx, monkeypatch):
    real = dash_ctx.store().search

    def capped(*args, **kwargs):
        result = real(*args, **kwargs)
        result.total, result.total_relation = 12, "gte"
        return result

    monkeypatch.setattr(dash_ctx.store(), "search", capped)
    out = search.render(dash_ctx, parse("?q=噪音扰民&page=2"))
    assert out[1].startswith("超过 12 条") and "第 2 / 2+ 页" in out[3]
    assert out[5] is False  # more pages may follow a lower bound


def test_export_csv_and_xlsx_are_complete_and_formula_safe(filled_store):
    rows = list(queries.iter_export_rows(filled_store, "", Filters(), 10_000))
    assert len(rows) == filled_store.count()
    text = "".join(export.csv_chunks(iter(rows)))
    assert text.startswith("\ufeff")
    parsed = list(csv.reader(io.StringIO(text.lstrip("\ufeff"))))
    assert len(parsed) == len(rows) + 1 and parsed[0][3] == "标题"
    titles = [r[3] for r in parsed[1:]]
    assert any(t.startswith("'=HYPERLINK") for t in titles)  # formula neutralised
    assert any(XSS in r[4] for r in parsed[1:])  # payload kept verbatim as data
    from openpyxl import load_workbook

    sheet = load_workbook(io.BytesIO(export.xlsx_bytes(iter(rows))), read_only=True).active
    values = list(sheet.iter_rows(values_only=True))
    assert len(values) == len(rows) + 1
    assert all(not (isinstance(v, str) and v.startswith("=")) for row in values for v in row)
    capped = list(queries.iter_export_rows(filled_store, "", Filters(), 5))
    assert len(capped) == 5


def test_alerts_page_empty_then_silences(dash_ctx):
    assert "暂无记录" in str(alerts.render_log(dash_ctx))
    assert not (dash_ctx.data_dir / "alerts.db").exists()  # viewing does not create it
    refused = alerts.add_silence(dash_ctx, "rule=hot_terms", "4", "", user=LEADER)
    assert "只有值班人员" in str(refused)
    bad = alerts.add_silence(dash_ctx, "rule", "4", "", user=STAFF)
    assert "标签=值" in str(bad)
    ok = alerts.add_silence(dash_ctx, "rule=hot_terms，source=weibo", "4", "演练", user=STAFF)
    sid = str(ok).split("已添加静默 ")[1].split("'")[0]
    log = str(alerts.render_log(dash_ctx))
    assert "rule=hot_terms, source=weibo" in log and "staff1" in log
    assert "已结束静默" in str(alerts.expire_silence(dash_ctx, sid, user=STAFF))
    assert "rule=hot_terms" not in str(alerts.render_log(dash_ctx))
    assert "gp-error" in str(alerts.expire_silence(dash_ctx, "nope", user=STAFF))


def test_figures_have_empty_states():
    import pandas as pd

    for fig in (
        figures.volume(pd.DataFrame(columns=["bucket", "key", "count"]), "t"),
        figures.status_donut({s.value: 0 for s in Status}),
        figures.survival(pd.DataFrame(columns=["days", "unanswered"]), 15, "天"),
        figures.sparklines(pd.DataFrame()),
    ):
        assert not fig.data and fig.layout.annotations[0].text == "暂无数据"


def test_store_errors_become_messages(dash_ctx, monkeypatch):
    from store.base import StoreUnavailable

    def down(*args, **kwargs):
        raise StoreUnavailable("database is locked")

    monkeypatch.setattr(dash_ctx.store(), "search", down)
    out = search.render(dash_ctx, parse("?q=噪音"))
    assert "检索失败" in str(out[2]) and "locked" in str(out[2])


def _walk(component):
    yield component
    children = getattr(component, "children", None)
    if isinstance(children, list | tuple):
        for child in children:
            yield from _walk(child)
    elif children is not None and not isinstance(children, str | int | float):
        yield from _walk(children)


def test_detail_links_duplicate_to_its_original(dash_ctx, filled_store):
    import dataclasses

    original, copy = fixture_messages()[0], fixture_messages()[3]
    filled_store.upsert(dataclasses.replace(copy, duplicate_of=original.id))
    text = str(detail.layout(dash_ctx, parse(f"?id={copy.id}")))
    assert "重复于（领导信箱）" in text and f"/message?id={original.id}" in text


def test_timeliness_by_channel_and_its_overdue_list(dash_ctx, filled_store):
    view = parse("?group=channel")
    data, _ = timeliness.render_table(dash_ctx, view, 0, None)
    assert {r["group"] for r in data} == {"市长信箱", "问政论坛", "@平安南山"}
    box = str(timeliness.render_overdue(dash_ctx, view, "市长信箱"))
    expected = len(
        filled_store.overdue(filters=Filters(channel=("市长信箱",)), sla=dash_ctx.sla(), now=NOW)
    )
    assert f"超期未答复来信 {expected} 件" in box
    assert "没有超期明细" in str(
        timeliness.render_overdue(dash_ctx, parse("?group=replier"), "市人社局")
    )
