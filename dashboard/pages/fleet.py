"""Fleet overview: what needs attention first (its top five), then one tile per site; a tile opens its site page.

Each tile shows OEE with A/P/Q, output against plan, machines by status, alarms, stock at risk
and data freshness. A site with a machine whose failure risk is high (the health service's last
view, ``dashboard.health``) gets one line under its tile, "P3 risk 47 % / 8 h", linking to that
machine; calm sites get nothing (ISA-101). The attention list's own page (``dashboard.pages.attention``, all of it) is
registered here too: it is the fleet overview's list in full.
"""

from __future__ import annotations

from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, dcc, html

from dashboard import components, ids
from dashboard.attention import AttentionView
from dashboard.health import HealthService, HealthView, fmt_risk
from dashboard.pages import attention
from dashboard.pages._shared import register_page
from dashboard.services import Services
from dashboard.viewmodels import SiteTile

__all__ = ["layout", "register", "render", "render_tiles", "risk_link"]

PATH = "/"


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Fleet overview"), html.Div(id=ids.FLEET_SUMMARY, className="muted")],
                     className="page-head"),
            html.Div(id=attention.FLEET_ATTENTION, className="hmi-card mb-3", style={"padding": "8px 12px"}),
            html.Div(components.andon_legend(), id=ids.FLEET_LEGEND),
            dbc.Row(id=ids.FLEET_TILES, className="g-3"),
        ]
    )


def render(services: Services) -> tuple[list[Any], str]:
    return render_tiles(services.queries.fleet_tiles())


def risk_link(view: HealthView | None, site: str) -> Any:
    """The line under a site's tile naming its machine of highest high failure risk, linked to it; None if calm."""
    worst = next((h for h in view.high_risk() if h.site == site), None) if view is not None else None
    if worst is None:
        return None
    return dcc.Link(f"{worst.machine} risk {fmt_risk(worst.risk.p)} / {worst.risk.hours:g} h",
                    href=components.href("/machine", site=site, machine=worst.machine),
                    className="site-risk small abnormal-amber")


def render_tiles(tiles: list[SiteTile], health: HealthView | None = None) -> tuple[list[Any], str]:
    cols = [dbc.Col([components.site_tile(t), risk_link(health, t.site)], xs=12, md=6, xl=4, xxl=3) for t in tiles]
    alarms = sum(t.active_alarms for t in tiles)
    stale = sum(1 for t in tiles if t.stale)
    summary = f"{len(tiles)} sites · {alarms} active alarms" + (f" · {stale} site(s) with stale data" if stale else "")
    return cols, summary


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Fleet", title="Fleet · Micro-factory twin", order=0,
                       layout=layout)
    attention.register(app, services)
    service = attention.service_of(services)
    top: dict[int, tuple[AttentionView, list[Any]]] = {}

    @app.callback(Output(attention.FLEET_ATTENTION, "children"), Input(ids.REFRESH, "n_intervals"))
    def _attention(_n: int | None) -> list[Any]:
        view = service.view()
        hit = top.get(0)
        if hit is not None and hit[0] is view:
            return hit[1]
        out = attention.top_card(view, services.queries.fleet)
        top[0] = (view, out)
        return out

    # the components of the last tiles drawn: the refresher replaces the tiles list every TTL, and
    # every tab's interval in between gets the same components without building them again
    last: dict[int, tuple[list[SiteTile], HealthView | None, tuple[list[Any], str]]] = {}
    found = services.extra.get("health")
    health = found if isinstance(found, HealthService) else None

    @app.callback(Output(ids.FLEET_TILES, "children"), Output(ids.FLEET_SUMMARY, "children"),
                  Input(ids.REFRESH, "n_intervals"))
    def _refresh(_n: int | None) -> tuple[list[Any], str]:
        tiles = services.queries.fleet_tiles()
        view = health.view() if health is not None else None  # its last result: nothing read here
        hit = last.get(0)
        if hit is not None and hit[0] is tiles and hit[1] is view:
            return hit[2]
        out = render_tiles(tiles, view)
        last[0] = (tiles, view, out)
        return out
