"""Pure figure builders: view-models in, ``plotly.graph_objects.Figure`` out (no I/O, no state).

All colours and formats come from ``dashboard.theme``; figures are grey and calm, with colour only
for what is abnormal (a fault in a timeline, a stock below its reorder point) and for the one
accent of the what-if page (the scenario).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import plotly.graph_objects as go

from dashboard import theme
from dashboard.queries import OeeView, StockRow, TimelineSegment
from dashboard.services import WhatIfResult
from twin.historian import SeriesResult
from twin.spec import MachineStatus

__all__ = ["deltas_chart", "empty", "fan_chart", "oee_bars", "status_timeline", "stock_bars", "trend"]

SERIES_GREYS = ("#33414d", "#6b7780", "#1f5fa8", "#8a6d3b", "#4f6d57", "#7a4e63", "#99a3ab", "#2c6e77")


def _layout(fig: go.Figure, *, title: str = "", height: int = 300) -> go.Figure:
    fig.update_layout(
        title={"text": title, "font": {"size": 14}, "x": 0.01} if title else None,
        height=height,
        margin={"l": 50, "r": 16, "t": 36 if title else 12, "b": 36},
        paper_bgcolor=theme.PANEL,
        plot_bgcolor=theme.PANEL,
        font={"color": theme.TEXT, "family": "system-ui, sans-serif", "size": 12},
        legend={"orientation": "h", "y": -0.18, "x": 0},
        uirevision="keep",  # keep the user's zoom across interval refreshes
    )
    fig.update_xaxes(gridcolor=theme.GRID, zeroline=False, linecolor=theme.GRID)
    fig.update_yaxes(gridcolor=theme.GRID, zeroline=False, linecolor=theme.GRID)
    return fig


def empty(message: str, *, height: int = 220) -> go.Figure:
    """A blank panel that says why it is blank (never an empty axis that looks like zero)."""
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper",
                       font={"size": 14, "color": theme.TEXT_MUTED})
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, height=height)


def oee_bars(rows: Sequence[tuple[str, OeeView]], *, title: str = "") -> go.Figure:
    """Availability, performance, quality and OEE per machine (grouped bars; a missing factor is absent)."""
    if not rows:
        return empty("No machines")
    names = [name for name, _ in rows]
    fig = go.Figure()
    parts = (("Availability", "availability", "#8d99a3"), ("Performance", "performance", "#66727c"),
             ("Quality", "quality", "#46525c"), ("OEE", "oee", "#1f2326"))
    for label, attr, colour in parts:
        values = [getattr(v, attr) for _, v in rows]
        fig.add_bar(
            name=label, y=names, x=[100 * v if v is not None else None for v in values], orientation="h",
            marker_color=colour, text=[theme.fmt_pct(v) for v in values], textposition="auto",
            hovertemplate=f"%{{y}} {label}: %{{x:.1f}} %<extra></extra>",
        )
    fig.add_vline(x=100 * theme.Thresholds().oee_low, line_dash="dot", line_color=theme.TEXT_MUTED)
    fig.update_layout(barmode="group")
    fig.update_xaxes(range=[0, 105], ticksuffix=" %")
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title=title, height=max(220, 60 + 70 * len(rows)))


def status_timeline(segments: Sequence[TimelineSegment], t0: datetime, t1: datetime, *,
                    title: str = "") -> go.Figure:
    """One row per machine, a bar per status segment in Andon colours, with a legend naming each status."""
    if not segments:
        return empty("No status history in this window")
    machines = list(dict.fromkeys(s.machine for s in segments))
    fig = go.Figure()
    for status in MachineStatus:
        segs = [s for s in segments if s.status is status]
        if not segs:
            continue
        style = theme.andon(status)
        fig.add_bar(
            name=style.label, y=[s.machine for s in segs],
            x=[(s.end - s.start).total_seconds() * 1000 for s in segs], base=[s.start for s in segs],
            orientation="h", marker={"color": style.background, "line": {"color": theme.PANEL, "width": 1}},
            customdata=[[style.label, theme.fmt_duration((s.end - s.start).total_seconds())] for s in segs],
            hovertemplate="%{y}: %{customdata[0]} for %{customdata[1]}<extra></extra>",
        )
    fig.update_layout(barmode="overlay", bargap=0.25)
    fig.update_xaxes(type="date", range=[t0, t1])
    fig.update_yaxes(categoryorder="array", categoryarray=machines[::-1])
    return _layout(fig, title=title, height=max(200, 80 + 28 * len(machines)))


def trend(series: Sequence[SeriesResult], *, unit: str = "", title: str = "", height: int = 300) -> go.Figure:
    """Lines per series; where a series was downsampled, its min–max envelope is shaded so spikes stay visible."""
    if not series or all(not s.points for s in series):
        return empty("No data in this range")
    fig = go.Figure()
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour = SERIES_GREYS[i % len(SERIES_GREYS)]
        t = [p.ts for p in s.points]
        name = f"{s.key.asset} {s.key.signal}" if len(series) > 1 else s.key.signal
        if s.downsampled:
            fig.add_scatter(x=t, y=[p.max for p in s.points], mode="lines", line={"width": 0}, showlegend=False,
                            hoverinfo="skip", legendgroup=name)
            fig.add_scatter(x=t, y=[p.min for p in s.points], mode="lines", line={"width": 0}, fill="tonexty",
                            fillcolor="rgba(77,90,102,0.18)", showlegend=False, hoverinfo="skip", legendgroup=name)
        fig.add_scatter(x=t, y=[p.value for p in s.points], mode="lines", name=name, legendgroup=name,
                        line={"color": colour, "width": 1.6})
    fig.update_yaxes(title_text=unit)
    return _layout(fig, title=title, height=height)


def stock_bars(rows: Sequence[StockRow], *, title: str = "") -> go.Figure:
    """On hand per item as a share of its reorder point (1.0 = at the reorder point); abnormal items coloured."""
    if not rows:
        return empty("No stocked items")
    labels = [f"{r.sku}" for r in rows]
    ratio = [r.on_hand / r.reorder_point if r.on_hand is not None and r.reorder_point > 0 else None for r in rows]
    colours = ["#c62828" if r.below_reorder else "#e0a100" if r.cover_short else "#7b838a" for r in rows]
    text = [
        f"{theme.fmt_number(r.on_hand, r.unit)} · cover {theme.fmt_number(r.days_of_cover, 'd')}"
        + (" · BELOW REORDER" if r.below_reorder else " · COVER < LEAD TIME" if r.cover_short else "")
        for r in rows
    ]
    fig = go.Figure()
    fig.add_bar(y=labels, x=ratio, orientation="h", marker_color=colours, text=text, textposition="auto",
                hovertemplate="%{y}: %{text}<extra></extra>", showlegend=False)
    fig.add_vline(x=1.0, line_dash="dash", line_color=theme.TEXT, annotation_text="reorder point",
                  annotation_position="top")
    fig.update_xaxes(title_text="on hand ÷ reorder point", rangemode="tozero")
    fig.update_yaxes(autorange="reversed")
    fig = _layout(fig, title=title, height=max(200, 90 + 30 * len(rows)))
    fig.update_layout(margin={"t": 40 if title else 30})  # room for the "reorder point" label
    return fig


def fan_chart(result: WhatIfResult, kpi: str) -> go.Figure:
    """P10–P90 bands and P50 lines of baseline and scenario for one KPI, continuing the actual trend."""
    bands = [b for b in result.bands if b.kpi == kpi]
    if not bands:
        return empty(f"No projection for {kpi}")
    fig = go.Figure()
    for actual in (a for a in result.actuals if a.kpi == kpi):
        fig.add_scatter(x=list(actual.t), y=list(actual.values), mode="lines", name="actual",
                        line={"color": theme.TEXT, "width": 2})
    styles = {"baseline": (theme.BASELINE_LINE, "rgba(123,131,138,0.25)"),
              "scenario": (theme.SCENARIO_LINE, "rgba(31,95,168,0.22)")}
    for b in sorted(bands, key=lambda b: b.variant != "baseline"):
        line, fill = styles.get(b.variant, styles["baseline"])
        t = list(b.t)
        fig.add_scatter(x=t, y=list(b.p90), mode="lines", line={"width": 0}, showlegend=False, hoverinfo="skip",
                        legendgroup=b.variant)
        fig.add_scatter(x=t, y=list(b.p10), mode="lines", line={"width": 0}, fill="tonexty", fillcolor=fill,
                        name=f"{b.variant} P10–P90", legendgroup=b.variant)
        fig.add_scatter(x=t, y=list(b.p50), mode="lines", name=f"{b.variant} P50", legendgroup=b.variant,
                        line={"color": line, "width": 2, "dash": "dash" if b.variant == "baseline" else "solid"})
    fig.add_vline(x=result.at, line_dash="dot", line_color=theme.TEXT_MUTED)
    fig.update_yaxes(title_text=bands[0].unit)
    return _layout(fig, title=f"{kpi}: scenario against baseline", height=360)


def deltas_chart(result: WhatIfResult) -> go.Figure:
    """Scenario − baseline per KPI with its confidence interval; red where the scenario is surely worse."""
    if not result.deltas:
        return empty("No KPI deltas")
    names = [f"{d.kpi} ({d.unit})" if d.unit else d.kpi for d in result.deltas]
    colours = []
    for d in result.deltas:
        worse = d.ci_high < 0 if d.higher_is_better else d.ci_low > 0
        colours.append("#c62828" if worse else theme.NORMAL_LINE)
    fig = go.Figure()
    fig.add_scatter(
        y=names, x=[d.delta for d in result.deltas], mode="markers", marker={"color": colours, "size": 10},
        error_x={"type": "data", "symmetric": False, "array": [d.ci_high - d.delta for d in result.deltas],
                 "arrayminus": [d.delta - d.ci_low for d in result.deltas], "color": theme.TEXT_MUTED},
        showlegend=False, hovertemplate="%{y}: Δ %{x:.3g}<extra></extra>",
    )
    fig.add_vline(x=0, line_color=theme.TEXT)
    fig.update_yaxes(autorange="reversed")
    return _layout(fig, title="Scenario − baseline (95 % CI)", height=max(200, 80 + 36 * len(names)))
