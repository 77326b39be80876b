"""The shift report as a printable HTML page (charts as inline SVG) and as tables (rows for CSV).

Pure text from a ``twin.shift.ShiftReport``: no I/O. Times are shown in the site's zone; durations
in minutes; ratios as percentages. The same rows fill the page's tables and the CSV files.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from html import escape
from zoneinfo import ZoneInfo

from twin.shift import ShiftReport

__all__ = ["render_html", "tables"]

Rows = list[list[object]]
_NEEDS_A_PERSON = "(needs a person)"


def _reason(r: str | None) -> str:
    return _NEEDS_A_PERSON if r is None else r


def _pct(x: float | None) -> str:
    return "" if x is None else f"{100 * x:.1f}"


def _min(seconds: float | None) -> str:
    return "" if seconds is None else f"{seconds / 60:.1f}"


def _local(rep: ShiftReport, t: datetime | None) -> str:
    return "" if t is None else t.astimezone(ZoneInfo(rep.site.timezone)).strftime("%Y-%m-%d %H:%M")


def tables(rep: ShiftReport) -> dict[str, Rows]:
    """Every table of the report: its name (the CSV file's) → rows, the header first."""
    o = rep.oee
    summary: Rows = [["figure", "value", "unit"],
                     ["site", rep.site.id, ""], ["shift", rep.window.name, ""],
                     ["start", rep.window.start.isoformat(), "UTC"], ["end", rep.window.end.isoformat(), "UTC"],
                     ["planned time", _min(rep.planned_s), "min"],
                     ["output", rep.output.actual, "units"], ["plan", f"{rep.output.plan:.1f}", "units"],
                     ["output vs plan", _pct(rep.output.ratio), "%"],
                     ["OEE", _pct(o.oee), "%"], ["availability", _pct(o.availability), "%"],
                     ["performance", _pct(o.performance), "%"], ["quality", _pct(o.quality), "%"],
                     ["alarms annunciated", rep.alarms.annunciated, "alarms"],
                     ["alarms suppressed by design", rep.alarms.suppressed, "alarms"],
                     ["alarms shelved or out of service", rep.alarms.shelved, "alarms"],
                     ["alarms per 10 min (average)", f"{rep.alarms.average_per_10_min:.2f}", rep.alarms.benchmark],
                     ["time in flood", _min(rep.alarms.time_in_flood_s), "min"]]
    machines: Rows = [["machine", "OEE %", "availability %", "performance %", "quality %", "good", "scrap",
                       "stops", "lost min", "unclassified min"]]
    for m in rep.machines:
        machines.append([m.machine, _pct(m.oee.oee), _pct(m.oee.availability), _pct(m.oee.performance),
                         _pct(m.oee.quality), m.good, m.scrap, m.stops, _min(m.lost_s), _min(m.unclassified_s)])
    pareto: Rows = [["reason", "lost min", "stops", "share %", "cumulative %"]]
    pareto += [[_reason(r.reason), _min(r.seconds), r.stops, _pct(r.share), _pct(r.cumulative)] for r in rep.pareto]
    w = rep.waterfall
    waterfall: Rows = [["step", "reason", "min", "share of planned %"],
                       ["planned time", "", _min(w.planned_s), "100.0"]]
    for s in w.steps:
        waterfall.append([s.kind, "" if s.kind != "availability" else _reason(s.reason), _min(s.seconds),
                          _pct(s.seconds / w.planned_s if w.planned_s else None)])
    waterfall.append(["fully productive time (OEE)", "", _min(w.productive_s), _pct(w.oee)])
    stops: Rows = [["machine", "start", "end", "min", "status", "reason", "category", "why", "planned time",
                    "classified by", "classified", "comment"]]
    stops += [[s.machine, _local(rep, s.start), _local(rep, s.end), _min(s.seconds), s.status.value,
               _reason(s.reason), "" if s.category is None else s.category.value, s.why, "yes" if s.planned else "no",
               s.by, _local(rep, s.classified_at), s.comment]
              for s in rep.stops]
    a = rep.alarms
    rate: Rows = [["period start", "alarms"]]
    rate += [[_local(rep, t), n] for t, n in a.per_period]
    actors: Rows = [["alarm", "asset", "message", "priority", "count", "share %", "acknowledged",
                     "median min to acknowledge", "chattering", "stale"]]
    chatter = {c.key for c in a.chattering}
    stale = {x.key for x in a.stale}
    actors += [[b.key, b.asset, b.message, b.priority.name, b.count, _pct(b.share), b.acknowledged,
                _min(b.median_ack_s), "yes" if b.key in chatter else "", "yes" if b.key in stale else ""]
               for b in a.bad_actors]
    journal: Rows = [["raised", "alarm", "asset", "priority", "message", "cleared", "acknowledged by",
                      "acknowledged", "comment", "suppressed by design", "shelved"]]
    journal += [[_local(rep, j.raised), j.key, j.asset, j.priority.name, j.message, _local(rep, j.cleared),
                 j.acked_by, _local(rep, j.acked_at), j.comment, "yes" if j.suppressed else "",
                 "yes" if j.shelved else ""] for j in a.journal]
    shelving: Rows = [["time", "alarm", "change", "by", "why"]]
    shelving += [[_local(rep, c.ts), c.key, c.change.replace("_", " "), c.by, c.why] for c in rep.shelving]
    shelving += [[_local(rep, e.ts), str(e.data.get("key", "")), f"{e.data.get('change', '')} (not applied)",
                  str(e.data.get("user", "")), why] for e, why in rep.shelving_refused]
    orders: Rows = [["order", "product", "qty", "due", "shipped", "late min", "state"]]
    orders += [[r.order, r.product, r.qty, _local(rep, r.due), _local(rep, r.shipped), _min(r.late_s),
                "shipped late" if r.late_s > 0 else "shipped"] for r in rep.shipped]
    orders += [[r.order, r.product, r.qty, _local(rep, r.due), "", _min(r.late_s), "open, past due"]
               for r in rep.late_open]
    stock: Rows = [["sku", "on hand", "reorder point", "cover days", "lead time days", "why"]]
    stock += [[s.sku, "" if s.on_hand is None else f"{s.on_hand:g}", f"{s.reorder_point:g}",
               "" if s.cover_d is None else f"{s.cover_d:.1f}", f"{s.lead_time_d:g}", s.why] for s in rep.stock_at_risk]
    nxt: Rows = [["figure", "value"]]
    n = rep.next_shift
    if n is not None:
        nxt += [["shift", n.window.name], ["start", n.window.start.isoformat()], ["end", n.window.end.isoformat()],
                ["replications", n.replications], ["calibrated from history", "yes" if n.calibrated else "no"],
                ["units P10", f"{n.units_p10:.1f}"], ["units P50", f"{n.units_p50:.1f}"],
                ["units P90", f"{n.units_p90:.1f}"], ["plan", f"{n.plan:.1f}"]]
        nxt += [[f"stockout {sku}", f"{100 * p:.0f} % ({100 * lo:.0f}-{100 * hi:.0f} %)"]
                for sku, p, lo, hi in n.stockouts]
        nxt += [[f"order {o} on time", f"{100 * p:.0f} %"] for o, p in n.orders_at_risk]
    return {"summary": summary, "machines": machines, "pareto": pareto, "waterfall": waterfall, "stops": stops,
            "alarm_rate": rate, "alarm_bad_actors": actors, "alarm_journal": journal,
            "alarm_shelving": shelving, "orders": orders,
            "stock_at_risk": stock, "next_shift": nxt}


def _table(rows: Rows, *, limit: int | None = None) -> str:
    head, body = rows[0], rows[1:]
    more = ""
    if limit is not None and len(body) > limit:
        more = f"<p class='note'>{len(body) - limit} more rows in the CSV file.</p>"
        body = body[:limit]
    if not body:
        return "<p class='note'>None.</p>"
    th = "".join(f"<th>{escape(str(h))}</th>" for h in head)
    trs = "".join("<tr>" + "".join(f"<td>{escape('' if c is None else str(c))}</td>" for c in r) + "</tr>"
                  for r in body)
    return f"<table><thead><tr>{th}</tr></thead><tbody>{trs}</tbody></table>{more}"


_W, _H, _PAD = 680, 220, 40


_GREY, _BLUE, _GREEN = "#9aa5b1", "#1f4e79", "#5b8c5a"


def _bars_svg(title: str, bars: Sequence[tuple[str, float, float, str]], *, unit: str,
              cumulative: Sequence[float] | None = None, lines: Sequence[tuple[float, str]] = (),
              scale_max: float | None = None) -> str:
    """A bar chart as SVG: each bar (label, low, high, colour); ``cumulative`` (0..1) draws a Pareto line.

    The value axis runs from 0 to ``scale_max`` (default: the highest bar or line).
    """
    n = max(len(bars), 1)
    vmax = scale_max or max([*(hi for _, _, hi, _ in bars), *(v for v, _ in lines), 1e-9])
    inner_w, inner_h = _W - 2 * _PAD, _H - 2 * _PAD
    bw = inner_w / n

    def y(v: float) -> float:
        return _PAD + inner_h * (1 - v / vmax)

    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{_W}" height="{_H + 40}" role="img" '
             f'aria-label="{escape(title)}" font-family="sans-serif" font-size="10">',
             f'<text x="{_PAD}" y="16" font-size="12" font-weight="bold">{escape(title)}</text>',
             f'<line x1="{_PAD}" y1="{y(0):.1f}" x2="{_W - _PAD}" y2="{y(0):.1f}" stroke="#333"/>',
             f'<text x="4" y="{_PAD - 14}">{escape(unit)}</text>',
             f'<text x="4" y="{y(vmax) + 4:.1f}">{vmax:.0f}</text>']
    for i, (label, lo, hi, colour) in enumerate(bars):
        parts.append(f'<rect x="{_PAD + i * bw + 2:.1f}" y="{y(hi):.1f}" width="{max(bw - 4, 1):.1f}" '
                     f'height="{max(y(lo) - y(hi), 0.5):.1f}" fill="{colour}"><title>{escape(label)}: '
                     f'{hi - lo:.1f} {escape(unit)}</title></rect>')
        if n <= 16:
            x = _PAD + (i + 0.5) * bw
            parts.append(f'<text x="{x:.1f}" y="{_H - _PAD + 12}" text-anchor="end" '
                         f'transform="rotate(-30 {x:.1f} {_H - _PAD + 12})">{escape(label[:24])}</text>')
    for value, label in lines:
        parts.append(f'<line x1="{_PAD}" y1="{y(value):.1f}" x2="{_W - _PAD}" y2="{y(value):.1f}" '
                     f'stroke="#b03030" stroke-dasharray="4 3"/><text x="{_W - _PAD + 2}" y="{y(value) + 3:.1f}">'
                     f'{escape(label)}</text>')
    if cumulative:
        pts = " ".join(f"{_PAD + (i + 1) * bw:.1f},{_PAD + inner_h * (1 - c):.1f}" for i, c in enumerate(cumulative))
        pts = f"{_PAD:.1f},{y(0):.1f} " + pts
        parts.append(f'<polyline points="{pts}" fill="none" stroke="{_BLUE}" stroke-width="2"/>'
                     f'<text x="{_W - _PAD + 2}" y="{_PAD + 3}">100 %</text>')
    parts.append("</svg>")
    return "".join(parts)


def _pareto_svg(rep: ShiftReport) -> str:
    rows = rep.pareto
    total = sum(r.seconds for r in rows) / 60
    # the classic Pareto: bars on a scale up to all lost time, so the cumulative line (0-100 %) meets
    # the top of the first bar and ends at 100 % = all lost minutes
    return _bars_svg("Downtime Pareto: lost minutes by reason",
                     [(_reason(r.reason), 0.0, r.seconds / 60, _GREY) for r in rows], unit="min",
                     cumulative=[r.cumulative for r in rows] if total > 0 else None,
                     scale_max=total if total > 0 else None)


def _waterfall_svg(rep: ShiftReport) -> str:
    w = rep.waterfall
    level = w.planned_s / 60
    bars = [("planned", 0.0, level, _BLUE)]
    for s in w.steps:
        name = _reason(s.reason) if s.kind == "availability" else s.kind
        after = level - s.seconds / 60
        bars.append((name, min(level, after), max(level, after), _GREY if s.seconds >= 0 else _GREEN))
        level = after
    if w.productive_s is not None:
        bars.append(("OEE", 0.0, w.productive_s / 60, _BLUE))
    return _bars_svg("OEE loss waterfall (minutes of planned time)", bars, unit="min")


def _rate_svg(rep: ShiftReport) -> str:
    a = rep.alarms
    return _bars_svg("Alarms per 10 minutes (ISA-18.2: ~1 acceptable, ~2 manageable, >10 flood)",
                     [(_local(rep, t)[-5:], 0.0, float(n), _GREY) for t, n in a.per_period],
                     unit="alarms", lines=[(1.0, "1"), (2.0, "2"), (10.0, "flood")])


_CSS = """
body { font-family: sans-serif; font-size: 11pt; color: #222; margin: 1.5em; }
h1 { font-size: 16pt; margin-bottom: 0; } h2 { font-size: 13pt; border-bottom: 1px solid #999; margin-top: 1.4em; }
.tiles { display: flex; flex-wrap: wrap; gap: 0.6em; } .tile { border: 1px solid #bbb; padding: 0.4em 0.8em; }
.tile b { display: block; font-size: 14pt; } table { border-collapse: collapse; font-size: 9pt; margin: 0.4em 0; }
th, td { border: 1px solid #ccc; padding: 2px 6px; text-align: left; } th { background: #eee; }
.note { color: #555; font-size: 9pt; } section { page-break-inside: avoid; }
@page { size: A4; margin: 1.2cm; }
"""


def _tile(label: str, value: str) -> str:
    return f"<div class='tile'>{escape(label)}<b>{escape(value)}</b></div>"


def _p(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _next_shift(rep: ShiftReport) -> str:
    n = rep.next_shift
    if n is None:
        return "<p class='note'>No projection (<code>--projection 0</code>, or no shift in the next 8 days).</p>"
    stock = ", ".join(f"{escape(sku)} {100 * p:.0f} %" for sku, p, _, _ in n.stockouts) or "none"
    orders = ", ".join(f"{escape(o)} {100 * p:.0f} %" for o, p in n.orders_at_risk) or "none below 80 %"
    return (f"<p>{escape(n.window.name)} shift, {escape(_local(rep, n.window.start))} to "
            f"{escape(_local(rep, n.window.end))}: <b>{n.units_p50:.0f}</b> units (P10 {n.units_p10:.0f}, "
            f"P90 {n.units_p90:.0f}) against a plan of {n.plan:.0f}. Stockout risk before its end: {stock}. "
            f"Orders open now and their chance to finish on time: {orders}.</p>"
            f"<p class='note'>{n.replications} replications of the what-if baseline forked at this shift's end, "
            f"{'calibrated from the history before it' if n.calibrated else 'with the configured figures'}.</p>")


def _page_stops(rep: ShiftReport) -> Rows:
    """The stops table of the page (the CSV has every column): who classified it and why in one cell.

    The stops a person classified (or has to) come first, each group in time order.
    """
    rows: Rows = [["machine", "start", "end", "min", "status", "reason", "category", "why / who", "planned time"]]
    people = sorted(rep.stops, key=lambda s: 0 if s.reason is None or s.by else 1)
    for s in people:
        who = s.why if not s.by else f"{s.by}, {_local(rep, s.classified_at)}" + (f": {s.comment}" if s.comment else "")
        rows.append([s.machine, _local(rep, s.start), _local(rep, s.end), _min(s.seconds), s.status.value,
                     _reason(s.reason), "" if s.category is None else s.category.value, who,
                     "yes" if s.planned else "no"])
    return rows


def render_html(rep: ShiftReport) -> str:
    """The printable page of the report."""
    t = tables(rep)
    o, a, w = rep.oee, rep.alarms, rep.waterfall
    needs = sum(s.seconds for s in rep.stops if s.planned and s.reason is None)
    title = f"Shift report: {rep.site.name}, {rep.window.name} shift, {_local(rep, rep.window.start)}"
    tiles = "".join([
        _tile("Output vs plan", f"{rep.output.actual} / {rep.output.plan:.0f}"),
        _tile("OEE", _p(o.oee)), _tile("Availability", _p(o.availability)), _tile("Performance", _p(o.performance)),
        _tile("Quality", _p(o.quality)),
        _tile("Lost time", f"{sum(r.seconds for r in rep.pareto) / 60:.0f} min"),
        _tile("Needs a person", f"{needs / 60:.0f} min"),
        _tile("Alarms / 10 min", f"{a.average_per_10_min:.2f} ({a.benchmark})"),
    ])
    prios = ", ".join(f"{p.name.lower()} {n} ({100 * s:.0f} %)" for p, n, s in a.priorities) or "none"
    figures = (f"<p>{a.annunciated} alarms annunciated, {a.suppressed} suppressed by design and {a.shelved} shelved "
               f"(in the journal, in no figure); peak {a.peak_per_10_min} in 10 min; {len(a.floods)} flood(s), "
               f"{a.time_in_flood_s / 60:.0f} min in flood ({100 * a.flood_share:.1f} % of the shift); "
               f"{len(a.chattering)} chattering, {len(a.stale)} stale (active over 24 h). Priorities: {prios}.</p>")
    body = [
        f"<h1>{escape(title)}</h1>",
        f"<p class='note'>{escape(_local(rep, rep.window.start))} to {escape(_local(rep, rep.window.end))} "
        f"({escape(rep.site.timezone)}); planned time {rep.planned_s / 60:.0f} min.</p>",
        f"<div class='tiles'>{tiles}</div>",
        "<section><h2>Machines</h2>" + _table(t["machines"]) + "</section>",
        "<section><h2>Downtime by reason</h2>" + _pareto_svg(rep) + _table(t["pareto"]) + "</section>",
        "<section><h2>Where the planned time went</h2>" + _waterfall_svg(rep) + _table(t["waterfall"])
        + f"<p class='note'>The steps add up to the planned time; the last is planned time × OEE "
          f"({_p(w.oee)}), the OEE above.</p></section>",
        "<section><h2>Stops</h2>" + _table(_page_stops(rep), limit=40)
        + "<p class='note'>Those a person classified or has to classify first, then in time order.</p></section>",
        "<section><h2>Alarms (ISA-18.2)</h2>" + _rate_svg(rep) + figures
        + "<h3>Top alarms and their handling</h3>" + _table(t["alarm_bad_actors"])
        + "<h3>Shelving and out of service</h3>" + _table(t["alarm_shelving"], limit=40) + "</section>",
        "<section><h2>Orders shipped and late</h2>" + _table(t["orders"], limit=40) + "</section>",
        "<section><h2>Stock at risk</h2>" + _table(t["stock_at_risk"]) + "</section>",
        "<section><h2>The next shift, as the twin projects it</h2>" + _next_shift(rep) + "</section>",
    ]
    return (f"<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><title>{escape(title)}</title>"
            f"<style>{_CSS}</style></head><body>{''.join(body)}</body></html>\n")
