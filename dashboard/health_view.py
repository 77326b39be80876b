"""The machine page's health card and risk trend, from the health service's last view (pure, no I/O).

Calm (ISA-101): grey text and lines; the card turns amber only when the 8 h risk is high
(``dashboard.health.is_high``), and says so in words. The trend draws P(failure within 8 h) over the
history read, and below it the driving signals with their learnt thresholds (dashed: where the signal
alone makes three times the average hazard, ``twin.health.score.risk_trend``).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import plotly.graph_objects as go
from dash import html

from dashboard import theme
from dashboard.components import data_attrs
from dashboard.figures import _figure, _time_axis, _wall, empty
from dashboard.health import HealthView, fmt_interval, fmt_risk, is_high
from twin.health.model import Driver, Risk
from twin.health.score import MachineHealth, RiskTrend

__all__ = ["MAX_SIGNALS", "health_card", "model_note", "risk_figure", "risk_text"]

MAX_SIGNALS = 2  # driving signals drawn under the risk
_LINE = "#33414d"
_SIGNAL = ("#1f5fa8", "#8a6d3b")
_THRESHOLD = "#7b838a"


def risk_text(r: Risk) -> str:
    """A risk with its interval, e.g. "12 % (90 %: 5–25 %)", or "12 % (too little history: ...)"."""
    return f"{fmt_risk(r.p)} ({fmt_interval(r)})"


def _driver(d: Driver) -> str:
    return f"{d.name} {d.value:.3g} (fleet mean {d.mean:.3g}): × {d.factor:.2f} the average hazard"


def model_note(h: MachineHealth) -> str:
    """Which model, fitted on how much, and its own note (the constant-MTBF fallback says why)."""
    m = h.model
    if m.note:  # the model's own note names the model and its sample sizes
        return f"{m.template}: {m.note}"
    kind = "Cox model" if m.kind == "cox" else "constant MTBF hazard"
    return f"{kind} of {m.template}: {m.failures} failures on {m.machines} machines, {m.operating_h:,.0f} operating h"


def health_card(view: HealthView | None, site: str, machine: str, *, note: str = "") -> html.Div:
    """The card's body: the risks with their intervals, the drivers, the model's note; or why there are none."""
    if view is None:
        return html.Div(note or "Checking the machines' health… (the first look at the history, a few seconds)",
                        className="notice health-pending")
    h = view.machine(site, machine)
    if h is None:
        return html.Div("No health model for this machine's template yet", className="notice health-none")
    if not h.seen:
        return html.Div("No status history for this machine in the window read: no risk to show",
                        className="notice health-none")
    high = is_high(h, view.high)
    rows: list[Any] = [
        html.Div([html.Span(f"Failure within {h.risk.hours:g} h: ", className="kpi-label"),
                  html.Span(fmt_risk(h.risk.p), className="kpi-mid health-risk-8h"),
                  html.Span(f" {fmt_interval(h.risk)}", className="small muted")]),
        html.Div([html.Span("Rest of the shift: ", className="kpi-label"),
                  html.Span(f"{risk_text(h.shift)} over {h.shift.hours:.1f} h" if h.shift is not None
                            else "not in a shift now", className="health-risk-shift")]),
        html.Div(f"constant-MTBF hazard alone: {fmt_risk(h.baseline)} within {h.risk.hours:g} h",
                 className="small muted"),
    ]
    if high:
        rows.insert(0, html.Div(f"High risk: {fmt_risk(h.risk.p)} within {h.risk.hours:g} h (from "
                                f"{fmt_risk(view.high)} it is high)", className="health-high-note"))
    if h.drivers:
        rows.append(html.Div("Driving signals:", className="kpi-label mt-1"))
        rows.append(html.Ul([html.Li(_driver(d)) for d in h.drivers], className="small health-drivers mb-1"))
    rows.append(html.Div(model_note(h), className="small muted health-model"))
    rows.append(html.Div(f"scored {theme.fmt_ts(view.at, seconds=True)}"
                         + (f" · model fitted {theme.fmt_ts(view.refitted_at)}" if view.refitted_at else "")
                         + (f" · {note}" if note else ""), className="small muted"))
    css = "health-card health-high" if high else "health-card"
    return html.Div(rows, className=css, **data_attrs(risk=f"{h.risk.p:.6f}", high="1" if high else "0"))


def _times(ts: tuple[float, ...], tz: str | None) -> list[datetime]:
    return [_wall(datetime.fromtimestamp(t, UTC), tz) for t in ts]


def risk_figure(view: HealthView | None, site: str, machine: str, *, tz: str | None = None,
                height: int = 380) -> go.Figure:
    """P(failure within 8 h) over the history read, and the driving signals with their learnt thresholds."""
    trend: RiskTrend | None = view.trends.get((site, machine)) if view is not None else None
    h = view.machine(site, machine) if view is not None else None
    if trend is None or not trend.t or h is None:
        return empty("No risk trend yet", height=220)
    x = _times(trend.t, tz)
    # the drivers first (the model's order), then any feature with a threshold
    names = [d.name for d in h.drivers if d.name in trend.signals]
    names += [n for n in trend.thresholds if n in trend.signals and n not in names]
    names = names[:MAX_SIGNALS]
    high = is_high(h, view.high if view is not None else 1.0)
    data: list[dict[str, Any]] = [{
        "type": "scatter", "mode": "lines", "x": x, "y": [round(100.0 * p, 2) for p in trend.p],
        "name": f"P(failure within {trend.hours:g} h), %", "line": {"color": "#e0a100" if high else _LINE},
        "xaxis": "x", "yaxis": "y"}]
    layout: dict[str, Any] = {}
    rows = len(names)
    top = 1.0 if rows == 0 else 0.5
    gap = 0.06
    each = (top - gap * rows) / rows if rows else 0.0
    for i, name in enumerate(names):
        axis = f"y{i + 2}"
        lo = i * (each + gap)
        data.append({"type": "scatter", "mode": "lines", "x": x, "y": list(trend.signals[name]), "name": name,
                     "line": {"color": _SIGNAL[i % len(_SIGNAL)]}, "xaxis": "x", "yaxis": axis})
        layout[f"yaxis{i + 2}"] = {"domain": [lo, lo + each], "gridcolor": theme.GRID, "zeroline": False,
                                   "title": {"text": name, "font": {"size": 11}}, "automargin": True}
        if name in trend.thresholds:
            v = trend.thresholds[name]
            data.append({"type": "scatter", "mode": "lines", "x": [x[0], x[-1]], "y": [v, v], "xaxis": "x",
                         "yaxis": axis, "name": f"{name} threshold {v:.3g}", "hoverinfo": "name",
                         "line": {"color": _THRESHOLD, "dash": "dash"}})
    # the time axis under the lowest panel (y2: the first signal, drawn at the bottom)
    t0 = datetime.fromtimestamp(trend.t[0], UTC)
    t1 = datetime.fromtimestamp(trend.t[-1], UTC)
    return _figure(data, height=height, xaxis=_time_axis(t0, t1, tz, anchor="y2" if rows else "y"),
                   yaxis={"domain": [top + gap, 1.0] if rows else [0.0, 1.0], "rangemode": "tozero",
                          "title": {"text": "risk %", "font": {"size": 11}}},
                   **layout, legend={"orientation": "h", "y": -0.22, "x": 0})
