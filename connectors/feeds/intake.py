"""Intake: check parsed feed records against the fleet, commit them to the ledger, say what became of each.

Both the file drop and the HTTP endpoint go through :meth:`Intake.take`; the records it returns as
``to_apply`` are durable in the ledger and are then handed to the collector (``Collector.submit``).
``take`` blocks on SQLite: call it from a worker thread in async code.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field

from connectors.feeds.ledger import Ledger, Outcome
from connectors.feeds.parse import Line
from twin.business import BusinessRecord, validate
from twin.spec import FleetSpec

__all__ = ["Intake", "IntakeResult", "Reject"]

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True, kw_only=True)
class Reject:
    """A line (or array element) not applied: malformed, invalid for the fleet, conflicting, or late."""

    line: int
    reason: str
    raw: str
    late: bool = False


@dataclass(slots=True, kw_only=True)
class IntakeResult:
    """What became of a batch: counts, the rejected and late lines, and the records to apply."""

    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: list[Reject] = field(default_factory=list)  # malformed, invalid or conflicting
    late_lines: list[Reject] = field(default_factory=list)
    to_apply: list[BusinessRecord] = field(default_factory=list)


class Intake:
    """Validate and commit feed records for ``fleet`` into ``ledger``."""

    def __init__(self, fleet: FleetSpec, ledger: Ledger) -> None:
        self.fleet = fleet
        self.ledger = ledger

    def take(self, lines: Sequence[Line]) -> IntakeResult:
        result = IntakeResult()
        valid: list[Line] = []
        for ln in lines:
            if ln.record is None:
                result.rejected.append(Reject(line=ln.line, reason=ln.reason, raw=ln.raw))
                continue
            try:
                reason = validate(self.fleet, ln.record)
            except Exception as exc:  # a value no check foresaw: this record only, never the batch
                log.exception("%s %s: cannot be checked", ln.record.kind.value, ln.record.id)
                reason = f"cannot be checked: {type(exc).__name__}"
            if reason is not None:
                result.rejected.append(Reject(line=ln.line, reason=reason, raw=ln.raw))
                continue
            valid.append(ln)
        decisions = self.ledger.commit([ln.record for ln in valid if ln.record is not None])
        for ln, d in zip(valid, decisions, strict=True):
            if d.outcome is Outcome.ACCEPTED:
                result.accepted += 1
                result.to_apply.append(d.record)
            elif d.outcome is Outcome.DUPLICATE:
                result.duplicates += 1
            elif d.outcome is Outcome.LATE:
                result.late += 1
                result.late_lines.append(Reject(line=ln.line, reason=d.reason, raw=ln.raw, late=True))
                log.info("%s %s: late, %s", d.record.kind.value, d.record.id, d.reason)
            else:
                result.rejected.append(Reject(line=ln.line, reason=d.reason, raw=ln.raw))
        result.rejected.sort(key=lambda r: r.line)
        return result
