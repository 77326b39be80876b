"""Calibration: simulation parameters estimated from history, each with its sample size.

Reads the history of a window ``[t0, t1]`` through the :class:`twin.historian.HistorianReader` protocol and
returns a :class:`Calibration`: one :class:`ParamEstimate` per figure (value, sample size, whether it
came from history or fell back to the configuration because history was too short) and the
resulting :class:`twin.sim.params.SimParams`.

Where each figure comes from:

- **MTBF** = time RUNNING / failures (changes into FAULT), **MTTR** = mean length of FAULT spells
  that start and end in the window; statuses from STATUS_CHANGE events (``data["from"]/["to"]``),
  the status at ``t0`` from ``state_at``. Samples: failures, repairs.
- **Cycle time** = time RUNNING / cycles (:func:`cycle_count`): cycles from a JOB counter when the
  template has one; else, for a batch machine, the sample intervals in which its GOOD_COUNT or
  SCRAP_COUNT rose (a build adds its parts at once; a plant starts builds with whatever is queued, so
  parts / batch size undercounts partly filled builds; never fewer than that); parts / batch size
  only for batch-1 machines (one part a cycle; a counter that goes down restarted from zero).
  Samples: cycles (``MinSamples.cycles``). Machines with long cycles (a 4 h print: ~25 a week)
  never reach that: when a CYCLE_TIME signal measured at least ``MinSamples.measured_cycles``
  durations (its distinct values: the last cycle's duration) whose mean has a relative standard error
  of at most ``MinSamples.cycle_rel_se``, the mean duration is taken. The cycle's coefficient of
  variation from those durations, when there are as many as the cycles counted or ``cycles``.
- **Scrap rate** = scrap / (good + scrap). Samples: parts.
- **Demand** per (site, product): from the order records in history when there are any
  (ORDER_RECEIVED events in the window: exact counts; samples: orders). The rate is the maximum
  likelihood estimate of a Poisson process shaped by the configured weekday and hour factors: orders
  / the window's length weighted by those factors (orders / days when they are flat). Hour-of-day
  factors are estimated from at least 20 orders per hour of the day on average; weekday factors
  replace the configured ones only from at least 30 orders per weekday, every weekday seen twice
  (14 days), and counts per weekday that the configured profile does not explain (chi-square, 6
  degrees of freedom, at 1 %): a week of Poisson noise is not a profile. Without order records: from open orders
  seen in hourly snapshots (``state_at``); otherwise from stock draws of a SKU that only this
  product uses at the site (the one with the most decreases). A unit draws at its consuming step
  (one decrease a unit at a one-piece-flow station, one a build at a batch machine), so decreases
  count neither orders nor units: orders = quantity drawn / what an order draws (BOM x mean batch x
  the consumption factor found from units made, else 1), per second of the intervals that count;
  intervals in which stock rose (a delivery hides the draws) or that start with nothing on hand are
  left out. Samples: orders so estimated. The product's other own SKUs get a consumption factor from
  their draws against those orders. Hour-of-day factors (from the times of the decreases) are
  estimated only with at least 20 decreases per hour of the day on average. (:func:`stock_draws`
  also gives the Poisson MLE of the decrease rate, robust to two draws between two samples.)
- **Lead time** per (site, SKU): from shipment history (SHIPMENT_ARRIVED events with their
  ``planned_eta``): ordered = planned ETA - configured lead time, lead = arrival - ordered; the mean
  and standard deviation (days) of at least ``MinSamples.arrivals`` arrivals go to
  ``SimParams.lead_times``. Samples: arrivals.
- **Consumption** per (site, SKU): 1.0 means the bill of materials is right. When the machines of
  the step that draws the SKU (``twin.spec.consuming_step``) count their parts: stock drawn /
  (units made at that step x BOM quantity), units made = good + scrap (a scrapped unit draws
  again), shared among the products through that step by the units counted at a step only each
  of them passes through (by their order volume when one has no such step); stock drawn = the
  decreases of on hand plus, where it rose, the deliveries recorded then less the rise (a feed's
  arrivals, or the PLC's receipts without a feed: never both). Samples:
  decreases; standard error taken as value / sqrt(decreases). Otherwise (demand from stock draws):
  a product's other own SKUs against the orders estimated from the best-resolved one (see Demand).

Every figure from history also gets the law of its estimate (``Calibration.uncertainty``, see
``twin.sim.uncertainty``): MTBF and MTTR ``MEAN_TIME`` with n failures / repairs, cycle time
``NORMAL`` with n cycles and the cycle cv, scrap ``PROPORTION`` (scrap of parts), demand ``RATE``
with n orders, lead time ``NORMAL`` with n arrivals, consumption ``NORMAL`` with its standard error.
Figures that fell back to the configuration are not listed there: they get the prior widths.

History is read only within ``[t0, t1]``: nothing after the window's end is seen.

Modules: ``calibration`` (the run over a window), ``estimates`` (the result types), ``machines``,
``supply`` (lead times, consumption, stock draws) and ``demand``.
"""

from __future__ import annotations

from twin.calibrate.calibration import calibrate
from twin.calibrate.demand import order_arrivals
from twin.calibrate.estimates import Calibration, MinSamples, ParamEstimate, Source
from twin.calibrate.machines import MachineHistory, cycle_count, machine_history
from twin.calibrate.supply import Draws, shipment_lead_times, stock_draws

__all__ = ["Calibration", "Draws", "MachineHistory", "MinSamples", "ParamEstimate", "Source", "calibrate",
           "cycle_count", "machine_history", "order_arrivals", "shipment_lead_times", "stock_draws"]
