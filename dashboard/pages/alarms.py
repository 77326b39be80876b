"""Alarm journal: filter by site, priority, state and time; acknowledge; export as CSV.

Each row says whether the alarm was shelved (one-shot, timed until T, out of service), by whom and
why, and whether it was suppressed by design (raised while its machine was OFF or in maintenance);
a filter hides the shelved or the suppressed ones. Times are shown in each alarm's site zone (UTC on
hover); the CSV keeps UTC ISO-8601, as ``twin export --what alarms`` writes it. On a phone (a window
narrower than ``NARROW_PX``) the journal is one stacked column per alarm (priority, where, state;
message; a predictive alarm's risk and predicted time; raised; shelving, suppression and
acknowledgement when there are any: ``summary``), read without sideways scrolling; *all columns*
shows the full grid. A predictive alarm (``twin.forecast``) shows its probability within its horizon
(*Risk*, "46 % within 8 h") and its predicted time (*Predicted*, site time) in columns of their own,
from its raised event's data (``predictive_cells``): its message alone is cut short in the grid.
"""

from __future__ import annotations

import csv
import io
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, dcc, html

from connectors.export import ALARM_JOURNAL_FIELDS, probability_text, spreadsheet_safe
from dashboard import components, ids, theme, timefmt
from dashboard.health import fmt_risk
from dashboard.pages._shared import (
    ALARM_COLUMNS,
    ack_notice,
    alarm_grid,
    card,
    register_page,
    site_dropdown,
    site_options,
)
from dashboard.services import Services
from dashboard.viewmodels import AlarmRow
from twin.alarm_shelving import JournalMark, shelf_label
from twin.spec import Priority

__all__ = ["JOURNAL_COLUMNS", "NARROW_PX", "PHONE_COLUMNS", "columns_for", "hidden", "journal_csv", "layout",
           "predictive_cells", "register", "summary"]

PATH = "/alarms"
HOURS = {"1 h": 1, "8 h": 8, "24 h": 24, "7 d": 168, "30 d": 720}
STATES = ["active", "cleared", "acked", "unacked"]

HIDE = {"hide shelved": "shelved", "hide suppressed": "suppressed"}
CSV_FIELDS = list(ALARM_JOURNAL_FIELDS)  # the same columns as `twin export --what alarms`
NARROW_PX = 768  # below this window width (Bootstrap's md) the journal is one stacked column
PHONE_COLUMNS = [{"field": "summary", "headerName": "Alarm", "flex": 1, "minWidth": 0, "wrapText": True,
                  "autoHeight": True, "tooltipField": "raised_utc",
                  "cellStyle": {"whiteSpace": "pre-line", "lineHeight": "1.35", "paddingTop": "4px",
                                "paddingBottom": "4px", "wordBreak": "break-word"}}]
# the shared alarm columns with a predictive alarm's risk and predicted time after the message, the message
# wide enough for "P1: Failure likely: 46 % chance of failure within 8 h" less its asset (hover: all of it)
JOURNAL_COLUMNS = [
    *[dict(c, tooltipField="message", minWidth=340) if c["field"] == "message" else c for c in ALARM_COLUMNS[:4]],
    {"field": "risk", "headerName": "Risk", "width": 140,
     "headerTooltip": "a predictive alarm's probability (when raised) within its horizon"},
    {"field": "predicted", "headerName": "Predicted (site time)", "width": 205, "tooltipField": "predicted_utc",
     "headerTooltip": "failure: when it becomes 50 % likely; stockout: median stockout; order: median finish"},
    *ALARM_COLUMNS[4:],
]


def predictive_cells(r: AlarmRow, tz: str | None) -> dict[str, str]:
    """A predictive alarm's ``risk`` ("46 % within 8 h"), ``predicted`` (in ``tz``), ``predicted_utc``; "": none.

    A predictive alarm without a predicted time within its horizon (a failure less than 50 % likely
    in it: ``twin.forecast`` gives the time only within the horizon) is predicted "beyond 8 h".
    """
    if r.probability is None:
        return {"risk": "", "predicted": "", "predicted_utc": ""}
    within = f" {r.horizon_h:g} h" if r.horizon_h else " the horizon"
    at = r.predicted_at
    return {"risk": fmt_risk(r.probability) + " within" + within,
            "predicted": theme.fmt_ts(at, tz=tz) if at else "beyond" + within,
            "predicted_utc": timefmt.utc_title(at) if at else ""}


def summary(row: dict[str, Any]) -> str:
    """One alarm as a few short lines (the phone's stacked column)."""
    lines = [f"{row.get('priority', '')} · {row.get('site', '')} {row.get('asset', '')} · {row.get('state', '')}",
             str(row.get("message", ""))]
    if row.get("risk"):
        lines.append(f"risk {row['risk']}" + (f", predicted {row['predicted']}" if row.get("predicted") else ""))
    lines.append(f"raised {row.get('raised', '')}")
    if row.get("cleared"):
        lines.append(f"cleared {row['cleared']}")
    if row.get("shelved") not in ("", "no", None):
        lines.append(f"shelved: {row['shelved']}" + (f" by {row['shelved_by']}" if row.get("shelved_by") else "")
                     + (f": {row['shelved_why']}" if row.get("shelved_why") else ""))
    if row.get("suppressed") == "yes":
        lines.append("suppressed by design (machine off or in maintenance)")
    if row.get("acked_by"):
        lines.append(f"acked by {row['acked_by']}" + (f": {row['comment']}" if row.get("comment") else ""))
    return "\n".join(lines)


def columns_for(width: float | None, details: list[str] | None) -> list[dict[str, Any]]:
    """The grid's columns: every one on a wide window (or asked for), else the stacked one."""
    if width is not None and width < NARROW_PX and "all" not in (details or []):
        return PHONE_COLUMNS
    return JOURNAL_COLUMNS


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Alarm journal")], className="page-head"),
            card(
                "Filter",
                dbc.Row(
                    [
                        dbc.Col(site_dropdown(ids.ALARMS_SITES, None, multi=True), md=4),
                        dbc.Col(dcc.Dropdown(id=ids.ALARMS_PRIORITIES, multi=True, placeholder="Priority…",
                                             options=[{"label": p.name, "value": int(p)} for p in Priority]), md=3),
                        dbc.Col(dcc.Checklist(id=ids.ALARMS_STATES, options=STATES, value=[], inline=True), md=3),
                        dbc.Col(dcc.Dropdown(id=ids.ALARMS_HOURS, options=list(HOURS), value="24 h",
                                             clearable=False), md=2),
                        dbc.Col(dcc.Checklist(id=ids.ALARMS_HIDE, options=list(HIDE), value=[], inline=True), md=8),
                        dbc.Col(dcc.Checklist(id=ids.ALARMS_DETAILS, value=[], inline=True,
                                              options=[{"label": " all columns", "value": "all"}],
                                              className="d-md-none"), md=4),
                    ],
                    className="g-2",
                ),
            ),
            alarm_grid(ids.ALARMS_GRID, height="460px"),
            dbc.Row(
                [
                    dbc.Col(dbc.InputGroup([dbc.Input(id=ids.ALARMS_COMMENT, placeholder="Comment (optional)",
                                                      maxLength=200),
                                            dbc.Button("Acknowledge selected", id=ids.ALARMS_ACK,
                                                       color="secondary")]), md=8),
                    dbc.Col(dbc.Button("Export CSV", id=ids.ALARMS_EXPORT, color="light"), md=4,
                            className="text-end"),
                ],
                className="mt-2",
            ),
            html.Div(id=ids.ALARMS_ACK_RESULT, className="mt-1"),
            dcc.Download(id=ids.ALARMS_DOWNLOAD),
            dcc.Store(id=ids.ALARMS_WIDTH, data=None),
        ]
    )


def journal_csv(rows: list[dict[str, Any]]) -> str:
    """The journal rows as CSV, every cell through ``spreadsheet_safe`` (as ``twin export --what alarms``)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_FIELDS)
    writer.writerows([spreadsheet_safe(r.get(f)) for f in CSV_FIELDS] for r in rows)
    return buf.getvalue()


def hidden(rows: list[AlarmRow], hide: list[str] | None) -> list[AlarmRow]:
    """``rows`` without the shelved (``hide shelved``) and/or the suppressed by design (``hide suppressed``)."""
    what = {HIDE[h] for h in hide or () if h in HIDE}
    return [r for r in rows if not ("shelved" in what and r.shelf) and not ("suppressed" in what and r.suppressed)]


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Alarms", title="Alarms · Micro-factory twin", order=5,
                       layout=layout)
    queries = services.queries

    @app.callback(Output(ids.ALARMS_SITES, "options"), Input(ids.LOCATION, "pathname"))
    def _sites(_p: str | None) -> list[dict[str, str]]:
        return site_options(queries)

    zones = {str(s.id): s.timezone for s in queries.fleet.sites}

    def rows(sites: list[str] | None, prios: list[int] | None, states: list[str] | None, hours: str | None,
             hide: list[str] | None = None, *, export: bool = False) -> list[dict[str, Any]]:
        found = queries.alarm_rows(sites=sites, priorities=prios, states=states, hours=HOURS.get(hours or "", 24))
        found = hidden(found, hide)
        shown = components.alarm_table_rows(found, zones=zones)
        for row, r in zip(shown, found, strict=True):
            row.update(predictive_cells(r, zones.get(r.site)))
        if not export:
            for row in shown:
                row["summary"] = summary(row)
            return shown
        # the export's times: UTC ISO-8601 (what `twin export` writes), not the local text shown
        for row, r in zip(shown, found, strict=True):
            row.update(raised=r.raised_at.isoformat(), cleared=r.cleared_at.isoformat() if r.cleared_at else "",
                       acked_at=r.acked_at.isoformat() if r.acked_at else "",
                       shelved=shelf_label(JournalMark(shelf=r.shelf, until=r.shelved_until)),
                       probability=probability_text(r.probability),
                       predicted_at=r.predicted_at.isoformat() if r.predicted_at else "")
        return shown

    app.clientside_callback("function(_p) { return window.innerWidth; }", Output(ids.ALARMS_WIDTH, "data"),
                            Input(ids.LOCATION, "pathname"))

    @app.callback(Output(ids.ALARMS_GRID, "columnDefs"), Input(ids.ALARMS_WIDTH, "data"),
                  Input(ids.ALARMS_DETAILS, "value"))
    def _columns(width: float | None, details: list[str] | None) -> list[dict[str, Any]]:
        return columns_for(width, details)

    @app.callback(Output(ids.ALARMS_GRID, "rowData"),
                  Input(ids.ALARMS_SITES, "value"), Input(ids.ALARMS_PRIORITIES, "value"),
                  Input(ids.ALARMS_STATES, "value"), Input(ids.ALARMS_HOURS, "value"), Input(ids.ALARMS_HIDE, "value"),
                  Input(ids.REFRESH, "n_intervals"), Input(ids.ALARMS_ACK_RESULT, "children"))
    def _refresh(sites: list[str] | None, prios: list[int] | None, states: list[str] | None, hours: str | None,
                 hide: list[str] | None, _n: int | None, _ack: Any) -> list[dict[str, Any]]:
        return rows(sites, prios, states, hours, hide)

    @app.callback(Output(ids.ALARMS_ACK_RESULT, "children"), Input(ids.ALARMS_ACK, "n_clicks"),
                  State(ids.ALARMS_GRID, "selectedRows"), State(ids.ALARMS_COMMENT, "value"),
                  prevent_initial_call=True)
    def _ack(_n: int | None, selected: list[dict[str, Any]] | None, comment: str | None) -> Any:
        return ack_notice(queries, selected, comment)

    @app.callback(Output(ids.ALARMS_DOWNLOAD, "data"), Input(ids.ALARMS_EXPORT, "n_clicks"),
                  State(ids.ALARMS_SITES, "value"), State(ids.ALARMS_PRIORITIES, "value"),
                  State(ids.ALARMS_STATES, "value"), State(ids.ALARMS_HOURS, "value"), State(ids.ALARMS_HIDE, "value"),
                  prevent_initial_call=True)
    def _export(_n: int | None, sites: list[str] | None, prios: list[int] | None, states: list[str] | None,
                hours: str | None, hide: list[str] | None) -> dict[str, Any]:
        stamp = queries.now().strftime("%Y%m%dT%H%MZ")
        return {"content": journal_csv(rows(sites, prios, states, hours, hide, export=True)),
                "filename": f"alarms-{stamp}.csv", "type": "text/csv", "base64": False}
