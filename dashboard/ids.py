"""Every component id of the dashboard, in one place.

Plain ids are string constants named after the page that owns them; repeated widgets (site tiles,
machine tiles, alarm buttons) use pattern-matching dict ids built by the functions below, so a
callback matches them with ``dash.MATCH``/``dash.ALL`` instead of parsing strings.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "ALARM_ACK_TYPE",
    "MACHINE_TILE_TYPE",
    "SITE_TILE_TYPE",
    "machine_tile",
    "site_tile",
    "whatif_field",
    "whatif_wrap",
]

# --- shell (app.py)
REFRESH = "shell-refresh"  # dcc.Interval: re-read cached state
LOCATION = "shell-location"
USER_BADGE = "shell-user"
NAV_TOGGLE = "shell-nav-toggle"  # the menu button on narrow screens
NAV_COLLAPSE = "shell-nav"
NAV_LINK = "shell-nav-link"  # {"type": NAV_LINK, "page": path}: a menu entry (choosing one folds the menu)

# --- fleet page
FLEET_TILES = "fleet-tiles"
FLEET_SUMMARY = "fleet-summary"
FLEET_LEGEND = "fleet-legend"

# --- site page
SITE_SELECT = "site-select"
SITE_HEADER = "site-header"
SITE_TILES = "site-tiles"
SITE_TIMELINE = "site-timeline"
SITE_TREND_SIGNAL = "site-trend-signal"
SITE_TREND = "site-trend"
SITE_OEE = "site-oee"
SITE_STOCK = "site-stock"
SITE_SHIPMENTS = "site-shipments"
SITE_ALARMS = "site-alarms"
SITE_ACK_COMMENT = "site-ack-comment"
SITE_ACK_BUTTON = "site-ack-button"
SITE_ACK_RESULT = "site-ack-result"
SITE_SENT = "site-sent"  # dcc.Store: fingerprints of the slow-changing parts this browser already has
SITE_ORDERS = "site-orders"
SITE_PROJECTION = "site-projection"
SITE_STOPS = "site-stops"  # today's stops that need a reason (dashboard.pages._stops)
SITE_STOP_COMMENT = "site-stop-comment"
SITE_CLASSIFY = "site-classify"
SITE_CLASSIFY_RESULT = "site-classify-result"

# --- machine page
MACHINE_SITE = "machine-site"
MACHINE_SELECT = "machine-select"
MACHINE_RANGE = "machine-range"
MACHINE_SIGNALS = "machine-signals"
MACHINE_TREND = "machine-trend"
MACHINE_KPIS = "machine-kpis"
MACHINE_EVENTS = "machine-events"
MACHINE_HEADER = "machine-header"
MACHINE_HEALTH = "machine-health"
MACHINE_RISK = "machine-risk"
MACHINE_HEALTH_DRAWN = "machine-health-drawn"  # what the Health card was last drawn from
MACHINE_STOPS = "machine-stops"  # the machine's stops of today that need a reason
MACHINE_STOP_COMMENT = "machine-stop-comment"
MACHINE_CLASSIFY = "machine-classify"
MACHINE_CLASSIFY_RESULT = "machine-classify-result"

# --- what-if page
WHATIF_SITE = "whatif-site"
WHATIF_AT = "whatif-at"
WHATIF_NAME = "whatif-name"
WHATIF_HORIZON = "whatif-horizon"
WHATIF_REPLICATIONS = "whatif-replications"
WHATIF_KIND = "whatif-kind"
WHATIF_FORM = "whatif-form"
WHATIF_ADD = "whatif-add"
WHATIF_CLEAR = "whatif-clear"
WHATIF_INTERVENTIONS = "whatif-interventions"
WHATIF_SCENARIO = "whatif-scenario"  # dcc.Store: the scenario being built (plain dict)
WHATIF_RUN = "whatif-run"
WHATIF_CANCEL = "whatif-cancel"
WHATIF_PROGRESS = "whatif-progress"
WHATIF_STATUS = "whatif-status"
WHATIF_RESULT = "whatif-result"  # dcc.Store: the last result (plain dict)
WHATIF_FAN = "whatif-fan"
WHATIF_FAN_KPI = "whatif-fan-kpi"
WHATIF_DELTAS = "whatif-deltas"
WHATIF_ORDERS = "whatif-orders"
WHATIF_SAVE = "whatif-save"
WHATIF_DOWNLOAD = "whatif-download"
WHATIF_UPLOAD = "whatif-upload"
WHATIF_RUNS = "whatif-runs"  # dcc.Store: results of earlier runs, for comparison
WHATIF_COMPARE = "whatif-compare"
WHATIF_ERROR = "whatif-error"

WHATIF_REQUEST = "whatif-request"  # dcc.Store: a run the server authorised (signed token + request)
WHATIF_FORK_NOTE = "whatif-fork-note"

# --- replay page
REPLAY_SITE = "replay-site"
REPLAY_START = "replay-start"
REPLAY_END = "replay-end"
REPLAY_CURSOR = "replay-cursor"  # dcc.Slider over [start, end] in seconds
REPLAY_CLOCK = "replay-clock"  # dcc.Interval driving play
REPLAY_PLAY = "replay-play"
REPLAY_PAUSE = "replay-pause"
REPLAY_STEP_BACK = "replay-step-back"
REPLAY_STEP = "replay-step"
REPLAY_SPEED = "replay-speed"
REPLAY_TIME = "replay-time"
REPLAY_TILES = "replay-tiles"
REPLAY_EVENTS = "replay-events"
REPLAY_FORK = "replay-fork"

# --- alarms journal
ALARMS_SITES = "alarms-sites"
ALARMS_PRIORITIES = "alarms-priorities"
ALARMS_STATES = "alarms-states"
ALARMS_HOURS = "alarms-hours"
ALARMS_HIDE = "alarms-hide"  # hide shelved / suppressed rows
ALARMS_GRID = "alarms-grid"
ALARMS_COMMENT = "alarms-comment"
ALARMS_ACK = "alarms-ack"
ALARMS_ACK_RESULT = "alarms-ack-result"
ALARMS_EXPORT = "alarms-export"
ALARMS_DOWNLOAD = "alarms-download"
ALARMS_WIDTH = "alarms-width"  # dcc.Store: the browser window's width (px), read once the page opens
ALARMS_DETAILS = "alarms-details"  # on a phone: every column instead of one stacked column

# --- shift page
SHIFT_SITE = "shift-site"
SHIFT_WINDOW = "shift-window"
SHIFT_DOWNLOAD = "shift-download"
SHIFT_TILES = "shift-tiles"
SHIFT_WATERFALL = "shift-waterfall"
SHIFT_PARETO = "shift-pareto"
SHIFT_STOPS = "shift-stops"
STOP_REASON = "stop-reason"  # {"type": STOP_REASON, "scope": "site"|"machine", "stop": "MACHINE|START|SHIFT_START"}
SHIFT_REASON = "shift-reason"  # pattern-matching type: {"type": SHIFT_REASON, "stop": "MACHINE|START"}
SHIFT_STOP_COMMENT = "shift-stop-comment"
SHIFT_CLASSIFY = "shift-classify"
SHIFT_CLASSIFY_RESULT = "shift-classify-result"
SHIFT_ALARM_RATE = "shift-alarm-rate"
SHIFT_ALARM_FIGURES = "shift-alarm-figures"
SHIFT_ALARM_KEY = "shift-alarm-key"
SHIFT_CHANGE = "shift-change"
SHIFT_SHELVE_KIND = "shift-shelve-kind"
SHIFT_SHELVE_MIN = "shift-shelve-min"
SHIFT_SHELVE_COMMENT = "shift-shelve-comment"
SHIFT_SHELVE = "shift-shelve"
SHIFT_SHELVE_RESULT = "shift-shelve-result"
SHIFT_JOURNAL = "shift-journal"

# --- model trust page
TRUST_SELECT = "trust-select"
TRUST_HEADER = "trust-header"
TRUST_BANNER = "trust-banner"  # the drift findings, when there are any
TRUST_KPIS = "trust-kpis"  # coverage, skill and CRPS figures
TRUST_COVERAGE = "trust-coverage"  # coverage by horizon hour
TRUST_PIT = "trust-pit"
TRUST_SCORES = "trust-scores"  # scores per series
TRUST_PARAMS = "trust-params"  # calibrated figures: from history or the configuration
TRUST_SENT = "trust-sent"  # dcc.Store: the view this browser already shows
SITE_TRUST_LINK = "site-trust-link"  # the site page's link to its model-trust panel

# --- pattern-matching types
SITE_TILE_TYPE = "site-tile"
MACHINE_TILE_TYPE = "machine-tile"
ALARM_ACK_TYPE = "alarm-ack"
WHATIF_CHOICE_TYPE = "whatif-choice"  # dropdown fields of the intervention form (machine, sku, ...)
WHATIF_VALUE_TYPE = "whatif-value"  # number/text fields of the intervention form
WHATIF_WRAP_TYPE = "whatif-wrap"  # the wrapper shown only for the chosen kind's fields


def site_tile(site_id: Any) -> dict[str, Any]:
    """The id of the fleet page's tile for ``site_id``."""
    return {"type": SITE_TILE_TYPE, "site": site_id}


def whatif_field(key: Any, *, choice: bool) -> dict[str, Any]:
    """The id of an intervention-form field (``choice``: a dropdown rather than an input)."""
    return {"type": WHATIF_CHOICE_TYPE if choice else WHATIF_VALUE_TYPE, "field": key}


def whatif_wrap(key: Any) -> dict[str, Any]:
    return {"type": WHATIF_WRAP_TYPE, "field": key}


def machine_tile(site_id: str, machine_id: str, *, scope: str = "live") -> dict[str, Any]:
    """The id of a machine tile (``scope`` tells the live site page from the replay page)."""
    return {"type": MACHINE_TILE_TYPE, "scope": scope, "site": site_id, "machine": machine_id}
