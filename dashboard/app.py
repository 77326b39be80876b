"""The app factory: builds the Dash Pages app from its services. Importing this module does no I/O.

    >>> from dashboard.app import create_app          # doctest: +SKIP
    >>> app = create_app(services, auth=AuthSettings.local())
    >>> app.run(host="127.0.0.1", port=8050)

``create_app`` registers the pages explicitly (``pages_folder=""``: nothing is scanned or imported
behind the caller's back), installs login and role checks on the Flask server, and sets up the
background-callback manager (a diskcache in ``services.cache_dir`` or a temporary directory) used
by what-if runs. Callback validation stays on: every page's layout is part of the validation layout.
"""

from __future__ import annotations

import importlib
import logging
import tempfile
from pathlib import Path
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import auth as auth_mod
from dashboard import ids
from dashboard.auth import AuthSettings, UserRole
from dashboard.jobs import ThreadJobManager
from dashboard.pages import PAGES
from dashboard.pages._shared import page_zone, time_control_search, time_note, url_param
from dashboard.services import Services
from dashboard.timefmt import TimeChoice

__all__ = ["PROTECTED_OUTPUTS", "create_app"]

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"

# Outputs of callbacks that change something or start work, and the role they need. The request
# guard refuses them before any callback code runs; the callbacks check again themselves.
PROTECTED_OUTPUTS: dict[str, UserRole] = {
    ids.SITE_ACK_RESULT: UserRole.OPERATOR,
    ids.ALARMS_ACK_RESULT: UserRole.OPERATOR,
    ids.SHIFT_CLASSIFY_RESULT: UserRole.OPERATOR,
    ids.SITE_CLASSIFY_RESULT: UserRole.OPERATOR,
    ids.MACHINE_CLASSIFY_RESULT: UserRole.OPERATOR,
    ids.SHIFT_SHELVE_RESULT: UserRole.OPERATOR,  # out of service: the callback asks for the engineer role
    ids.WHATIF_REQUEST: UserRole.ENGINEER,
    ids.WHATIF_RESULT: UserRole.ENGINEER,
}

# the header's time control (shell ids, next to the menu's)
TIME_PRESET = "shell-time-preset"
TIME_AT = "shell-time-at"
TIME_GO = "shell-time-go"
TIME_ZONE = "shell-time-zone"
TIME_NOTE = "shell-time-note"
MOMENT = "moment"
TIME_PRESETS = [("Live", "live"), ("Last hour", "last-hour"), ("This shift", "this-shift"),
                ("Yesterday", "yesterday"), ("Last 7 days", "last-7-days")]

NAV = [("Fleet", "/"), ("Attention", "/attention"), ("Site", "/site"), ("Machine", "/machine"), ("What-if", "/whatif"),
       ("Replay", "/replay"), ("Alarms", "/alarms"), ("Shift", "/shift"), ("Model trust", "/trust")]


def _shell(refresh_ms: int) -> Any:
    def layout() -> html.Div:
        user = auth_mod.current_user() if _in_request() else None
        who: list[Any] = []
        if user is not None:
            who = [html.Span(f"{user.name} · {user.role.name.lower()}", className="user-badge")]
            if user.name != auth_mod.LOCAL_ADMIN.name:
                who.append(html.A("Sign out", href="/logout", className="nav-link d-inline"))
        # below 768 px the menu folds behind a button (a phone gets one 50 px bar, not a 250 px list)
        navbar = dbc.Navbar(
            dbc.Container(
                [
                    dbc.NavbarBrand("Micro-factory twin", href="/"),
                    dbc.NavbarToggler(id=ids.NAV_TOGGLE, n_clicks=0, className="ms-auto"),
                    dbc.Collapse(
                        [dbc.Nav([dbc.NavItem(dbc.NavLink(label, href=path, active="exact", n_clicks=0,
                                                          id={"type": ids.NAV_LINK, "page": path}))
                                  for label, path in NAV], navbar=True),
                         html.Div(who, id=ids.USER_BADGE, className="ms-md-auto")],
                        id=ids.NAV_COLLAPSE, is_open=False, navbar=True),
                ],
                fluid=True,
            ),
            className="hmi-navbar",
            dark=True,
            expand="md",
        )
        return html.Div(
            [
                # callback-nav: the time control writes the URL's ?at= / ?from=&to= and the page redraws from it
                dcc.Location(id=ids.LOCATION, refresh="callback-nav"),
                dcc.Interval(id=ids.REFRESH, interval=refresh_ms),
                navbar,
                _time_bar(),
                dbc.Container(dash.page_container, fluid=True, className="page"),
            ]
        )

    return layout


def _time_bar() -> html.Div:
    """One time control for every page: live, a preset range, or a moment typed in 24 h ISO style.

    Its choice lives in the URL (``?at=``, ``?from=&to=``, UTC ISO-8601), so a link carries it.
    """
    return html.Div(
        [
            html.Span("Time", className="muted small"),
            # "A moment" is shown, never chosen: it says a typed moment (not a preset) is on screen
            dcc.Dropdown(id=TIME_PRESET, options=[{"label": label, "value": v} for label, v in TIME_PRESETS]
                         + [{"label": "A moment", "value": MOMENT, "disabled": True}],
                         value=None, placeholder="Live", clearable=False, searchable=False,
                         style={"width": "140px"}),
            dbc.InputGroup([
                dbc.Input(id=TIME_AT, type="text", placeholder="YYYY-MM-DD HH:MM", debounce=True, n_submit=0,
                          maxLength=25, style={"maxWidth": "170px"}, pattern=r"\d{4}-\d\d-\d\d[ T]\d\d:\d\d.*"),
                dbc.InputGroupText(id=TIME_ZONE, children="UTC"),
                dbc.Button("Go", id=TIME_GO, color="light", n_clicks=0),
            ], size="sm", style={"width": "auto"}),
            html.Span(id=TIME_NOTE, className="small time-note"),
        ],
        className="time-bar", style={"display": "flex", "flexWrap": "wrap", "alignItems": "center", "gap": "8px",
                                     "padding": "4px 12px", "borderBottom": "1px solid #c4c6c8"},
    )


def _time_callbacks(app: dash.Dash, services: Services) -> None:
    queries = services.queries

    @app.callback(dash.Output(ids.LOCATION, "search"), dash.Input(TIME_PRESET, "value"),
                  dash.Input(TIME_GO, "n_clicks"), dash.Input(TIME_AT, "n_submit"),
                  dash.State(TIME_AT, "value"), dash.State(ids.LOCATION, "search"), prevent_initial_call=True)
    def _choose(preset: str | None, _go: int | None, _enter: int | None, typed: str | None,
                search: str | None) -> str:
        typed_now = dash.ctx.triggered_id in (TIME_GO, TIME_AT)
        if not typed_now and preset == MOMENT:
            raise dash.exceptions.PreventUpdate  # shown for a typed moment (``_show``), not a choice
        # the preset shown again from the URL (``_show``) is no new choice: it would move "last hour" on
        if not typed_now and preset == (url_param(search, "preset") or ("live" if _live(search) else None)):
            raise dash.exceptions.PreventUpdate
        new = time_control_search(queries, search, preset, typed, typed_now=typed_now)
        if new is None or new == (search or ""):
            raise dash.exceptions.PreventUpdate
        return new

    @app.callback(dash.Output(TIME_PRESET, "value"), dash.Output(TIME_AT, "value"), dash.Output(TIME_ZONE, "children"),
                  dash.Output(TIME_NOTE, "children"), dash.Input(ids.LOCATION, "pathname"),
                  dash.Input(ids.LOCATION, "search"))
    def _show(pathname: str | None, search: str | None) -> tuple[Any, ...]:
        from dashboard import timefmt

        choice = TimeChoice.from_search(search)
        tz = page_zone(queries, search)
        shown = "" if choice.live else timefmt.fmt_input(choice.moment(queries.now()), tz)
        preset = "live" if choice.live else choice.preset if choice.preset in timefmt.PRESETS else MOMENT
        # the zone's abbreviation at the moment shown (CET or CEST): what the typed time is read in
        zone_name = timefmt.zone_abbr(choice.moment(queries.now()), tz)
        return preset, shown, zone_name, time_note(queries, pathname, search)


def _live(search: str | None) -> bool:
    return TimeChoice.from_search(search).live


def _in_request() -> bool:
    import flask

    return flask.has_request_context()


def create_app(
    services: Services,
    *,
    auth: AuthSettings | None = None,
    refresh_s: float = 5.0,
    title: str = "Micro-factory twin",
) -> dash.Dash:
    """Build the dashboard over ``services``; ``auth`` defaults to no login (loopback use only)."""
    settings = auth or AuthSettings.local()
    if not settings.protected:
        settings = AuthSettings(login_required=settings.login_required, secret_key=settings.secret_key,
                                users=settings.users, protected=PROTECTED_OUTPUTS)
    import diskcache

    cache_dir = services.cache_dir or Path(tempfile.mkdtemp(prefix="twin-dash-"))
    # jobs in threads: a fork of this threaded process can inherit a held SQLite mutex (dashboard.jobs)
    manager = ThreadJobManager(diskcache.Cache(str(cache_dir)))
    app = dash.Dash(
        __name__,
        use_pages=True,
        pages_folder="",
        assets_folder=str(ASSETS),
        # Bootstrap 5.3.3 (MIT) is served from assets/: a plant network often has no internet access.
        title=title,
        update_title="",
        background_callback_manager=manager,
        suppress_callback_exceptions=False,
    )
    auth_mod.install(app.server, settings)
    for name in PAGES:
        importlib.import_module(f"dashboard.pages.{name}").register(app, services)
    app.layout = _shell(int(refresh_s * 1000))
    # every callback request carries the page's query string: a page's refresh reads the header's
    # time choice from it (dashboard.pages._shared.page_search) without one more callback argument
    app.renderer = ("var renderer = new DashRenderer({request_pre: function (payload) {"
                    " payload.page_search = window.location.search; }});")
    _time_callbacks(app, services)
    # the phone menu opens on its button and closes again when a page is chosen (in the browser only)
    app.clientside_callback(  # type: ignore[no-untyped-call]
        "function(n, links, open) { const t = dash_clientside.callback_context.triggered;"
        " return (t.length && t[0].prop_id.startsWith('" + ids.NAV_TOGGLE + "')) ? !open : false; }",
        dash.Output(ids.NAV_COLLAPSE, "is_open"), dash.Input(ids.NAV_TOGGLE, "n_clicks"),
        dash.Input({"type": ids.NAV_LINK, "page": dash.ALL}, "n_clicks"), dash.State(ids.NAV_COLLAPSE, "is_open"),
        prevent_initial_call=True)
    log.info("dashboard built: %d pages, login %s", len(PAGES), "required" if settings.login_required else "off")
    return app
