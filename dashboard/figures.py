"""Pure figure builders: view-models in, ``plotly.graph_objects.Figure`` out (no I/O, no state).

All colours and formats come from ``dashboard.theme``; figures are grey and calm, with colour only
for what is abnormal (a fault in a timeline, a stock below its reorder point) and for the one
accent of the what-if page (the scenario).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import plotly.graph_objects as go

from dashboard import theme, timefmt
from dashboard.viewmodels import OeeView, StockRow, TimelineSegment
from dashboard.whatif_view import WhatIfResult
from twin.historian import SeriesResult
from twin.spec import MachineStatus

__all__ = ["empty", "fan_chart", "oee_bars", "status_timeline", "stock_bars", "stock_projection",
           "trend"]

SERIES_GREYS = ("#33414d", "#6b7780", "#1f5fa8", "#8a6d3b", "#4f6d57", "#7a4e63", "#99a3ab", "#2c6e77")


def _axis(**extra: Any) -> dict[str, Any]:
    return {"gridcolor": theme.GRID, "zeroline": False, "linecolor": theme.GRID, "automargin": True, **extra}


def _figure(
    data: Sequence[dict[str, Any]],
    *,
    title: str = "",
    height: int = 300,
    xaxis: dict[str, Any] | None = None,
    yaxis: dict[str, Any] | None = None,
    top: int | None = None,
    **layout: Any,
) -> go.Figure:
    """One figure in the house style, built in a single constructor call.

    Plotly validates a figure once when it is built from plain dicts; every later ``update_layout``,
    ``update_xaxes`` or ``add_vline`` walks and validates the figure again (ten times the cost), so
    builders assemble their traces and layout as dicts and call this once. The figures carry the
    empty "none" template: the house style is set here, and plotly's default template would add
    6 kB to every figure sent at every refresh.
    """
    base: dict[str, Any] = {
        "template": "none",
        "title": {"text": title, "font": {"size": 14}, "x": 0.01} if title else None,
        "height": height,
        "margin": {"l": 50, "r": 16, "t": top if top is not None else 36 if title else 12, "b": 36},
        "paper_bgcolor": theme.PANEL,
        "plot_bgcolor": theme.PANEL,
        "font": {"color": theme.TEXT, "family": "system-ui, sans-serif", "size": 12},
        "legend": {"orientation": "h", "y": -0.18, "x": 0},
        "uirevision": "keep",  # keep the user's zoom across interval refreshes
        "xaxis": _axis(**(xaxis or {})),
        "yaxis": _axis(**(yaxis or {})),
    }
    base.update(layout)
    return go.Figure(data=list(data), layout=base)


def _wall(ts: datetime, tz: str | None) -> datetime:
    """``ts`` in the zone ``tz``: the same instant, drawn at the site's wall-clock time.

    Sent as "…T14:05:00+01:00"; plotly.js draws a date at the wall-clock time written and ignores
    the offset, so a site's charts read in the site's time.
    """
    return timefmt.local(ts, tz)


@dataclass(frozen=True, slots=True)
class _Clock:
    """The time axis of one chart: where an instant is drawn, and the ticks, in the site's time.

    Every instant is drawn at UTC + one offset (the zone's offset at the chart's first time), so
    an hour is an hour wide everywhere: a 25 h day (the clocks go back) is 25 hours wide, with both
    of its 02:00–03:00 hours, and a 23 h day 23 hours. Where the range has no clock change that is
    exactly the site's wall clock (plotly's own ticks); across a change the ticks are written here
    in the site's time with the zone ("02:00 CEST", "02:00 CET"), and hovers carry the local time.
    """

    tz: str | None
    offset: timedelta
    t0: datetime | None = None
    t1: datetime | None = None

    @classmethod
    def over(cls, t0: datetime | None, t1: datetime | None, tz: str | None) -> _Clock:
        ref = t0 or t1
        offset = timefmt.local(ref, tz).utcoffset() if ref is not None else None
        return cls(tz, offset or timedelta(0), t0, t1)

    @property
    def crosses(self) -> bool:
        """Whether the zone's offset changes within the range (a clock change: ticks written here)."""
        if self.t0 is None or self.t1 is None:
            return False
        return timefmt.local(self.t1, self.tz).utcoffset() != self.offset or any(
            timefmt.local(t, self.tz).utcoffset() != self.offset for t in _hours(self.t0, self.t1, 6))

    def x(self, ts: datetime) -> datetime:
        """Where ``ts`` is drawn (sent with the fixed offset, which plotly.js ignores)."""
        aware = ts if ts.tzinfo is not None else ts.replace(tzinfo=UTC)
        return aware.astimezone(timezone(self.offset))

    def label(self, ts: datetime) -> str:
        return timefmt.fmt_time(ts, self.tz)

    def axis(self, **extra: Any) -> dict[str, Any]:
        """The date axis: range, ticks and title (its zone, or both zones across a change)."""
        t0, t1 = self.t0, self.t1
        if not self.crosses or t0 is None or t1 is None:
            axis = _time_axis(t0, t1, self.tz, **extra)
            if t0 is not None and t1 is not None:
                axis["range"] = [self.x(t0), self.x(t1)]
            return axis
        span_h = (t1 - t0).total_seconds() / 3600.0
        stride = next((h for h in (1, 2, 3, 6, 12) if span_h / h <= 12), 24)
        vals, texts = [], []
        for t in _hours(t0, t1, 1):
            loc = timefmt.local(t, self.tz)
            if loc.minute or loc.hour % stride:
                continue
            text = f"{loc:%H:%M} {loc.tzname()}"
            if not vals or loc.hour == 0:
                text += f"<br>{loc:%Y-%m-%d}"
            vals.append(self.x(t))
            texts.append(text)
        zones = " → ".join(dict.fromkeys(timefmt.zone_abbr(t, self.tz) for t in _hours(t0, t1, 1)))
        return {"type": "date", "range": [self.x(t0), self.x(t1)], "tickmode": "array", "tickvals": vals,
                "ticktext": texts, "title": {"text": f"time ({zones})", "font": {"size": 11}}, **extra}


def _hours(t0: datetime, t1: datetime, every_h: int) -> list[datetime]:
    """The whole UTC hours from ``t0`` to ``t1`` (every ``every_h``), both ends' hours included; at most 60 days."""
    first = t0.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    n = min(int((t1 - first).total_seconds() // 3600), 60 * 24)
    return [first + timedelta(hours=k) for k in range(0, n + 1, every_h)]


def _time_axis(t0: datetime | None, t1: datetime | None, tz: str | None, **extra: Any) -> dict[str, Any]:
    """A date axis in the site's local time, 24 h, the zone named in its title (UTC for the fleet)."""
    ref = t1 or t0
    zone_name = timefmt.zone_abbr(ref, tz) if ref is not None else timefmt.FLEET_ZONE
    axis: dict[str, Any] = {"type": "date", "hoverformat": "%Y-%m-%d %H:%M:%S", "tickformat": "%H:%M\n%Y-%m-%d",
                            "title": {"text": f"time ({zone_name})", "font": {"size": 11}}, **extra}
    if t0 is not None and t1 is not None:
        axis["range"] = [_wall(t0, tz), _wall(t1, tz)]
    return axis


def _vline(x: Any, *, colour: str, dash: str) -> dict[str, Any]:
    """A vertical line across the plot at ``x`` (what ``add_vline`` draws, as a layout shape)."""
    return {"type": "line", "x0": x, "x1": x, "xref": "x", "y0": 0, "y1": 1, "yref": "y domain",
            "line": {"color": colour, "dash": dash}}


def empty(message: str, *, height: int = 220) -> go.Figure:
    """A blank panel that says why it is blank (never an empty axis that looks like zero)."""
    note = {"text": message, "showarrow": False, "x": 0.5, "y": 0.5, "xref": "paper", "yref": "paper",
            "font": {"size": 14, "color": theme.TEXT_MUTED}}
    return _figure([], height=height, xaxis={"visible": False}, yaxis={"visible": False}, annotations=[note])


OEE_PANELS = (("OEE", "oee"), ("Availability", "availability"), ("Performance", "performance"),
              ("Quality", "quality"))
LABEL_PX = 12  # bar labels and ticks: readable on a phone, never shrunk to fit a thin bar
BAR_ROW_PX = 26  # height per machine in each panel


def _capped_why(o: OeeView) -> str:
    """The hover's second line for a performance shown as "≥100 %" (theme.CAPPED_PERFORMANCE), else ""."""
    if not o.performance_capped:
        return ""
    words, line = theme.CAPPED_PERFORMANCE.split(" "), ""
    lines: list[str] = []
    for w in words:  # a hover box of about 60 characters a line
        if line and len(line) + len(w) > 60:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}".strip()
    return "<br>" + "<br>".join([*lines, line])


def oee_bars(rows: Sequence[tuple[str, OeeView]], *, title: str = "") -> go.Figure:
    """OEE, availability, performance and quality per machine as four small panels (2 × 2).

    One factor per panel, named in its title (not four greys to tell apart); every bar in the
    same calm grey, the OEE panel with the low threshold dotted. Each panel's axis reaches past its largest
    value (a performance above 100 % is drawn, not cut off) and the labels sit outside the bars at
    a fixed 12 px. A missing factor is absent (never 0).
    """
    if not rows:
        return empty("No machines")
    if all(getattr(v, attr) is None for _, v in rows for _, attr in OEE_PANELS):
        return empty("No OEE yet in this window: no planned time with data")
    names = [name for name, _ in rows]
    low = theme.Thresholds().oee_low
    gap_x, gap_y = 0.14, 0.10  # room for the right column's labels and the lower row's titles
    width, height_frac = (1 - gap_x) / 2, (1 - gap_y) / 2
    data: list[dict[str, Any]] = []
    layout: dict[str, Any] = {}
    notes = []
    for k, (label, attr) in enumerate(OEE_PANELS):
        row, col = divmod(k, 2)
        axis = "" if k == 0 else str(k + 1)
        y_axis = "y" if row == 0 else "y2"
        values = [getattr(v, attr) for _, v in rows]
        known = [100 * v for v in values if v is not None]
        reach = max([100.0, *known])
        colours = theme.NORMAL_LINE  # calm: a low OEE is marked by the dotted threshold, not a colour
        data.append({
            "type": "bar", "name": label, "y": names, "x": [100 * v if v is not None else None for v in values],
            "orientation": "h", "marker": {"color": colours}, "xaxis": f"x{axis}", "yaxis": y_axis,
            "text": [theme.fmt_performance(v, o.performance_capped) if attr == "performance" else theme.fmt_pct(v)
                     for v, (_, o) in zip(values, rows, strict=True)],
            "textposition": "outside", "textfont": {"size": LABEL_PX}, "cliponaxis": False, "showlegend": False,
            # the hover says what the label says ("≥100 %") and, for a capped performance, why
            "customdata": [_capped_why(o) if attr == "performance" else "" for _, o in rows],
            "hovertemplate": f"%{{y}} {label}: %{{text}}%{{customdata}}<extra></extra>",
        })
        x0 = col * (width + gap_x)
        layout[f"xaxis{axis}"] = _axis(domain=[x0, x0 + width], range=[0, reach * 1.45], anchor=y_axis,
                                       ticksuffix=" %", tickvals=[0, 50, 100], tickfont={"size": LABEL_PX - 1})
        notes.append({"text": f"<b>{label}</b>", "showarrow": False, "xref": "paper", "yref": "paper",
                      "x": x0, "xanchor": "left", "y": 1 - row * (height_frac + gap_y), "yanchor": "bottom",
                      "font": {"size": 13}})
    for r, y_axis in enumerate(("yaxis", "yaxis2")):
        top = 1 - r * (height_frac + gap_y)
        layout[y_axis] = _axis(domain=[max(0.0, round(top - height_frac, 6)), min(1.0, round(top, 6))],
                               autorange="reversed",
                               tickfont={"size": LABEL_PX}, anchor="x" if r == 0 else "x3")
    panel_px = BAR_ROW_PX * len(rows) + 20
    threshold = {**_vline(100 * low, colour=theme.TEXT_MUTED, dash="dot"), "yref": "y domain"}
    return _figure(data, title=title, height=int(2 * panel_px / (1 - gap_y)) + 40, top=28, bargap=0.25,
                   annotations=notes, shapes=[threshold], **{k: v for k, v in layout.items()
                                                             if k not in ("xaxis", "yaxis")},
                   xaxis=layout["xaxis"], yaxis=layout["yaxis"])


def status_timeline(segments: Sequence[TimelineSegment], t0: datetime, t1: datetime, *,
                    title: str = "", tz: str | None = None, cursor: datetime | None = None,
                    clickable: bool = False, height: int | None = None) -> go.Figure:
    """One row per machine, a bar per status segment in Andon colours, with a legend naming each status.

    Times are the site's (``tz``) wall-clock times; the hover names each segment's start and end
    with the zone. ``cursor`` draws a replay's moment; ``clickable`` adds an invisible grid of
    points over the range, so a click anywhere on the strip reports its time (``clickData``).
    """
    if not segments:
        return empty("No status history in this window")
    machines = list(dict.fromkeys(s.machine for s in segments))
    clock = _Clock.over(t0, t1, tz)
    data = []
    for status in MachineStatus:
        segs = [s for s in segments if s.status is status]
        if not segs:
            continue
        style = theme.andon(status)
        data.append({
            "type": "bar", "name": style.label, "y": [s.machine for s in segs],
            # widths in ms of real time: the axis draws every hour an hour wide (_Clock), a clock change too
            "x": [(s.end - s.start).total_seconds() * 1000 for s in segs],
            "base": [clock.x(s.start) for s in segs],
            "orientation": "h", "marker": {"color": style.background, "line": {"color": theme.PANEL, "width": 1}},
            "customdata": [[style.label, theme.fmt_duration((s.end - s.start).total_seconds()),
                            timefmt.fmt_time(s.start, tz), timefmt.fmt_time(s.end, tz)] for s in segs],
            "hovertemplate": "%{y}: %{customdata[0]} for %{customdata[1]} (%{customdata[2]} to %{customdata[3]})"
                             "<extra></extra>",
            # clickable: the grid below answers the pointer (a bar's own point would report its length)
            **({"hoverinfo": "skip", "hovertemplate": None} if clickable else {}),
        })
    shapes = [_vline(clock.x(cursor), colour=theme.TEXT, dash="solid")] if cursor is not None else []
    if clickable:
        n = 240
        step = (t1 - t0) / n
        times = [t0 + step * k for k in range(n + 1)]
        xs = [clock.x(t) for t in times]
        # each point's local time (the hover) and its UTC instant (what a click or a drag reports)
        points = [[clock.label(t), timefmt.fmt_utc(t)] for t in times]
        data.append({"type": "scatter", "mode": "markers", "x": xs * len(machines),
                     "y": [m for m in machines for _ in xs], "marker": {"size": 14, "color": "rgba(0,0,0,0)"},
                     "customdata": points * len(machines), "showlegend": False, "name": "cursor",
                     "hovertemplate": "%{customdata[0]}: click to move the cursor here<extra></extra>"})
    # clickable: a drag moves the cursor (assets/replay_strip.js), so plotly's own drag (a zoom) is off
    drag: dict[str, Any] = {"dragmode": False} if clickable else {}
    return _figure(data, title=title, height=height or max(200, 80 + 28 * len(machines)), barmode="overlay",
                   bargap=0.25, xaxis=clock.axis(**({"fixedrange": True} if clickable else {})), shapes=shapes,
                   **drag,
                   yaxis={"categoryorder": "array", "categoryarray": machines[::-1]})


def trend(series: Sequence[SeriesResult], *, unit: str = "", title: str = "", height: int = 300,
          tz: str | None = None) -> go.Figure:
    """Lines per series; where a series was downsampled, its min–max envelope is shaded so spikes stay visible.

    The time axis is the site's local time (``tz``; UTC when None), its zone in the axis title.
    """
    if not series or all(not s.points for s in series):
        return empty("No data in this range")
    first = next((s.points[0].ts for s in series if s.points), None)
    last = max((s.points[-1].ts for s in series if s.points), default=None)
    clock = _Clock.over(first, last, tz)
    local_hover = clock.crosses  # positions are not the wall clock after the change: hovers say the local time
    data: list[dict[str, Any]] = []
    for i, s in enumerate(series):
        if not s.points:
            continue
        colour = SERIES_GREYS[i % len(SERIES_GREYS)]
        t = [clock.x(p.ts) for p in s.points]
        name = f"{s.key.asset} {s.key.signal}" if len(series) > 1 else s.key.signal
        if s.downsampled:
            data.append({"type": "scatter", "x": t, "y": [p.max for p in s.points], "mode": "lines",
                         "line": {"width": 0}, "showlegend": False, "hoverinfo": "skip", "legendgroup": name})
            data.append({"type": "scatter", "x": t, "y": [p.min for p in s.points], "mode": "lines",
                         "line": {"width": 0}, "fill": "tonexty", "fillcolor": "rgba(77,90,102,0.18)",
                         "showlegend": False, "hoverinfo": "skip", "legendgroup": name})
        line: dict[str, Any] = {"type": "scatter", "x": t, "y": [p.value for p in s.points], "mode": "lines",
                                "name": name, "legendgroup": name, "line": {"color": colour, "width": 1.6}}
        if local_hover:
            line.update(customdata=[timefmt.fmt_datetime(p.ts, tz, seconds=True) for p in s.points],
                        hovertemplate="%{customdata}: %{y}<extra>" + name + "</extra>")
        data.append(line)
    return _figure(data, title=title, height=height, yaxis={"title": {"text": unit}},
                   xaxis={k: v for k, v in clock.axis().items() if k != "range"})


def stock_bars(rows: Sequence[StockRow], *, title: str = "") -> go.Figure:
    """On hand per item as a share of its reorder point (1.0 = at the reorder point); abnormal items coloured."""
    if not rows:
        return empty("No stocked items")
    labels = [f"{r.sku}" for r in rows]
    ratio = [r.on_hand / r.reorder_point if r.on_hand is not None and r.reorder_point > 0 else None for r in rows]
    colours = ["#c62828" if r.below_reorder and not r.replenishing else "#e0a100" if r.cover_short else "#7b838a"
               for r in rows]
    states = [theme.stock_state(known=r.on_hand is not None, below_reorder=r.below_reorder,
                                replenishing=r.replenishing, cover_short=r.cover_short) for r in rows]
    # the label is short (on hand; the state only when abnormal), 12 px, outside the bar: readable on a
    # phone; cover and the rest are in the table under the chart and in the hover
    text = [theme.fmt_number(r.on_hand, r.unit) + (" · " + state if state.isupper() else "")  # abnormal: in words
            for r, state in zip(rows, states, strict=True)]
    hover = [f"{theme.fmt_number(r.on_hand, r.unit)} · cover {theme.fmt_number(r.days_of_cover, 'd')} · {state}"
             for r, state in zip(rows, states, strict=True)]
    reach = max([1.0, *(x for x in ratio if x is not None)])
    bar = {"type": "bar", "y": labels, "x": ratio, "orientation": "h", "marker": {"color": colours}, "text": text,
           "customdata": hover, "textposition": "outside", "textfont": {"size": 12}, "cliponaxis": False,
           "hovertemplate": "%{y}: %{customdata}<extra></extra>", "showlegend": False}
    label = {"text": "reorder point", "x": 1.0, "xref": "x", "y": 1, "yref": "y domain", "showarrow": False,
             "yanchor": "bottom"}
    return _figure([bar], title=title, height=max(200, 90 + 30 * len(rows)),
                   top=40 if title else 30,  # room for the "reorder point" label
                   xaxis={"title": {"text": "on hand ÷ reorder point"}, "range": [0, reach * 1.6]},
                   yaxis={"autorange": "reversed"},
                   shapes=[_vline(1.0, colour=theme.TEXT, dash="dash")], annotations=[label])


def fan_chart(result: WhatIfResult, kpi: str) -> go.Figure:
    """P10–P90 bands and P50 lines of baseline and scenario for one KPI, continuing the actual trend."""
    bands = [b for b in result.bands if b.kpi == kpi]
    if not bands:
        return empty(f"No projection for {kpi}")
    data: list[dict[str, Any]] = [
        {"type": "scatter", "x": list(a.t), "y": list(a.values), "mode": "lines", "name": "actual",
         "line": {"color": theme.TEXT, "width": 2}}
        for a in result.actuals if a.kpi == kpi
    ]
    styles = {"baseline": (theme.BASELINE_LINE, "rgba(123,131,138,0.25)"),
              "scenario": (theme.SCENARIO_LINE, "rgba(31,95,168,0.22)")}
    for b in sorted(bands, key=lambda b: b.variant != "baseline"):
        line, fill = styles.get(b.variant, styles["baseline"])
        t = list(b.t)
        data.append({"type": "scatter", "x": t, "y": list(b.p90), "mode": "lines", "line": {"width": 0},
                     "showlegend": False, "hoverinfo": "skip", "legendgroup": b.variant})
        data.append({"type": "scatter", "x": t, "y": list(b.p10), "mode": "lines", "line": {"width": 0},
                     "fill": "tonexty", "fillcolor": fill, "name": f"{b.variant} P10–P90", "legendgroup": b.variant})
        data.append({"type": "scatter", "x": t, "y": list(b.p50), "mode": "lines", "name": f"{b.variant} P50",
                     "legendgroup": b.variant,
                     "line": {"color": line, "width": 2, "dash": "dash" if b.variant == "baseline" else "solid"}})
    return _figure(data, title=f"{kpi}: scenario against baseline", height=360,
                   yaxis={"title": {"text": bands[0].unit}},
                   shapes=[_vline(result.at, colour=theme.TEXT_MUTED, dash="dot")])


def stock_projection(rows: Sequence[StockRow], *, title: str = "", tz: str | None = None) -> go.Figure:
    """Stock projected forward per item, one panel each on a shared time axis.

    A line falls with the item's recent use and steps up at each shipment's ETA (a triangle with
    its quantity and id); the dashed line is the reorder point; the first stockout is marked (×) and
    named with its time in the panel's label, in red only when it comes before a new order could
    arrive (the lead time). Shipments past their ETA are not counted, and each panel says so.
    """
    shown = [r for r in rows if r.projection is not None]
    if not shown:
        return empty("No stock data to project")
    n = len(shown)
    gap = 0.12 if n > 1 else 0.0  # room for a two- or three-line label above each panel (short lines: a phone)
    size = (1.0 - gap * (n - 1)) / n
    data: list[dict[str, Any]] = []
    shapes: list[dict[str, Any]] = []
    notes: list[dict[str, Any]] = []
    layout: dict[str, Any] = {}
    first: dict[str, Any] = {}
    first_p = shown[0].projection
    assert first_p is not None
    start, end = first_p.start, first_p.end
    clock = _Clock.over(start, end, tz)
    for i, r in enumerate(shown):
        p = r.projection
        assert p is not None
        axis = "y" if i == 0 else f"y{i + 1}"
        top = 1.0 - i * (size + gap)
        domain = [max(0.0, round(top - size, 6)), min(1.0, round(top, 6))]  # no float drift below 0
        ax = {"domain": domain, "rangemode": "tozero", "title": {"text": r.unit}, "anchor": "x"}
        if i == 0:
            first = ax
        else:
            layout[f"yaxis{i + 1}"] = _axis(**ax)
        data.append({"type": "scatter", "x": [clock.x(t) for t in p.t], "y": list(p.level), "mode": "lines",
                     "yaxis": axis, "customdata": [timefmt.fmt_datetime(t, tz) for t in p.t],
                     "name": r.sku, "showlegend": False, "line": {"color": theme.NORMAL_LINE, "width": 2},
                     "hovertemplate": f"{r.sku}: %{{y:,.1f}} {r.unit} at %{{customdata}}<extra></extra>"})
        inside = [a for a in p.arrivals if a.t <= p.end]
        if inside:
            after = dict(zip(p.t, p.level, strict=True))  # the last level at each time: after the arrival
            data.append({"type": "scatter", "x": [clock.x(a.t) for a in inside], "y": [after[a.t] for a in inside],
                         "customdata": [timefmt.fmt_datetime(a.t, tz) for a in inside],
                         "mode": "markers+text", "yaxis": axis, "showlegend": False,
                         "marker": {"symbol": "triangle-up", "size": 11, "color": theme.TEXT},
                         "text": [f"+{theme.fmt_number(a.qty)} {a.shipment}".rstrip() for a in inside],
                         "textposition": "middle right", "textfont": {"size": 10},
                         "hovertemplate": "arrival %{text} at %{customdata}<extra></extra>"})
        shapes.append({"type": "line", "xref": "paper", "x0": 0, "x1": 1, "yref": axis, "y0": r.reorder_point,
                       "y1": r.reorder_point, "line": {"color": theme.TEXT_MUTED, "dash": "dash", "width": 1}})
        label = (f"<b>{r.sku}</b> · {theme.fmt_number(r.on_hand, r.unit)} on hand · use "
                 f"{theme.fmt_number(r.daily_use, r.unit + '/d', 2)}")
        if p.stockout_at is not None:
            urgent = r.cover_short
            colour = "#c62828" if urgent else theme.TEXT
            words = ("STOCKOUT " if urgent else "stockout ") + theme.fmt_ts(p.stockout_at, tz=tz)
            if p.stockout_at <= p.end:
                data.append({"type": "scatter", "x": [clock.x(p.stockout_at)], "y": [0], "mode": "markers",
                             "yaxis": axis, "showlegend": False,
                             "marker": {"symbol": "x", "size": 12, "color": colour},
                             "hovertemplate": f"{r.sku}: {words}<extra></extra>"})
            else:
                words += " (after the chart)"
            label += f"<br><span style='color:{colour}'>{'<b>' + words + '</b>' if urgent else words}</span>"
        elif p.rate_per_d is None:
            label += "<br>no use seen: no stockout projected"
        if p.overdue:
            label += "<br><b>OVERDUE, NOT COUNTED: " + ", ".join(
                f"{theme.fmt_number(a.qty)} {a.shipment}".rstrip() for a in p.overdue) + "</b>"
        notes.append({"text": label, "xref": "paper", "x": 0, "xanchor": "left", "yref": "paper", "y": top,
                      "yanchor": "bottom", "showarrow": False, "font": {"size": 11}, "align": "left"})
    fig = _figure(data, title=title, height=70 + 175 * n, top=62 if title else 48,
                  xaxis=clock.axis(anchor="y" if n == 1 else f"y{n}"),
                  yaxis=first, shapes=shapes, annotations=notes, **layout)
    return fig
