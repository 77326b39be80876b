"""What-if: build a scenario, run it in the background with progress and cancel, read the projection.

The page stays thin: forms edit a plain scenario document (``dashboard.scenarios``; an intervention
can be edited or removed); "Run" is authorised on the server (engineer or admin) and produces a
signed request; a background callback verifies it and calls ``Services.whatif.run``, which draws
early bands through the progress (``dashboard.pages.whatif_results.Reporter``) and, with several
interventions, runs each alone too. The finished run is kept in the server's run store and linked
as ``/whatif?result=ID``; its views (fan charts, the KPI-delta table, each intervention alone, open
orders, the session's runs) are ``dashboard.pages.whatif_results``. Scenarios are saved on the
server with their author and time (``dashboard.scenario_store``, in ``whatif/`` beside the history)
and downloaded or uploaded as the engine's TOML.
"""

from __future__ import annotations

import base64
import logging
import sys
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import ALL, Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate
from werkzeug.exceptions import BadRequest

from dashboard import auth, figures, ids, timefmt
from dashboard.auth import CurrentUser, Forbidden, UserRole
from dashboard.pages._shared import card, choose, notice, register_page, site_options
from dashboard.pages.replay import parse_local
from dashboard.pages.whatif_fork import fork_at, fork_field, fork_note, fork_problems, zone_of
from dashboard.pages.whatif_results import (
    DELETE,
    DUPLICATE,
    EARLY,
    EFFECTS,
    LINK,
    LOAD_SAVED,
    LOADED,
    SAVE_SERVER,
    SAVED,
    SHOWN,
    STORE_NOTE,
    Reporter,
    register_results,
)
from dashboard.queries import QueryService
from dashboard.scenario_store import ResultStore, ScenarioStore, whatif_folder
from dashboard.scenarios import (
    FIELDS,
    INTERVENTIONS,
    WhatIfLimits,
    describe,
    intervention_from_form,
    scenario_from_toml,
    scenario_problems,
    scenario_to_toml,
)
from dashboard.services import Services
from dashboard.whatif_tables import deltas_table, effects_table, saved_options
from dashboard.whatif_view import WhatIfRequest, WhatIfResult
from twin.clock import utc_now
from twin.errors import ConfigError, TwinError
from twin.spec import FleetSpec

__all__ = ["authorise_run", "choice_options", "fork_at", "fork_field", "fork_note", "fork_problems", "form_values",
           "layout", "register", "run_request", "scenario_doc", "stores"]

log = logging.getLogger(__name__)
PATH = "/whatif"
TOKEN_SALT = "twin-whatif-run"
TOKEN_MAX_AGE_S = 60
CHOICE_TYPES = {"machine", "template", "sku", "product", "site", "weekdays"}
WEEKDAYS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
REMOVE, EDIT = "whatif-remove", "whatif-edit"  # per-intervention buttons (pattern ids, index = position)
AT_ZONE, AT_ERROR = "whatif-at-zone", "whatif-at-error"  # the fork time's zone and its problem, next to it


def _field(key: str) -> html.Div:
    fs = FIELDS[key]
    if fs.type in CHOICE_TYPES:
        widget: Any = dcc.Dropdown(
            id=ids.whatif_field(key, choice=True), multi=fs.type == "weekdays",
            options=[{"label": d, "value": i} for i, d in enumerate(WEEKDAYS)] if fs.type == "weekdays" else [],
        )
    else:
        widget = dbc.Input(id=ids.whatif_field(key, choice=False), type="text" if fs.type == "time" else "number",
                           min=fs.minimum, max=fs.maximum, step="any" if fs.type == "float" else 1)
    return html.Div([dbc.Label(fs.label), widget], id=ids.whatif_wrap(key), className="wf-field",
                    style={"display": "none"})


def layout(site: str | None = None, at: str | None = None, limits: WhatIfLimits | None = None,
           queries: QueryService | None = None, **_q: Any) -> html.Div:
    """The page; with ``queries``, its site, fork time and note come from the URL (``?site=&at=``, UTC) here.

    The form is drawn with them (no callback fills it in after the page is drawn): a fork from the
    replay opens with its site and time whatever order the page's first callbacks run in.
    """
    lim = limits or WhatIfLimits()
    options = site_options(queries) if queries is not None else []
    chosen = choose([o["value"] for o in options], site) if options else None
    tz = queries.fleet.site(chosen).timezone if queries is not None and chosen else timefmt.FLEET_ZONE
    moment = timefmt.parse_url_time(at)
    typed = fork_field(at, tz)
    zone_name = timefmt.zone_abbr(moment or (queries.now() if queries is not None else utc_now()),
                                  tz)
    note = fork_note(queries, chosen, at) if queries is not None else ""
    kinds = [{"label": label, "value": k} for k, (label, _) in INTERVENTIONS.items()]
    return html.Div(
        [
            html.Div([html.H2("What-if"), html.Div(note, id=ids.WHATIF_FORK_NOTE, className="muted")],
                     className="page-head"),
            dbc.Row(
                [
                    dbc.Col([card(
                        "Scenario",
                        dbc.Row([dbc.Col([dbc.Label("Name"), dbc.Input(id=ids.WHATIF_NAME, value="scenario 1")],
                                         xs=12, sm=6),
                                 dbc.Col([dbc.Label("Site"), dcc.Dropdown(
                                     id=ids.WHATIF_SITE, options=options, value=chosen, clearable=False,
                                     placeholder="Site…", className="site-dropdown")], xs=12, sm=6)]),
                        dbc.Row([
                            # 24 h ISO text in the site's time (a browser's date picker may show AM/PM)
                            dbc.Col([dbc.Label(["Fork at (", html.Span(zone_name, id=AT_ZONE),
                                                ", 24 h; empty: now)"]),
                                     dbc.Input(id=ids.WHATIF_AT, type="text", value=typed, maxLength=25,
                                               placeholder="YYYY-MM-DD HH:MM", debounce=True),
                                     html.Div(id=AT_ERROR)], xs=12, sm=6),
                            dbc.Col([dbc.Label("Horizon (h)"),
                                     dbc.Input(id=ids.WHATIF_HORIZON, type="number", value=72, min=1,
                                               max=lim.max_horizon_h)], xs=6, sm=3),
                            dbc.Col([dbc.Label("Replications"),
                                     dbc.Input(id=ids.WHATIF_REPLICATIONS, type="number", value=50, min=1,
                                               max=lim.max_replications, step=1)], xs=6, sm=3),
                        ], className="mt-2"),
                        html.Hr(),
                        dbc.Label("Add an intervention"),
                        dcc.Dropdown(id=ids.WHATIF_KIND, options=kinds, value="machine_down", clearable=False),
                        html.Div([_field(k) for k in FIELDS], id=ids.WHATIF_FORM, className="wf-grid mt-2"),
                        html.Div([dbc.Button("Add", id=ids.WHATIF_ADD, color="secondary", className="me-2"),
                                  dbc.Button("Clear all", id=ids.WHATIF_CLEAR, color="light")], className="mt-2"),
                        html.Div(id=ids.WHATIF_INTERVENTIONS, className="mt-2"),
                        html.Div(id=ids.WHATIF_ERROR),
                        html.Hr(),
                        html.Div([
                            dbc.Button("Run", id=ids.WHATIF_RUN, color="primary", className="me-2"),
                            dbc.Button("Cancel", id=ids.WHATIF_CANCEL, color="light", disabled=True,
                                       className="me-2"),
                            dbc.Button("Save TOML", id=ids.WHATIF_SAVE, color="light", className="me-2"),
                            dcc.Upload(dbc.Button("Load TOML", color="light"), id=ids.WHATIF_UPLOAD,
                                       accept=".toml", className="d-inline-block"),
                        ]),
                        dbc.Progress(id=ids.WHATIF_PROGRESS, value=0, label="", className="mt-2",
                                     style={"height": "18px"}),
                        html.Div(id=ids.WHATIF_STATUS, className="mt-1"),
                    ), card(
                        "Saved on the server",
                        dcc.Dropdown(id=SAVED, options=[], placeholder="Saved scenarios (newest first)…"),
                        html.Div([dbc.Button("Save on server", id=SAVE_SERVER, color="secondary", className="me-2"),
                                  dbc.Button("Load", id=LOAD_SAVED, color="light", className="me-2"),
                                  dbc.Button("Duplicate", id=DUPLICATE, color="light", className="me-2"),
                                  dbc.Button("Delete", id=DELETE, color="light")], className="mt-2"),
                        html.Div(id=STORE_NOTE, className="mt-1"),
                    )], lg=5),
                    dbc.Col([
                        card("Projection",
                             dcc.Dropdown(id=ids.WHATIF_FAN_KPI, options=[], value=None, clearable=False,
                                          placeholder="KPI…", style={"maxWidth": "320px"}),
                             dcc.Graph(id=ids.WHATIF_FAN, figure=figures.empty("Run a scenario to see its projection"),
                                       config={"displaylogo": False})),
                        html.Div(id=EARLY),
                        html.Div(id=LINK, className="mb-2"),
                        card("KPI deltas: baseline and scenario side by side",
                             html.Div(html.Div("No run yet", className="muted"), id=ids.WHATIF_DELTAS)),
                        card("Each intervention alone", html.Div(effects_table(()), id=EFFECTS)),
                        card("Open orders: probability on time", html.Div(id=ids.WHATIF_ORDERS)),
                        card("Compare runs", html.Div(id=ids.WHATIF_COMPARE)),
                    ], lg=7),
                ]
            ),
            dcc.Store(id=ids.WHATIF_SCENARIO, data={"interventions": []}),
            dcc.Store(id=ids.WHATIF_REQUEST),
            dcc.Store(id=ids.WHATIF_RESULT),
            dcc.Store(id=LOADED),
            dcc.Store(id=SHOWN),
            dcc.Store(id=ids.WHATIF_RUNS, data=[], storage_type="session"),
            dcc.Download(id=ids.WHATIF_DOWNLOAD),
        ]
    )


def _num(x: Any) -> float | int | None:
    """A form value as a number (None: empty or not a number); 400 for a number no float holds."""
    if x in (None, ""):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    except OverflowError as exc:  # e.g. replications 10**400: no browser sends one
        raise BadRequest(f"not a usable number: larger than {sys.float_info.max:.3g}") from exc
    return int(f) if f.is_integer() else f


def scenario_doc(stored: dict[str, Any] | None, *, name: Any, site: Any, at: Any, horizon: Any, reps: Any
                 ) -> dict[str, Any]:
    """The full scenario document from the stored interventions and the form's header fields."""
    doc: dict[str, Any] = {"name": (name or "").strip(), "site": site, "horizon_h": _num(horizon),
                           "replications": _num(reps), "interventions": list((stored or {}).get("interventions", []))}
    if (stored or {}).get("description"):
        doc["description"] = str((stored or {})["description"])
    if at:
        doc["at"] = at
    return doc


def authorise_run(services: Services, settings: auth.AuthSettings, user: CurrentUser | None,
                  doc: dict[str, Any]) -> dict[str, Any]:
    """Check the user may run what-ifs and the scenario is valid; return a signed run request."""
    who = auth.require(user, UserRole.ENGINEER, "running a what-if")
    if services.whatif is None:
        raise TwinError("the what-if engine is not available in this dashboard")
    problems = scenario_problems(doc, services.queries.fleet, services.limits)
    if not problems:
        problems = fork_problems(services.queries, str(doc["site"]), doc.get("at"))
    if problems:
        raise ConfigError("scenario", problems)
    return {"token": auth.sign(settings, {"user": who.name, "doc": doc}, salt=TOKEN_SALT), "doc": doc}


def run_request(settings: auth.AuthSettings, request: dict[str, Any]) -> WhatIfRequest:
    """The what-if request in a signed token (``Forbidden`` if forged, altered or expired)."""
    payload = auth.verify(settings, str(request.get("token", "")), salt=TOKEN_SALT, max_age_s=TOKEN_MAX_AGE_S)
    doc = payload["doc"]
    return WhatIfRequest(site=doc["site"], scenario=doc, horizon_h=float(doc["horizon_h"]),
                         replications=int(doc["replications"]), at=parse_local(doc.get("at")),
                         requested_by=str(payload.get("user", "")))


def register(app: dash.Dash, services: Services) -> None:
    """The page and its callbacks: the form, the run in the background, the result views."""
    def page(**query: Any) -> html.Div:
        return layout(limits=services.limits, queries=services.queries, **query)

    register_page(__name__, path=PATH, name="What-if", title="What-if · Micro-factory twin", order=3,
                  layout=page)
    settings: auth.AuthSettings = app.server.config[auth.CONFIG_KEY]
    saved, results = stores(services)
    _register_form(app, services.queries)
    _register_edit(app, services.queries, saved)
    _register_saved(app, saved, services.queries.fleet)
    _register_run(app, services, settings, results)
    register_results(app, results, {str(s.id): s.timezone for s in services.queries.fleet.sites})


def stores(services: Services) -> tuple[ScenarioStore, ResultStore]:
    """The saved scenarios and the finished runs, in ``whatif/`` beside the history (``extra['whatif_dir']``)."""
    folder = whatif_folder(services.queries.historian, services.extra)
    return ScenarioStore(folder=folder / "scenarios"), ResultStore(folder=folder / "results")


def choice_options(fleet: FleetSpec, site: str, fields: list[dict[str, str]]) -> list[list[dict[str, Any]]]:
    """The options of each choice field of the form (pattern-matching ids ``fields``) at ``site``."""
    spec = fleet.site(site)
    lists: dict[str, list[str]] = {
        "machine": [m.id for m in spec.machines], "template": [t.id for t in fleet.templates],
        "sku": [i.sku for i in spec.inventory], "product": [p.id for p in fleet.products],
        "site": [s.id for s in fleet.sites if s.id != site],
    }
    out = []
    for f in fields:
        kind = FIELDS[f["field"]].type
        if kind == "weekdays":
            out.append([{"label": d, "value": i} for i, d in enumerate(WEEKDAYS)])
        else:
            out.append([{"label": v, "value": v} for v in lists.get(kind, [])])
    return out


def _register_form(app: dash.Dash, queries: QueryService) -> None:
    """The form's header from the URL, its fields per intervention kind and their choices."""

    # the site, the fork time and the note are drawn with the page from its URL (``layout``): this callback
    # only follows what the user changes, and never writes the site or the time (no order of callbacks
    # can undo a fork's site: the race that opened a fork without its site had a URL callback here)
    @app.callback(Output(AT_ZONE, "children"), Output(AT_ERROR, "children"),
                  Output(ids.WHATIF_FORK_NOTE, "children"), Input(ids.WHATIF_SITE, "value"),
                  Input(ids.WHATIF_AT, "value"), prevent_initial_call=True)
    def _fork_time(site: str | None, typed: str | None) -> tuple[Any, ...]:
        tz = zone_of(queries.fleet, site)
        try:
            at = fork_at(typed, tz)
        except ValueError as exc:
            return dash.no_update, notice(str(exc), error=True), dash.no_update
        moment = timefmt.parse_url_time(at) or queries.now()
        return timefmt.zone_abbr(moment, tz), None, fork_note(queries, site, at)

    @app.callback(Output(ids.whatif_wrap(ALL), "style"), Input(ids.WHATIF_KIND, "value"),
                  State(ids.whatif_wrap(ALL), "id"))
    def _visible(kind: str | None, wraps: list[dict[str, str]]) -> list[dict[str, str]]:
        shown = set(INTERVENTIONS.get(kind or "", ("", ()))[1])
        return [{"display": "block"} if w["field"] in shown else {"display": "none"} for w in wraps]

    @app.callback(Output(ids.whatif_field(ALL, choice=True), "options"), Input(ids.WHATIF_SITE, "value"),
                  State(ids.whatif_field(ALL, choice=True), "id"))
    def _choices(site: str | None, fields: list[dict[str, str]]) -> list[list[dict[str, Any]]]:
        if not site:
            raise PreventUpdate
        return choice_options(queries.fleet, site, fields)


def _form_doc(fleet: FleetSpec, stored: dict[str, Any] | None, *, name: Any, site: Any, at: Any, horizon: Any,
              reps: Any) -> dict[str, Any]:
    """``scenario_doc`` of the form, its fork time typed in the site's zone as UTC (``ValueError`` if not a time)."""
    return scenario_doc(stored, name=name, site=site, at=fork_at(at, zone_of(fleet, site)), horizon=horizon,
                        reps=reps)


def _loaded(text: str, source: str, fleet: FleetSpec) -> tuple[Any, ...]:
    """The form after loading a scenario's TOML: the document and its header fields, or the refusal."""
    keep = dash.no_update
    try:
        doc = scenario_from_toml(text, fleet, source)
    except ConfigError as exc:
        return keep, notice(str(exc), error=True), keep, keep, keep, keep, keep
    at = fork_field(str(doc["at"]), zone_of(fleet, doc.get("site"))) if doc.get("at") else keep
    return (doc, notice(f"Loaded {source}"), doc.get("name", keep), doc.get("horizon_h", keep),
            doc.get("replications", keep), doc.get("site", keep), at)


def _uploaded(upload: str) -> str:
    return base64.b64decode(upload.split(",", 1)[1]).decode("utf-8")


def _added(kind: str, choices: list[Any], values: list[Any], stored: dict[str, Any] | None, site: str,
           fleet: FleetSpec) -> dict[str, Any]:
    """The scenario document with the intervention of the form's fields appended."""
    choice_keys = [k for k, f in FIELDS.items() if f.type in CHOICE_TYPES]
    value_keys = [k for k in FIELDS if k not in choice_keys]
    given = dict(zip(choice_keys, choices, strict=True)) | {
        k: (v if FIELDS[k].type == "time" else _num(v)) for k, v in zip(value_keys, values, strict=True)}
    item = intervention_from_form(kind, given, site, fleet)
    return {**(stored or {}), "interventions": [*(stored or {}).get("interventions", []), item]}


def form_values(item: dict[str, Any]) -> dict[str, Any]:
    """The form's field values of an intervention (to edit it): its table's keys, a shift's last shift."""
    if item.get("kind") == "shifts":
        last = (item.get("shift") or [{}])[-1]
        return {"weekdays": last.get("weekdays"), "shift_start": last.get("start"), "shift_end": last.get("end")}
    return {k: v for k, v in item.items() if k in FIELDS}


def _clicked(values: list[Any]) -> int | None:
    """The index of the pattern button that was clicked (None: a re-render, nothing clicked)."""
    trig = ctx.triggered_id
    if not isinstance(trig, dict) or not any(values):
        return None
    index = trig.get("index")
    return index if isinstance(index, int) else None


def _without(stored: dict[str, Any] | None, index: int) -> dict[str, Any]:
    items = list((stored or {}).get("interventions", []))
    return {**(stored or {}), "interventions": [it for k, it in enumerate(items) if k != index]}


def _register_edit(app: dash.Dash, queries: QueryService, saved: ScenarioStore) -> None:
    """Add, remove, edit, clear, load (a file or a saved one) and save the scenario's interventions."""

    @app.callback(
        Output(ids.WHATIF_SCENARIO, "data"), Output(ids.WHATIF_ERROR, "children"),
        Output(ids.WHATIF_NAME, "value"), Output(ids.WHATIF_HORIZON, "value"),
        Output(ids.WHATIF_REPLICATIONS, "value"), Output(ids.WHATIF_SITE, "value", allow_duplicate=True),
        Output(ids.WHATIF_AT, "value", allow_duplicate=True),
        Input(ids.WHATIF_ADD, "n_clicks"), Input(ids.WHATIF_CLEAR, "n_clicks"), Input(ids.WHATIF_UPLOAD, "contents"),
        Input(LOAD_SAVED, "n_clicks"), Input({"type": REMOVE, "index": ALL}, "n_clicks"),
        State(ids.WHATIF_KIND, "value"), State(ids.whatif_field(ALL, choice=True), "value"),
        State(ids.whatif_field(ALL, choice=False), "value"), State(ids.WHATIF_SCENARIO, "data"),
        State(ids.WHATIF_UPLOAD, "filename"), State(ids.WHATIF_SITE, "value"), State(SAVED, "value"),
        prevent_initial_call=True,
    )
    def _edit(_a: Any, _c: Any, upload: str | None, _l: Any, removes: list[Any], kind: str, choices: list[Any],
              values: list[Any], stored: dict[str, Any] | None, filename: str | None, site: str | None,
              chosen: str | None) -> tuple[Any, ...]:
        keep = dash.no_update
        trig = ctx.triggered_id
        if trig == ids.WHATIF_CLEAR:
            return {"interventions": []}, None, keep, keep, keep, keep, keep
        if trig == ids.WHATIF_UPLOAD and upload:
            try:
                text = _uploaded(upload)
            except (UnicodeDecodeError, IndexError, ValueError) as exc:
                return keep, notice(f"{filename}: not a text file ({exc})", error=True), keep, keep, keep, keep, keep
            return _loaded(text, filename or "scenario.toml", queries.fleet)
        if trig == LOAD_SAVED:
            if not chosen:
                return keep, notice("Choose a saved scenario first", error=True), keep, keep, keep, keep, keep
            try:
                return _loaded(saved.load(chosen).text, chosen, queries.fleet)
            except (ConfigError, OSError) as exc:
                return keep, notice(str(exc), error=True), keep, keep, keep, keep, keep
        if isinstance(trig, dict) and trig.get("type") == REMOVE:
            index = _clicked(removes)
            if index is None:
                raise PreventUpdate
            return _without(stored, index), None, keep, keep, keep, keep, keep
        if not site:
            return keep, notice("Choose a site first", error=True), keep, keep, keep, keep, keep
        return _added(kind, choices, values, stored, site, queries.fleet), None, keep, keep, keep, keep, keep

    @app.callback(
        Output(ids.WHATIF_KIND, "value"), Output(ids.whatif_field(ALL, choice=True), "value"),
        Output(ids.whatif_field(ALL, choice=False), "value"),
        Output(ids.WHATIF_SCENARIO, "data", allow_duplicate=True),
        Output(ids.WHATIF_ERROR, "children", allow_duplicate=True),
        Input({"type": EDIT, "index": ALL}, "n_clicks"), State(ids.WHATIF_SCENARIO, "data"),
        State(ids.whatif_field(ALL, choice=True), "id"), State(ids.whatif_field(ALL, choice=False), "id"),
        prevent_initial_call=True)
    def _edit_one(edits: list[Any], stored: dict[str, Any] | None, choice_ids: list[dict[str, str]],
                  value_ids: list[dict[str, str]]) -> tuple[Any, ...]:
        # editing takes the intervention back into the form (out of the list); "Add" puts the changed one back
        index = _clicked(edits)
        items = (stored or {}).get("interventions", [])
        if index is None or not 0 <= index < len(items):
            raise PreventUpdate
        item = items[index]
        given = form_values(item)
        return (item.get("kind"), [given.get(f["field"]) for f in choice_ids],
                [given.get(f["field"]) for f in value_ids], _without(stored, index),
                notice(f"Editing intervention {index + 1}: change its fields and press Add"))

    @app.callback(Output(ids.WHATIF_INTERVENTIONS, "children"), Input(ids.WHATIF_SCENARIO, "data"))
    def _list(doc: dict[str, Any] | None) -> Any:
        items = (doc or {}).get("interventions", [])
        if not items:
            return html.Div("No interventions: the run shows the baseline only", className="muted")
        return html.Ol([html.Li([describe(i), " ",
                                 dbc.Button("Edit", id={"type": EDIT, "index": k}, size="sm", color="light",
                                            className="ms-1 py-0"),
                                 dbc.Button("Remove", id={"type": REMOVE, "index": k}, size="sm", color="light",
                                            className="ms-1 py-0")])
                        for k, i in enumerate(items) if isinstance(i, dict)])

    @app.callback(Output(ids.WHATIF_DOWNLOAD, "data"), Input(ids.WHATIF_SAVE, "n_clicks"),
                  State(ids.WHATIF_SCENARIO, "data"), State(ids.WHATIF_NAME, "value"), State(ids.WHATIF_SITE, "value"),
                  State(ids.WHATIF_AT, "value"), State(ids.WHATIF_HORIZON, "value"),
                  State(ids.WHATIF_REPLICATIONS, "value"), prevent_initial_call=True)
    def _save(_n: Any, stored: Any, name: Any, site: Any, at: Any, horizon: Any, reps: Any) -> dict[str, Any]:
        try:
            doc = _form_doc(queries.fleet, stored, name=name, site=site, at=at, horizon=horizon, reps=reps)
        except ValueError:
            raise PreventUpdate from None  # the field says what is wrong with its time (``_fork_time``)
        filename = "".join(c if c.isalnum() or c in "-_" else "-" for c in doc["name"] or "scenario") + ".toml"
        return {"content": scenario_to_toml(doc), "filename": filename, "type": "application/toml", "base64": False}


def _register_run(app: dash.Dash, services: Services, settings: auth.AuthSettings, results: ResultStore) -> None:
    """Run: authorised on the server into a signed request, then run in a background callback."""

    @app.callback(Output(ids.WHATIF_PROGRESS, "value", allow_duplicate=True),
                  Output(ids.WHATIF_PROGRESS, "label", allow_duplicate=True),
                  Input(ids.WHATIF_RUN, "n_clicks"), prevent_initial_call=True)
    def _empty_bar(_n: Any) -> tuple[Any, ...]:
        # the bar starts empty: never the last run's "50/50" until this run's first progress arrives
        return 0, ""

    @app.callback(Output(ids.WHATIF_REQUEST, "data"), Output(ids.WHATIF_STATUS, "children"),
                  Input(ids.WHATIF_RUN, "n_clicks"),
                  State(ids.WHATIF_SCENARIO, "data"), State(ids.WHATIF_NAME, "value"), State(ids.WHATIF_SITE, "value"),
                  State(ids.WHATIF_AT, "value"), State(ids.WHATIF_HORIZON, "value"),
                  State(ids.WHATIF_REPLICATIONS, "value"), prevent_initial_call=True)
    def _start(_n: Any, stored: Any, name: Any, site: Any, at: Any, horizon: Any, reps: Any) -> tuple[Any, Any]:
        try:
            doc = _form_doc(services.queries.fleet, stored, name=name, site=site, at=at, horizon=horizon, reps=reps)
            request = authorise_run(services, settings, auth.current_user(), doc)
        except (Forbidden, TwinError, ValueError) as exc:
            return dash.no_update, notice(str(exc), error=True)
        tz = zone_of(services.queries.fleet, site)
        at_text = (f"the recorded state at {timefmt.fmt_datetime(timefmt.parse_url_time(doc['at']), tz)}"
                   if doc.get("at") else "the live state (now)")
        return request, notice(f"Running {doc['replications']} replications at {site} from {at_text}…")

    @app.callback(Output(ids.WHATIF_STATUS, "children", allow_duplicate=True),
                  Output(ids.WHATIF_PROGRESS, "value", allow_duplicate=True),
                  Output(ids.WHATIF_PROGRESS, "label", allow_duplicate=True),
                  Output(EARLY, "children", allow_duplicate=True),
                  Output(ids.WHATIF_FAN, "figure", allow_duplicate=True),
                  Output(ids.WHATIF_DELTAS, "children", allow_duplicate=True),
                  Input(ids.WHATIF_CANCEL, "n_clicks"), State(SHOWN, "data"), State(ids.WHATIF_FAN_KPI, "value"),
                  prevent_initial_call=True)
    def _cancelled(_n: Any, shown: dict[str, Any] | None, kpi: str | None) -> tuple[Any, ...]:
        # the cancelled run's early bands go; the views return to the run shown before it (if any)
        note = notice("Cancelled: the run was stopped and nothing of it is kept")
        if not shown or "error" in shown:
            return note, 0, "", "", figures.empty("Run a scenario to see its projection"), html.Div(
                "No run yet", className="muted")
        result = WhatIfResult.from_dict(shown)
        fan = figures.fan_chart(result, kpi) if kpi else figures.empty("Run a scenario to see its projection")
        return note, 0, "", "", fan, deltas_table(result.deltas)

    @app.callback(
        Output(ids.WHATIF_RESULT, "data"), Input(ids.WHATIF_REQUEST, "data"), State(ids.WHATIF_FAN_KPI, "value"),
        background=True, prevent_initial_call=True, interval=250,  # polls: early bands within a second
        progress=[Output(ids.WHATIF_PROGRESS, "value"), Output(ids.WHATIF_PROGRESS, "label"),
                  Output(ids.WHATIF_FAN, "figure"), Output(ids.WHATIF_DELTAS, "children"), Output(EARLY, "children")],
        running=[(Output(ids.WHATIF_RUN, "disabled"), True, False),
                 (Output(ids.WHATIF_CANCEL, "disabled"), False, True)],
        cancel=[Input(ids.WHATIF_CANCEL, "n_clicks")],
    )
    def _run(set_progress: Any, request: dict[str, Any] | None, kpi: str | None) -> Any:
        if not request or services.whatif is None:
            raise PreventUpdate
        req = run_request(settings, request)  # refuses a forged or stale request, even from a direct POST

        try:
            data = services.whatif.run(req, Reporter(set_progress, kpi)).to_dict()
        except TwinError as exc:
            log.warning("what-if failed: %s", exc)
            return {"error": str(exc)}
        # kept on the server (bounded), so the run has a page to link to; its request reproduces it
        record = {**data, "request": {"scenario": req.scenario, "at": req.at.isoformat() if req.at else None,
                                      "seed": req.seed, "by": req.requested_by}}
        try:
            data["id"] = results.put(record, now=utc_now())
        except (TwinError, OSError) as exc:
            log.warning("what-if result not kept: %s", exc)
        return data


def _register_saved(app: dash.Dash, saved: ScenarioStore, fleet: FleetSpec) -> None:
    """Scenarios saved on the server: save the form's (engineers), duplicate, delete; the list, newest first."""

    @app.callback(Output(SAVED, "options"), Output(SAVED, "value"), Output(STORE_NOTE, "children"),
                  Input(ids.LOCATION, "pathname"), Input(SAVE_SERVER, "n_clicks"), Input(DUPLICATE, "n_clicks"),
                  Input(DELETE, "n_clicks"), State(SAVED, "value"),
                  State(ids.WHATIF_SCENARIO, "data"), State(ids.WHATIF_NAME, "value"), State(ids.WHATIF_SITE, "value"),
                  State(ids.WHATIF_AT, "value"), State(ids.WHATIF_HORIZON, "value"),
                  State(ids.WHATIF_REPLICATIONS, "value"))
    def _store(_p: Any, _s: Any, _d: Any, _x: Any, chosen: str | None, stored: Any, name: Any, site: Any, at: Any,
               horizon: Any, reps: Any) -> tuple[Any, ...]:
        trig, note, value = ctx.triggered_id, None, chosen
        try:
            if trig in (SAVE_SERVER, DUPLICATE, DELETE):
                who = auth.require(auth.current_user(), UserRole.ENGINEER, "changing saved scenarios")
                if trig == SAVE_SERVER:
                    doc = _form_doc(fleet, stored, name=name, site=site, at=at, horizon=horizon, reps=reps)
                    value = saved.save(doc["name"], scenario_to_toml(doc), author=who.name, at=utc_now()).name
                    note = notice(f"Saved {value!r} on the server")
                elif not chosen:
                    note = notice("Choose a saved scenario first", error=True)
                elif trig == DUPLICATE:
                    copy = {**scenario_from_toml(saved.load(chosen).text, fleet, chosen), "name": f"{chosen} (copy)"}
                    value = saved.save(copy["name"], scenario_to_toml(copy), author=who.name, at=utc_now()).name
                    note = notice(f"Duplicated {chosen!r} as {value!r}")
                else:
                    saved.delete(chosen)
                    value, note = None, notice(f"Deleted {chosen!r}")
        except (Forbidden, TwinError, OSError, ValueError) as exc:
            note = notice(str(exc), error=True)
        return saved_options(saved.list()), value, note
