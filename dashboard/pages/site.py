"""Site page: one micro-factory at a glance.

Machine tiles in Andon colours with a legend, the last shift's status timeline, live trends, OEE
breakdown, stock against reorder points, inbound shipments, and alarms to acknowledge.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import components, figures, ids, theme
from dashboard.auth import current_user
from dashboard.pages._shared import acknowledge, alarm_grid, card, notice, register_page, site_dropdown, site_options
from dashboard.services import Services
from twin.errors import TwinError

__all__ = ["layout", "register"]

PATH = "/site"
SHIFT_H = 8.0
TREND_H = 1.0


def layout(site: str | None = None, **_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Site"), html.Div(site_dropdown(ids.SITE_SELECT, site), className="head-picker"),
                      html.Div(id=ids.SITE_HEADER, className="muted")], className="page-head"),
            components.andon_legend(),
            html.Div(id=ids.SITE_TILES, className="tile-grid mb-3"),
            dbc.Row(
                [
                    dbc.Col(card("Status timeline, last shift", dcc.Graph(id=ids.SITE_TIMELINE,
                                                                           config={"displaylogo": False})), lg=7),
                    dbc.Col(card("OEE today", dcc.Graph(id=ids.SITE_OEE, config={"displaylogo": False})), lg=5),
                ]
            ),
            card("Live trend, last hour",
                 dcc.Dropdown(id=ids.SITE_TREND_SIGNAL, options=[], value=None, clearable=False,
                              className="mb-2", style={"maxWidth": "320px"}),
                 dcc.Graph(id=ids.SITE_TREND, config={"displaylogo": False})),
            dbc.Row(
                [
                    dbc.Col(card("Stock against reorder points", html.Div(id=ids.SITE_STOCK)), lg=7),
                    dbc.Col(card("Inbound shipments", html.Div(id=ids.SITE_SHIPMENTS)), lg=5),
                ]
            ),
            card(
                "Alarms",
                alarm_grid(ids.SITE_ALARMS, height="240px"),
                dbc.InputGroup(
                    [dbc.Input(id=ids.SITE_ACK_COMMENT, placeholder="Comment (optional)", maxLength=200),
                     dbc.Button("Acknowledge selected", id=ids.SITE_ACK_BUTTON, color="secondary")],
                    className="mt-2",
                ),
                html.Div(id=ids.SITE_ACK_RESULT, className="mt-1"),
            ),
        ]
    )


def render(services: Services, site: str) -> tuple[Any, ...]:
    view = services.queries.site_view(site)
    t = view.tile
    header = (f"{t.name} · {t.kind} · {len(view.machines)} machines · output today "
              f"{theme.fmt_number(t.output_today)} / {t.plan_today:,} · "
              + (f"DATA STALE ({theme.fmt_age(t.age_s)})" if t.stale else f"updated {theme.fmt_duration(t.age_s)} ago"))
    tiles = [components.machine_tile(m) for m in view.machines]
    stock = [dcc.Graph(figure=figures.stock_bars(view.stock), config={"displaylogo": False}),
             components.stock_table(view.stock)]
    rows = components.alarm_table_rows(view.alarms, view.now)
    return (header, tiles, figures.oee_bars(view.oee_by_machine), stock,
            components.shipments_table(view.shipments), rows)


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Site", title="Site · Micro-factory twin", order=1, layout=layout)
    queries = services.queries

    @app.callback(Output(ids.SITE_SELECT, "options"), Output(ids.SITE_SELECT, "value"),
                  Input(ids.LOCATION, "pathname"), State(ids.SITE_SELECT, "value"))
    def _options(_path: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        options = site_options(queries)
        valid = {o["value"] for o in options}
        return options, value if value in valid else (options[0]["value"] if options else None)

    @app.callback(
        Output(ids.SITE_HEADER, "children"), Output(ids.SITE_TILES, "children"), Output(ids.SITE_OEE, "figure"),
        Output(ids.SITE_STOCK, "children"), Output(ids.SITE_SHIPMENTS, "children"),
        Output(ids.SITE_ALARMS, "rowData"),
        Input(ids.SITE_SELECT, "value"), Input(ids.REFRESH, "n_intervals"), Input(ids.SITE_ACK_RESULT, "children"),
    )
    def _refresh(site: str | None, _n: int | None, _ack: Any) -> tuple[Any, ...]:
        if not site:
            raise PreventUpdate
        return render(services, site)

    @app.callback(Output(ids.SITE_TIMELINE, "figure"), Input(ids.SITE_SELECT, "value"),
                  Input(ids.REFRESH, "n_intervals"))
    def _timeline(site: str | None, _n: int | None) -> Any:
        if not site:
            raise PreventUpdate
        now = queries.now()
        return figures.status_timeline(queries.timeline(site, SHIFT_H), now - timedelta(hours=SHIFT_H), now)

    @app.callback(Output(ids.SITE_TREND_SIGNAL, "options"), Output(ids.SITE_TREND_SIGNAL, "value"),
                  Input(ids.SITE_SELECT, "value"), State(ids.SITE_TREND_SIGNAL, "value"))
    def _signals(site: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        if not site:
            raise PreventUpdate
        opts = [{"label": f"{n} ({u})" if u else n, "value": n} for n, u in queries.signal_options(site)]
        names = [o["value"] for o in opts]
        preferred = next((n for n in names if "power" in n), names[0] if names else None)
        return opts, value if value in names else preferred

    @app.callback(Output(ids.SITE_TREND, "figure"), Input(ids.SITE_SELECT, "value"),
                  Input(ids.SITE_TREND_SIGNAL, "value"), Input(ids.REFRESH, "n_intervals"))
    def _trend(site: str | None, signal: str | None, _n: int | None) -> Any:
        if not site or not signal:
            return figures.empty("Choose a signal")
        unit = dict(queries.signal_options(site)).get(signal, "")
        return figures.trend(queries.site_trend(site, signal, TREND_H), unit=unit)

    @app.callback(Output(ids.SITE_ACK_RESULT, "children"), Input(ids.SITE_ACK_BUTTON, "n_clicks"),
                  State(ids.SITE_ALARMS, "selectedRows"), State(ids.SITE_ACK_COMMENT, "value"),
                  prevent_initial_call=True)
    def _ack(_n: int | None, rows: list[dict[str, Any]] | None, comment: str | None) -> Any:
        try:
            return notice(acknowledge(queries, current_user(), rows, comment))
        except TwinError as exc:  # Forbidden, or the historian refused the write
            return notice(str(exc), error=True)
