"""Exceptions raised by the twin and its adapters.

Exception tree::

    TwinError                  base of everything this product raises on purpose
    ├── ConfigError            a configuration or scenario file is invalid; lists every Problem
    ├── HistorianError         the historian could not store or read (adapters translate their
    │                          library's exceptions into this, ``raise ... from exc``)
    ├── AlarmError             an alarm operation is not possible (unknown key, no user, acked twice)
    ├── SourceError            a data source (PLC, feed) could not be reached at all
    └── SimulationError        a what-if could not be built or run from the given inputs

Faults of the field (a PLC that times out, answers garbage) are *not* exceptions: they become
readings with quality BAD or STALE (see ``twin.readings``).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["AlarmError", "ConfigError", "HistorianError", "Problem", "SimulationError", "SourceError", "TwinError"]


class TwinError(Exception):
    """Base class of every error this product raises on purpose."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Problem:
    """One thing wrong with an input, located by its dotted path.

    >>> str(Problem(path="sites[0].timezone", message="unknown time zone", got="Mars/Base"))
    "sites[0].timezone: unknown time zone (got 'Mars/Base')"
    """

    path: str
    message: str
    got: object = None
    has_got: bool = True

    def __str__(self) -> str:
        where = self.path if len(self.path) <= _MAX_QUOTE else self.path[:_MAX_QUOTE] + "..."
        where = where or "(top level)"
        if not self.has_got:
            return f"{where}: {self.message}"
        return f"{where}: {self.message} (got {_quote(self.got)})"


_MAX_QUOTE = 200  # characters of a bad value or a path quoted in a message


def _quote(value: object) -> str:
    """``repr(value)``, bounded: a file from outside may hold a 5,000-digit number or keys 5,000 deep.

    >>> _quote(16 ** 5000), _quote("x" * 300)[-6:]
    ('an integer of 6021 digits', 'xxx...')
    """
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() > 64:
        bits = value.bit_length()  # str() of over 4,300 digits raises ValueError: count the digits from the bits
        digits = len(str(abs(value))) if bits < 14_000 else int(bits * 0.30103) + 1
        return f"an integer of {digits} digits"
    try:
        text = repr(value)
    except (RecursionError, ValueError):  # nested thousands deep, or an int over the conversion limit
        return f"a {type(value).__name__} too large to show"
    return text if len(text) <= _MAX_QUOTE else text[:_MAX_QUOTE] + "..."


class ConfigError(TwinError):
    """An input file (plant configuration, scenario) is invalid.

    The message lists every problem at once, one per line, as ``file: path.to.key: what (got X)``.
    """

    def __init__(self, source: str, problems: Iterable[Problem]) -> None:
        self.source = source
        self.problems: tuple[Problem, ...] = tuple(problems)
        lines = [f"{source}: {p}" for p in self.problems] or [f"{source}: invalid"]
        header = f"{len(self.problems)} problem(s) in {source}:" if len(self.problems) > 1 else ""
        super().__init__("\n".join([header, *lines]) if header else lines[0])


class AlarmError(TwinError):
    """An alarm operation is not possible (unknown alarm key, missing user, already acknowledged)."""


class HistorianError(TwinError):
    """The historian could not store or read data."""


class SourceError(TwinError):
    """A data source (a PLC, an InfluxDB feed, the collector's endpoint) could not be reached or answered wrongly."""


class SimulationError(TwinError):
    """A what-if simulation could not be built or run from its inputs."""
