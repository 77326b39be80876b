"""Pure builders of repeated Dash components: site and machine tiles, the Andon legend, small tables.

View-models in, components out, every text formatted through ``dashboard.theme``. A status is
always shown as a word as well as a colour; data that is not current says so and how old it is.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids, theme, timefmt
from dashboard.viewmodels import AlarmRow, MachineTile, OrderRow, ShipmentRow, SiteTile, StockRow
from twin import kpi
from twin.readings import Quality
from twin.spec import MachineStatus
from twin.state import Event, EventKind

__all__ = [
    "alarm_line",
    "alarm_table_rows",
    "andon_legend",
    "arrival_text",
    "attention_note",
    "data_attrs",
    "delay_text",
    "event_table",
    "href",
    "machine_tile",
    "orders_table",
    "shipments_table",
    "site_tile",
    "slack_text",
    "status_note",
    "stock_state",
    "stock_table",
    "table",
    "time_cell",
    "when",
]


def href(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def when(ts: datetime | None, tz: str | None, *, seconds: bool = False, date: bool = True) -> html.Span:
    """A time as people read it: the site's local time with its zone, its UTC instant on hover."""
    text = (timefmt.fmt_datetime if date else timefmt.fmt_time)(ts, tz, seconds=seconds)
    return html.Span(text, title=timefmt.utc_title(ts), className="ts")


def time_cell(ts: datetime | None, tz: str | None, *, seconds: bool = False) -> html.Td:
    """A table cell holding a local time (``when``)."""
    return html.Td(when(ts, tz, seconds=seconds))


def status_note(tile: MachineTile) -> str:
    """Why a tile is grey, or how long it has been in its status."""
    if tile.shown is MachineStatus.UNKNOWN:
        if tile.quality is Quality.BAD:
            return f"bad: {tile.reason or 'no reason given'}"
        if tile.age_s is None:
            return tile.reason or "no data"
        return theme.fmt_age(tile.age_s)
    return f"for {theme.fmt_duration(tile.in_status_s)}"


def attention_note(tile: MachineTile) -> str:
    """Why a tile needs a look, in words ("" when it does not)."""
    if not tile.attention:
        return ""
    if tile.alarm is not None:
        return f"ALARM {theme.priority_label(tile.alarm.priority)}: {tile.alarm.message}"
    return "IDLE TOO LONG in shift"


def machine_tile(tile: MachineTile, *, scope: str = "live", link: bool = True, at: datetime | None = None,
                 risk: str = "") -> html.Div:
    """A machine tile in its Andon colour, with the status word, its age or reason, and the counters.

    Normal states are calm (idle is grey: waiting for work is normal); amber is for a machine that
    needs a look, and the tile says why (``attention_note``). A tile of the past (``at``) links to
    the machine page at that moment. ``risk`` is a small "risk 45 % / 8 h" under the counters, given
    only when the machine's failure risk is high (``dashboard.health``).
    """
    style = theme.andon(tile.shown)
    css = theme.ATTENTION.css if tile.attention else style.css
    body = [
        html.Div(tile.machine, className="tile-title"),
        html.Div(style.label, className="tile-status"),
        html.Div(status_note(tile), className="tile-note"),
        html.Div(f"{tile.role} · good {tile.good_total:,} · scrap {tile.scrap_total:,}", className="tile-meta"),
    ]
    if tile.attention:
        body.insert(3, html.Div(attention_note(tile), className="tile-attention"))
    if risk:
        body.append(html.Div(risk, className="tile-risk"))
    if tile.shown is MachineStatus.UNKNOWN and tile.reported is not MachineStatus.UNKNOWN:
        body.append(html.Div(f"last reported {theme.andon(tile.reported).label}", className="tile-meta"))
    inner: html.Div | dcc.Link = html.Div(body)
    if link:
        # a tile of the past opens the machine page at that moment (the header's time control reads ``at``)
        extra = {"at": timefmt.url_time(at)} if at is not None else {}
        inner = dcc.Link(body, href=href("/machine", site=tile.site, machine=tile.machine, **extra),
                         className="tile-link")
    return html.Div(
        inner,
        id=ids.machine_tile(tile.site, tile.machine, scope=scope),
        className=f"tile machine-tile {css}",
        title=f"{tile.machine}: {style.label} ({status_note(tile)})" + (
            f" · {attention_note(tile)}" if tile.attention else ""),
        **data_attrs(status=style.label, attention="1" if tile.attention else "0"),
    )


def data_attrs(**attrs: str) -> dict[str, Any]:
    """``data-*`` attributes for a component's keyword arguments (the browser tests find figures by them)."""
    return {f"data-{k}": v for k, v in attrs.items()}


def table(headers: Sequence[str], body: Sequence[Any], **props: Any) -> dbc.Table:
    """A small table of the house style: a header row of ``headers`` over the ``body`` rows."""
    head = html.Thead(html.Tr([html.Th(h) for h in headers]))
    return dbc.Table([head, html.Tbody(list(body))], size="sm", className="hmi-table", **props)


def andon_legend() -> html.Div:
    """What each tile colour means, always shown beside the tiles."""
    items = [
        (theme.andon(MachineStatus.RUNNING).css, "running"),
        (theme.andon(MachineStatus.IDLE).css, "idle (waiting for work)"),
        (theme.ATTENTION.css, "needs a look (idle too long in shift, alarm)"),
        (theme.andon(MachineStatus.FAULT).css, "fault"),
        (theme.andon(MachineStatus.MAINTENANCE).css, "maintenance / setup / assist"),
        (theme.andon(MachineStatus.OFF).css, "off"),
        (theme.andon(MachineStatus.UNKNOWN).css, "unknown / stale (age shown)"),
    ]
    return html.Div(
        [html.Span([html.Span(className=f"swatch {css}"), text], className="legend-item") for css, text in items],
        className="andon-legend",
    )


def _status_counts(tile: SiteTile) -> html.Div:
    parts = []
    for status in MachineStatus:
        n = tile.by_status.get(status, 0)
        if n:
            st = theme.andon(status)
            parts.append(html.Span(f"{n} {st.label}", className=f"count-badge {st.css}"))
    return html.Div(parts or [html.Span("no machines", className="muted")], className="status-counts")


def _stock_line(tile: SiteTile) -> html.Div:
    """Items at risk (arrivals under way counted), below reorder, or not known, and stock alarms.

    "stock ok" only when none of these holds: never beside an active stock alarm.
    """
    parts: list[Any] = []

    def add(text: str, css: str = "") -> None:
        parts.append(html.Span((" · " if parts else "") + text, className=css or None))

    if tile.stock_at_risk:
        add(f"{tile.stock_at_risk} item(s) of stock at risk", "abnormal-amber")
    replenishing = tile.stock_below_reorder - tile.stock_at_risk
    if replenishing > 0:
        add(f"{replenishing} item(s) below reorder point, replenishing")
    if tile.stock_unknown:
        add(f"{tile.stock_unknown} item(s) without stock data")
    if not parts and tile.stock_alarms:
        add(f"{tile.stock_alarms} stock alarm(s) active", "abnormal-amber")
    return html.Div(parts or "stock ok", className="small" if parts else "small muted")


def alarm_line(tile: SiteTile) -> str:
    """How many alarms are active and what the top one is: priority, asset and message."""
    top = tile.top_alarm
    if not tile.active_alarms or top is None:
        return "no active alarms"
    return (f"{tile.active_alarms} active alarm(s) · top {theme.priority_label(top.priority)}: "
            f"{top.asset} {top.message}")


def _backlog_line(tile: SiteTile) -> html.Div:
    """Open orders and units to make; overdue orders in red words."""
    if not tile.open_orders:
        return html.Div("no open orders", className="small muted", **data_attrs(backlog="0"))
    text = f"backlog {tile.open_orders} order(s) · {tile.backlog_units:,} units"
    if tile.overdue_orders:
        overdue = html.Span(f"{tile.overdue_orders} OVERDUE", className="abnormal-red")
        return html.Div([html.Span(text + " · "), overdue], className="small",
                        **data_attrs(backlog=str(tile.open_orders)))
    due = f" · next due in {theme.fmt_duration(tile.min_slack_s)}" if tile.min_slack_s is not None else ""
    return html.Div(text + due, className="small muted", **data_attrs(backlog=str(tile.open_orders)))


def site_tile(tile: SiteTile, thresholds: theme.Thresholds | None = None) -> dcc.Link:
    """The fleet overview's tile of one site; clicking it opens the site page."""
    th = thresholds or theme.Thresholds()
    oee = tile.oee
    behind = (
        tile.output_today is not None and tile.plan_by_now is not None and tile.plan_by_now > 0
        and tile.output_today < th.behind_plan * tile.plan_by_now
    )
    machines = sum(tile.by_status.values())
    if tile.stale:
        fresh = html.Div(f"DATA STALE · {theme.fmt_age(tile.age_s)}"
                         + (" · no machine reporting" if machines and tile.machines_dark == machines else ""),
                         className="fresh stale")
    elif tile.machines_dark:
        fresh = html.Div(f"{tile.machines_dark} of {machines} machine(s) without current data · updated "
                         f"{theme.fmt_duration(tile.age_s)} ago", className="fresh stale")
    else:
        fresh = html.Div(f"updated {theme.fmt_duration(tile.age_s)} ago", className="fresh")
    oee_low = oee.oee is not None and oee.oee < th.oee_low
    alarms_cls = "abnormal-red" if tile.active_alarms else "muted"
    alarm_text = alarm_line(tile)
    body = html.Div(
        [
            html.Div([html.Span(tile.name, className="site-name"),
                      html.Span(f"{tile.kind} · {tile.region}".strip(" ·"), className="muted")],
                     className="site-head"),
            html.Div(
                [
                    html.Div([html.Div("OEE", className="kpi-label"),
                              html.Div(theme.fmt_pct(oee.oee), className="kpi-big" + (" abnormal-amber" if oee_low
                                                                                        else ""))]),
                    html.Div([html.Div(f"A {theme.fmt_pct(oee.availability)}"),
                              html.Div(f"P {theme.fmt_performance(oee.performance, oee.performance_capped)}",
                                       title=theme.CAPPED_PERFORMANCE if oee.performance_capped else None),
                              html.Div(f"Q {theme.fmt_pct(oee.quality)}")], className="apq"),
                    html.Div([html.Div("Output today", className="kpi-label"),
                              html.Div(f"{theme.fmt_number(tile.output_today)} / {tile.plan_today:,}",
                                       className="kpi-mid" + (" abnormal-amber" if behind else "")),
                              html.Div(("BEHIND PLAN · " if behind else "") + f"plan by now "
                                       f"{theme.fmt_number(tile.plan_by_now, digits=0)}", className="muted small")]),
                ],
                className="site-kpis",
            ),
            _status_counts(tile),
            html.Div(alarm_text, className=f"small {alarms_cls}"),
            _backlog_line(tile),
            _stock_line(tile),
            fresh,
        ],
        className="site-tile" + (" site-stale" if tile.stale else ""),
    )
    return dcc.Link(body, href=href("/site", site=tile.site), id=ids.site_tile(tile.site), className="tile-link")


def stock_state(r: StockRow) -> str:
    """An item's state in words (``theme.stock_state``)."""
    return theme.stock_state(known=r.on_hand is not None, below_reorder=r.below_reorder,
                             replenishing=r.replenishing, cover_short=r.cover_short)


def stock_table(rows: Sequence[StockRow], tz: str | None = None) -> dbc.Table:
    """Stock with days of cover, in-transit quantity and next ETA; at-risk rows marked in words."""
    body = []
    for r in rows:
        state = stock_state(r)
        cls = "row-red" if r.below_reorder and not r.replenishing else "row-amber" if r.cover_short else ""
        body.append(html.Tr(
            [html.Td(r.sku), html.Td(r.name), html.Td(theme.fmt_number(r.on_hand, r.unit)),
             html.Td(theme.fmt_number(r.reorder_point, r.unit)), html.Td(theme.fmt_number(r.days_of_cover, "d")),
             html.Td(theme.fmt_number(r.cover_with_arrivals_d, "d")),
             html.Td(theme.fmt_number(r.lead_time_d, "d")), html.Td(theme.fmt_number(r.in_transit, r.unit)),
             time_cell(r.next_eta, tz), html.Td(state)], className=cls))
    return table(("SKU", "Item", "On hand", "Reorder pt", "Cover", "With arrivals", "Lead time", "In transit",
                  "Next ETA", "State"), body, bordered=False)


def arrival_text(r: ShipmentRow) -> str:
    """When a shipment arrives, as shown: "3.5 h", or "OVERDUE 2 h" once its ETA has passed."""
    return "OVERDUE " + theme.fmt_duration(-r.eta_in_s) if r.eta_in_s < 0 else theme.fmt_duration(r.eta_in_s)


def delay_text(r: ShipmentRow) -> str:
    """The delay against the planned ETA in words: "LATE +2.0 d", "on time", "early 3 h", or "–"."""
    if r.delay_s is None:
        return "–"
    if r.delay_s > 0:
        return f"LATE +{theme.fmt_duration(r.delay_s)}"
    return "on time" if r.delay_s == 0 else f"early {theme.fmt_duration(-r.delay_s)}"


def shipments_table(rows: Sequence[ShipmentRow], tz: str | None = None) -> dbc.Table | html.Div:
    """Inbound shipments: origin, ETA against the planned ETA, delay; late ones amber, overdue red (in words)."""
    if not rows:
        return html.Div("No shipments in transit", className="muted")
    body = [
        html.Tr([html.Td(r.id or "(PLC)"), html.Td(f"{r.sku} {r.name}"), html.Td(theme.fmt_number(r.qty, r.unit)),
                 html.Td(r.origin or "–"), time_cell(r.eta, tz), time_cell(r.planned_eta, tz),
                 html.Td(delay_text(r)), html.Td(arrival_text(r))],
                className="row-red" if r.overdue else "row-amber" if r.late else "",
                **data_attrs(shipment=r.id or "plc", state="overdue" if r.overdue else "late" if r.late else "ok"))
        for r in rows
    ]
    return table(("Shipment", "SKU", "Qty", "Origin", "ETA", "Planned ETA", "Delay", "Arrives in"), body)


def slack_text(r: OrderRow) -> str:
    """Time left to an order's due time, or "OVERDUE 3.0 h"."""
    return f"OVERDUE {theme.fmt_duration(-r.slack_s)}" if r.overdue else theme.fmt_duration(r.slack_s)


def orders_table(rows: Sequence[OrderRow], backlog: kpi.Backlog | None = None, *, limit: int = 50,
                 tz: str | None = None) -> html.Div:
    """Open orders, least slack first: a summary line, then id, product, quantity, due, slack, state.

    Overdue orders are red and say OVERDUE; the table lists at most ``limit`` rows and says how
    many more there are.
    """
    if not rows:
        return html.Div("No open orders", className="muted")
    summary: list[Any] = []
    if backlog is not None:
        summary = [f"{backlog.open_orders} open order(s) · {backlog.units:,} units to make"]
        if backlog.overdue:
            summary += [" · ", html.Span(f"{backlog.overdue} OVERDUE ({backlog.overdue_units:,} units)",
                                         className="abnormal-red")]
        if backlog.mean_slack_s is not None:
            summary.append(f" · mean slack {'-' if backlog.mean_slack_s < 0 else ''}"
                           f"{theme.fmt_duration(backlog.mean_slack_s)}")
    body = [
        html.Tr([html.Td(r.id), html.Td(r.product),
                 html.Td(f"{r.done_qty:,} / {r.qty:,}" if r.done_qty else f"{r.qty:,}"),
                 time_cell(r.due, tz), html.Td(slack_text(r)),
                 html.Td("OVERDUE" if r.overdue else "open")],
                className="row-red" if r.overdue else "", **data_attrs(order=r.id))
        for r in rows[:limit]
    ]
    more = [html.Div(f"… and {len(rows) - limit} more", className="muted small")] if len(rows) > limit else []
    return html.Div([html.Div(summary, className="small mb-1"),
                     table(("Order", "Product", "Qty", "Due", "Slack", "State"), body), *more])


def _shelved(r: AlarmRow, until: str) -> str:
    """The journal's shelved cell (``twin.alarm_shelving.shelf_label``): one-shot, timed until T, out of service, no."""
    if not r.shelf:
        return "no"
    return f"timed until {until}" if r.shelf == "timed" and until else r.shelf


def alarm_table_rows(rows: Sequence[AlarmRow], now: datetime | None = None,
                     zones: Mapping[str, str] | None = None) -> list[dict[str, object]]:
    """Alarm rows as plain dicts for dash-ag-grid (strings formatted here, ids kept for acknowledging).

    Times are in each row's site zone (``zones``: site id -> time zone; UTC for a site not in it),
    with the UTC instant in ``raised_utc`` / ``cleared_utc`` (the grid's hover tooltips).
    """
    def at(site: str, ts: datetime | None) -> str:
        return theme.fmt_ts(ts, seconds=True, tz=(zones or {}).get(site)) if ts else ""

    return [
        {
            "id": f"{r.site}|{r.key}|{r.raised_at.isoformat()}",
            "site": r.site,
            "key": r.key,
            "asset": r.asset,
            "priority": theme.priority_label(r.priority),
            "priority_n": int(r.priority),
            "message": r.message,
            "state": r.state,
            "raised": at(r.site, r.raised_at),
            "raised_utc": timefmt.utc_title(r.raised_at),
            "cleared": at(r.site, r.cleared_at),
            "cleared_utc": timefmt.utc_title(r.cleared_at),
            "acked_by": r.acked_by,
            "acked_at": at(r.site, r.acked_at),
            "comment": r.ack_comment,
            "acknowledged": r.acknowledged,
            "shelved": _shelved(r, theme.fmt_ts(r.shelved_until, tz=(zones or {}).get(r.site))
                                if r.shelved_until else ""),
            "shelved_by": r.shelved_by,
            "shelved_why": r.shelved_why,
            "suppressed": "yes" if r.suppressed else "no",
        }
        for r in rows
    ]


def event_table(events: Iterable[Event], tz: str | None, *, at: datetime | None = None, with_asset: bool = True,
                limit: int = 200, fold: frozenset[EventKind] = frozenset({EventKind.STATUS_CHANGE})) -> html.Div:
    """Events in the site's local time, newest last; the kinds in ``fold`` (status-change noise) folded.

    Rows at or before ``at`` (a replay's cursor) are marked as past. Folded kinds go under one
    collapsed line that says how many there are ("12 status changes"), opened on a click.
    """
    chosen = sorted(events, key=lambda e: e.ts)[-limit:]

    def rows(es: Sequence[Event]) -> list[html.Tr]:
        return [html.Tr([time_cell(e.ts, tz, seconds=True)] + ([html.Td(e.asset)] if with_asset else [])
                        + [html.Td(e.kind.value.replace("_", " ")), html.Td(e.message)],
                        className="row-now" if at is None or e.ts <= at else "row-later",
                        **data_attrs(kind=e.kind.value))
                for e in es]

    headers = ("Time", "Asset", "Kind", "Message") if with_asset else ("Time", "Kind", "Message")
    main = [e for e in chosen if e.kind not in fold]
    folded = [e for e in chosen if e.kind in fold]
    parts: list[Any] = [table(headers, rows(main))] if main else []
    if folded:
        label = f"{len(folded)} {folded[0].kind.value.replace('_', ' ')}" + ("s" if len(folded) != 1 else "")
        if len({e.kind for e in folded}) > 1:
            label = f"{len(folded)} routine events"
        parts.append(html.Details([html.Summary(label, className="muted small"), table(headers, rows(folded))],
                                  className="folded-events"))
    return html.Div(parts or [html.Div("No events in this range", className="muted")])
