"""The what-if page's result side: a run (finished, early bands, or opened by its link) into its views.

One job: the callbacks that show a run, kept apart from the form and the run (``dashboard.pages.whatif``).
A run shows in the fan chart, the KPI-delta table, the table of each intervention alone, the open
orders and the session's comparison. Early bands (the run's first replications, while the rest
run) arrive through the background callback's progress (``Reporter``); a finished run kept in the
server's run store opens at ``/whatif?result=ID`` with the same numbers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import dash
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import figures, ids, theme, timefmt
from dashboard.pages._shared import notice, url_param
from dashboard.scenario_store import ResultStore
from dashboard.whatif_tables import compare_table, deltas_table, effects_table, orders_table
from dashboard.whatif_view import WhatIfResult

__all__ = ["DELETE", "DUPLICATE", "EARLY", "EFFECTS", "LINK", "LOADED", "LOAD_SAVED", "SAVED", "SAVE_SERVER",
           "SHOWN", "STORE_NOTE", "Reporter", "register_results", "result_link"]

PATH = "/whatif"
# the page's ids added with the server-side store (dashboard.ids holds the older ones)
SAVED = "whatif-saved"  # dropdown of the scenarios saved on the server
SAVE_SERVER, LOAD_SAVED, DUPLICATE, DELETE = "whatif-save-server", "whatif-load-saved", "whatif-dup", "whatif-del"
STORE_NOTE = "whatif-store-note"
EFFECTS = "whatif-effects"  # each intervention alone
LINK = "whatif-link"  # the link to the finished run's result page
LOADED = "whatif-loaded"  # dcc.Store: a stored run opened by its link (/whatif?result=ID)
SHOWN = "whatif-shown"  # dcc.Store: the run the page shows (just finished, or opened by its link)

EARLY = "whatif-early"  # the line saying the bands shown are early (the run's first replications)


class Reporter:
    """The run's progress for the background callback: the bar, then the early fan chart and KPI deltas.

    Dash applies a background callback's progress straight to its outputs (no callback follows), so
    the early views are built here, in the worker: the fan chart of ``kpi`` and the deltas table
    of the run's first replications, with a line saying how many.
    """

    def __init__(self, set_progress: Callable[[tuple[Any, ...]], None], kpi: str | None) -> None:
        self._set, self._kpi = set_progress, kpi
        self._bar: tuple[float, str] = (0.0, "")
        self._views: tuple[Any, Any, Any] = (figures.empty("Running: the first bands come in a moment").to_dict(),
                                             html.Div("Running…", className="muted"), "")

    def __call__(self, done: int, total: int) -> None:
        self._bar = (100.0 * done / max(total, 1), f"{done}/{total}")
        self._set((*self._bar, *self._views))

    def partial(self, result: WhatIfResult) -> None:
        kpis = result.kpis()
        kpi = self._kpi if self._kpi in kpis else (kpis[0] if kpis else None)
        fan = figures.fan_chart(result, kpi) if kpi else figures.empty("No projection yet")
        self._views = (fan.to_dict(), deltas_table(result.deltas),
                       notice(f"Running, early bands: the first {result.replications} replications shown; "
                              "the bands narrow as the rest finish"))
        self._set((*self._bar, *self._views))


def result_link(rid: str) -> str:
    """The path of a stored run's result page."""
    return f"{PATH}?result={rid}"


def _shown(data: dict[str, Any], kpi: str | None, runs: list[dict[str, Any]] | None, *, fresh: bool,
           zones: Mapping[str, str] | None = None) -> tuple[Any, ...]:
    """The views of a run: fan-chart KPI choice, deltas, effects, orders, the session's runs, status, link."""
    keep = dash.no_update
    if "error" in data:
        return keep, keep, keep, keep, keep, keep, notice(data["error"], error=True), keep, keep
    result = WhatIfResult.from_dict(data)
    kpis = result.kpis()
    if result.id:
        link: Any = html.Div(["Link to this result (same numbers, kept on the server): ",
                              dcc.Link(result_link(result.id), href=result_link(result.id), id="whatif-link-a")])
    else:
        link = html.Div("This result was not kept on the server: it has no link", className="muted small")
    what = "Done" if fresh else "Stored run"
    tz = (zones or {}).get(result.site)  # the site's own time ("forked 2026-11-30 14:05 CET"), UTC without it
    status = html.Div([notice(f"{what}: {result.replications} replications of {result.name!r} at {result.site}, "
                              f"forked {theme.fmt_ts(result.at, tz=tz)} ({timefmt.fmt_utc(result.at)}), "
                              f"seed {result.seed}"),
                       *[html.Div(n, className="muted small") for n in result.notes]])
    return ([{"label": k, "value": k} for k in kpis], kpi if kpi in kpis else (kpis[0] if kpis else None),
            deltas_table(result.deltas), effects_table(result.effects), orders_table(result, tz),
            [*(runs or [])[-9:], data] if fresh else keep, status, link, data)


def register_results(app: dash.Dash, results: ResultStore, zones: Mapping[str, str] | None = None) -> None:
    """A run into the fan chart, the KPI deltas, each intervention alone, the orders and the comparison.

    ``zones`` (site id -> time zone) puts a run's times in its site's local time.
    """

    @app.callback(Output(LOADED, "data"), Output(ids.WHATIF_STATUS, "children", allow_duplicate=True),
                  Input(ids.LOCATION, "search"), prevent_initial_call="initial_duplicate")
    def _open(search: str | None) -> tuple[Any, Any]:
        rid = url_param(search, "result")
        if not rid:
            raise PreventUpdate
        data = results.get(rid)
        if data is None:
            return dash.no_update, notice(f"No stored what-if result {rid!r}: results are kept "
                                          f"{results.max_age_s / 86400:g} days (at most {results.max_count})",
                                          error=True)
        return data, dash.no_update

    @app.callback(Output(ids.WHATIF_SCENARIO, "data", allow_duplicate=True),
                  Output(ids.WHATIF_NAME, "value", allow_duplicate=True),
                  Output(ids.WHATIF_HORIZON, "value", allow_duplicate=True),
                  Output(ids.WHATIF_REPLICATIONS, "value", allow_duplicate=True),
                  Output(ids.WHATIF_SITE, "value", allow_duplicate=True),
                  Output(ids.WHATIF_AT, "value", allow_duplicate=True),
                  Input(LOADED, "data"), prevent_initial_call=True)
    def _form(data: dict[str, Any] | None) -> tuple[Any, ...]:
        # the stored run's scenario back in the form: run it again (same seed: same numbers) or change it
        doc = ((data or {}).get("request") or {}).get("scenario")
        if not isinstance(doc, dict):
            raise PreventUpdate
        # its fork time (UTC in the document) in the field as typed: 24 h, the site's time
        at = timefmt.parse_url_time(str(doc.get("at") or ""))
        typed = timefmt.fmt_input(at, (zones or {}).get(str(doc.get("site")))) if at is not None else ""
        return ({"interventions": list(doc.get("interventions", []))}, doc.get("name"), doc.get("horizon_h"),
                doc.get("replications"), doc.get("site"), typed)

    @app.callback(Output(ids.WHATIF_FAN_KPI, "options"), Output(ids.WHATIF_FAN_KPI, "value"),
                  Output(ids.WHATIF_DELTAS, "children"), Output(EFFECTS, "children"),
                  Output(ids.WHATIF_ORDERS, "children"), Output(ids.WHATIF_RUNS, "data"),
                  Output(ids.WHATIF_STATUS, "children", allow_duplicate=True), Output(LINK, "children"),
                  Output(SHOWN, "data"),
                  Output(EARLY, "children", allow_duplicate=True),
                  Input(ids.WHATIF_RESULT, "data"), Input(LOADED, "data"), State(ids.WHATIF_FAN_KPI, "value"),
                  State(ids.WHATIF_RUNS, "data"), prevent_initial_call=True)
    def _result(data: dict[str, Any] | None, loaded: dict[str, Any] | None, kpi: str | None,
                runs: list[dict[str, Any]] | None) -> tuple[Any, ...]:
        fresh = ctx.triggered_id == ids.WHATIF_RESULT
        shown = data if fresh else loaded
        if not shown:
            raise PreventUpdate
        # the early-bands line goes with the final views
        return (*_shown(shown, kpi, runs, fresh=fresh, zones=zones), "")

    @app.callback(Output(ids.WHATIF_FAN, "figure"), Input(ids.WHATIF_FAN_KPI, "value"), Input(SHOWN, "data"))
    def _fan(kpi: str | None, data: dict[str, Any] | None) -> Any:
        if not data or "error" in data or not kpi:
            return figures.empty("Run a scenario to see its projection")
        return figures.fan_chart(WhatIfResult.from_dict(data), kpi)

    @app.callback(Output(ids.WHATIF_COMPARE, "children"), Input(ids.WHATIF_RUNS, "data"))
    def _compare(runs: list[dict[str, Any]] | None) -> Any:
        return compare_table(runs or [])
