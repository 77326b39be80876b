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
from dashboard.pages import PAGES
from dashboard.services import Services

__all__ = ["PROTECTED_OUTPUTS", "create_app"]

log = logging.getLogger(__name__)
ASSETS = Path(__file__).resolve().parent / "assets"

# Outputs of callbacks that change something or start work, and the role they need. The request
# guard refuses them before any callback code runs; the callbacks check again themselves.
PROTECTED_OUTPUTS: dict[str, UserRole] = {
    ids.SITE_ACK_RESULT: UserRole.ENGINEER,
    ids.ALARMS_ACK_RESULT: UserRole.ENGINEER,
    ids.WHATIF_REQUEST: UserRole.ENGINEER,
    ids.WHATIF_RESULT: UserRole.ENGINEER,
}

NAV = [("Fleet", "/"), ("Attention", "/attention"), ("Site", "/site"), ("Machine", "/machine"), ("What-if", "/whatif"),
       ("Replay", "/replay"), ("Alarms", "/alarms"), ("Model trust", "/trust")]


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
                dcc.Location(id=ids.LOCATION),
                dcc.Interval(id=ids.REFRESH, interval=refresh_ms),
                navbar,
                dbc.Container(dash.page_container, fluid=True, className="page"),
            ]
        )

    return layout


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
    manager = dash.DiskcacheManager(diskcache.Cache(str(cache_dir)))  # type: ignore[no-untyped-call]
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
    # the phone menu opens on its button and closes again when a page is chosen (in the browser only)
    app.clientside_callback(  # type: ignore[no-untyped-call]
        "function(n, links, open) { const t = dash_clientside.callback_context.triggered;"
        " return (t.length && t[0].prop_id.startsWith('" + ids.NAV_TOGGLE + "')) ? !open : false; }",
        dash.Output(ids.NAV_COLLAPSE, "is_open"), dash.Input(ids.NAV_TOGGLE, "n_clicks"),
        dash.Input({"type": ids.NAV_LINK, "page": dash.ALL}, "n_clicks"), dash.State(ids.NAV_COLLAPSE, "is_open"),
        prevent_initial_call=True)
    log.info("dashboard built: %d pages, login %s", len(PAGES), "required" if settings.login_required else "off")
    return app
