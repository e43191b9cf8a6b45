"""Figure functions: table (DataFrame) -> Plotly figure.  Pure, no store access.

Every figure has a Chinese title and an explicit empty state, so a page
with no data says so instead of showing blank axes.
"""

from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import plotly.io as pio

FONT = '"Noto Sans CJK SC", "Source Han Sans SC", "Microsoft YaHei", sans-serif'
SOURCE_NAMES = {"weibo": "微博", "mailbox": "领导信箱", "forum": "论坛"}
STATUS_NAMES = {"open": "待回复", "answered": "已回复", "closed": "已办结"}


# The white template as the process default rather than ``template=`` per
# figure: plotly applies its default template from an already validated copy
# (~0.5 ms), while naming a template validates and deep-copies it again
# (~15-20 ms a figure).  Only the dashboard draws Plotly figures in its process.
pio.templates.default = "plotly_white"
_LAYOUT = {
    "font": {"family": FONT, "size": 12},
    "margin": {"l": 50, "r": 20, "t": 45, "b": 40},
    "legend": {"orientation": "h", "y": -0.2},
}


def _base(title: str, height: int = 320, data: list | None = None, **layout: object) -> go.Figure:
    """A figure built in one constructor call.

    Why: ``update_layout`` / ``update_xaxes`` / ``add_trace`` each run
    Plotly's property-update machinery (~2-7 ms apiece), which made drawing
    cost more than the cached query behind a chart; one constructor call
    with plain dicts validates once (~1 ms).
    """
    return go.Figure(
        data=data or [],
        layout={
            **_LAYOUT,
            "title": {"text": title, "x": 0.01, "font": {"size": 15}},
            "height": height,
            **layout,
        },
    )


def empty(title: str, note: str = "暂无数据", height: int = 320) -> go.Figure:
    return _base(
        title,
        height,
        annotations=[
            {
                "text": note,
                "showarrow": False,
                "x": 0.5,
                "y": 0.5,
                "xref": "paper",
                "yref": "paper",
                "font": {"size": 14, "color": "#888"},
            }
        ],
        xaxis={"visible": False},
        yaxis={"visible": False},
    )


def volume(df: pd.DataFrame, title: str, names: dict[str, str] | None = None) -> go.Figure:
    """Stacked bars of counts per bucket, one trace per key."""
    if df.empty:
        return empty(title)
    names = names or {}
    totals = df.groupby("key")["count"].sum().sort_values(ascending=False)
    data = []
    for key in totals.index:
        part = df[df["key"] == key]
        data.append(go.Bar(x=part["bucket"], y=part["count"], name=names.get(key, str(key))))
    return _base(
        title,
        data=data,
        barmode="stack",
        xaxis={"title": {"text": None}, "tickformat": "%m月%d日"},
        yaxis={"title": {"text": "条数"}},
    )


def status_donut(counts: dict[str, int], title: str = "回复状态") -> go.Figure:
    if not sum(counts.values()):
        return empty(title)
    pie = go.Pie(
        labels=[STATUS_NAMES.get(k, k) for k, v in counts.items() if v],
        values=[v for v in counts.values() if v],
        hole=0.5,
        sort=False,
    )
    return _base(title, data=[pie])


def timeliness_ranking(df: pd.DataFrame, sla_days: int, unit: str, top: int = 15) -> go.Figure:
    """Horizontal bars: share answered within the deadline per department, with median delay."""
    title = f"按时答复率（{sla_days}{unit}内）"
    if df.empty:
        return empty(title)
    part = df.head(top).iloc[::-1]
    bars = go.Bar(
        x=part["within_sla_rate"],
        y=part["group"],
        orientation="h",
        text=[f"{r:.0%}" for r in part["within_sla_rate"]],
        customdata=part[["letters", "median_delay"]].to_numpy(),
        hovertemplate="%{y}<br>按时率 %{x:.0%}<br>来信 %{customdata[0]}<br>中位时长 %{customdata[1]}<extra></extra>",
        marker_color="#1f5fa8",
    )
    return _base(
        title,
        height=max(320, 26 * len(part) + 90),
        data=[bars],
        xaxis={"tickformat": ".0%", "range": [0, 1]},
    )


def answer_trend(df: pd.DataFrame) -> go.Figure:
    title = "月度来信与答复率"
    if df.empty:
        return empty(title)
    data = [
        go.Bar(x=df["month"], y=df["letters"], name="来信", marker_color="#9db7d5"),
        go.Scatter(
            x=df["month"],
            y=df["answer_rate"],
            name="答复率",
            yaxis="y2",
            mode="lines+markers",
            line={"color": "#c0392b"},
        ),
    ]
    return _base(
        title,
        data=data,
        yaxis={"title": {"text": "来信"}},
        yaxis2={
            "title": {"text": "答复率"},
            "overlaying": "y",
            "side": "right",
            "tickformat": ".0%",
            "range": [0, 1.05],
        },
    )


def survival(df: pd.DataFrame, sla_days: int, unit: str) -> go.Figure:
    """Step curve of the share still unanswered after N days, with the deadline marked."""
    title = f"未答复比例随时间变化（按{unit}计，未答复来信按删失处理）"
    if df.empty or len(df) < 2:
        return empty(title)
    curve = go.Scatter(
        x=df["days"],
        y=df["unanswered"],
        mode="lines",
        line_shape="hv",
        name="未答复比例",
        line={"color": "#1f5fa8"},
    )
    # The deadline line and its label, as add_vline draws them.
    deadline = {
        "type": "line",
        "x0": sla_days,
        "x1": sla_days,
        "xref": "x",
        "y0": 0,
        "y1": 1,
        "yref": "y domain",
        "line": {"dash": "dash", "color": "#c0392b"},
    }
    label = {
        "text": f"时限 {sla_days}{unit}",
        "x": sla_days,
        "xref": "x",
        "y": 1,
        "yref": "y domain",
        "showarrow": False,
        "xanchor": "left",
        "yanchor": "top",
    }
    return _base(
        title,
        data=[curve],
        shapes=[deadline],
        annotations=[label],
        yaxis={"tickformat": ".0%", "range": [0, 1.02]},
        xaxis={"title": {"text": unit}},
    )


def sparklines(
    df: pd.DataFrame, title: str = "热词走势（最后一格为当前窗口）", top: int = 8
) -> go.Figure:
    """Small multiples are heavy in Plotly; one chart with a line per term reads well."""
    if df.empty:
        return empty(title)
    data = []
    for _, row in df.head(top).iterrows():
        spark = list(row["sparkline"])
        data.append(
            go.Scatter(
                x=list(range(-len(spark) + 1, 1)), y=spark, mode="lines+markers", name=row["term"]
            )
        )
    return _base(
        title,
        height=340,
        data=data,
        xaxis={"title": {"text": "时间窗口（0 = 当前）"}, "dtick": 1},
        yaxis={"title": {"text": "含该词的消息数"}},
    )


def rumour_scores(df: pd.DataFrame) -> go.Figure:
    title = "疑似谣言得分与传播量"
    if df.empty:
        return empty(title)
    points = go.Scatter(
        x=df["rumour_score"],
        y=df["spread"],
        mode="markers",
        text=df["title"],
        marker={
            "size": 10,
            "color": df["official_reply"].map({True: "#27ae60", False: "#c0392b"}),
        },
        hovertemplate="%{text}<br>得分 %{x}<br>转发+评论 %{y}<extra></extra>",
    )
    return _base(
        title,
        data=[points],
        xaxis={"title": {"text": "谣言得分"}, "range": [0, 1.02]},
        yaxis={"title": {"text": "转发+评论"}},
    )
