"""Wall-clock time, the one way every part of the product asks for it (injectable as a ``Clock``)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

__all__ = ["Clock", "utc_now"]

Clock = Callable[[], datetime]  # the current time, timezone-aware UTC; tests pass a fixed or stepped one


def utc_now() -> datetime:
    """The current time, timezone-aware UTC."""
    return datetime.now(UTC)
