"""Replay: a site's state at any moment of a chosen time range.

A time cursor (play, pause, step, 1×–3600×) drives every tile through ``Historian.state_at``; the
events around the cursor are listed; "fork from here" opens the what-if page at that moment.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import components, ids, theme
from dashboard.pages._shared import card, register_page, site_choice, site_dropdown, url_param
from dashboard.services import Services

__all__ = ["cursor_time", "layout", "next_cursor", "parse_local", "register"]

PATH = "/replay"
SPEEDS = [1, 10, 60, 600, 3600]
EVENTS_AROUND = timedelta(minutes=30)
DEFAULT_RANGE = timedelta(hours=8)
INPUT_FMT = "%Y-%m-%dT%H:%M"


def layout(site: str | None = None, start: str | None = None, end: str | None = None, **_q: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Replay"), html.Div(site_dropdown(ids.REPLAY_SITE, site), className="head-picker"),
                      html.Span("from (UTC)", className="muted"),
                      dbc.Input(id=ids.REPLAY_START, type="datetime-local", value=start, className="dt-input"),
                      html.Span("to", className="muted"),
                      dbc.Input(id=ids.REPLAY_END, type="datetime-local", value=end, className="dt-input")],
                     className="page-head"),
            card(
                "Time cursor",
                dcc.Slider(id=ids.REPLAY_CURSOR, min=0, max=int(DEFAULT_RANGE.total_seconds()), step=1, value=0,
                           marks=None, updatemode="mouseup"),
                html.Div(
                    [
                        dbc.ButtonGroup([
                            dbc.Button("◀ step", id=ids.REPLAY_STEP_BACK, color="light"),
                            dbc.Button("▶ play", id=ids.REPLAY_PLAY, color="secondary"),
                            dbc.Button("❚❚ pause", id=ids.REPLAY_PAUSE, color="light"),
                            dbc.Button("step ▶", id=ids.REPLAY_STEP, color="light"),
                        ]),
                        html.Span("speed", className="muted ms-3 me-1"),
                        dcc.Dropdown(id=ids.REPLAY_SPEED, options=[{"label": f"{s}×", "value": s} for s in SPEEDS],
                                     value=60, clearable=False, style={"width": "110px"}),
                        html.Span(id=ids.REPLAY_TIME, className="replay-time ms-3"),
                        dcc.Link("Fork from here → what-if", id=ids.REPLAY_FORK, href="/whatif",
                                 className="btn btn-outline-secondary ms-auto"),
                    ],
                    className="replay-controls",
                ),
                dcc.Interval(id=ids.REPLAY_CLOCK, interval=1000, disabled=True),
            ),
            components.andon_legend(),
            html.Div(id=ids.REPLAY_TILES, className="tile-grid mb-3"),
            card("Events around the cursor (±30 min)", html.Div(id=ids.REPLAY_EVENTS)),
        ]
    )


def parse_local(text: str | None) -> datetime | None:
    """A ``datetime-local`` input value, read as UTC."""
    if not text:
        return None
    try:
        return datetime.fromisoformat(text).replace(tzinfo=UTC)
    except ValueError:
        return None


def cursor_time(start: datetime, cursor_s: float | None) -> datetime:
    return start + timedelta(seconds=float(cursor_s or 0))


def next_cursor(trigger: str | None, cursor: float | None, speed: int | None, maximum: float) -> float:
    """Where the cursor goes on a clock tick or a step: ``speed`` seconds per tick, clamped to the range."""
    step = float(speed or 1)
    value = float(cursor or 0)
    if trigger == ids.REPLAY_STEP_BACK:
        value -= step
    elif trigger in (ids.REPLAY_STEP, ids.REPLAY_CLOCK):
        value += step
    return max(0.0, min(maximum, value))


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Replay", title="Replay · Micro-factory twin", order=4,
                       layout=layout)
    queries = services.queries

    @app.callback(Output(ids.REPLAY_SITE, "options"), Output(ids.REPLAY_SITE, "value"),
                  Output(ids.REPLAY_START, "value"), Output(ids.REPLAY_END, "value"),
                  Input(ids.LOCATION, "pathname"), Input(ids.LOCATION, "search"), State(ids.REPLAY_SITE, "value"),
                  State(ids.REPLAY_START, "value"), State(ids.REPLAY_END, "value"))
    def _defaults(_p: str | None, search: str | None, site: str | None, start: str | None,
                  end: str | None) -> tuple[Any, ...]:
        options, site = site_choice(queries, search, site)
        now = queries.now()
        start = url_param(search, "start") or start
        end = url_param(search, "end") or end
        return (options, site, start or (now - DEFAULT_RANGE).strftime(INPUT_FMT), end or now.strftime(INPUT_FMT))

    @app.callback(Output(ids.REPLAY_CURSOR, "max"), Input(ids.REPLAY_START, "value"), Input(ids.REPLAY_END, "value"))
    def _range(start: str | None, end: str | None) -> int:
        t0, t1 = parse_local(start), parse_local(end)
        if t0 is None or t1 is None or t1 <= t0:
            raise PreventUpdate
        return int((t1 - t0).total_seconds())

    @app.callback(Output(ids.REPLAY_CLOCK, "disabled"), Input(ids.REPLAY_PLAY, "n_clicks"),
                  Input(ids.REPLAY_PAUSE, "n_clicks"), prevent_initial_call=True)
    def _play(_play: int | None, _pause: int | None) -> bool:
        return bool(ctx.triggered_id != ids.REPLAY_PLAY)

    @app.callback(Output(ids.REPLAY_CURSOR, "value"), Input(ids.REPLAY_CLOCK, "n_intervals"),
                  Input(ids.REPLAY_STEP, "n_clicks"), Input(ids.REPLAY_STEP_BACK, "n_clicks"),
                  State(ids.REPLAY_CURSOR, "value"), State(ids.REPLAY_SPEED, "value"),
                  State(ids.REPLAY_CURSOR, "max"), prevent_initial_call=True)
    def _move(_tick: int | None, _s: int | None, _b: int | None, cursor: float | None, speed: int | None,
              maximum: float | None) -> float:
        return next_cursor(str(ctx.triggered_id), cursor, speed, float(maximum or 0))

    @app.callback(Output(ids.REPLAY_TIME, "children"), Output(ids.REPLAY_TILES, "children"),
                  Output(ids.REPLAY_EVENTS, "children"), Output(ids.REPLAY_FORK, "href"),
                  Input(ids.REPLAY_SITE, "value"), Input(ids.REPLAY_CURSOR, "value"),
                  Input(ids.REPLAY_START, "value"))
    def _render(site: str | None, cursor: float | None, start: str | None) -> tuple[Any, ...]:
        t0 = parse_local(start)
        if not site or t0 is None:
            raise PreventUpdate
        at = cursor_time(t0, cursor)
        tiles = [components.machine_tile(t, scope="replay", link=False) for t in queries.machine_tiles_at(site, at)]
        events = queries.events(site, at - EVENTS_AROUND, at + EVENTS_AROUND)
        rows = [html.Tr([html.Td(theme.fmt_ts(e.ts, seconds=True)), html.Td(e.asset), html.Td(e.kind.value),
                         html.Td(e.message)], className="row-now" if e.ts <= at else "row-later")
                for e in events[-200:]]
        table = (components.table(("Time", "Asset", "Kind", "Message"), rows) if rows
                 else html.Div("No events around this moment", className="muted"))
        fork = components.href("/whatif", site=site, at=at.strftime(INPUT_FMT))
        return f"state at {theme.fmt_ts(at, seconds=True)}", tiles, table, fork
