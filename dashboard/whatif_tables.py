"""The what-if page's result tables: pure builders, a ``WhatIfResult`` (or its parts) in, Dash HTML out.

One job: how a run reads as tables. KPI deltas are a table rather than one chart (units, orders,
% and hours on one axis put every small change on zero): each row shows baseline and scenario
side by side, the delta with its 95 % interval (``dashboard.whatif_view.delta_row``: pp for
percentage points, decimals from the interval's width) and an inline bar on the row's own scale,
coloured only when the interval excludes zero. The effect of each intervention alone, the on-time
probability of open orders and the comparison of the session's runs are tables too.

On a phone (below 576 px, ``.wf-stack`` in ``assets/hmi.css``) the deltas and the effects tables
fold each row into a block: the KPI on its own line, then each cell with its column's name before
it (``data-label``), the bar across the whole width; nothing scrolls sideways, not even in its card.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import dash_bootstrap_components as dbc
from dash import html

from dashboard import theme, timefmt
from dashboard.scenario_store import SavedScenario
from dashboard.whatif_view import DeltaRow, Effect, KpiDelta, WhatIfResult, delta_row

__all__ = ["compare_table", "delta_bar", "deltas_table", "effects_table", "orders_table", "saved_options"]


TRACK = {"position": "relative", "height": "14px", "minWidth": "50px", "background": "#dcdee0",
         "borderRadius": "2px"}
ZERO = {"position": "absolute", "left": "50%", "top": "0", "bottom": "0", "width": "1px", "background": theme.TEXT}


def delta_bar(row: DeltaRow) -> html.Div:
    """The row's own small axis: zero in the middle, the interval as a bar, the estimate as a dot."""
    lo, hi = sorted((row.bar_from, row.bar_to))
    ci = {"position": "absolute", "top": "5px", "height": "4px", "left": f"{lo:.1f}%",
          "width": f"{max(hi - lo, 0.5):.1f}%", "background": row.colour, "opacity": 0.6}
    dot = {"position": "absolute", "top": "2px", "width": "10px", "height": "10px", "marginLeft": "-5px",
           "borderRadius": "50%", "left": f"{row.dot:.1f}%", "background": row.colour}
    # "point": the estimate (the class the browser tests count, one per KPI)
    return html.Div([html.Div(style=ZERO), html.Div(style=ci), html.Div(className="wf-dot point", style=dot)],
                    className="wf-track", style=TRACK, title=f"{row.delta} {row.ci}")


def _cell(label: str, children: Any, className: str = "num", **style: str) -> html.Td:
    """A cell that names its column (``data-label``: what the phone layout writes before its value)."""
    return html.Td(children, className=className, style=style or None, **{"data-label": label})


def _delta_cells(row: DeltaRow, label: str = "Δ (95 % CI)") -> list[Any]:
    """Δ over its interval in one cell (narrow enough for a phone), then the row's bar."""
    style = {"color": row.colour, "fontWeight": 600} if row.tone != "unclear" else {}
    return [_cell(label, [html.Div(row.delta, style=style), html.Div(row.ci, className="muted small")],
                  "num wf-delta", whiteSpace="nowrap"),
            html.Td(delta_bar(row), className="wf-bar", style={"width": "22%", "minWidth": "60px"})]


def deltas_table(deltas: Sequence[KpiDelta]) -> Any:
    """Baseline, scenario, Δ and its 95 % interval per KPI, with the inline bar (see the module docstring)."""
    if not deltas:
        return html.Div("No KPI deltas", className="muted")
    body = []
    for d in deltas:
        row = delta_row(d)
        body.append(html.Tr([html.Td(row.label, className="wf-kpi"), _cell("Baseline", row.baseline),
                             _cell("Scenario", row.scenario), *_delta_cells(row)],
                            className=f"wf-{row.tone}"))
    head = html.Thead(html.Tr([html.Th(h) for h in ("KPI", "Baseline", "Scenario", "Δ (95 % CI)", "")]))
    note = html.Div("Coloured only where the 95 % interval excludes zero: green better, red worse. "
                    "pp = percentage points. Each bar has its own scale.", className="muted small")
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", className="hmi-table wf-deltas wf-stack"), note],
                    className="table-responsive")


def effects_table(effects: Sequence[Effect]) -> Any:
    """Each intervention run alone against the baseline: Δ on-time and Δ output with their intervals."""
    if not effects:
        return html.Div("With two or more interventions, each one's effect alone is shown here", className="muted")
    body = []
    for e in effects:
        cells: list[Any] = [html.Td(e.intervention, className="small wf-kpi")]
        for d, label in ((e.on_time, "Δ on-time"), (e.output, "Δ output")):
            if d is None:
                cells += [_cell(label, "–"), html.Td("", className="wf-bar")]
                continue
            cells += _delta_cells(delta_row(d), label)
        body.append(html.Tr(cells))
    head = html.Thead(html.Tr([html.Th("Intervention alone"), html.Th("Δ on-time (95 % CI)"), html.Th(""),
                               html.Th("Δ output (95 % CI)"), html.Th("")]))
    reps = sorted({e.replications for e in effects})
    note = html.Div(f"{'/'.join(map(str, reps))} paired replications each, the run's seed; the effects need not "
                    "add up to the whole scenario's", className="muted small")
    return html.Div([dbc.Table([head, html.Tbody(body)], size="sm", className="hmi-table wf-effects wf-stack"), note],
                    className="table-responsive")


def orders_table(result: WhatIfResult, tz: str | None = None) -> Any:
    """The open orders' on-time probability, baseline and scenario, least likely first.

    Due times in the site's zone ``tz`` (UTC when None), the UTC instant on hover.
    """
    if not result.orders:
        return html.Div("No open orders in the snapshot", className="muted")
    rows = []
    for o in sorted(result.orders, key=lambda o: o.p_scenario):
        cls = "row-red" if o.p_scenario < 0.5 else "row-amber" if o.p_scenario < 0.8 else ""
        rows.append(html.Tr([html.Td(o.order), html.Td(theme.fmt_ts(o.due, tz=tz), title=timefmt.utc_title(o.due)),
                             html.Td(theme.fmt_pct(o.p_baseline)),
                             html.Td(theme.fmt_pct(o.p_scenario)),
                             html.Td(f"{theme.fmt_pct(o.ci_low)} – {theme.fmt_pct(o.ci_high)}")], className=cls))
    head = html.Thead(html.Tr([html.Th(h) for h in ("Order", "Due", "Baseline", "Scenario", "95 % CI")]))
    return html.Div(dbc.Table([head, html.Tbody(rows)], size="sm", className="hmi-table"),
                    className="table-responsive")


def compare_table(runs: Sequence[dict[str, Any]]) -> Any:
    """The session's runs side by side: Δ and interval of each KPI, rounded as in the deltas table."""
    if not runs:
        return html.Div("Runs of this session appear here for comparison", className="muted")
    results = [WhatIfResult.from_dict(r) for r in runs]
    kpis = list(dict.fromkeys(d.kpi for r in results for d in r.deltas))
    head = html.Thead(html.Tr([html.Th("Run"), *[html.Th(f"Δ {k}") for k in kpis]]))
    body = []
    for r in results:
        by = {d.kpi: delta_row(d) for d in r.deltas}
        cells = [html.Td(by[k].delta_ci if k in by else "–", className="num") for k in kpis]
        body.append(html.Tr([html.Td(f"{r.name} · {r.site} · {r.replications} reps"), *cells]))
    return html.Div(dbc.Table([head, html.Tbody(body)], size="sm", className="hmi-table"),
                    className="table-responsive")


def saved_options(saved: Sequence[SavedScenario]) -> list[dict[str, str]]:
    """The saved scenarios as dropdown options, newest first: "name · author · time"."""
    return [{"label": f"{s.name} · {s.author or 'unknown'} · {theme.fmt_ts(s.saved)}", "value": s.name}
            for s in saved]
