"""Pure builders of repeated Dash components: site and machine tiles, the Andon legend, small tables.

View-models in, components out, every text formatted through ``dashboard.theme``. A status is
always shown as a word as well as a colour; data that is not current says so and how old it is.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlencode

import dash_bootstrap_components as dbc
from dash import dcc, html

from dashboard import ids, theme
from dashboard.queries import AlarmRow, MachineTile, ShipmentRow, SiteTile, StockRow
from twin.readings import Quality
from twin.spec import MachineStatus

__all__ = ["alarm_table_rows", "andon_legend", "machine_tile", "shipments_table", "site_tile", "stock_table"]


def href(path: str, **params: str) -> str:
    return f"{path}?{urlencode(params)}" if params else path


def status_note(tile: MachineTile) -> str:
    """Why a tile is grey, or how long it has been in its status."""
    if tile.shown is MachineStatus.UNKNOWN:
        if tile.quality is Quality.BAD:
            return f"bad: {tile.reason or 'no reason given'}"
        if tile.age_s is None:
            return tile.reason or "no data"
        return theme.fmt_age(tile.age_s)
    return f"for {theme.fmt_duration(tile.in_status_s)}"


def machine_tile(tile: MachineTile, *, scope: str = "live", link: bool = True) -> html.Div:
    """A machine tile in its Andon colour, with the status word, its age or reason, and the counters."""
    style = theme.andon(tile.shown)
    body = [
        html.Div(tile.machine, className="tile-title"),
        html.Div(style.label, className="tile-status"),
        html.Div(status_note(tile), className="tile-note"),
        html.Div(f"{tile.role} · good {tile.good_total:,} · scrap {tile.scrap_total:,}", className="tile-meta"),
    ]
    if tile.shown is MachineStatus.UNKNOWN and tile.reported is not MachineStatus.UNKNOWN:
        body.append(html.Div(f"last reported {theme.andon(tile.reported).label}", className="tile-meta"))
    inner: html.Div | dcc.Link = html.Div(body)
    if link:
        inner = dcc.Link(body, href=href("/machine", site=tile.site, machine=tile.machine), className="tile-link")
    return html.Div(
        inner,
        id=ids.machine_tile(tile.site, tile.machine, scope=scope),
        className=f"tile machine-tile {style.css}",
        title=f"{tile.machine}: {style.label} ({status_note(tile)})",
        **_data_attrs(status=style.label),
    )


def _data_attrs(**attrs: str) -> dict[str, Any]:
    return {f"data-{k}": v for k, v in attrs.items()}


def andon_legend() -> html.Div:
    """What each tile colour means, always shown beside the tiles."""
    items = [
        (MachineStatus.RUNNING, "running"),
        (MachineStatus.IDLE, "idle / warning"),
        (MachineStatus.FAULT, "fault"),
        (MachineStatus.MAINTENANCE, "maintenance / setup / assist"),
        (MachineStatus.OFF, "off"),
        (MachineStatus.UNKNOWN, "unknown / stale (age shown)"),
    ]
    return html.Div(
        [html.Span([html.Span(className=f"swatch {theme.andon(s).css}"), text], className="legend-item")
         for s, text in items],
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


def site_tile(tile: SiteTile, thresholds: theme.Thresholds | None = None) -> dcc.Link:
    """The fleet overview's tile of one site; clicking it opens the site page."""
    th = thresholds or theme.Thresholds()
    oee = tile.oee
    behind = (
        tile.output_today is not None and tile.plan_by_now is not None and tile.plan_by_now > 0
        and tile.output_today < th.behind_plan * tile.plan_by_now
    )
    fresh = (
        html.Div(f"DATA STALE · {theme.fmt_age(tile.age_s)}", className="fresh stale")
        if tile.stale else html.Div(f"updated {theme.fmt_duration(tile.age_s)} ago", className="fresh")
    )
    oee_low = oee.oee is not None and oee.oee < th.oee_low
    alarms_cls = "abnormal-red" if tile.active_alarms else "muted"
    alarm_text = (f"{tile.active_alarms} active alarm(s), top {theme.priority_label(tile.top_priority)}"
                  if tile.active_alarms and tile.top_priority is not None else "no active alarms")
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
                              html.Div(f"P {theme.fmt_pct(oee.performance)}"),
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
            html.Div(f"{tile.stock_at_risk} item(s) of stock at risk" if tile.stock_at_risk else "stock ok",
                     className="small " + ("abnormal-amber" if tile.stock_at_risk else "muted")),
            fresh,
        ],
        className="site-tile" + (" site-stale" if tile.stale else ""),
    )
    return dcc.Link(body, href=href("/site", site=tile.site), id=ids.site_tile(tile.site), className="tile-link")


def stock_table(rows: Sequence[StockRow]) -> dbc.Table:
    """Stock with days of cover, in-transit quantity and next ETA; at-risk rows marked in words."""
    head = html.Thead(html.Tr([html.Th(h) for h in ("SKU", "Item", "On hand", "Reorder pt", "Cover",
                                                    "Lead time", "In transit", "Next ETA", "State")]))
    body = []
    for r in rows:
        state = ("BELOW REORDER" if r.below_reorder else "COVER < LEAD TIME" if r.cover_short
                 else "no data" if r.on_hand is None else "ok")
        cls = "row-red" if r.below_reorder else "row-amber" if r.cover_short else ""
        body.append(html.Tr(
            [html.Td(r.sku), html.Td(r.name), html.Td(theme.fmt_number(r.on_hand, r.unit)),
             html.Td(theme.fmt_number(r.reorder_point, r.unit)), html.Td(theme.fmt_number(r.days_of_cover, "d")),
             html.Td(theme.fmt_number(r.lead_time_d, "d")), html.Td(theme.fmt_number(r.in_transit, r.unit)),
             html.Td(theme.fmt_ts(r.next_eta)), html.Td(state)], className=cls))
    return dbc.Table([head, html.Tbody(body)], size="sm", bordered=False, className="hmi-table")


def shipments_table(rows: Sequence[ShipmentRow]) -> dbc.Table | html.Div:
    if not rows:
        return html.Div("No shipments in transit", className="muted")
    head = html.Thead(html.Tr([html.Th(h) for h in ("Shipment", "SKU", "Qty", "ETA", "Arrives in")]))
    body = [
        html.Tr([html.Td(r.id or "–"), html.Td(f"{r.sku} {r.name}"), html.Td(theme.fmt_number(r.qty, r.unit)),
                 html.Td(theme.fmt_ts(r.eta)),
                 html.Td("OVERDUE " + theme.fmt_duration(-r.eta_in_s) if r.eta_in_s < 0
                         else theme.fmt_duration(r.eta_in_s))],
                className="row-amber" if r.eta_in_s < 0 else "")
        for r in rows
    ]
    return dbc.Table([head, html.Tbody(body)], size="sm", className="hmi-table")


def alarm_table_rows(rows: Sequence[AlarmRow], now: datetime | None = None) -> list[dict[str, object]]:
    """Alarm rows as plain dicts for dash-ag-grid (strings formatted here, ids kept for acknowledging)."""
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
            "raised": theme.fmt_ts(r.raised_at, seconds=True),
            "cleared": theme.fmt_ts(r.cleared_at, seconds=True) if r.cleared_at else "",
            "acked_by": r.acked_by,
            "acked_at": theme.fmt_ts(r.acked_at, seconds=True) if r.acked_at else "",
            "comment": r.ack_comment,
            "acknowledged": r.acknowledged,
        }
        for r in rows
    ]
