"""Shift page: one shift of one site as its report tells it, where people classify stops and shelve alarms.

Pick a site and a shift (default: the current one, up to now). The page shows output against plan,
OEE with A/P/Q, the OEE loss waterfall, the downtime Pareto, the stops (a reason dropdown on each
that needs a person), the alarm performance as ISA-18.2 measures it (rate per 10 min against its
benchmarks, floods, stale, chattering, the top-10 bad actors, priorities), the shelving journal and
a shelve action, and links to the report as a printable page and a PDF (``/shift/report.html`` and
``/shift/report.pdf``, the same as ``twin report``). Classifying and shelving need the operator role
(taking out of service and back the engineer's) and go to the collector (``dashboard.shift_view``); the
page then reads them back from the history.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

import dash
import dash_bootstrap_components as dbc
import flask
from dash import ALL, Input, Output, State, dcc, html

from dashboard import components, figures, ids
from dashboard import shift_figures as figs
from dashboard.auth import current_user
from dashboard.pages._shared import card, choose, notice, register_page, site_dropdown, site_options, url_param
from dashboard.services import Services
from dashboard.shift_view import CHANGES, authorise_shelving, shift_service, stop_id
from twin.alarm_performance import ACCEPTABLE_PER_10_MIN, MANAGEABLE_PER_10_MIN
from twin.errors import TwinError
from twin.shift import ShiftReport, ShiftWindow

__all__ = ["REPORT_PATH", "layout", "register", "shift_label"]

PATH = "/shift"
REPORT_PATH = "/shift/report"  # .html or .pdf, ?site=&start=


def layout(**_query: Any) -> html.Div:
    reason_hint = "Give each stop that needs a person its reason, then record (operator role)."
    return html.Div([
        html.Div([html.H2("Shift")], className="page-head"),
        dbc.Row([
            dbc.Col(site_dropdown(ids.SHIFT_SITE), md=4),
            dbc.Col(dcc.Dropdown(id=ids.SHIFT_WINDOW, options=[], value=None, clearable=False,
                                 placeholder="Shift…"), md=5),
            dbc.Col(html.Div(id=ids.SHIFT_DOWNLOAD), md=3, className="text-md-end"),
        ], className="g-2 mb-2"),
        html.Div(id=ids.SHIFT_TILES, className="shift-tiles mb-2",
                 style={"display": "flex", "flexWrap": "wrap", "gap": "8px"}),
        dbc.Row([
            dbc.Col(card("Where the planned time went", dcc.Graph(id=ids.SHIFT_WATERFALL,
                                                                 config={"displayModeBar": False})), lg=6),
            dbc.Col(card("Downtime by reason", dcc.Graph(id=ids.SHIFT_PARETO, config={"displayModeBar": False})),
                    lg=6),
        ], className="g-2"),
        card("Stops", html.P(reason_hint, className="muted small"), html.Div(id=ids.SHIFT_STOPS),
             dbc.InputGroup([dbc.Input(id=ids.SHIFT_STOP_COMMENT, placeholder="Comment (optional)", maxLength=200),
                             dbc.Button("Record reasons", id=ids.SHIFT_CLASSIFY, color="secondary")],
                            className="mt-2"),
             html.Div(id=ids.SHIFT_CLASSIFY_RESULT, className="mt-1")),
        card("Alarms (ISA-18.2)", dcc.Graph(id=ids.SHIFT_ALARM_RATE, config={"displayModeBar": False}),
             html.Div(id=ids.SHIFT_ALARM_FIGURES)),
        card("Shelve an alarm",
             dbc.Row([
                 dbc.Col(dcc.Dropdown(id=ids.SHIFT_ALARM_KEY, options=[], placeholder="Alarm…"), md=4),
                 dbc.Col(dcc.Dropdown(id=ids.SHIFT_CHANGE, value="shelved", clearable=False,
                                      options=[{"label": v, "value": k} for k, v in CHANGES.items()]), md=3),
                 dbc.Col(dcc.RadioItems(id=ids.SHIFT_SHELVE_KIND, value="one_shot", inline=True,
                                        options=[{"label": " until normal", "value": "one_shot"},
                                                 {"label": " for minutes", "value": "timed"}]), md=3),
                 dbc.Col(dbc.Input(id=ids.SHIFT_SHELVE_MIN, type="number", min=1, max=480, step=1, value=30), md=2),
             ], className="g-2"),
             dbc.InputGroup([dbc.Input(id=ids.SHIFT_SHELVE_COMMENT, placeholder="Why (required)", maxLength=200),
                             dbc.Button("Record", id=ids.SHIFT_SHELVE, color="secondary")], className="mt-2"),
             html.Div(id=ids.SHIFT_SHELVE_RESULT, className="mt-1"),
             html.H3("Shelving and out of service", className="h6 mt-3"),
             html.Div(id=ids.SHIFT_JOURNAL)),
    ])


def shift_label(w: ShiftWindow, tz: str, now: datetime) -> str:
    """``early · Tue 2026-01-06 06:00-14:00`` (site time); the shift in progress ``… 06:00-13:01 (so far)``."""
    zone = ZoneInfo(tz)
    a, b = w.start.astimezone(zone), w.end.astimezone(zone)
    so_far = " (so far)" if w.end > now else ""
    return f"{w.name} · {a:%a %Y-%m-%d %H:%M}-{b:%H:%M}{so_far}"


def _pct(x: float | None) -> str:
    return "n/a" if x is None else f"{100 * x:.1f} %"


def _tile(label: str, value: str, note: str = "") -> html.Div:
    return html.Div([html.Div(label, className="muted small"), html.B(value, className="fs-5"),
                     html.Div(note, className="muted small")], className="hmi-card p-2 shift-tile",
                    style={"flex": "1 1 150px", "minWidth": "150px"})


def _tiles(rep: ShiftReport) -> list[Any]:
    o, a = rep.oee, rep.alarms
    needs = sum(s.seconds for s in rep.stops if s.planned and s.reason is None)
    lost = sum(r.seconds for r in rep.pareto)
    return [
        _tile("Output vs plan", f"{rep.output.actual} / {rep.output.plan:.0f}", _pct(rep.output.ratio)),
        _tile("OEE", _pct(o.oee), f"A {_pct(o.availability)} · P {_pct(o.performance)} · Q {_pct(o.quality)}"),
        _tile("Lost time", f"{lost / 60:.0f} min",
              f"of {rep.waterfall.planned_s / 60:.0f} machine-min planned ({rep.planned_s / 60:.0f} min a machine)"),
        _tile("Needs a person", f"{needs / 60:.0f} min", "stops no rule explains"),
        _tile("Alarms / 10 min", f"{a.average_per_10_min:.2f}", a.benchmark),
    ]


def _stops(rep: ShiftReport, reasons: list[dict[str, str]], limit: int = 25) -> Any:
    tz = rep.site.timezone
    rows = []
    # the ones waiting for a person first, then those classified by one, then the newest
    shown = sorted((s for s in rep.stops if s.planned),
                   key=lambda s: (s.reason is not None, not s.by, -s.start.timestamp(), s.machine))
    for s in shown[:limit]:
        person = s.reason is None or bool(s.by)
        picker: Any = (dcc.Dropdown(id={"type": ids.SHIFT_REASON, "stop": stop_id(s.machine, s.start)},
                                    options=reasons, value=s.reason, placeholder="Reason…", clearable=False,
                                    className="shift-reason", style={"minWidth": "170px"})
                       if person else figs.reason_label(s.reason))
        who = f"{s.by}, {components.when(s.classified_at, tz).children}" if s.by else s.why
        rows.append(html.Tr([html.Td(s.machine), components.time_cell(s.start, tz),
                             html.Td(f"{s.seconds / 60:.1f}"), html.Td(s.status.value), html.Td(picker),
                             html.Td(who + (f": {s.comment}" if s.comment else ""), className="small")],
                            className="stop-needs-person" if s.reason is None else ""))
    if not rows:
        return html.P("No stops in the shift's planned time.", className="muted")
    more = len(shown) - limit
    tail = [html.P(f"{more} more stops in the report (all in its CSV).", className="muted small")
            ] if more > 0 else []
    return html.Div([components.table(["Machine", "Start", "Min", "Status", "Reason", "Who / why"], rows),
                     *tail], className="table-scroll")


def _alarm_figures(rep: ShiftReport) -> list[Any]:
    a = rep.alarms
    prios = ", ".join(f"{p.name.lower()} {n} ({100 * s:.0f} %)" for p, n, s in a.priorities) or "none"
    text = (f"{a.annunciated} annunciated (average {a.average_per_10_min:.2f}, peak {a.peak_per_10_min} per 10 min: "
            f"{a.benchmark}; ISA-18.2: about {ACCEPTABLE_PER_10_MIN:g} acceptable, {MANAGEABLE_PER_10_MIN:g} "
            f"manageable); {a.suppressed} suppressed by design and {a.shelved} shelved or out of service (in the "
            f"journal, in no figure). {len(a.floods)} flood(s), {a.time_in_flood_s / 60:.0f} min in flood "
            f"({100 * a.flood_share:.1f} % of the shift); {len(a.chattering)} chattering, {len(a.stale)} stale. "
            f"Priorities: {prios} (aim: about 80 % low, 15 % high, 5 % highest).")
    chatter = {c.key for c in a.chattering}
    stale = {x.key for x in a.stale}
    actors = [html.Tr([html.Td(b.key), html.Td(b.priority.name.lower()), html.Td(b.count), html.Td(_pct(b.share)),
                       html.Td(b.acknowledged),
                       html.Td(", ".join(w for w, on in (("chattering", b.key in chatter), ("stale", b.key in stale))
                                         if on))]) for b in a.bad_actors]
    tz = rep.site.timezone
    journal = [html.Tr([components.time_cell(j.raised, tz), html.Td(j.key), html.Td(j.priority.name.lower()),
                        html.Td(j.acked_by), html.Td(j.comment),
                        html.Td("suppressed by design" if j.suppressed else "shelved" if j.shelved else "")])
               for j in a.journal[-40:]]
    return [html.P(text, className="small", id="shift-alarm-text"),
            html.H3("Top-10 bad actors", className="h6"),
            components.table(["Alarm", "Priority", "Raised", "Share", "Acked", ""], actors) if actors
            else html.P("No alarms.", className="muted"),
            html.H3("Alarm journal (last 40 of the shift)", className="h6"),
            html.Div(components.table(["Raised", "Alarm", "Priority", "Acked by", "Comment", "Not counted"],
                                      journal), className="table-scroll") if journal
            else html.P("No alarms raised in the shift.", className="muted")]


def _journal(rep: ShiftReport) -> Any:
    tz = rep.site.timezone
    rows = [html.Tr([components.time_cell(c.ts, tz), html.Td(c.key), html.Td(c.change.replace("_", " ")),
                     html.Td(c.by), html.Td(c.why)]) for c in rep.shelving]
    rows += [html.Tr([components.time_cell(e.ts, tz), html.Td(str(e.data.get("key", ""))),
                      html.Td(f"{e.data.get('change', '')} (not applied)"), html.Td(str(e.data.get("user", ""))),
                      html.Td(why)]) for e, why in rep.shelving_refused]
    if not rows:
        return html.P("No shelving in this shift.", className="muted")
    return components.table(["Time", "Alarm", "Change", "By", "Why"], rows, id="shift-shelving-table")


def _links(site: str, w: ShiftWindow, pdf_problem: str) -> list[Any]:
    query = urlencode({"site": site, "start": w.start.isoformat()})
    out: list[Any] = [html.Span("Download report: ", className="small"),
                      html.A("HTML", href=f"{REPORT_PATH}.html?{query}", target="_blank", id="shift-report-html")]
    if pdf_problem:
        out.append(html.Span(f" · {pdf_problem}", className="muted small", id="shift-report-no-pdf"))
    else:
        out += [html.Span(" · "), html.A("PDF", href=f"{REPORT_PATH}.pdf?{query}", id="shift-report-pdf")]
    return out


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Shift", title="Shift · Micro-factory twin", order=6, layout=layout)
    queries = services.queries
    given = services.extra.get("shift")
    shifts = shift_service(queries, given)

    @app.callback(Output(ids.SHIFT_SITE, "options"), Output(ids.SHIFT_SITE, "value"),
                  Input(ids.LOCATION, "pathname"), State(ids.LOCATION, "search"), State(ids.SHIFT_SITE, "value"))
    def _sites(_p: str | None, search: str | None, value: str | None) -> tuple[Any, Any]:
        opts = site_options(queries)
        return opts, choose([o["value"] for o in opts], url_param(search, "site"), value)

    @app.callback(Output(ids.SHIFT_WINDOW, "options"), Output(ids.SHIFT_WINDOW, "value"),
                  Input(ids.SHIFT_SITE, "value"), State(ids.LOCATION, "search"))
    def _windows(site: str | None, search: str | None) -> tuple[Any, Any]:
        if not site:
            return [], None
        tz, now = queries.fleet.site(site).timezone, queries.now()
        shown = shifts.windows(site)
        opts = [{"label": shift_label(w, tz, now), "value": w.start.isoformat()} for w in shown]
        return opts, choose([o["value"] for o in opts], url_param(search, "start"))

    @app.callback(Output(ids.SHIFT_TILES, "children"), Output(ids.SHIFT_WATERFALL, "figure"),
                  Output(ids.SHIFT_PARETO, "figure"), Output(ids.SHIFT_STOPS, "children"),
                  Output(ids.SHIFT_ALARM_RATE, "figure"), Output(ids.SHIFT_ALARM_FIGURES, "children"),
                  Output(ids.SHIFT_ALARM_KEY, "options"), Output(ids.SHIFT_JOURNAL, "children"),
                  Output(ids.SHIFT_DOWNLOAD, "children"),
                  Input(ids.SHIFT_SITE, "value"), Input(ids.SHIFT_WINDOW, "value"),
                  Input(ids.SHIFT_CLASSIFY_RESULT, "children"), Input(ids.SHIFT_SHELVE_RESULT, "children"))
    def _draw(site: str | None, start: str | None, _c: Any, _s: Any) -> tuple[Any, ...]:
        w = shifts.window(site, start) if site else None
        if site is None or w is None:
            raise dash.exceptions.PreventUpdate
        try:
            rep = shifts.report(site, w)
        except TwinError as exc:
            empty = figures.empty(str(exc))
            return notice(str(exc), error=True), empty, empty, "", empty, "", [], "", ""
        reasons = [{"label": f"{figs.reason_label(r.id)} ({r.category.value})", "value": r.id}
                   for r in rep.site.downtime.reasons]
        keys = [{"label": k, "value": k} for k in shifts.alarm_keys(site, w)]
        return (_tiles(rep), figs.waterfall(rep), figs.pareto(rep), _stops(rep, reasons), figs.alarm_rate(rep),
                _alarm_figures(rep), keys, _journal(rep), _links(site, w, shifts.reports.pdf_problem()))

    @app.callback(Output(ids.SHIFT_CLASSIFY_RESULT, "children"), Input(ids.SHIFT_CLASSIFY, "n_clicks"),
                  State({"type": ids.SHIFT_REASON, "stop": ALL}, "value"),
                  State({"type": ids.SHIFT_REASON, "stop": ALL}, "id"), State(ids.SHIFT_STOP_COMMENT, "value"),
                  State(ids.SHIFT_SITE, "value"), State(ids.SHIFT_WINDOW, "value"), prevent_initial_call=True)
    def _classify(_n: int | None, values: list[Any], pickers: list[dict[str, str]], comment: str | None,
                  site: str | None, start: str | None) -> Any:
        try:
            w = shifts.window(site, start) if site else None
            if site is None or w is None:
                return notice("Pick a site and a shift.", error=True)
            picks = [(str(p.get("stop", "")), v) for v, p in zip(values, pickers, strict=True)]
            return notice(shifts.record_reasons(site=site, user=current_user(), picks=picks, comment=comment,
                                                window=w))
        except (TwinError, ValueError) as exc:
            return notice(str(exc), error=True)

    @app.callback(Output(ids.SHIFT_SHELVE_RESULT, "children"), Input(ids.SHIFT_SHELVE, "n_clicks"),
                  State(ids.SHIFT_ALARM_KEY, "value"), State(ids.SHIFT_CHANGE, "value"),
                  State(ids.SHIFT_SHELVE_KIND, "value"), State(ids.SHIFT_SHELVE_MIN, "value"),
                  State(ids.SHIFT_SHELVE_COMMENT, "value"), State(ids.SHIFT_SITE, "value"),
                  State(ids.SHIFT_WINDOW, "value"), prevent_initial_call=True)
    def _shelve(_n: int | None, key: str | None, change: str | None, kind: str | None, minutes: Any,
                comment: str | None, site: str | None, start: str | None) -> Any:
        try:
            who = authorise_shelving(current_user(), change)
            w = shifts.window(site, start) if site else None
            if site is None or w is None or not key:
                return notice("Pick an alarm.", error=True)
            timed = float(minutes) if change == "shelved" and kind == "timed" and minutes is not None else None
            if change == "shelved" and kind == "timed" and timed is None:
                return notice("Give the minutes of a timed shelve.", error=True)
            event = shifts.shelve(site=site, window=w, key=key, change=str(change), user=who.name,
                                  comment=comment or "", timed_min=timed)
            return notice(f"Recorded: {event.message}")
        except (TwinError, ValueError) as exc:
            return notice(str(exc), error=True)

    def _report_file(fmt: str) -> flask.Response:
        site = flask.request.args.get("site", "")
        start = flask.request.args.get("start")
        if site not in {s.id for s in queries.fleet.sites}:
            return flask.Response(f"site: no site {site[:100]!r}", status=404, mimetype="text/plain")
        w = shifts.window(site, start)
        if w is None or (start is not None and w.start.isoformat() != start):
            return flask.Response(f"start: no shift of {site} starts at {str(start)[:40]!r} in the last 7 days",
                                  status=404, mimetype="text/plain")
        try:
            rep = shifts.report(site, w)
            if fmt == "pdf":
                body: bytes | str = shifts.reports.pdf(rep)
                mimetype = "application/pdf"
            else:
                body, mimetype = shifts.reports.html(rep), "text/html"
        except TwinError as exc:
            return flask.Response(str(exc), status=503, mimetype="text/plain")
        local = w.start.astimezone(ZoneInfo(rep.site.timezone))
        name = f"{site}_{local:%Y-%m-%d}_{w.name}.{fmt}"
        disposition = "attachment" if fmt == "pdf" else "inline"
        return flask.Response(body, mimetype=mimetype,
                              headers={"Content-Disposition": f"{disposition}; filename={json.dumps(name)}"})

    app.server.add_url_rule(f"{REPORT_PATH}.html", "shift_report_html", lambda: _report_file("html"))
    app.server.add_url_rule(f"{REPORT_PATH}.pdf", "shift_report_pdf", lambda: _report_file("pdf"))
