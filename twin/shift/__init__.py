"""The shift's story as numbers: ``build_report`` of one shift of one site (``report``).

Rendering (HTML with inline SVG charts, PDF, CSV) is the caller's: ``app.report``.
"""

from __future__ import annotations

from twin.shift.report import (
    MachineRow,
    NextShift,
    OrderRow,
    ShiftInputs,
    ShiftReport,
    ShiftWindow,
    StockRow,
    build_report,
    plan_units,
    shift_windows,
    suppression_intervals,
)

__all__ = [
    "MachineRow",
    "NextShift",
    "OrderRow",
    "ShiftInputs",
    "ShiftReport",
    "ShiftWindow",
    "StockRow",
    "build_report",
    "plan_units",
    "shift_windows",
    "suppression_intervals",
]
