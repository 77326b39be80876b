"""The live twin as a pure reducer: fold a batch of readings into a new immutable state, plus events.

``apply(spec, state, readings)`` never mutates its arguments and never raises on field data:

* **Status.** A GOOD reading of a template's STATUS signal maps its code through
  ``template.status_codes``; a code not in the map, or a BAD/STALE status reading, makes the machine
  ``UNKNOWN`` with the reason. Every status change is a STATUS_CHANGE event; ``status_seconds``
  accumulates the time spent in each status (UNKNOWN included) up to ``status_since``.
  ``failures``/``repairs`` count changes of the last *known* status into and out of FAULT, so a data
  gap in the middle of a fault neither adds a failure nor loses the repair.
* **Staleness.** At ``now`` a GOOD signal older than ``spec.stale_after_polls`` poll intervals turns
  STALE ("not refreshed for N s", N the threshold). A machine whose status signal is stale or bad is
  UNKNOWN from the moment it went stale (sample time + threshold), never its last status as if current.
* **Counters** (GOOD_COUNT/SCRAP_COUNT, unsigned ``counter_bits`` wide): the first reading is the
  baseline; an increase adds to ``good_total``/``scrap_total``; a decrease from the top quarter of the
  range into the bottom quarter is a wrap-around, any other decrease a PLC restart (the new raw value
  counts as production since the restart, and a COUNTER_RESET event). Production is never negative.
  BAD/STALE counter readings never move the baseline.
* **Inventory** readings have the SKU as asset and one of the signals ``on_hand``, ``in_transit``
  (quantity) and ``eta`` (unix seconds, 0 = none). Decreases of ``on_hand`` add to
  ``consumed_total``, increases to ``received_total``; an increase of ``on_hand`` while ``in_transit``
  drops in the same batch is a SHIPMENT_ARRIVED event. Without an ETA a shipment is assumed to
  arrive after the item's nominal lead time from when it was first seen. The reducer owns only that
  PLC-reported shipment (empty ``id``); shipments from the orders/shipments feed pass through.
* A BAD/STALE reading without a value keeps the last known value, marked with its quality.
* Readings for an unknown site, asset or signal, or older than the latest sample of their signal,
  are not applied and not silently dropped: ``apply_detailed`` returns them counted per
  (site, asset, signal, reason) in ``ApplyResult.ignored`` for the collector to log once per key.

After the readings are folded in, the alarm rules are evaluated (``twin.alarms.evaluate``).

Modules: ``reducer`` (batches, sites, the fleet), ``machines`` (status, counters, staleness),
``inventory`` (stock), ``ignored`` (what could not be applied).
"""

from __future__ import annotations

from twin.alarms import RECENT_EVENTS
from twin.live.ignored import IgnoredReadings
from twin.live.inventory import INVENTORY_SIGNALS
from twin.live.machines import status_known_since
from twin.live.reducer import ApplyResult, apply, apply_detailed, apply_site, initial_site_state, initial_state, refresh

__all__ = [
    "INVENTORY_SIGNALS",
    "RECENT_EVENTS",
    "ApplyResult",
    "IgnoredReadings",
    "apply",
    "apply_detailed",
    "apply_site",
    "initial_site_state",
    "initial_state",
    "refresh",
    "status_known_since",
]
