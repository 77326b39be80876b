"""Pure figure builders of the Shift page: the downtime Pareto, the OEE loss waterfall, alarms per 10 minutes.

A ``twin.shift.ShiftReport`` in, a ``plotly.graph_objects.Figure`` out; grey and calm, colour only
for the time nobody classified yet and for alarm rates over the ISA-18.2 benchmarks. Minutes on the
axes, times in the site's zone.
"""

from __future__ import annotations

from typing import Any
from zoneinfo import ZoneInfo

import plotly.graph_objects as go

from dashboard import theme
from twin.alarm_performance import FLOOD_PER_10_MIN
from twin.shift import ShiftReport

__all__ = ["NEEDS_A_PERSON", "alarm_rate", "pareto", "reason_label", "waterfall"]

NEEDS_A_PERSON = "needs a person"
_GREY = "#6b7780"
_ALERT = "#d9480f"


def reason_label(reason: str | None) -> str:
    return NEEDS_A_PERSON if reason is None else reason.replace("_", " ")


def _layout(height: int, **extra: Any) -> dict[str, Any]:
    return {"template": "none", "height": height, "margin": {"l": 60, "r": 16, "t": 12, "b": 60},
            "paper_bgcolor": theme.PANEL, "plot_bgcolor": theme.PANEL, "showlegend": False,
            "font": {"color": theme.TEXT, "family": "system-ui, sans-serif", "size": 12}, **extra}


def _axis(**extra: Any) -> dict[str, Any]:
    return {"gridcolor": theme.GRID, "zeroline": False, "linecolor": theme.GRID, "automargin": True, **extra}


def pareto(rep: ShiftReport, *, height: int = 300) -> go.Figure:
    """Lost minutes by reason, largest first, with the cumulative share on the right axis."""
    rows = rep.pareto
    x = [reason_label(r.reason) for r in rows]
    bars = {"type": "bar", "x": x, "y": [r.seconds / 60 for r in rows], "name": "lost min",
            "marker": {"color": [_ALERT if r.reason is None else _GREY for r in rows]},
            "hovertemplate": "%{x}: %{y:.1f} min<extra></extra>"}
    line = {"type": "scatter", "x": x, "y": [100 * r.cumulative for r in rows], "yaxis": "y2", "name": "cumulative %",
            "mode": "lines+markers", "line": {"color": theme.TEXT}, "hovertemplate": "%{y:.0f} %<extra></extra>"}
    return go.Figure(data=[bars, line], layout=_layout(
        height, xaxis=_axis(), yaxis=_axis(title={"text": "lost min"}),
        yaxis2=_axis(overlaying="y", side="right", range=[0, 105], title={"text": "cumulative %"}, showgrid=False)))


def waterfall(rep: ShiftReport, *, height: int = 320) -> go.Figure:
    """Planned time → availability losses by reason → performance → quality → fully productive time (minutes)."""
    w = rep.waterfall
    x = ["planned time"]
    y = [w.planned_s / 60]
    measure = ["absolute"]
    for s in w.steps:
        x.append(reason_label(s.reason) if s.kind == "availability" else s.kind)
        y.append(-s.seconds / 60)
        measure.append("relative")
    if w.productive_s is not None:
        x.append("fully productive (OEE)")
        y.append(w.productive_s / 60)
        measure.append("total")
    trace = {"type": "waterfall", "x": x, "y": y, "measure": measure, "connector": {"line": {"color": theme.GRID}},
             "decreasing": {"marker": {"color": _GREY}}, "increasing": {"marker": {"color": "#4f6d57"}},
             "totals": {"marker": {"color": theme.TEXT}}, "hovertemplate": "%{x}: %{y:.1f} min<extra></extra>"}
    return go.Figure(data=[trace], layout=_layout(height, xaxis=_axis(), yaxis=_axis(title={"text": "min"})))


def alarm_rate(rep: ShiftReport, *, height: int = 260) -> go.Figure:
    """Alarms annunciated per 10-minute period, against 1 (acceptable), 2 (manageable) and the flood line."""
    a = rep.alarms
    zone = ZoneInfo(rep.site.timezone)
    x = [t.astimezone(zone).replace(tzinfo=None) for t, _ in a.per_period]
    n = [c for _, c in a.per_period]
    bars = {"type": "bar", "x": x, "y": n, "marker": {"color": [_ALERT if c > 2 else _GREY for c in n]},
            "hovertemplate": "%{x|%H:%M}: %{y} alarms<extra></extra>"}
    shapes = [{"type": "line", "xref": "paper", "x0": 0, "x1": 1, "y0": v, "y1": v,
               "line": {"color": theme.TEXT_MUTED, "dash": "dot", "width": 1}} for v in (1, 2, FLOOD_PER_10_MIN)]
    notes = [{"xref": "paper", "x": 1, "y": v, "text": label, "showarrow": False, "xanchor": "right",
              "yanchor": "bottom", "font": {"size": 10, "color": theme.TEXT_MUTED}}
             for v, label in ((1, "acceptable"), (2, "manageable"), (FLOOD_PER_10_MIN, "flood"))]
    top = max([*n, FLOOD_PER_10_MIN]) + 1
    return go.Figure(data=[bars], layout=_layout(height, shapes=shapes, annotations=notes,
                                                 xaxis=_axis(title={"text": f"10-minute period ({rep.site.timezone})"}),
                                                 yaxis=_axis(title={"text": "alarms"}, range=[0, top])))
