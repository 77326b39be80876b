"""Site page: one micro-factory at a glance.

Machine tiles in Andon colours with a legend, the last shift's status timeline, live trends, OEE
breakdown, open orders with their slack, inbound shipments with their delay, stock against reorder
points and projected forward by the arrivals, alarms to acknowledge, and today's stops that need a
reason, to give one (``dashboard.pages._stops``, the Shift page's path; operator role).
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import components, figures, ids, theme, timefmt
from dashboard.health import HealthService, fmt_risk
from dashboard.pages._shared import (
    LastDrawing,
    ack_notice,
    alarm_grid,
    card,
    page_search,
    register_page,
    site_choice,
    site_dropdown,
    trend_signals,
)
from dashboard.pages._stops import SITE_STOPS, register_stops, stops_card
from dashboard.queries import QueryService
from dashboard.services import Services
from dashboard.shift_view import shift_service
from dashboard.timefmt import TimeChoice
from dashboard.viewmodels import SiteView

__all__ = [
    "SITE_IDS",
    "Rendered",
    "SiteIds",
    "body",
    "fingerprints",
    "header",
    "header_part",
    "layout",
    "outputs_for",
    "register",
    "render",
    "render_view",
    "timeline_figure",
    "trend_figure",
]

PATH = "/site"
TRUST_PATH = "/trust"  # the model-trust page (dashboard.pages.trust), linked with the site chosen
SHIFT_H = 8.0
TREND_H = 1.0


@dataclass(frozen=True, slots=True, kw_only=True)
class SiteIds:
    """The component ids of one drawing of the site page's body (the site page's own, or the replay's)."""

    header: str
    tiles: str
    timeline: str
    oee: str
    trend_signal: str
    trend: str
    orders: str
    shipments: str
    stock: str
    projection: str
    alarms: str


SITE_IDS = SiteIds(header=ids.SITE_HEADER, tiles=ids.SITE_TILES, timeline=ids.SITE_TIMELINE, oee=ids.SITE_OEE,
                   trend_signal=ids.SITE_TREND_SIGNAL, trend=ids.SITE_TREND, orders=ids.SITE_ORDERS,
                   shipments=ids.SITE_SHIPMENTS, stock=ids.SITE_STOCK, projection=ids.SITE_PROJECTION,
                   alarms=ids.SITE_ALARMS)


def _graph(component_id: str) -> dcc.Graph:
    return dcc.Graph(id=component_id, config={"displaylogo": False})


def body(i: SiteIds, *, live: bool = True, acknowledge: Any = None) -> list[Any]:
    """The site page's body: tiles, timeline, OEE, trend, orders, shipments, stock, alarms.

    The site page draws it live; the replay draws the same body at its cursor (``live`` False:
    the titles say "to the moment shown", and alarms are not acknowledged from the past).
    """
    when = "last shift" if live else "8 h to the moment shown"
    return [
        components.andon_legend(),
        html.Div(id=i.tiles, className="tile-grid mb-3"),
        dbc.Row(
            [
                dbc.Col(card(f"Status timeline, {when}", _graph(i.timeline)), lg=7),
                dbc.Col(card("OEE today" if live else "OEE that day, to the moment shown", _graph(i.oee)), lg=5),
            ]
        ),
        card("Live trend, last hour" if live else "Trend, the hour to the moment shown",
             dcc.Dropdown(id=i.trend_signal, options=[], value=None, clearable=False,
                          className="mb-2", style={"maxWidth": "320px"}),
             _graph(i.trend)),
        dbc.Row(
            [
                dbc.Col(card("Open orders", html.Div(id=i.orders)), lg=6),
                dbc.Col(card("Inbound shipments", html.Div(id=i.shipments)), lg=6),
            ]
        ),
        dbc.Row(
            [
                dbc.Col(card("Stock against reorder points", html.Div(id=i.stock)), lg=6),
                dbc.Col(card("Stock projected by arrivals (dashed: reorder point)", _graph(i.projection)), lg=6),
            ]
        ),
        card("Alarms" if live else "Alarms at the moment shown",
             alarm_grid(i.alarms, height="240px"), *([acknowledge] if acknowledge is not None else [])),
    ]


def layout(site: str | None = None, **_query: Any) -> html.Div:
    ack = html.Div([
        dbc.InputGroup(
            [dbc.Input(id=ids.SITE_ACK_COMMENT, placeholder="Comment (optional)", maxLength=200),
             dbc.Button("Acknowledge selected", id=ids.SITE_ACK_BUTTON, color="secondary")],
            className="mt-2",
        ),
        html.Div(id=ids.SITE_ACK_RESULT, className="mt-1"),
    ])
    return html.Div(
        [
            html.Div([html.H2("Site"), html.Div(site_dropdown(ids.SITE_SELECT, site), className="head-picker"),
                      html.Div(id=ids.SITE_HEADER, className="muted"),
                      dcc.Link("Model trust of this site →", id=ids.SITE_TRUST_LINK, href=TRUST_PATH,
                               className="small")], className="page-head"),
            dcc.Store(id=ids.SITE_SENT, data=None),
            *body(SITE_IDS, acknowledge=ack),
            stops_card(SITE_STOPS, "Stops needing a reason (today)"),
        ]
    )


# The parts of the page the one-second refresh redraws. Fast parts (header, tiles, alarms) are sent
# every time; slow parts (charts and tables whose numbers change rarely) carry a fingerprint of what
# they show, and a browser that already holds that fingerprint gets ``no_update`` for them.
FAST = ("header", "tiles", "alarms")
SLOW = ("oee", "stock", "shipments", "orders", "projection")
PROJECTION_BUCKET_S = 600  # the projection chart starts at "now": redrawn when now moves on by 10 min
PARTS = FAST + SLOW


@dataclass(frozen=True, slots=True)
class Rendered:
    """The components of one site view and the fingerprints of its slow parts."""

    parts: dict[str, Any]
    marks: dict[str, str]


def _mark(*values: Hashable) -> str:
    return format(hash(values) & 0xFFFFFFFFFFFF, "x")


def _round(x: float | None, digits: int = 3) -> float | None:
    return None if x is None else round(x, digits)


def _sig(x: float | None, digits: int = 3) -> float | None:
    """``x`` to ``digits`` significant digits: what a chart axis resolves."""
    return None if x is None else float(f"{x:.{digits}g}")


def fingerprints(view: SiteView) -> dict[str, str]:
    """What the slow parts show, hashed: equal fingerprints mean an identical drawing.

    Values are rounded to what the drawing resolves (0.1 % of OEE, three significant digits of
    stock), and times are taken as the text shown, so a view that ticks on by a second does not
    resend its charts; the projection is redrawn when its start moves on by ``PROJECTION_BUCKET_S``.
    """
    site = view.tile.site
    oee = tuple((name, _round(v.availability), _round(v.performance), _round(v.quality), _round(v.oee),
                 v.performance_capped) for name, v in view.oee_by_machine)
    ships = tuple((r.id, r.sku, r.qty, r.origin, r.eta, r.planned_eta, r.overdue, components.arrival_text(r))
                  for r in view.shipments)
    stock = tuple((r.sku, _sig(r.on_hand), _sig(r.days_of_cover), _sig(r.cover_with_arrivals_d), r.in_transit,
                   r.next_eta, components.stock_state(r)) for r in view.stock)
    orders = tuple((r.id, r.product, r.qty, r.done_qty, r.due, components.slack_text(r)) for r in view.orders)
    bucket = int(view.now.timestamp() // PROJECTION_BUCKET_S)
    projection = tuple((r.sku, _sig(r.on_hand), _sig(r.daily_use), r.cover_short, r.reorder_point,
                        r.projection.arrivals if r.projection else None, r.projection.overdue if r.projection else None)
                       for r in view.stock)
    return {"oee": _mark(site, oee), "stock": _mark(site, stock), "shipments": _mark(site, ships),
            "orders": _mark(site, orders), "projection": _mark(site, bucket, projection)}


def header(view: SiteView) -> str:
    """The line under the page title: the site, today's output, and how fresh (live) or when (replay) it is."""
    t = view.tile
    head = (f"{t.name} · {t.kind} · {len(view.machines)} machines · output "
            f"{'today' if view.live else 'that day'} {theme.fmt_number(t.output_today)} / {t.plan_today:,} · ")
    if not view.live:
        return head + f"as it was at {timefmt.fmt_datetime(view.now, view.timezone, seconds=True)}"
    fresh = f"DATA STALE ({theme.fmt_age(t.age_s)})" if t.stale else f"updated {theme.fmt_duration(t.age_s)} ago"
    return head + fresh + f" · {timefmt.fmt_time(view.now, view.timezone)}"


def header_part(view: SiteView) -> Any:
    """The header line, under a banner when the site's data is stale or some machines have none."""
    text = html.Span(header(view), title=timefmt.utc_title(view.now))
    dark = [m for m in view.machines if not m.current]
    if view.tile.stale and view.tile.age_s is None:
        banner = "DATA STALE: no data from this site yet"
    elif view.tile.stale:
        what = "from any machine" if dark and len(dark) == len(view.machines) else "from this site"
        banner = (f"DATA STALE: nothing current {what} for {theme.fmt_duration(view.tile.age_s)}; "
                  "tiles are grey (UNKNOWN), figures are as last reported")
    elif dark:
        banner = f"{len(dark)} of {len(view.machines)} machine(s) without current data (grey tiles)"
    else:
        return text
    return [html.Div(banner, className="stale-banner", role="alert"), text]


def _risk_notes(health: HealthService | None, site: str) -> dict[str, str]:
    """The small "risk 45 % / 8 h" of each machine of ``site`` whose failure risk is high (health's last view)."""
    view = health.view() if health is not None else None
    if view is None:
        return {}
    return {h.machine: f"risk {fmt_risk(h.risk.p)} / {h.risk.hours:g} h" for h in view.high_risk() if h.site == site}


def _with_risks(view: SiteView, tiles: list[Any], notes: dict[str, str]) -> list[Any]:
    """The tiles, those of the machines in ``notes`` redrawn with their risk note."""
    if not notes:
        return tiles
    return [components.machine_tile(m, scope="live", risk=notes[m.machine]) if m.machine in notes else t
            for m, t in zip(view.machines, tiles, strict=True)]


def render_view(view: SiteView) -> Rendered:
    """Every part of the site page for one view-model (pure)."""
    parts: dict[str, Any] = {
        "header": header_part(view),
        "tiles": [components.machine_tile(m, scope="live" if view.live else "replay",
                                          at=None if view.live else view.now) for m in view.machines],
        "alarms": components.alarm_table_rows(view.alarms, view.now, {view.tile.site: view.timezone}),
        "oee": figures.oee_bars(view.oee_by_machine),
        "stock": [dcc.Graph(figure=figures.stock_bars(view.stock), config={"displaylogo": False}),
                  components.stock_table(view.stock, view.timezone)],
        "shipments": components.shipments_table(view.shipments, view.timezone),
        "orders": components.orders_table(view.orders, view.backlog, tz=view.timezone),
        "projection": figures.stock_projection(view.stock, tz=view.timezone),
    }
    return Rendered(parts=parts, marks=fingerprints(view))


def outputs_for(rendered: Rendered, sent: dict[str, Any] | None, *, full: bool) -> tuple[Any, ...]:
    """The callback's outputs: slow parts the browser already holds become ``no_update``."""
    have = {} if full or not isinstance(sent, dict) else sent
    out = [rendered.parts[name] if name in FAST or have.get(name) != rendered.marks[name] else dash.no_update
           for name in PARTS]
    return (*out, dict(rendered.marks))


def render(services: Services, site: str, at: datetime | None = None) -> tuple[Any, ...]:
    """All parts of the site page at ``at`` (None: live), freshly read and drawn (no fingerprints applied)."""
    rendered = render_view(services.queries.site_view_at(site, at))
    return tuple(rendered.parts[name] for name in PARTS)


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Site", title="Site · Micro-factory twin", order=1, layout=layout)
    queries = services.queries
    register_stops(app, shift_service(queries, services.extra.get("shift")), SITE_STOPS, ids.SITE_SELECT)

    @app.callback(Output(ids.SITE_SELECT, "options"), Output(ids.SITE_SELECT, "value"),
                  Input(ids.LOCATION, "pathname"), Input(ids.LOCATION, "search"), State(ids.SITE_SELECT, "value"))
    def _options(_path: str | None, search: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        return site_choice(queries, search, value)

    @app.callback(Output(ids.SITE_TRUST_LINK, "href"), Input(ids.SITE_SELECT, "value"))
    def _trust_link(site: str | None) -> str:
        return components.href(TRUST_PATH, site=site) if site else TRUST_PATH

    drawn: LastDrawing[SiteView, Rendered] = LastDrawing(render_view)
    found = services.extra.get("health")
    health = found if isinstance(found, HealthService) else None

    @app.callback(
        Output(ids.SITE_HEADER, "children"), Output(ids.SITE_TILES, "children"),
        Output(ids.SITE_ALARMS, "rowData"), Output(ids.SITE_OEE, "figure"), Output(ids.SITE_STOCK, "children"),
        Output(ids.SITE_SHIPMENTS, "children"), Output(ids.SITE_ORDERS, "children"),
        Output(ids.SITE_PROJECTION, "figure"), Output(ids.SITE_SENT, "data"),
        Input(ids.SITE_SELECT, "value"), Input(ids.REFRESH, "n_intervals"), Input(ids.SITE_ACK_RESULT, "children"),
        State(ids.SITE_SENT, "data"),
    )
    def _refresh(site: str | None, _n: int | None, _ack: Any, sent: dict[str, Any] | None) -> tuple[Any, ...]:
        if not site:
            raise PreventUpdate
        choice = TimeChoice.from_search(page_search())  # the header's time control: live, or a past moment
        at = None if choice.live else choice.moment(queries.now())
        # keyed by site: the drawing is redone whenever the view differs (another moment, a refresh)
        view = queries.site_view_at(site, at)
        rendered = drawn(site, view)
        if at is None:  # live: a high failure risk on its tile (the health service's last view, no read)
            notes = _risk_notes(health, site)
            if notes:
                tiles = _with_risks(view, rendered.parts["tiles"], notes)
                rendered = Rendered(parts={**rendered.parts, "tiles": tiles}, marks=rendered.marks)
        # a new site or the page's first call sends everything; an interval tick only what changed
        full = ctx.triggered_id not in (ids.REFRESH, ids.SITE_ACK_RESULT)
        return outputs_for(rendered, sent, full=full)

    @app.callback(Output(ids.SITE_TIMELINE, "figure"), Input(ids.SITE_SELECT, "value"),
                  Input(ids.REFRESH, "n_intervals"))
    def _timeline(site: str | None, _n: int | None) -> Any:
        if not site:
            raise PreventUpdate
        return timeline_figure(queries, site, TimeChoice.from_search(page_search()))

    @app.callback(Output(ids.SITE_TREND_SIGNAL, "options"), Output(ids.SITE_TREND_SIGNAL, "value"),
                  Input(ids.SITE_SELECT, "value"), State(ids.SITE_TREND_SIGNAL, "value"))
    def _signals(site: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        if not site:
            raise PreventUpdate
        return trend_signals(queries, site, value)

    @app.callback(Output(ids.SITE_ACK_RESULT, "children"), Input(ids.SITE_ACK_BUTTON, "n_clicks"),
                  State(ids.SITE_ALARMS, "selectedRows"), State(ids.SITE_ACK_COMMENT, "value"),
                  prevent_initial_call=True)
    def _ack(_n: int | None, rows: list[dict[str, Any]] | None, comment: str | None) -> Any:
        return ack_notice(queries, rows, comment)

    @app.callback(Output(ids.SITE_TREND, "figure"), Input(ids.SITE_SELECT, "value"),
                  Input(ids.SITE_TREND_SIGNAL, "value"), Input(ids.REFRESH, "n_intervals"))
    def _trend(site: str | None, signal: str | None, _n: int | None) -> Any:
        choice = TimeChoice.from_search(page_search())
        return trend_figure(queries, site, signal, None if choice.live else choice.moment(queries.now()))


def timeline_figure(queries: QueryService, site: str, choice: TimeChoice) -> Any:
    """The status timeline of the chosen range (live: the last shift), in the site's local time."""
    start, end = choice.window(queries.now(), timedelta(hours=SHIFT_H))
    tz = queries.fleet.site(site).timezone
    return figures.status_timeline(queries.timeline(site, SHIFT_H, start=start, end=end), start, end, tz=tz)


def trend_figure(queries: QueryService, site: str | None, signal: str | None, at: datetime | None) -> Any:
    """One signal of every machine over the hour before ``at`` (None: now), in the site's local time."""
    if not site or not signal:
        return figures.empty("Choose a signal")
    unit = dict(queries.signal_options(site)).get(signal, "")
    return figures.trend(queries.site_trend(site, signal, TREND_H, end=at), unit=unit,
                         tz=queries.fleet.site(site).timezone)
