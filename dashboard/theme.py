"""The dashboard's look and wording: ISA-101 greys, Andon colours, thresholds, units and number formats.

Domain code returns plain numbers and enums; everything a person reads (colours, ``%`` signs, "stale
42 s") is decided here and only here, so the whole dashboard speaks one visual language.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from dashboard import timefmt
from twin.spec import MachineStatus, Priority

__all__ = [
    "ANDON",
    "ATTENTION",
    "BACKGROUND",
    "CAPPED_PERFORMANCE",
    "GRID",
    "PANEL",
    "PRIORITY_COLOURS",
    "TEXT",
    "TEXT_MUTED",
    "AndonStyle",
    "Thresholds",
    "andon",
    "fmt_age",
    "fmt_duration",
    "fmt_number",
    "fmt_pct",
    "fmt_performance",
    "fmt_ts",
    "priority_label",
    "stock_state",
]

# ISA-101: a calm grey screen; saturated colour is reserved for what is abnormal.
BACKGROUND = "#d9dadb"
PANEL = "#e8e9ea"
GRID = "#c4c6c8"
TEXT = "#1f2326"
TEXT_MUTED = "#5a6066"
NORMAL_LINE = "#4d5a66"  # a normal process value: dark slate, not a colour
BASELINE_LINE = "#7b838a"
SCENARIO_LINE = "#1f5fa8"  # the what-if scenario: the one accent colour of the what-if page


@dataclass(frozen=True, slots=True, kw_only=True)
class AndonStyle:
    """How one machine status is drawn: background, text colour, the word shown and a CSS class."""

    label: str
    background: str
    foreground: str
    css: str


ANDON: dict[MachineStatus, AndonStyle] = {
    MachineStatus.RUNNING: AndonStyle(label="RUNNING", background="#2e8b3a", foreground="#ffffff",
                                      css="andon-running"),
    # idle is normal (waiting for work): grey, like the screen. Amber is ATTENTION, for what needs a look
    MachineStatus.IDLE: AndonStyle(label="IDLE", background="#c9cdd0", foreground="#1f2326", css="andon-idle"),
    MachineStatus.FAULT: AndonStyle(label="FAULT", background="#c62828", foreground="#ffffff", css="andon-fault"),
    MachineStatus.MAINTENANCE: AndonStyle(label="MAINTENANCE", background="#1f5fa8", foreground="#ffffff",
                                          css="andon-maint"),
    MachineStatus.SETUP: AndonStyle(label="SETUP", background="#1f5fa8", foreground="#ffffff", css="andon-maint"),
    MachineStatus.OFF: AndonStyle(label="OFF", background="#8e9398", foreground="#ffffff", css="andon-off"),
    MachineStatus.UNKNOWN: AndonStyle(label="UNKNOWN", background="#b4b8bc", foreground="#1f2326",
                                      css="andon-unknown"),
}

# a machine that needs a look (idle in shift for longer than Thresholds.idle_attention_s, or an active
# alarm of MEDIUM priority or above on it): amber, whatever its normal colour, with the reason in words
ATTENTION = AndonStyle(label="", background="#e0a100", foreground="#1f2326", css="andon-attention")

PRIORITY_COLOURS: dict[Priority, str] = {
    Priority.URGENT: "#c62828",
    Priority.HIGH: "#d9480f",
    Priority.MEDIUM: "#e0a100",
    Priority.LOW: "#5a6066",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Thresholds:
    """When a number becomes abnormal enough to be coloured."""

    oee_low: float = 0.60  # OEE below this is flagged
    behind_plan: float = 0.90  # output below this share of the pro-rata plan is "behind plan"
    site_stale_s: float = 60.0  # a site whose newest sample is older than this is flagged stale
    idle_attention_s: float = 900.0  # idle in shift longer than this needs a look (amber); shorter is normal


def andon(status: MachineStatus) -> AndonStyle:
    return ANDON[status]


def priority_label(priority: Priority | int) -> str:
    return Priority(int(priority)).name


def _finite(x: float | None) -> bool:
    return x is not None and not (isinstance(x, float) and (math.isnan(x) or math.isinf(x)))


def fmt_pct(x: float | None, digits: int = 0) -> str:
    """A ratio (0.734) as a percentage ("73 %"); "–" when unknown."""
    if x is None or not _finite(x):
        return "–"
    return f"{100.0 * x:.{digits}f} %"


CAPPED_PERFORMANCE = ("at least 100 %: a build begun before this window finished inside it, so its parts' ideal "
                      "time exceeds the running time counted here (shown as 100 %, not more)")


def fmt_performance(x: float | None, capped: bool) -> str:
    """Performance; "≥100 %" when capped (a cycle begun before the window ended in it: ``twin.kpi``)."""
    return "≥" + fmt_pct(x) if capped else fmt_pct(x)


def stock_state(*, known: bool, below_reorder: bool, replenishing: bool, cover_short: bool) -> str:
    """An item's state in words: what is abnormal about it, the arrivals under way counted."""
    if not known:
        return "no data"
    if below_reorder and not replenishing:
        return "BELOW REORDER, NOTHING COMING"
    if cover_short:
        return "RUNS OUT BEFORE LEAD TIME"
    if below_reorder:
        return "below reorder, replenishing"
    return "ok"


def fmt_number(x: float | None, unit: str = "", digits: int = 1) -> str:
    """A quantity with its unit; integers without decimals; "–" when unknown."""
    if x is None or not _finite(x):
        return "–"
    text = f"{x:,.0f}" if float(x).is_integer() else f"{x:,.{digits}f}"
    return f"{text} {unit}".rstrip()


def fmt_duration(seconds: float | None) -> str:
    """A duration the way an operator says it: "42 s", "12 min", "3.5 h", "2.1 d"."""
    if seconds is None or not _finite(seconds):
        return "–"
    s = abs(seconds)
    if s < 90:
        return f"{s:.0f} s"
    if s < 90 * 60:
        return f"{s / 60:.0f} min"
    if s < 48 * 3600:
        return f"{s / 3600:.1f} h"
    return f"{s / 86400:.1f} d"


def fmt_age(seconds: float | None) -> str:
    """The age of data, e.g. "stale 42 s"."""
    if seconds is None:
        return "no data"
    return f"stale {fmt_duration(seconds)}"


def fmt_ts(ts: datetime | None, *, seconds: bool = False, tz: str | None = None) -> str:
    """A timestamp in the zone ``tz`` (a site's; None: UTC, for the fleet), e.g. "2026-01-05 09:00 CET".

    ``dashboard.timefmt`` does the work: 24 h, ISO order, the zone's abbreviation always shown.
    """
    return timefmt.fmt_datetime(ts, tz, seconds=seconds)
