"""Pieces used by several pages: site pickers, the alarm grid, the acknowledge action, the last drawing."""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any, Generic, TypeVar
from urllib.parse import parse_qs

import dash
import dash_ag_grid as dag
import dash_bootstrap_components as dbc
from dash import dcc, html
from werkzeug.exceptions import BadRequest

from dashboard import timefmt
from dashboard.auth import CurrentUser, UserRole, current_user, require
from dashboard.queries import QueryService
from dashboard.timefmt import TimeChoice
from twin.errors import TwinError

__all__ = [
    "LastDrawing",
    "ack_notice",
    "acknowledge",
    "alarm_grid",
    "card",
    "choose",
    "notice",
    "page_search",
    "page_zone",
    "register_page",
    "site_choice",
    "site_dropdown",
    "site_options",
    "time_control_search",
    "time_note",
    "trend_signals",
    "url_param",
]

log = logging.getLogger(__name__)
V = TypeVar("V")
R = TypeVar("R")

# the State column says whether an alarm cleared and was acknowledged; how it was shelved (or suppressed
# by design) comes next, so it is in view at 1440 px; when it cleared, who acknowledged and why are after it
ALARM_COLUMNS = [
    {"field": "priority", "headerName": "Priority", "width": 100},
    {"field": "site", "headerName": "Site", "width": 110},
    {"field": "asset", "headerName": "Asset", "width": 90},
    {"field": "message", "headerName": "Message", "flex": 2, "minWidth": 160},
    {"field": "state", "headerName": "State", "width": 140},
    {"field": "raised", "headerName": "Raised (site time)", "width": 205, "tooltipField": "raised_utc"},
    {"field": "shelved", "headerName": "Shelved", "width": 275, "tooltipField": "shelved"},
    {"field": "shelved_by", "headerName": "Shelved by", "width": 125},
    {"field": "shelved_why", "headerName": "Why", "flex": 1, "minWidth": 110, "tooltipField": "shelved_why"},
    {"field": "suppressed", "headerName": "Suppressed", "width": 125,
     "headerTooltip": "suppressed by design: raised while its machine was OFF or in maintenance"},
    {"field": "cleared", "headerName": "Cleared", "width": 205, "tooltipField": "cleared_utc"},
    {"field": "acked_by", "headerName": "Acked by", "width": 110},
    {"field": "comment", "headerName": "Comment", "flex": 1, "minWidth": 120},
]


def register_page(module: str, *, layout: Any, **kwargs: Any) -> None:
    """``dash.register_page`` with an explicit layout function (the factory calls it; nothing at import)."""
    dash.register_page(module, layout=layout, **kwargs)  # type: ignore[no-untyped-call]


def card(title: str, *children: Any, **kwargs: Any) -> dbc.Card:
    return dbc.Card([dbc.CardHeader(title), dbc.CardBody(list(children))], className="hmi-card mb-3", **kwargs)


def site_dropdown(component_id: str, value: str | None = None, *, multi: bool = False) -> dcc.Dropdown:
    """A site picker; its options AND its value are set by a callback from the fleet and the URL.

    The layout never sets the value: a dropdown given a value before its options drops it (and
    reports the change), so a page would show the first site instead of the one in its address.
    The page's callback picks the value with :func:`choose` from the URL (``url_param``).
    """
    del value  # kept for the pages' signatures; the URL decides (see above)
    return dcc.Dropdown(id=component_id, value=None, options=[], clearable=multi, multi=multi,
                        placeholder="Site…", className="site-dropdown")


def url_param(search: str | None, key: str) -> str | None:
    """The value of ``key`` in a URL query string (``?site=pod-lyon&machine=CNC2``), or None.

    >>> url_param("?site=pod-lyon&machine=CNC2", "machine")
    'CNC2'
    >>> url_param("", "site") is None
    True
    """
    values = parse_qs((search or "").lstrip("?")).get(key)
    return values[-1] if values else None


def choose(valid: Sequence[str], *preferred: str | None) -> str | None:
    """The first of ``preferred`` that is in ``valid`` (the URL's, then the current one), else the first valid.

    >>> choose(["pod-berlin", "pod-lyon"], "pod-lyon", "pod-berlin")
    'pod-lyon'
    >>> choose(["pod-berlin", "pod-lyon"], "nowhere", None)
    'pod-berlin'
    """
    for p in preferred:
        if p is not None and p in valid:
            return p
    return valid[0] if valid else None


def site_options(queries: QueryService) -> list[dict[str, str]]:
    return [{"label": f"{s.name} ({s.id})", "value": s.id} for s in queries.fleet.sites]


def trend_signals(queries: QueryService, site: str, value: str | None) -> tuple[list[dict[str, str]], str | None]:
    """The trend's signal picker of a site (site and replay pages): its options, and the one to show.

    The signal already chosen stays when the site has it; otherwise power (the most telling trend), else the first.
    """
    opts = [{"label": f"{n} ({u})" if u else n, "value": n} for n, u in queries.signal_options(site)]
    names = [o["value"] for o in opts]
    preferred = next((n for n in names if "power" in n), names[0] if names else None)
    return opts, value if value in names else preferred


def site_choice(queries: QueryService, search: str | None,
                value: str | None) -> tuple[list[dict[str, str]], str | None]:
    """A site picker's options and value: the URL's site, else the one chosen now, else the first."""
    options = site_options(queries)
    return options, choose([o["value"] for o in options], url_param(search, "site"), value)


def alarm_grid(component_id: str, *, height: str = "300px") -> dag.AgGrid:
    """An alarm table with row selection (for acknowledging) and priority classes."""
    return dag.AgGrid(
        id=component_id,
        columnDefs=ALARM_COLUMNS,
        rowData=[],
        getRowId="params.data.id",
        defaultColDef={"sortable": True, "resizable": True, "filter": True},
        # every column in the page (the shelving columns are to the right; a test reads them)
        dashGridOptions={"rowSelection": {"mode": "multiRow"}, "animateRows": False,
                         "suppressColumnVirtualisation": True},
        rowClassRules={"alarm-urgent": "params.data.priority_n >= 4 && params.data.state.startsWith('active')",
                       "alarm-high": "params.data.priority_n == 3 && params.data.state.startsWith('active')"},
        className="hmi-grid",
        style={"height": height},
    )


def acknowledge(queries: QueryService, user: CurrentUser | None, rows: Sequence[dict[str, Any]] | None,
                comment: str | None) -> str:
    """Acknowledge the selected alarm rows as ``user`` (operator or above); returns what was done."""
    who = require(user, UserRole.OPERATOR, "acknowledging alarms")
    todo = [r for r in _alarm_rows(rows) if not r.get("acknowledged")]
    if not todo:
        return "Select at least one unacknowledged alarm."
    for r in todo:
        queries.acknowledge(site=str(r["site"]), key=str(r["key"]), user=who.name, comment=(comment or "").strip())
    return f"{len(todo)} alarm(s) acknowledged by {who.name}."


def ack_notice(queries: QueryService, rows: Sequence[dict[str, Any]] | None, comment: str | None) -> html.Div:
    """The acknowledge buttons' answer: what was done as the signed-in user, or why nothing was."""
    try:
        return notice(acknowledge(queries, current_user(), rows, comment))
    except TwinError as exc:  # Forbidden, or the historian refused the write
        return notice(str(exc), error=True)


def _alarm_rows(rows: Any) -> list[dict[str, Any]]:
    """The selected rows of an acknowledgement request; 400 naming the first malformed one (no page sends one)."""
    if rows is None:
        return []
    if not isinstance(rows, list):
        raise BadRequest(f"selectedRows: must be a list of alarm rows (got {type(rows).__name__})")
    for i, r in enumerate(rows):
        if not isinstance(r, dict) or not isinstance(r.get("site"), str) or not isinstance(r.get("key"), str):
            raise BadRequest(f"selectedRows[{i}]: an alarm row needs a site and a key, both text")
    return rows


def notice(text: str, *, error: bool = False) -> html.Div:
    return html.Div(text, className="notice-error" if error else "notice")


class LastDrawing(Generic[V, R]):
    """The last drawing of each key (a site), kept while the view it was drawn from is the same object.

    The query service returns the same view object until its next refresh: every tab refreshing the
    same site within one refresh period shares one drawing.
    """

    def __init__(self, draw: Callable[[V], R]) -> None:
        self._draw = draw
        self._drawn: dict[str, tuple[V, R]] = {}

    def __call__(self, key: str, view: V) -> R:
        hit = self._drawn.get(key)
        if hit is not None and hit[0] is view:
            return hit[1]
        drawing = self._draw(view)
        self._drawn[key] = (view, drawing)
        return drawing


MAX_SEARCH_CHARS = 2000
TIMED_PAGES = ("/site", "/machine", "/replay")  # the pages that show the header's time choice


def page_search() -> str | None:
    """The query string of the page a callback request came from (``?site=…&at=…``), or None.

    Every callback request carries it (``page_search``, added by the app's renderer hook:
    ``dashboard.app``), so a page's interval refresh reads the header's time choice without an
    extra callback argument. Outside a request, or from a client that does not send it (a test
    client, the bench): None, which reads as live.
    """
    import flask

    if not flask.has_request_context():
        return None
    body = flask.request.get_json(silent=True)
    value = body.get("page_search") if isinstance(body, dict) else None
    return value[:MAX_SEARCH_CHARS] if isinstance(value, str) else None


def page_zone(queries: QueryService, search: str | None) -> str:
    """The zone a page's times are in: its site's (``?site=``), else UTC (a fleet-level page)."""
    site = url_param(search, "site")
    spec = next((s for s in queries.fleet.sites if s.id == site), None)
    return spec.timezone if spec is not None else timefmt.FLEET_ZONE


def time_control_search(queries: QueryService, search: str | None, preset: str | None, typed: str | None,
                        *, typed_now: bool) -> str | None:
    """The URL query string after a choice in the header's time control (None: nothing to change).

    ``preset`` is one of ``timefmt.PRESETS`` ("live" clears the time); ``typed`` is a moment typed in
    24 h ISO style in the page's zone (``page_zone``), used when ``typed_now`` (Enter or Go). "this
    shift" is the shift of the page's site (its calendar), else the last 8 hours.
    """
    now = queries.now()
    tz = page_zone(queries, search)
    if typed_now:
        at = timefmt.parse_input(typed, tz)
        if at is None:
            return None
        return TimeChoice(at=min(at, now)).search(search)
    if not preset:
        return None
    if preset == "live":
        return TimeChoice().search(search)
    site = url_param(search, "site")
    spec = next((s for s in queries.fleet.sites if s.id == site), None)
    return timefmt.preset_range(preset, now, tz, spec.calendar if spec else None).search(search)


def time_note(queries: QueryService, pathname: str | None, search: str | None) -> str:
    """What the header says about the time shown: live, or the moment / range chosen, in the page's zone."""
    choice = TimeChoice.from_search(search)
    if choice.live:
        return "live"
    tz = page_zone(queries, search)
    now = queries.now()
    if choice.start is not None and choice.at is None:
        text = (f"{timefmt.fmt_datetime(choice.window(now, timedelta(hours=8))[0], tz)} to "
                f"{timefmt.fmt_datetime(choice.moment(now), tz)}")
    else:
        text = f"at {timefmt.fmt_datetime(choice.moment(now), tz, seconds=True)}"
    if pathname in ("/", "", None):
        return f"{text} chosen: the fleet page shows live data only (site, machine and replay pages show it)"
    if pathname not in TIMED_PAGES:  # the alarm journal, what-if, model trust: their own windows, from now
        return f"{text} chosen: this page shows live data only (site, machine and replay pages show it)"
    return text
