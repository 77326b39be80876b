"""What needs attention: the ranked list across the fleet, each line linking to the page that explains it.

The list is ``dashboard.attention.AttentionService.view()``: the last list the service's thread
built (every few seconds, from the site views and the scheduled projection), shared by every tab;
a callback only reads it. This page draws all of it, the fleet overview its top five
(:func:`top_card`). When nothing is wrong it says so, calmly, with when it checked; before the
service's first list it says the check is under way (never "nothing" before anything was looked at).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import dash
from dash import Input, Output, dcc, html

from dashboard import components, ids, theme
from dashboard.attention import RANKING, AttentionItem, AttentionService, AttentionView, Severity
from dashboard.health import HealthService
from dashboard.pages._shared import register_page
from dashboard.services import Services
from twin.spec import FleetSpec, Priority

__all__ = ["ATTENTION_LIST", "ATTENTION_SUMMARY", "FLEET_ATTENTION", "MAX_LINES", "PATH", "TOP", "item_line", "layout",
           "register", "render_list", "service_of", "since_text", "summary", "top_card"]

PATH = "/attention"
TOP = 5  # lines on the fleet overview
MAX_LINES = 100  # lines on this page: past that a list is no longer read, and drawing it costs every refresh
ATTENTION_LIST = "attention-list"
ATTENTION_SUMMARY = "attention-summary"
FLEET_ATTENTION = "fleet-attention"  # the top of the fleet overview

# severity marks in the alarm priorities' colours: every line here is abnormal, the word says how much
_COLOUR = {s: theme.PRIORITY_COLOURS[Priority[s.name]] for s in Severity}


def service_of(services: Services) -> AttentionService:
    """The app's attention service: ``services.extra["attention"]``, made over the query service when absent."""
    found = services.extra.get("attention")
    if isinstance(found, AttentionService):
        return found
    health = services.extra.get("health")
    made = AttentionService(queries=services.queries, health=health if isinstance(health, HealthService) else None)
    services.extra["attention"] = made
    return made


def since_text(item: AttentionItem, fleet: FleetSpec, now: datetime) -> str:
    """When the item's condition began, in its site's local time with the zone ("since 04:44 CET")."""
    if item.since is None:
        return ""
    zone = ZoneInfo(fleet.site(item.site).timezone)
    local, today = item.since.astimezone(zone), now.astimezone(zone)
    return "since " + local.strftime("%H:%M %Z" if local.date() == today.date() else "%a %H:%M %Z")


def item_line(item: AttentionItem, fleet: FleetSpec, now: datetime, *, compact: bool = False) -> html.Div:
    """One line: the severity in words and colour, what is wrong (a link to where it is explained), context.

    ``compact`` (the fleet overview) puts the site and since on the same line and leaves the detail out.
    """
    since = since_text(item, fleet, now)
    context = " · ".join(p for p in ((item.site, since) if compact else (item.site, item.detail, since)) if p)
    colour = _COLOUR[item.severity]
    body: list[Any] = [dcc.Link(item.text, href=item.link, className="attention-link",
                                style={"fontWeight": 600, "color": theme.TEXT})]
    if compact:
        body.append(html.Span(" · " + context, className="small muted"))
    else:
        body.append(html.Div(context, className="small muted"))
    return html.Div(
        [html.Span(item.severity.name, className="attention-severity",
                   style={"color": colour, "fontWeight": 700, "flex": "0 0 5.2em", "fontSize": "0.78rem",
                          "paddingTop": "2px"}),
         html.Div(body, style={"minWidth": 0})],
        className="attention-item",
        style={"display": "flex", "borderLeft": f"6px solid {colour}", "background": theme.PANEL,
               "padding": "3px 10px" if compact else "6px 10px", "marginBottom": "4px", "borderRadius": "3px",
               "overflowWrap": "anywhere"},
        **components.data_attrs(kind=item.kind.value, site=item.site, entity=item.entity,
                                severity=item.severity.name.lower()),
    )


def summary(view: AttentionView) -> str:
    """How many of each severity, when checked, and the projection behind the orders' chances."""
    if view.pending:
        return f"first check of {view.sites} sites under way (the dashboard's service builds the list)"
    counts = [f"{n} {s.name.lower()}" for s in sorted(Severity, reverse=True)
              if (n := view.count(s))]
    head = " · ".join(counts) if counts else "nothing"
    parts = [f"{head} across {view.sites} sites", f"checked {theme.fmt_ts(view.checked_at, seconds=True)}"]
    p = view.projection
    if p is not None:
        how = f"{p.replications} × {p.horizon_s / 3600:g} h" + ("" if p.calibrated else ", configured figures")
        parts.append(f"orders' chances projected {theme.fmt_ts(p.computed_at)} ({how})")
    else:
        parts.append("orders' chances: first projection pending")
    if view.note:
        parts.append(view.note)
    return " · ".join(parts)


def render_list(view: AttentionView, fleet: FleetSpec, limit: int | None = None, *,
                compact: bool = False) -> list[Any]:
    """The lines (the first ``limit``), the calm "Nothing needs attention" with when it was checked, or pending."""
    if view.pending:  # never "nothing" before anything was looked at
        return [html.Div("Checking what needs attention… (the first look at every site, a few seconds)",
                         className="notice attention-pending")]
    if not view.items:
        return [html.Div(f"Nothing needs attention · checked {theme.fmt_ts(view.checked_at, seconds=True)}",
                         className="notice attention-calm")]
    shown = view.items[:MAX_LINES if limit is None else limit]
    lines: list[Any] = [item_line(i, fleet, view.checked_at, compact=compact) for i in shown]
    rest = view.items[len(shown):]
    if rest and limit is None:
        counts = ", ".join(f"{n} {s.name.lower()}" for s in sorted(Severity, reverse=True)
                           if (n := sum(1 for i in rest if i.severity is s)))
        lines.append(html.Div(f"… and {len(rest)} more, ranked lower ({counts}): each site page shows its own",
                              className="small muted attention-more"))
    return lines


def top_card(view: AttentionView, fleet: FleetSpec) -> list[Any]:
    """The fleet overview's top: the first ``TOP`` lines (compact) and "all N →" to this page."""
    lines = render_list(view, fleet, TOP, compact=True)
    head: list[Any] = [html.Span("What needs attention", style={"fontWeight": 600})]
    if view.items:
        head.append(dcc.Link(f"all {len(view.items)} →", href=PATH, className="small attention-all",
                             style={"marginLeft": "12px"}))
    return [html.Div(head, className="mb-1"), *lines]


def layout(**_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("What needs attention"), html.Div(id=ATTENTION_SUMMARY, className="muted small")],
                     className="page-head"),
            html.Div(id=ATTENTION_LIST, className="mb-3"),
            html.Div("How it is ranked: " + RANKING, className="small muted"),
        ]
    )


def register(app: dash.Dash, services: Services) -> None:
    service = service_of(services)
    register_page(__name__, path=PATH, name="Attention", title="What needs attention · Micro-factory twin",
                  order=1, layout=layout)
    last: dict[int, tuple[AttentionView, tuple[list[Any], str]]] = {}

    @app.callback(Output(ATTENTION_LIST, "children"), Output(ATTENTION_SUMMARY, "children"),
                  Input(ids.REFRESH, "n_intervals"))
    def _refresh(_n: int | None) -> tuple[list[Any], str]:
        view = service.view()
        hit = last.get(0)
        if hit is not None and hit[0] is view:  # every tab within one refresh draws it once
            return hit[1]
        out = (render_list(view, services.queries.fleet), summary(view))
        last[0] = (view, out)
        return out
