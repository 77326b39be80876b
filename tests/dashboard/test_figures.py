"""Pure figure builders, theme formatting and tile components."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from dashboard import components, figures, theme
from dashboard.viewmodels import MachineTile, OeeView, StockRow, TimelineSegment
from dashboard.whatif_view import Actual, FanBand, KpiDelta, WhatIfResult
from twin.historian import SeriesKey, SeriesPoint, SeriesResult
from twin.readings import Quality
from twin.spec import MachineStatus

T0 = datetime(2026, 1, 7, 8, 0, tzinfo=UTC)


def test_formats() -> None:
    assert theme.fmt_pct(0.734) == "73 %"
    assert theme.fmt_pct(None) == "–"
    assert theme.fmt_pct(float("nan")) == "–"
    assert theme.fmt_duration(42) == "42 s"
    assert theme.fmt_duration(12 * 60) == "12 min"
    assert theme.fmt_duration(3.5 * 3600) == "3.5 h"
    assert theme.fmt_age(42) == "stale 42 s"
    assert theme.fmt_number(1234.0, "kg") == "1,234 kg"
    assert theme.fmt_number(0.25, "d", 2) == "0.25 d"


def test_every_status_has_a_word_and_a_colour() -> None:
    labels = {theme.andon(s).label for s in MachineStatus}
    assert len(labels) == len(MachineStatus)  # each status says what it is in words
    assert theme.andon(MachineStatus.RUNNING).background != theme.andon(MachineStatus.FAULT).background


def _tile(**kw: object) -> MachineTile:
    base: dict[str, object] = {"site": "s", "machine": "M1", "role": "print", "template": "t",
                               "shown": MachineStatus.RUNNING, "reported": MachineStatus.RUNNING,
                               "quality": Quality.GOOD, "age_s": 1.0, "in_status_s": 600.0}
    base.update(kw)
    return MachineTile(**base)  # type: ignore[arg-type]


def test_stale_tile_is_grey_with_age_and_last_report() -> None:
    tile = _tile(shown=MachineStatus.UNKNOWN, quality=Quality.STALE, age_s=42.0)
    div = components.machine_tile(tile)
    text = str(div.to_plotly_json())
    assert "andon-unknown" in div.className
    assert "UNKNOWN" in text and "stale 42 s" in text and "last reported RUNNING" in text


def test_bad_tile_says_why() -> None:
    tile = _tile(shown=MachineStatus.UNKNOWN, quality=Quality.BAD, reason="exception 2: illegal address")
    assert components.status_note(tile) == "bad: exception 2: illegal address"
    assert components.status_note(_tile()) == "for 10 min"


def test_oee_bars_show_each_factor() -> None:
    view = OeeView(availability=0.9, performance=0.8, quality=0.95, oee=0.9 * 0.8 * 0.95)
    fig = figures.oee_bars([("M1", view), ("M2", OeeView(availability=0.5))])
    names = [t.name for t in fig.data]
    assert names == ["OEE", "Availability", "Performance", "Quality"]  # one panel each, OEE first
    assert fig.data[1].x == (90.0, 50.0)
    assert fig.data[2].x == (80.0, None)  # a missing factor stays missing, never 0
    assert abs(fig.data[0].x[0] - 68.4) < 1e-9


def test_oee_bars_stay_on_the_plot_and_are_readable() -> None:
    # 8 machines, one with a performance of 132 % (not quantisation: reported as it is, twin.kpi)
    fast = OeeView(availability=0.95, performance=1.32, quality=0.99, oee=0.95 * 1.32 * 0.99)
    rows = [(f"M{i}", OeeView(availability=0.8, performance=0.9, quality=0.98, oee=0.8 * 0.9 * 0.98))
            for i in range(7)] + [("FAST", fast)]
    fig = figures.oee_bars(rows)
    layout = fig.layout
    for k, trace in enumerate(fig.data):
        axis = layout["xaxis" if k == 0 else f"xaxis{k + 1}"]
        longest = max(x for x in trace.x if x is not None)
        # the bar and its label (outside, about 30 % of 100 at this width) end inside the axis
        assert longest * 1.3 < axis.range[1], (trace.name, longest, axis.range)
        assert trace.textposition == "outside" and trace.textfont.size >= 12  # not shrunk to ~6 px in thin bars
    # four panels, each titled; the factors are told apart by their titles, not by four similar greys
    assert [a.text for a in layout.annotations] == ["<b>OEE</b>", "<b>Availability</b>", "<b>Performance</b>",
                                                    "<b>Quality</b>"]
    assert {t.marker.color for t in fig.data} == {theme.NORMAL_LINE}
    # nothing known at all (no planned time yet today): a panel that says so, not empty axes that look like 0
    blank = figures.oee_bars([("M1", OeeView()), ("M2", OeeView())])
    assert blank.layout.annotations[0].text == "No OEE yet in this window: no planned time with data"


def test_a_capped_performance_in_the_oee_panels_says_why_on_hover() -> None:
    # a build begun before the window finished in it: performance shown as "≥100 %", and its hover says why
    capped = OeeView(availability=0.9, performance=1.0, quality=1.0, oee=0.9, performance_capped=True)
    fig = figures.oee_bars([("P1", capped), ("P2", OeeView(availability=0.9, performance=0.8, quality=1.0))])
    perf = fig.data[2]
    assert perf.name == "Performance" and list(perf.text) == ["≥100 %", "80 %"]
    assert perf.hovertemplate == "%{y} Performance: %{text}%{customdata}<extra></extra>"
    why = perf.customdata[0]
    assert why.startswith("<br>at least 100 %: a build begun before this window finished")
    assert why.replace("<br>", " ").strip() == theme.CAPPED_PERFORMANCE  # the whole reason, in short lines
    assert all(len(line) <= 70 for line in why.split("<br>"))
    assert perf.customdata[1] == "" and fig.data[0].customdata == ("", "")  # nothing to explain elsewhere


def test_timeline_uses_andon_colours_and_names_statuses() -> None:
    segs = [TimelineSegment(machine="M1", status=MachineStatus.RUNNING, start=T0, end=T0 + timedelta(hours=1)),
            TimelineSegment(machine="M1", status=MachineStatus.FAULT, start=T0 + timedelta(hours=1),
                            end=T0 + timedelta(hours=2))]
    fig = figures.status_timeline(segs, T0, T0 + timedelta(hours=2))
    by_name = {t.name: t for t in fig.data}
    assert set(by_name) == {"RUNNING", "FAULT"}
    assert by_name["FAULT"].marker.color == theme.andon(MachineStatus.FAULT).background
    assert by_name["RUNNING"].x == (3_600_000.0,)  # one hour in ms on a date axis


def test_trend_draws_min_max_envelope_when_downsampled() -> None:
    key = SeriesKey(site="s", asset="M1", signal="temp_c")
    pts = tuple(SeriesPoint(ts=T0 + timedelta(minutes=i), value=float(i), min=i - 1.0, max=i + 5.0, count=10)
                for i in range(5))
    fig = figures.trend([SeriesResult(key=key, points=pts, downsampled=True)], unit="degC")
    assert len(fig.data) == 3  # max edge, min edge filled to it, mean line
    assert fig.data[0].y == (5.0, 6.0, 7.0, 8.0, 9.0)
    assert fig.data[1].fill == "tonexty"
    raw = figures.trend([SeriesResult(key=key, points=pts, downsampled=False)])
    assert len(raw.data) == 1


def test_empty_figures_say_why() -> None:
    fig = figures.trend([])
    assert fig.layout.annotations[0].text == "No data in this range"


def test_stock_bars_colour_only_abnormal_items() -> None:
    common = {"unit": "kg", "quality": Quality.GOOD, "lead_time_d": 2.0, "daily_use": 1.0, "in_transit": 0.0,
              "next_eta": None}
    rows = [
        StockRow(sku="A", name="a", on_hand=5.0, reorder_point=10.0, days_of_cover=5.0, below_reorder=True,
                 cover_short=False, **common),  # type: ignore[arg-type]
        StockRow(sku="B", name="b", on_hand=50.0, reorder_point=10.0, days_of_cover=1.0, below_reorder=False,
                 cover_short=True, **common),  # type: ignore[arg-type]
        StockRow(sku="C", name="c", on_hand=50.0, reorder_point=10.0, days_of_cover=50.0, below_reorder=False,
                 cover_short=False, **common),  # type: ignore[arg-type]
    ]
    fig = figures.stock_bars(rows)
    colours = list(fig.data[0].marker.color)
    assert colours[0] == "#c62828" and colours[1] == "#e0a100" and colours[2] == "#7b838a"
    assert fig.data[0].x == (0.5, 5.0, 5.0)
    assert "BELOW REORDER" in fig.data[0].text[0] and "RUNS OUT BEFORE LEAD TIME" in fig.data[0].text[1]


def _result() -> WhatIfResult:
    t = (T0, T0 + timedelta(hours=12))
    return WhatIfResult(
        name="x", site="s", at=T0, horizon_h=12, replications=10,
        bands=(FanBand(kpi="units", unit="u", variant="baseline", t=t, p10=(0, 8), p50=(0, 10), p90=(0, 12)),
               FanBand(kpi="units", unit="u", variant="scenario", t=t, p10=(0, 6), p50=(0, 8), p90=(0, 9))),
        actuals=(Actual(kpi="units", unit="u", t=(T0 - timedelta(hours=6), T0), values=(-3.0, 0.0)),),
        deltas=(KpiDelta(kpi="on_time", unit="", baseline=0.9, scenario=0.7, delta=-0.2, ci_low=-0.3, ci_high=-0.1),
                KpiDelta(kpi="wip", unit="", baseline=5, scenario=6, delta=1, ci_low=-1, ci_high=3,
                         higher_is_better=False)),
    )


def test_fan_chart_has_both_bands_and_the_actual_trend() -> None:
    fig = figures.fan_chart(_result(), "units")
    names = [t.name for t in fig.data if t.name]
    assert names == ["actual", "baseline P10–P90", "baseline P50", "scenario P10–P90", "scenario P50"]
    scen_p10 = next(t for t in fig.data if t.name == "scenario P10–P90")
    assert scen_p10.y == (0, 6) and scen_p10.fill == "tonexty"


def test_result_round_trips_through_a_store() -> None:
    r = _result()
    assert WhatIfResult.from_dict(r.to_dict()) == r


def test_a_capped_performance_says_why_on_hover() -> None:
    from dashboard.viewmodels import SiteTile
    from twin.frozen import FrozenDict

    # a 12-part build of 2 h begun at 23:00 finished at 01:00: today's window holds 1 h of its running but
    # the ideal time of all 12 parts (2 h), so P (2 h / 1 h) is capped: shown "≥100 %", the reason on hover
    capped = OeeView(availability=None, performance=1.0, quality=1.0, performance_capped=True)
    tile = SiteTile(site="pod-berlin", name="Berlin", kind="point-of-demand", region="DE", oee=capped,
                    output_today=0, plan_today=133, plan_by_now=0.0, by_status=FrozenDict(), active_alarms=0,
                    top_priority=None, stock_at_risk=0, newest_sample=None, age_s=None, stale=False)
    doc = str(components.site_tile(tile).to_plotly_json())
    assert "P ≥100 %" in doc and theme.CAPPED_PERFORMANCE in doc
    plain = str(components.site_tile(replace(tile, oee=replace(capped, performance_capped=False))).to_plotly_json())
    assert "P 100 %" in plain and theme.CAPPED_PERFORMANCE not in plain
