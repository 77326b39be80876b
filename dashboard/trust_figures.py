"""Figures of the model-trust page: coverage by horizon hour and the PIT histogram (pure, no I/O).

Grey and calm (ISA-101) in the house style of ``dashboard.figures``: the calibrated range is a grey
band, the target a dashed line; only points outside 73–87 % are amber, and they say so in the legend
and the hover text.
"""

from __future__ import annotations

import math
from typing import Any

import plotly.graph_objects as go

from dashboard import theme
from dashboard.figures import _figure, empty
from dashboard.trust import COVERAGE_HIGH, COVERAGE_LOW, COVERAGE_TARGET, DRIFT_COVERAGE, TrustView

__all__ = ["AMBER", "coverage_by_hour", "pit_histogram"]

AMBER = "#e0a100"
LINES = {"output": ("#33414d", "solid"), "stock": ("#7b838a", "dash")}


def _pct(x: float) -> float | None:
    return None if math.isnan(x) else round(100.0 * x, 1)


def coverage_by_hour(view: TrustView, *, height: int = 300) -> go.Figure:
    """Share of outcomes inside P10–P90 at each hour of the horizon, output and stock, in %."""
    series = [("output", view.output_by_hour), ("stock", view.stock_by_hour)]
    series = [(name, ys) for name, ys in series if ys and any(not math.isnan(y) for y in ys)]
    if not series:
        return empty("No coverage yet: the twin has not been scored" if view.status != "ok"
                     else "No output or stock series at this site", height=height)
    hours = max(len(ys) for _, ys in series)
    traces: list[dict[str, Any]] = []
    off_x: list[int] = []
    off_y: list[float | None] = []
    off_text: list[str] = []
    for name, ys in series:
        colour, dash = LINES[name]
        xs = list(range(1, len(ys) + 1))
        pct = [_pct(y) for y in ys]
        traces.append({"type": "scatter", "mode": "lines+markers", "name": f"{name}", "x": xs, "y": pct,
                       "line": {"color": colour, "dash": dash, "width": 2}, "marker": {"size": 5, "color": colour},
                       "hovertemplate": f"{name}, hour %{{x}}: %{{y:.0f}} %<extra></extra>"})
        for x, y in zip(xs, ys, strict=True):
            if not math.isnan(y) and not COVERAGE_LOW <= y <= COVERAGE_HIGH:
                off_x.append(x)
                off_y.append(_pct(y))
                off_text.append(f"{name}, hour {x}: {y * 100:.0f} % (outside "
                                f"{COVERAGE_LOW * 100:.0f}–{COVERAGE_HIGH * 100:.0f} %)")
    if off_x:
        traces.append({"type": "scatter", "mode": "markers", "x": off_x, "y": off_y, "customdata": off_text,
                       "name": f"outside {COVERAGE_LOW * 100:.0f}–{COVERAGE_HIGH * 100:.0f} %",
                       "marker": {"size": 9, "color": AMBER, "symbol": "diamond",
                                  "line": {"color": theme.TEXT, "width": 1}},
                       "hovertemplate": "%{customdata}<extra></extra>"})
    band = {"type": "rect", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": COVERAGE_LOW * 100,
            "y1": COVERAGE_HIGH * 100, "fillcolor": "#cfd2d5", "line": {"width": 0}, "layer": "below"}
    target = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": COVERAGE_TARGET * 100,
              "y1": COVERAGE_TARGET * 100, "line": {"color": theme.TEXT, "dash": "dash", "width": 1}}
    drift = {"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": "y", "y0": DRIFT_COVERAGE * 100,
             "y1": DRIFT_COVERAGE * 100, "line": {"color": theme.TEXT_MUTED, "dash": "dot", "width": 1}}
    notes = [{"text": f"target {COVERAGE_TARGET * 100:.0f} %", "xref": "paper", "x": 1.0, "xanchor": "right",
              "y": COVERAGE_TARGET * 100, "yref": "y", "yanchor": "bottom", "showarrow": False,
              "font": {"size": 11, "color": theme.TEXT_MUTED}},
             {"text": f"drift alarm below {DRIFT_COVERAGE * 100:.0f} %", "xref": "paper", "x": 1.0,
              "xanchor": "right", "y": DRIFT_COVERAGE * 100, "yref": "y", "yanchor": "top", "showarrow": False,
              "font": {"size": 11, "color": theme.TEXT_MUTED}}]
    return _figure(traces, height=height,
                   xaxis={"title": {"text": "hour of the horizon"}, "range": [0.5, hours + 0.5],
                          "dtick": max(1, hours // 12)},
                   yaxis={"title": {"text": "inside P10–P90 (%)"}, "range": [0, 105], "dtick": 20},
                   shapes=[band, target, drift], annotations=notes, top=36,
                   legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, showlegend=True)


def pit_histogram(view: TrustView, *, height: int = 300) -> go.Figure:
    """The PIT histogram (10 bins) with the flat count per bin a calibrated model would give."""
    counts = view.pit_histogram
    if not counts or not sum(counts):
        return empty("No PIT values yet" if view.status != "ok" else "No PIT values at this site", height=height)
    n = len(counts)
    labels = [f"{i / n:.1f}–{(i + 1) / n:.1f}" for i in range(n)]
    flat = view.pit_flat
    bar = {"type": "bar", "x": labels, "y": list(counts), "marker": {"color": "#7b838a"}, "name": "PIT values",
           "text": [str(c) for c in counts], "textposition": "outside", "cliponaxis": False,
           "hovertemplate": "PIT %{x}: %{y} values<extra></extra>", "showlegend": False}
    line = {"type": "scatter", "mode": "lines", "x": labels, "y": [flat] * n, "name": f"calibrated: {flat:.3g} per bin",
            "line": {"color": theme.TEXT, "dash": "dash", "width": 1.5}, "hoverinfo": "skip"}
    top = max(max(counts), flat)
    xaxis = {"title": {"text": "PIT: share of replications below the outcome"}, "tickangle": -45,
             "type": "category"}
    return _figure([bar, line], height=height, xaxis=xaxis,
                   yaxis={"title": {"text": "values"}, "range": [0, top * 1.25]}, top=36,
                   legend={"orientation": "h", "x": 0, "y": 1.02, "yanchor": "bottom"}, showlegend=True)
