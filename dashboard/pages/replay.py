"""Replay: the whole site page as it was at a moment of a chosen range.

"The live view is the replay at now": the replay draws the site page's own body (tiles, timeline,
OEE, trend, orders, shipments, stock, alarms) from ``QueryService.site_view_at(site, cursor)``, the
same builders the live page uses at the present. Over the range a state-timeline strip is clicked
to move the cursor; the slider carries time marks; steps of 1 min, 15 min and 1 h go back and
forward; play runs the cursor at 1×–3600×. The events around the cursor are filtered by kind
(status changes folded under one line); the range's events download as CSV
(``connectors.export.export_events``: UTC ISO-8601). "Fork from here" opens the what-if page at the
cursor's site and time. Every time is in the site's local time, its UTC instant on hover.

The strip is clicked (its grid's points carry their UTC instant) or dragged
(``assets/replay_strip.js``: the pointer's position on the axis, which draws every hour an hour
wide, is the cursor's seconds into the range). The cursor goes into the address bar as ``at=``
(``history.replaceState``: a reload or a copied address opens the same moment), without a
navigation: the range, its preset and the header's choice stay as they were, and a preset chosen
later replaces the ``at`` with its own range.
"""

from __future__ import annotations

import io
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl, urlencode

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from connectors.export import export_events
from dashboard import components, figures, ids, timefmt
from dashboard.pages import site as site_page
from dashboard.pages._shared import card, register_page, site_choice, site_dropdown, trend_signals, url_param
from dashboard.services import Services
from dashboard.timefmt import TimeChoice
from twin.state import EventKind

__all__ = ["JUMPS_S", "REPLAY_IDS", "cursor_search", "cursor_time", "layout", "next_cursor", "parse_local", "register",
           "replay_range", "slider_marks", "strip_time"]

PATH = "/replay"
SPEEDS = [1, 10, 60, 600, 3600]
EVENTS_AROUND = timedelta(minutes=30)
DEFAULT_RANGE = timedelta(hours=8)
FORK_FMT = "%Y-%m-%dT%H:%M"  # the what-if page's ?at= (UTC, to the minute): kept exactly as it was
JUMPS_S = (-3600, -900, -60, 60, 900, 3600)  # the step buttons: 1 h, 15 min, 1 min, back and forward
JUMP = "replay-jump"  # {"type": JUMP, "s": seconds}: a step button
STRIP = "replay-strip"
KINDS = "replay-kinds"
ZONE = "replay-zone"
APPLY = "replay-apply"
EXPORT = "replay-export"
DOWNLOAD = "replay-download"
LINK = "replay-link"
NOTE = "replay-note"
ADDRESS = "replay-address"  # dcc.Store: the query string with the cursor (the address bar follows it)
ADDRESS_SYNC = "replay-address-sync"  # the clientside callback's (unused) output

REPLAY_IDS = site_page.SiteIds(header="replay-header", tiles=ids.REPLAY_TILES, timeline="replay-timeline",
                               oee="replay-oee", trend_signal="replay-trend-signal", trend="replay-trend",
                               orders="replay-orders", shipments="replay-shipments", stock="replay-stock",
                               projection="replay-projection", alarms="replay-alarms")
KIND_OPTIONS = [{"label": k.value.replace("_", " "), "value": k.value} for k in EventKind]


def _jump_label(s: int) -> str:
    size = f"{abs(s) // 3600} h" if abs(s) >= 3600 else f"{abs(s) // 60} min"
    return f"◀ {size}" if s < 0 else f"{size} ▶"


def layout(site: str | None = None, **_q: Any) -> html.Div:
    controls = html.Div(
        [
            dbc.ButtonGroup([dbc.Button(_jump_label(s), id={"type": JUMP, "s": s}, color="light", size="sm")
                             for s in JUMPS_S if s < 0]
                            + [dbc.Button("◀ step", id=ids.REPLAY_STEP_BACK, color="light", size="sm"),
                               dbc.Button("▶ play", id=ids.REPLAY_PLAY, color="secondary", size="sm"),
                               dbc.Button("❚❚ pause", id=ids.REPLAY_PAUSE, color="light", size="sm"),
                               dbc.Button("step ▶", id=ids.REPLAY_STEP, color="light", size="sm")]
                            + [dbc.Button(_jump_label(s), id={"type": JUMP, "s": s}, color="light", size="sm")
                               for s in JUMPS_S if s > 0], className="flex-wrap"),
            html.Span("speed", className="muted ms-2 me-1"),
            dcc.Dropdown(id=ids.REPLAY_SPEED, options=[{"label": f"{s}×", "value": s} for s in SPEEDS],
                         value=60, clearable=False, searchable=False, style={"width": "100px"}),
            html.Span(id=ids.REPLAY_TIME, className="replay-time ms-2"),
        ],
        className="replay-controls",
    )
    actions = html.Div(
        [
            dcc.Link("Fork from here → what-if", id=ids.REPLAY_FORK, href="/whatif",
                     className="btn btn-outline-secondary btn-sm"),
            dcc.Link("Link to this moment", id=LINK, href=PATH, className="btn btn-outline-secondary btn-sm"),
            dbc.Button("Export the range's events (CSV, UTC)", id=EXPORT, color="light", size="sm"),
            dcc.Download(id=DOWNLOAD),
        ],
        className="replay-controls",
    )
    return html.Div(
        [
            html.Div([html.H2("Replay"), html.Div(site_dropdown(ids.REPLAY_SITE, site), className="head-picker"),
                      # the range in 24 h ISO text (a browser's date picker may show AM/PM), in the site's zone
                      *[dbc.InputGroup([dbc.InputGroupText(label),
                                        dbc.Input(id=cid, type="text", placeholder="YYYY-MM-DD HH:MM", debounce=True,
                                                  n_submit=0, maxLength=25)],
                                       size="sm", style={"width": "215px"})
                        for label, cid in (("from", ids.REPLAY_START), ("to", ids.REPLAY_END))],
                      html.Span(id=ZONE, className="muted small"),
                      dbc.Button("Show range", id=APPLY, color="light", size="sm", n_clicks=0)],
                     className="page-head"),
            card(
                "Time cursor: click or drag along the strip, or drag the slider",
                dcc.Graph(id=STRIP, config={"displaylogo": False, "displayModeBar": False}),
                # no value until the range is read from the URL (``_range``): the page draws once, at the cursor
                dcc.Slider(id=ids.REPLAY_CURSOR, min=0, max=int(DEFAULT_RANGE.total_seconds()), step=1, value=None,
                           marks=None, updatemode="mouseup", allow_direct_input=False),
                controls,
                actions,
                html.Div(id=NOTE, className="small muted mt-1"),
                dcc.Interval(id=ids.REPLAY_CLOCK, interval=1000, disabled=True),
                dcc.Store(id=ADDRESS), html.Div(id=ADDRESS_SYNC, hidden=True),
            ),
            html.Div(id=REPLAY_IDS.header, className="muted mb-2"),
            *site_page.body(REPLAY_IDS, live=False),
            card("Events around the cursor (±30 min)",
                 dcc.Checklist(id=KINDS, options=KIND_OPTIONS, value=[k.value for k in EventKind], inline=True,
                               className="signal-picker small"),
                 html.Div(id=ids.REPLAY_EVENTS)),
        ]
    )


def parse_local(text: str | None, tz: str | None = None) -> datetime | None:
    """A range input's text (24 h ISO, in the site's zone ``tz``; UTC when None), as UTC."""
    return timefmt.parse_input(text, tz)


def strip_time(click: Any, tz: str | None) -> datetime | None:
    """The instant a click on the strip names: its point's UTC time (``figures.status_timeline``'s grid).

    A point without one (a bar) is read from its x, the site's wall clock (right except in the hour a
    clock change repeats); None when the click names no time.
    """
    point = ((click or {}).get("points") or [{}])[0]
    data = point.get("customdata")
    if isinstance(data, list | tuple) and len(data) > 1:
        found = timefmt.parse_url_time(str(data[1]))
        if found is not None:
            return found
    x = point.get("x")
    return timefmt.parse_input(str(x)[:19], tz) if x else None


def cursor_search(search: str | None, site: str, t0: datetime, t1: datetime, at: datetime) -> str:
    """The page's query string with the cursor in it: the site, the range (its preset kept) and ``at``.

    >>> from datetime import UTC
    >>> t0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
    >>> cursor_search("?site=pod-lyon&preset=last-hour", "pod-lyon", t0, t0 + timedelta(hours=1),
    ...               t0 + timedelta(minutes=45))
    '?site=pod-lyon&from=2026-11-30T12%3A00%3A00Z&to=2026-11-30T13%3A00%3A00Z&at=2026-11-30T12%3A45%3A00Z&preset=last-hour'
    """
    choice = TimeChoice.from_search(search)
    keep = [(k, v) for k, v in parse_qsl((search or "").lstrip("?")) if k != "site"]
    return TimeChoice(start=t0, end=t1, at=at, preset=choice.preset).search("?" + urlencode([("site", site), *keep]))


def cursor_time(start: datetime, cursor_s: float | None) -> datetime:
    return start + timedelta(seconds=float(cursor_s or 0))


def next_cursor(trigger: str | None, cursor: float | None, speed: int | None, maximum: float,
                jump_s: float | None = None) -> float:
    """Where the cursor goes on a clock tick or a step: ``speed`` seconds per tick (or ``jump_s``), in the range."""
    step = float(speed or 1)
    value = float(cursor or 0)
    if jump_s is not None:
        value += jump_s
    elif trigger == ids.REPLAY_STEP_BACK:
        value -= step
    elif trigger in (ids.REPLAY_STEP, ids.REPLAY_CLOCK):
        value += step
    return max(0.0, min(maximum, value))


def replay_range(choice: TimeChoice, now: datetime) -> tuple[datetime, datetime]:
    """The range replayed: the URL's (``?from=&to=``, the header's presets), else the 8 hours to now."""
    end = min(choice.end or now, now)
    start = choice.start if choice.start is not None and choice.start < end else end - DEFAULT_RANGE
    return start, end


def slider_marks(t0: datetime, t1: datetime, tz: str, n: int = 4) -> dict[int, dict[str, Any]]:
    """About ``n`` time marks along the slider in the site's local time (with the date over a day)."""
    span = (t1 - t0).total_seconds()
    if span <= 0:
        return {}
    long_range = span > 86400
    marks = {}
    for k in range(n + 1):
        t = t0 + timedelta(seconds=span * k / n)
        text = timefmt.local(t, tz).strftime("%m-%d %H:%M" if long_range else "%H:%M")
        marks[int(span * k / n)] = {"label": text, "style": {"whiteSpace": "nowrap", "fontSize": "11px"}}
    return marks


def _initial_cursor(choice: TimeChoice, t0: datetime, t1: datetime) -> float:
    """The URL's moment when it lies in the range, else the range's start (a replay plays forward)."""
    if choice.at is not None and t0 <= choice.at <= t1:
        return (choice.at - t0).total_seconds()
    return 0.0


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Replay", title="Replay · Micro-factory twin", order=4,
                  layout=layout)
    queries = services.queries

    def tz_of(site: str | None) -> str:
        return queries.fleet.site(site).timezone if site else timefmt.FLEET_ZONE

    def at_of(site: str, search: str | None, cursor: float | None) -> tuple[datetime, datetime, datetime]:
        t0, t1 = replay_range(TimeChoice.from_search(search), queries.now())
        return t0, t1, min(cursor_time(t0, cursor), t1)

    @app.callback(Output(ids.REPLAY_SITE, "options"), Output(ids.REPLAY_SITE, "value"),
                  Input(ids.LOCATION, "pathname"), Input(ids.LOCATION, "search"), State(ids.REPLAY_SITE, "value"))
    def _site(_p: str | None, search: str | None, site: str | None) -> tuple[Any, ...]:
        options, chosen = site_choice(queries, search, site)
        if site is not None and chosen == site:  # the cursor in the address (or a range) names the same site
            raise PreventUpdate
        return options, chosen

    @app.callback(Output(ids.REPLAY_START, "value"), Output(ids.REPLAY_END, "value"), Output(ZONE, "children"),
                  Output(ids.REPLAY_CURSOR, "max"), Output(ids.REPLAY_CURSOR, "marks"),
                  Output(ids.REPLAY_CURSOR, "value"),
                  Input(ids.REPLAY_SITE, "value"), Input(ids.LOCATION, "search"),
                  State(ids.REPLAY_CURSOR, "value"), State(ids.REPLAY_CURSOR, "max"))
    def _range(site: str | None, search: str | None, cursor: float | None, maximum: float | None) -> tuple[Any, ...]:
        if not site:
            raise PreventUpdate
        choice = TimeChoice.from_search(search)
        t0, t1 = replay_range(choice, queries.now())
        tz = tz_of(site)
        # the cursor written into the address: the same range, the cursor already there (nothing to redraw)
        if (ctx.triggered_id == ids.LOCATION and cursor is not None and maximum == int((t1 - t0).total_seconds())
                and cursor == _initial_cursor(choice, t0, t1)):
            raise PreventUpdate
        return (timefmt.fmt_input(t0, tz), timefmt.fmt_input(t1, tz), f"({timefmt.zone_abbr(t1, tz)}, 24 h)",
                int((t1 - t0).total_seconds()), slider_marks(t0, t1, tz), _initial_cursor(choice, t0, t1))

    # the range typed (in the site's time) goes into the URL, like the header's presets
    @app.callback(Output(ids.LOCATION, "search", allow_duplicate=True), Input(APPLY, "n_clicks"),
                  Input(ids.REPLAY_START, "n_submit"), Input(ids.REPLAY_END, "n_submit"),
                  State(ids.REPLAY_START, "value"), State(ids.REPLAY_END, "value"), State(ids.REPLAY_SITE, "value"),
                  State(ids.LOCATION, "search"), prevent_initial_call=True)
    def _apply(_n: int | None, _s: int | None, _e: int | None, start: str | None, end: str | None,
               site: str | None, search: str | None) -> str:
        tz = tz_of(site)
        t0, t1 = parse_local(start, tz), parse_local(end, tz)
        if t0 is None or t1 is None or t1 <= t0:
            raise PreventUpdate
        keep = search if url_param(search, "site") else f"?site={site}" if site else search
        return TimeChoice(start=t0, end=t1).search(keep)

    @app.callback(Output(ids.REPLAY_CLOCK, "disabled"), Input(ids.REPLAY_PLAY, "n_clicks"),
                  Input(ids.REPLAY_PAUSE, "n_clicks"), prevent_initial_call=True)
    def _play(_play: int | None, _pause: int | None) -> bool:
        return bool(ctx.triggered_id != ids.REPLAY_PLAY)

    @app.callback(Output(ids.REPLAY_CURSOR, "value", allow_duplicate=True), Input(ids.REPLAY_CLOCK, "n_intervals"),
                  Input(ids.REPLAY_STEP, "n_clicks"), Input(ids.REPLAY_STEP_BACK, "n_clicks"),
                  Input({"type": JUMP, "s": ALL}, "n_clicks"), Input(STRIP, "clickData"),
                  State(ids.REPLAY_CURSOR, "value"), State(ids.REPLAY_SPEED, "value"),
                  State(ids.REPLAY_CURSOR, "max"), State(ids.REPLAY_SITE, "value"), State(ids.LOCATION, "search"),
                  prevent_initial_call=True)
    def _move(_tick: int | None, _s: int | None, _b: int | None, _jumps: list[int | None], click: Any,
              cursor: float | None, speed: int | None, maximum: float | None, site: str | None,
              search: str | None) -> float:
        trigger = ctx.triggered_id
        if trigger == STRIP:  # a click on the strip: the cursor goes to the time clicked
            t = strip_time(click, tz_of(site))
            if t is None:
                raise PreventUpdate
            t0, _t1 = replay_range(TimeChoice.from_search(search), queries.now())
            return max(0.0, min(float(maximum or 0), (t - t0).total_seconds()))
        if isinstance(trigger, dict) and trigger.get("type") == JUMP:
            if not ctx.triggered[0].get("value"):
                raise PreventUpdate  # the buttons drawn, not clicked
            return next_cursor(None, cursor, speed, float(maximum or 0), jump_s=float(trigger["s"]))
        return next_cursor(str(trigger), cursor, speed, float(maximum or 0))

    @app.callback(Output(ids.REPLAY_TIME, "children"), Output(ids.REPLAY_FORK, "href"), Output(LINK, "href"),
                  Output(NOTE, "children"),
                  Output(REPLAY_IDS.header, "children"), Output(REPLAY_IDS.tiles, "children"),
                  Output(REPLAY_IDS.alarms, "rowData"), Output(REPLAY_IDS.oee, "figure"),
                  Output(REPLAY_IDS.stock, "children"), Output(REPLAY_IDS.shipments, "children"),
                  Output(REPLAY_IDS.orders, "children"), Output(REPLAY_IDS.projection, "figure"),
                  Output(REPLAY_IDS.timeline, "figure"), Output(ADDRESS, "data"),
                  Input(ids.REPLAY_SITE, "value"), Input(ids.REPLAY_CURSOR, "value"),
                  State(ids.LOCATION, "search"))
    def _render(site: str | None, cursor: float | None, search: str | None) -> tuple[Any, ...]:
        if not site or cursor is None:
            raise PreventUpdate
        t0, t1, at = at_of(site, search, cursor)
        tz = tz_of(site)
        view = queries.site_view_at(site, at)
        parts = site_page.render_view(view).parts
        fork = components.href("/whatif", site=site, at=at.strftime(FORK_FMT))
        link = PATH + TimeChoice(start=t0, end=t1, at=at).search(f"?site={site}")
        first = queries.history_start(site)
        note = (f"History of {site} begins {timefmt.fmt_datetime(first, tz)}: before it the tiles say no data."
                if first is not None and at < first else "")
        timeline = figures.status_timeline(queries.timeline(site, site_page.SHIFT_H, end=at),
                                           at - timedelta(hours=site_page.SHIFT_H), at, tz=tz, cursor=at)
        shown = components.when(at, tz, seconds=True)
        return (["state at ", shown], fork, link, note, parts["header"], parts["tiles"], parts["alarms"],
                parts["oee"], parts["stock"], parts["shipments"], parts["orders"], parts["projection"], timeline,
                cursor_search(search, site, t0, t1, at))

    # the address bar follows the cursor without a navigation (no callback sees a new search; see above)
    app.clientside_callback(  # type: ignore[no-untyped-call]
        "function(search) { if (search && window.location.pathname.endsWith('" + PATH + "')"
        " && window.location.search !== search) {"
        " window.history.replaceState(window.history.state, '', window.location.pathname + search);"
        # and the location component told both, so it never pushes the address it had before (that undid
        # a preset chosen after the cursor moved): the callbacks on its search see the same range and site
        # and stop there (_range, _site)
        " window.dash_clientside.set_props('" + ids.LOCATION + "', {search: search, href: window.location.href}); }"
        " return window.dash_clientside.no_update; }",
        Output(ADDRESS_SYNC, "children"), Input(ADDRESS, "data"), prevent_initial_call=True)

    @app.callback(Output(STRIP, "figure"), Input(ids.REPLAY_SITE, "value"), Input(ids.REPLAY_CURSOR, "value"),
                  State(ids.LOCATION, "search"))
    def _strip(site: str | None, cursor: float | None, search: str | None) -> Any:
        if not site or cursor is None:
            raise PreventUpdate
        t0, t1, at = at_of(site, search, cursor)
        return figures.status_timeline(queries.timeline(site, start=t0, end=t1), t0, t1, tz=tz_of(site),
                                       cursor=at, clickable=True)

    @app.callback(Output(REPLAY_IDS.trend_signal, "options"), Output(REPLAY_IDS.trend_signal, "value"),
                  Input(ids.REPLAY_SITE, "value"), State(REPLAY_IDS.trend_signal, "value"))
    def _signals(site: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        if not site:
            raise PreventUpdate
        return trend_signals(queries, site, value)

    @app.callback(Output(REPLAY_IDS.trend, "figure"), Input(ids.REPLAY_SITE, "value"),
                  Input(REPLAY_IDS.trend_signal, "value"), Input(ids.REPLAY_CURSOR, "value"),
                  State(ids.LOCATION, "search"))
    def _trend(site: str | None, signal: str | None, cursor: float | None, search: str | None) -> Any:
        if cursor is None:
            raise PreventUpdate
        at = at_of(site, search, cursor)[2] if site else None
        return site_page.trend_figure(queries, site, signal, at)

    @app.callback(Output(ids.REPLAY_EVENTS, "children"), Input(ids.REPLAY_SITE, "value"),
                  Input(ids.REPLAY_CURSOR, "value"), Input(KINDS, "value"), State(ids.LOCATION, "search"))
    def _events(site: str | None, cursor: float | None, kinds: list[str] | None, search: str | None) -> Any:
        if not site or cursor is None:
            raise PreventUpdate
        _t0, _t1, at = at_of(site, search, cursor)
        wanted = set(kinds or ())
        events = [e for e in queries.events(site, at - EVENTS_AROUND, at + EVENTS_AROUND) if e.kind.value in wanted]
        return components.event_table(events, tz_of(site), at=at)

    @app.callback(Output(DOWNLOAD, "data"), Input(EXPORT, "n_clicks"), State(ids.REPLAY_SITE, "value"),
                  State(ids.LOCATION, "search"), prevent_initial_call=True)
    def _export(_n: int | None, site: str | None, search: str | None) -> Any:
        if not site:
            raise PreventUpdate
        t0, t1 = replay_range(TimeChoice.from_search(search), queries.now())
        out = io.StringIO()
        export_events(queries.historian, site, t0, t1, out)  # UTC ISO-8601, as `twin export` writes it
        name = f"{site}-events-{timefmt.fmt_utc(t0)}-{timefmt.fmt_utc(t1)}.csv".replace(":", "")
        return {"content": out.getvalue(), "filename": name, "type": "text/csv"}
