"""The Site and Machine pages' "stops needing a reason" card: today's unexplained stops, a reason each, record.

The list is ``ShiftService.needing_reason`` (today's shifts, planned time, no rule's reason and no
person's yet); each stop has a reason dropdown (the site's downtime tree) whose id names the stop and
its shift (``shift_view.stop_id``), and the record button goes through ``ShiftService.record_reasons``,
the Shift page's own path (operator role, then the collector). A row is a wrapping flex line, not a
table: it reads on a phone without sideways scrolling.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, dcc, html

from dashboard import components, ids
from dashboard import shift_figures as figs
from dashboard.auth import current_user
from dashboard.pages._shared import card, notice
from dashboard.shift_view import ShiftService, stop_id
from twin.errors import TwinError

__all__ = ["MACHINE_STOPS", "SITE_STOPS", "StopIds", "register_stops", "stops_card", "stops_list"]

SHOWN = 12  # at most this many stops in the card (the Shift page and the report have them all)


@dataclass(frozen=True, slots=True, kw_only=True)
class StopIds:
    """The ids of one page's card (``scope``: the pickers' pattern-matching scope)."""

    scope: str
    stops: str
    comment: str
    button: str
    result: str


SITE_STOPS = StopIds(scope="site", stops=ids.SITE_STOPS, comment=ids.SITE_STOP_COMMENT, button=ids.SITE_CLASSIFY,
                     result=ids.SITE_CLASSIFY_RESULT)
MACHINE_STOPS = StopIds(scope="machine", stops=ids.MACHINE_STOPS, comment=ids.MACHINE_STOP_COMMENT,
                        button=ids.MACHINE_CLASSIFY, result=ids.MACHINE_CLASSIFY_RESULT)


def stops_card(i: StopIds, title: str) -> dbc.Card:
    return card(title, html.Div(id=i.stops),
                dbc.InputGroup([dbc.Input(id=i.comment, placeholder="Comment (optional)", maxLength=200),
                                dbc.Button("Record reasons", id=i.button, color="secondary")], className="mt-2"),
                html.Div(id=i.result, className="mt-1"))


def stops_list(shifts: ShiftService, site: str, machine: str | None, scope: str) -> Any:
    """Today's stops of ``site`` (of ``machine`` only, when given) that need a person, with a reason picker."""
    try:
        found = shifts.needing_reason(site, machine)
    except TwinError as exc:
        return notice(str(exc), error=True)
    if not found:
        return html.P("No stop of today's shifts needs a reason.", className="muted stops-none")
    spec = shifts.queries.fleet.site(site)
    reasons = [{"label": f"{figs.reason_label(r.id)} ({r.category.value})", "value": r.id}
               for r in spec.downtime.reasons]
    rows = []
    for w, s in found[:SHOWN]:
        what = [html.B(s.machine) if machine is None else html.Span(), " ",
                components.when(s.start, spec.timezone), f" · {s.seconds / 60:.0f} min · {s.status.value} · {w.name}"]
        rows.append(html.Div([
            html.Div(what, className="small stop-what", style={"flex": "1 1 220px"}),
            dcc.Dropdown(id={"type": ids.STOP_REASON, "scope": scope, "stop": stop_id(s.machine, s.start, w)},
                         options=reasons, value=None, placeholder="Reason…", clearable=False,
                         className="stop-reason", style={"flex": "1 1 170px", "minWidth": "0"}),
        ], className="stop-needs-person", style={"display": "flex", "flexWrap": "wrap", "gap": "6px",
                                                 "alignItems": "center", "marginBottom": "6px"}))
    more = len(found) - SHOWN
    tail = [html.P(f"{more} more on the Shift page.", className="muted small")] if more > 0 else []
    total = sum(s.seconds for _, s in found)
    head = html.P(f"{len(found)} stop(s), {total / 60:.0f} min, need a reason (operator role).",
                  className="muted small stops-head")
    return html.Div([head, *rows, *tail])


def register_stops(app: dash.Dash, shifts: ShiftService, i: StopIds, site_id: str,
                   machine_id: str | None = None) -> None:
    """The card's callbacks: draw the list when the site (machine) changes or after recording; record."""
    machine_inputs = [Input(machine_id, "value")] if machine_id else []

    @app.callback(Output(i.stops, "children"), Input(site_id, "value"), *machine_inputs,
                  Input(i.result, "children"))
    def _draw(site: str | None, *rest: Any) -> Any:
        machine = rest[0] if machine_id else None
        if not site or (machine_id and not machine):
            raise dash.exceptions.PreventUpdate
        return stops_list(shifts, site, machine, i.scope)

    @app.callback(Output(i.result, "children"), Input(i.button, "n_clicks"),
                  State({"type": ids.STOP_REASON, "scope": i.scope, "stop": ALL}, "value"),
                  State({"type": ids.STOP_REASON, "scope": i.scope, "stop": ALL}, "id"),
                  State(i.comment, "value"), State(site_id, "value"), prevent_initial_call=True)
    def _record(_n: int | None, values: list[Any], pickers: list[dict[str, str]], comment: str | None,
                site: str | None) -> Any:
        try:
            picks = [(str(p.get("stop", "")), v) for v, p in zip(values, pickers, strict=True)]
            return notice(shifts.record_reasons(site=site, user=current_user(), picks=picks, comment=comment))
        except (TwinError, ValueError) as exc:
            return notice(str(exc), error=True)
