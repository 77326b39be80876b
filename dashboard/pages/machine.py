"""Machine page: trends over a chosen range (downsampled by the historian), events and KPIs.

The range is the header's time control (``?from=&to=``, or the hours picked before ``?at=`` or now);
the tile shows the machine as it was at the range's end. Times are in the site's local time.
The Health card is the health service's last view (``dashboard.health``): the failure risk within
8 h and the rest of the shift with its 90 % interval, the driving signals, the model's note and the
risk trend with the signals' learnt thresholds; nothing is read from the history for it here.
The machine's stops of today's shifts that no rule explains are listed with a reason dropdown each
(``dashboard.pages._stops``: the Shift page's path, operator role).
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import components, figures, health_view, ids, theme
from dashboard.health import HealthService
from dashboard.pages._shared import card, choose, register_page, site_choice, site_dropdown, url_param
from dashboard.pages._stops import MACHINE_STOPS, register_stops, stops_card
from dashboard.services import Services
from dashboard.shift_view import shift_service
from dashboard.timefmt import TimeChoice
from dashboard.viewmodels import MachineKpis, MachineView

__all__ = ["RANGES_H", "kpi_cards", "layout", "register", "render"]

PATH = "/machine"
RANGES_H = {"1 h": 1.0, "8 h": 8.0, "24 h": 24.0, "7 d": 168.0}
MAX_POINTS = 1000


def layout(site: str | None = None, machine: str | None = None, **_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Machine"), html.Div(site_dropdown(ids.MACHINE_SITE, site), className="head-picker"),
                      html.Div(dcc.Dropdown(id=ids.MACHINE_SELECT, value=None, options=[], clearable=False,
                                            placeholder="Machine…"), className="head-picker"),
                      dbc.RadioItems(id=ids.MACHINE_RANGE, options=list(RANGES_H), value="8 h", inline=True,
                                     className="range-picker")], className="page-head"),
            dbc.Row([dbc.Col(html.Div(id=ids.MACHINE_HEADER), md=3), dbc.Col(html.Div(id=ids.MACHINE_KPIS), md=9)],
                    className="mb-3"),
            card("Health", html.Div(id=ids.MACHINE_HEALTH), dcc.Store(id=ids.MACHINE_HEALTH_DRAWN),
                 dcc.Graph(id=ids.MACHINE_RISK, config={"displaylogo": False})),
            card("Trends", dcc.Checklist(id=ids.MACHINE_SIGNALS, options=[], value=[], inline=True,
                                         className="signal-picker"),
                 dcc.Graph(id=ids.MACHINE_TREND, config={"displaylogo": False})),
            stops_card(MACHINE_STOPS, "Stops needing a reason (today)"),
            card("Events", html.Div(id=ids.MACHINE_EVENTS)),
        ]
    )


def kpi_cards(k: MachineKpis) -> dbc.Row:
    items = [
        ("OEE", theme.fmt_pct(k.oee.oee)), ("Availability", theme.fmt_pct(k.oee.availability)),
        ("Performance", theme.fmt_pct(k.oee.performance)), ("Quality", theme.fmt_pct(k.oee.quality)),
        ("Good", theme.fmt_number(k.oee.good)), ("Scrap rate", theme.fmt_pct(k.scrap_rate, 1)),
        ("Failures", str(k.failures)), ("MTBF", theme.fmt_number(k.mtbf_h, "h")),
        ("MTTR", theme.fmt_number(k.mttr_h, "h")), ("Throughput", theme.fmt_number(k.throughput_per_h, "/h")),
    ]
    boxes = [html.Div([html.Div(label, className="kpi-label"), html.Div(value, className="kpi-mid")],
                      className="kpi-box") for label, value in items]
    return dbc.Row([dbc.Col(b, xs=6, md=4, lg=2) for b in boxes], className="g-2")


def render(view: MachineView) -> tuple[Any, ...]:
    unit = next((view.units.get(s.key.signal, "") for s in view.series), "")
    trend = figures.trend(view.series, unit=unit, height=360, tz=view.timezone)
    events = components.event_table(view.events, view.timezone, with_asset=False)
    span = html.Div(["from ", components.when(view.t0, view.timezone), " to ",
                     components.when(view.t1, view.timezone)], className="small muted mt-1")
    return html.Div([components.machine_tile(view.tile, link=False), span]), kpi_cards(view.kpis), trend, events


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Machine", title="Machine · Micro-factory twin", order=2,
                       layout=layout)
    queries = services.queries
    found = services.extra.get("health")
    health: HealthService | None = found if isinstance(found, HealthService) else None
    register_stops(app, shift_service(queries, services.extra.get("shift")), MACHINE_STOPS, ids.MACHINE_SITE,
                   ids.MACHINE_SELECT)

    # the URL decides what the page opens with (a tile's link, a reload, a deep link); the pickers after
    @app.callback(Output(ids.MACHINE_SITE, "options"), Output(ids.MACHINE_SITE, "value"),
                  Input(ids.LOCATION, "pathname"), Input(ids.LOCATION, "search"), State(ids.MACHINE_SITE, "value"))
    def _sites(_p: str | None, search: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        return site_choice(queries, search, value)

    @app.callback(Output(ids.MACHINE_SELECT, "options"), Output(ids.MACHINE_SELECT, "value"),
                  Input(ids.MACHINE_SITE, "value"), State(ids.LOCATION, "search"), State(ids.MACHINE_SELECT, "value"))
    def _machines(site: str | None, search: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        if not site:
            raise PreventUpdate
        machines = queries.fleet.site(site).machines
        return ([{"label": f"{m.id} ({m.template.id})", "value": m.id} for m in machines],
                choose([m.id for m in machines], url_param(search, "machine"), value))

    @app.callback(Output(ids.MACHINE_SIGNALS, "options"), Output(ids.MACHINE_SIGNALS, "value"),
                  Input(ids.MACHINE_SELECT, "value"), State(ids.MACHINE_SITE, "value"))
    def _signals(machine: str | None, site: str | None) -> tuple[list[dict[str, str]], list[str]]:
        spec = queries.fleet.site(site).machine(machine) if site and machine else None
        if spec is None:
            raise PreventUpdate
        numeric = [s for s in spec.template.signals if s.kind.value not in ("status", "job", "fault_code")]
        temps = [str(s.name) for s in numeric if s.kind.value == "temperature"]
        return ([{"label": f"{s.name} ({s.unit})" if s.unit else s.name, "value": s.name} for s in numeric],
                temps[:2] or [str(s.name) for s in numeric[:1]])

    @app.callback(Output(ids.MACHINE_HEADER, "children"), Output(ids.MACHINE_KPIS, "children"),
                  Output(ids.MACHINE_TREND, "figure"), Output(ids.MACHINE_EVENTS, "children"),
                  Input(ids.MACHINE_SELECT, "value"), Input(ids.MACHINE_RANGE, "value"),
                  Input(ids.MACHINE_SIGNALS, "value"), Input(ids.REFRESH, "n_intervals"),
                  Input(ids.LOCATION, "search"), State(ids.MACHINE_SITE, "value"))
    def _refresh(machine: str | None, rng: str | None, signals: list[str] | None, _n: int | None,
                 search: str | None, site: str | None) -> tuple[Any, ...]:
        if not site or not machine or queries.fleet.site(site).machine(machine) is None:
            raise PreventUpdate
        hours = RANGES_H.get(rng or "8 h", 8.0)
        choice = TimeChoice.from_search(search)
        start, end = (None, None) if choice.live else choice.window(queries.now(), timedelta(hours=hours))
        if choice.start is None and not choice.live:
            start = end - timedelta(hours=hours) if end is not None else None  # a moment: the hours before it
        view = queries.machine_view(site, machine, hours, signals or [], MAX_POINTS, start=start, end=end)
        return render(view)

    @app.callback(Output(ids.MACHINE_HEALTH, "children"), Output(ids.MACHINE_RISK, "figure"),
                  Output(ids.MACHINE_HEALTH_DRAWN, "data"),
                  Input(ids.MACHINE_SELECT, "value"), Input(ids.REFRESH, "n_intervals"),
                  State(ids.MACHINE_SITE, "value"), State(ids.MACHINE_HEALTH_DRAWN, "data"))
    def _health(machine: str | None, _n: int | None, site: str | None, drawn: str | None) -> tuple[Any, Any, str]:
        if not site or not machine or queries.fleet.site(site).machine(machine) is None:
            raise PreventUpdate
        if health is None:
            return (html.Div("Machine health is off in this dashboard", className="notice health-none"),
                    figures.empty("No risk trend", height=160), "off")
        view = health.view()  # the service's last result: no history read here
        mark = f"{site}/{machine}/{view.at.isoformat() if view is not None else ''}/{health.note}"
        if mark == drawn:  # an interval tick with nothing new: the card and its trend stay as drawn
            raise PreventUpdate
        tz = queries.fleet.site(site).timezone
        return (health_view.health_card(view, site, machine, note=health.note),
                health_view.risk_figure(view, site, machine, tz=tz), mark)
