"""Model trust page: how well the twin's P10–P90 bands held over the last days, for one site.

Shows what ``dashboard.trust.TrustService`` scored in the background (never computed here): when
and over which origins, output and stock coverage by horizon hour, the PIT histogram against the
flat count of a calibrated model, CRPS and skill against the naive forecast per series, and which
calibrated figures came from history (with their sample sizes) or fell back to the configuration.
Grey unless abnormal: coverage outside 73–87 % or skill below 0 is amber, always with the words.
"""

from __future__ import annotations

import math
from typing import Any

import dash
import dash_bootstrap_components as dbc
from dash import Input, Output, State, ctx, dcc, html
from dash.exceptions import PreventUpdate

from dashboard import components, ids, theme, trust_figures
from dashboard.pages._shared import LastDrawing, card, register_page, site_choice, site_dropdown
from dashboard.services import Services
from dashboard.trust import COVERAGE_HIGH, COVERAGE_LOW, COVERAGE_TARGET, ParamRow, ScoreRow, TrustService, TrustView

__all__ = [
    "PARTS",
    "banner",
    "coverage_state",
    "header",
    "kpis",
    "layout",
    "num",
    "param_groups",
    "params_table",
    "pct",
    "register",
    "render_view",
    "scores_table",
    "service_of",
    "skill_state",
    "skill_text",
]

PATH = "/trust"
PARTS = ("header", "banner", "kpis", "coverage", "pit", "scores", "params")
AMBER_BOX = {"background": "#f6e6bd", "borderLeft": "6px solid #e0a100"}
NAMES = {"mtbf_h": "MTBF", "mttr_h": "MTTR", "cycle_time_s": "cycle time", "scrap_rate": "scrap rate",
         "orders_per_day": "demand", "consumption_factor": "consumption factor", "lead_time_d": "lead time",
         "lead_time_sd_d": "lead time sd"}


def layout(site: str | None = None, **_query: Any) -> html.Div:
    return html.Div(
        [
            html.Div([html.H2("Model trust"), html.Div(site_dropdown(ids.TRUST_SELECT, site), className="head-picker"),
                      html.Div(id=ids.TRUST_HEADER, className="muted")], className="page-head"),
            dcc.Store(id=ids.TRUST_SENT, data=None),
            html.Div(id=ids.TRUST_BANNER),
            html.Div(id=ids.TRUST_KPIS, className="mb-3"),
            dbc.Row(
                [
                    dbc.Col(card("P10–P90 coverage by horizon hour (grey band: 73–87 %)",
                                 dcc.Graph(id=ids.TRUST_COVERAGE, config={"displaylogo": False})), lg=7),
                    dbc.Col(card("PIT histogram, output and stock (dashed: calibrated)",
                                 dcc.Graph(id=ids.TRUST_PIT, config={"displaylogo": False})), lg=5),
                ]
            ),
            card("Scores by series", html.Div(id=ids.TRUST_SCORES)),
            card("Calibrated figures of the latest origin", html.Div(id=ids.TRUST_PARAMS)),
        ]
    )


# --------------------------------------------------------------------------------------------- words and numbers
def pct(x: float) -> str:
    """A share in whole percent, "–" when unknown.

    >>> pct(0.784), pct(float("nan"))
    ('78 %', '–')
    """
    return theme.fmt_pct(None if math.isnan(x) else x)


def skill_text(x: float) -> str:
    """A skill score with its sign, two decimals.

    >>> skill_text(0.3149), skill_text(-0.1)
    ('+0.31', '−0.10')
    """
    if math.isnan(x):
        return "–"
    return f"{x:+.2f}".replace("-", "−")


def num(x: float, unit: str = "") -> str:
    """Three significant digits with the unit ("12.3 units", "0.0412 kg"), "–" when unknown."""
    if math.isnan(x):
        return "–"
    text = f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"
    return f"{text} {unit}".rstrip()


def coverage_state(x: float) -> str:
    if math.isnan(x):
        return "no data"
    if x < COVERAGE_LOW:
        return f"BANDS TOO NARROW (below {COVERAGE_LOW * 100:.0f} %)"
    if x > COVERAGE_HIGH:
        return f"BANDS TOO WIDE (above {COVERAGE_HIGH * 100:.0f} %)"
    return "ok"


def skill_state(x: float) -> str:
    if math.isnan(x):
        return "no naive forecast (a week of history needed)"
    return "WORSE THAN NAIVE" if x < 0 else "better than naive"


def header(view: TrustView) -> str:
    if view.status == "off":
        return "Model trust scoring is off in this dashboard."
    if view.computed_at is None:
        return "Not scored yet: the first score runs shortly after the dashboard starts." + (
            f" ({view.note})" if view.note else "")
    text = (f"Scored {theme.fmt_ts(view.computed_at)} over the last {view.days:g} days: {view.origins} origins "
            f"every {view.every_h:g} h from {theme.fmt_ts(view.first_origin)} to {theme.fmt_ts(view.last_origin)}, "
            f"horizon {view.horizon_h:g} h, {view.replications} replications each; each origin calibrated only "
            "from history before it.")
    if view.data_end is not None:
        text += f" History ends {theme.fmt_ts(view.data_end)}: the window ends there."
    return text + (f" {view.note}" if view.note else "")


def _kpi(label: str, value: str, state: str, abnormal: bool, data: str) -> dbc.Col:
    box = html.Div([html.Div(label, className="kpi-label"), html.Div(value, className="kpi-big"),
                    html.Div(state, className="small")], className="kpi-box h-100",
                   style=AMBER_BOX if abnormal else None,
                   **components.data_attrs(kpi=data, abnormal=str(abnormal).lower()))
    return dbc.Col(box, xs=6, md=3)


def kpis(view: TrustView) -> Any:
    """The four headline figures with their state in words; amber only when abnormal."""
    if view.status != "ok":
        return html.Div("No scores for this site yet." if view.status != "no data" else
                        "The score has no output or stock series of this site (no counters or stock in history).",
                        className="muted")
    target = f"target {COVERAGE_TARGET * 100:.0f} %"
    out_off = coverage_state(view.output_coverage) not in ("ok", "no data")
    stock_off = coverage_state(view.stock_coverage) not in ("ok", "no data")
    return dbc.Row([
        _kpi("Output P10–P90 coverage", pct(view.output_coverage),
             f"{target} · {coverage_state(view.output_coverage)}", out_off, "output-coverage"),
        _kpi("Stock P10–P90 coverage", pct(view.stock_coverage),
             f"{target} · {coverage_state(view.stock_coverage)}", stock_off, "stock-coverage"),
        _kpi("Output skill vs naive", skill_text(view.output_skill), skill_state(view.output_skill),
             not math.isnan(view.output_skill) and view.output_skill < 0, "output-skill"),
        _kpi("Output CRPS", num(view.output_crps, "units"), "0 = a perfect forecast; lower is better", False,
             "output-crps"),
    ], className="g-2")


def banner(view: TrustView) -> Any:
    if not view.findings:
        return None
    return html.Div([html.Strong("TWIN DRIFT (alarm, medium): "), "; ".join(view.findings)],
                    className="mb-2 p-2", role="alert", style=AMBER_BOX)


def scores_table(rows: tuple[ScoreRow, ...]) -> Any:
    if not rows:
        return html.Div("No series scored.", className="muted")
    body = []
    for r in rows:
        words = [w for w in (coverage_state(r.coverage) if r.coverage_off else "",
                             "WORSE THAN NAIVE" if r.skill_negative else "") if w]
        body.append(html.Tr([
            html.Td("output (daily units)" if r.metric == "cumulative_units" else f"stock {r.label}"),
            html.Td(pct(r.coverage)), html.Td(num(r.crps, r.unit)), html.Td(num(r.error, r.unit)),
            html.Td(num(r.naive_error, r.unit)), html.Td(skill_text(r.skill)), html.Td(f"{r.points:,}"),
            html.Td("; ".join(words) or "ok")], className="row-amber" if words else ""))
    note = html.Div("P50 error: of the daily output for output, at the hourly bin ends for stock; naive: the same "
                    "hours a week earlier; skill = 1 − error ÷ naive error (above 0: better than naive).",
                    className="small muted")
    return [components.table(("Series", "Coverage", "CRPS", "P50 error", "Naive error", "Skill", "Points", "State"),
                             body, bordered=False), note]


def _value(p: ParamRow) -> str:
    return num(p.value, p.unit)


def param_groups(rows: tuple[ParamRow, ...]) -> list[tuple[str, int, int, str]]:
    """Per kind of figure: (name, how many from history, how many from the configuration, samples range).

    >>> from dashboard.trust import ParamRow
    >>> a = ParamRow(name="mtbf_h", subject="CNC1", value=41.0, unit="h", samples=9, from_history=True, default=40.0)
    >>> b = ParamRow(name="mtbf_h", subject="S1", value=250.0, unit="h", samples=2, from_history=False, default=250.0)
    >>> param_groups((a, b))
    [('MTBF', 1, 1, '2–9')]
    """
    groups: dict[str, list[ParamRow]] = {}
    for p in rows:
        groups.setdefault(p.name, []).append(p)
    out = []
    for name, ps in groups.items():
        lo, hi = min(p.samples for p in ps), max(p.samples for p in ps)
        out.append((NAMES.get(name, name.replace("_", " ")), sum(1 for p in ps if p.from_history),
                    sum(1 for p in ps if not p.from_history), f"{lo:,}" if lo == hi else f"{lo:,}–{hi:,}"))
    return sorted(out, key=lambda g: (-g[2], g[0]))


def params_table(view: TrustView) -> Any:
    """A line per kind of figure (from history or the configuration), every figure under "all figures"."""
    rows = view.params
    if not rows:
        return html.Div("No calibration (scored with the configured figures)." if view.status == "ok"
                        else "No calibration yet.", className="muted")
    learned = sum(1 for p in rows if p.from_history)
    span = (f" ({theme.fmt_ts(view.calibrated_from)} to {theme.fmt_ts(view.calibrated_to)})"
            if view.calibrated_from else "")
    summary = html.Div(f"{learned} of {len(rows)} figures from history{span}; {len(rows) - learned} fell back to "
                       "the configuration (history too short for them).", className="small muted mb-1",
                       **components.data_attrs(learned=str(learned)))
    body = [html.Tr([html.Td(name), html.Td(str(hist)), html.Td(str(conf)), html.Td(samples)])
            for name, hist, conf, samples in param_groups(rows)]
    every = [html.Tr([html.Td(NAMES.get(p.name, p.name.replace("_", " "))), html.Td(p.subject), html.Td(_value(p)),
                      html.Td(f"{p.samples:,}"),
                      html.Td("history" if p.from_history else f"configuration ({num(p.default, p.unit)})")])
             for p in rows]
    return [summary, components.table(("Figure", "From history", "Configuration", "Samples"), body, bordered=False),
            html.Details([html.Summary(f"All {len(rows)} figures, value and source"),
                          components.table(("Figure", "Of", "Value", "Samples", "Source"), every, bordered=False)])]


def render_view(view: TrustView) -> dict[str, Any]:
    """Every part of the page for one view-model (pure)."""
    return {"header": header(view), "banner": banner(view), "kpis": kpis(view),
            "coverage": trust_figures.coverage_by_hour(view), "pit": trust_figures.pit_histogram(view),
            "scores": scores_table(view.rows), "params": params_table(view)}


def service_of(services: Services) -> TrustService | None:
    found = services.extra.get("trust")
    return found if isinstance(found, TrustService) else None


def _mark(view: TrustView) -> str:
    return f"{view.site}|{view.computed_at}|{view.status}|{view.note}"


def register(app: dash.Dash, services: Services) -> None:
    register_page(__name__, path=PATH, name="Model trust", title="Model trust · Micro-factory twin", order=6,
                  layout=layout)
    queries = services.queries
    trust = service_of(services)
    drawn: LastDrawing[TrustView, dict[str, Any]] = LastDrawing(render_view)

    @app.callback(Output(ids.TRUST_SELECT, "options"), Output(ids.TRUST_SELECT, "value"),
                  Input(ids.LOCATION, "pathname"), Input(ids.LOCATION, "search"), State(ids.TRUST_SELECT, "value"))
    def _options(_path: str | None, search: str | None, value: str | None) -> tuple[list[dict[str, str]], str | None]:
        return site_choice(queries, search, value)

    @app.callback(
        Output(ids.TRUST_HEADER, "children"), Output(ids.TRUST_BANNER, "children"), Output(ids.TRUST_KPIS, "children"),
        Output(ids.TRUST_COVERAGE, "figure"), Output(ids.TRUST_PIT, "figure"), Output(ids.TRUST_SCORES, "children"),
        Output(ids.TRUST_PARAMS, "children"), Output(ids.TRUST_SENT, "data"),
        Input(ids.TRUST_SELECT, "value"), Input(ids.REFRESH, "n_intervals"), State(ids.TRUST_SENT, "data"),
    )
    def _refresh(site: str | None, _n: int | None, sent: str | None) -> tuple[Any, ...]:
        if not site:
            raise PreventUpdate
        view = trust.view(site) if trust is not None else TrustView(site=site, status="off")
        mark = _mark(view)
        if ctx.triggered_id == ids.REFRESH and sent == mark:
            raise PreventUpdate  # the score changes once a day: an interval tick sends nothing new
        parts = drawn(site, view)
        return (*(parts[name] for name in PARTS), mark)
