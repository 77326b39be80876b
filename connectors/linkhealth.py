"""Link health, the one mechanism every connection of the product uses: backoff, STALE → BAD, log on change.

A link (a Modbus device, an InfluxDB feed, store-and-forward's sink) is *up* until a failure takes
it *down*; while it is down its signals are STALE, and BAD once it has been down ``bad_after_s``
(whatever retries happen in between). Each retry waits a ``Backoff``. Its owner logs only the
transitions ``LinkHealth`` reports (went down, another reason while down, up again), never every
failed attempt, each in its own words: the log texts belong to the connector. ``PartFaults`` does
the same for the parts of a link that works (a block of registers, one measurement's query): each
part's failure is logged when it starts or changes and when it ends.

Times are plain seconds from whatever monotonic clock the owner uses (the event loop's time, or
``time.monotonic``), passed in: no I/O and no clock here, so it is tested with numbers.

Usage::

    link = LinkHealth(bad_after_s=30.0, backoff=Backoff(0.5, 30.0, jitter=True))
    if link.fail(now, "cannot connect") is Change.DOWN:
        log.warning("device down: %s", link.reason)
    quality = link.quality(now)           # STALE, then BAD
    if (downtime := link.answered(now)) is not None:
        log.warning("answering again after %.1f s", downtime)
"""

from __future__ import annotations

import enum
import random
from typing import TypeVar

from twin.readings import Quality

__all__ = ["Backoff", "Change", "LinkHealth", "PartFaults"]

K = TypeVar("K")
V = TypeVar("V")

_MAX_DOUBLINGS = 30  # 2**30 times the minimum is past any maximum anyone configures; avoids overflow


class Backoff:
    """Exponential backoff between ``min_s`` and ``max_s``, with or without jitter; ``reset`` after a success.

    ``next_delay()`` counts one more failed attempt and returns how long to wait before the next:

    * ``jitter=False``: ``min_s``, ``2 min_s``, ``4 min_s`` ... capped at ``max_s`` (store-and-forward:
      one sender, nothing to spread out);
    * ``jitter=True``: the n-th delay is drawn uniformly from ``[u/2, u]`` with ``u = min(max_s,
      min_s · 2ⁿ)`` ("equal jitter"): never below ``min_s``, and many devices that failed together
      do not all retry in the same instant. ``rng`` makes the draws reproducible.
    """

    __slots__ = ("_rng", "attempts", "jitter", "max_s", "min_s")

    def __init__(self, min_s: float, max_s: float, *, jitter: bool = False, rng: random.Random | None = None) -> None:
        self.min_s, self.max_s, self.jitter = min_s, max_s, jitter
        self._rng = rng or random.Random()
        self.attempts = 0  # failed attempts since the last reset

    def next_delay(self) -> float:
        """One more failed attempt: the seconds to wait before the next one."""
        self.attempts += 1
        if self.jitter:
            upper: float = min(self.max_s, self.min_s * 2.0 ** min(self.attempts, _MAX_DOUBLINGS))
            return upper * self._rng.uniform(0.5, 1.0)
        return min(self.max_s, self.min_s * 2.0 ** min(self.attempts - 1, _MAX_DOUBLINGS))

    def reset(self) -> None:
        """The link works: the next failure starts again from the shortest delay."""
        self.attempts = 0


class Change(enum.Enum):
    """What a failure changed, so that its owner logs it once.

    ``DOWN``: it was up; ``REASON``: down, for another reason now; ``NONE``: the same failure again.
    """

    DOWN = "down"
    REASON = "reason"
    NONE = "none"


class LinkHealth:
    """The health of one link: up or down since when and why, when to try again, what its signals show.

    ``down_since`` is the time of the first failure since the link last worked (None while up);
    ``reason`` the latest failure's; ``retry_at`` when the next attempt is due (set it to 0 to retry
    at once) and ``delay`` the backoff that set it. ``bad_after_s`` is how long it may be down before
    its signals go from STALE to BAD.
    """

    __slots__ = ("backoff", "bad_after_s", "delay", "down_since", "reason", "retry_at")

    def __init__(self, *, bad_after_s: float, backoff: Backoff) -> None:
        self.bad_after_s = bad_after_s
        self.backoff = backoff
        self.down_since: float | None = None
        self.reason = ""
        self.retry_at = 0.0
        self.delay = 0.0

    @property
    def up(self) -> bool:
        return self.down_since is None

    @property
    def attempts(self) -> int:
        """Failed attempts in a row that were backed off."""
        return self.backoff.attempts

    def may_try(self, now: float) -> bool:
        """Whether the backoff after the last failure has passed."""
        return now >= self.retry_at

    def fail(self, now: float, reason: str, *, back_off: bool = True) -> Change:
        """A failure at ``now``: the link is down; the next attempt waits a backoff (or none: ``back_off=False``).

        Returns what changed, for the owner to log (``Change.DOWN`` once per outage).
        """
        self.delay = self.backoff.next_delay() if back_off else 0.0
        self.retry_at = now + self.delay
        if self.down_since is None:
            self.down_since = now
            change = Change.DOWN
        else:
            change = Change.NONE if reason == self.reason else Change.REASON
        self.reason = reason
        return change

    def answered(self, now: float) -> float | None:
        """The link works at ``now``: up again, backoff reset. Returns how long it was down, None if it was up."""
        since = self.down_since
        self.down_since = None
        self.backoff.reset()
        return None if since is None else now - since

    def quality(self, now: float) -> Quality:
        """What the link's signals are while it gives nothing: STALE, BAD once down ``bad_after_s``."""
        down = now - (self.down_since if self.down_since is not None else now)
        return Quality.BAD if down >= self.bad_after_s else Quality.STALE


class PartFaults(dict[K, V]):
    """The failing parts of a working link, part -> its failure; says when a failure is news, to log it once.

    A ``dict`` (its truth value is the C one: the hot path asks "any failures?" for free).
    """

    def failed(self, part: K, fault: V) -> bool:
        """``part`` fails with ``fault``: True when that is new (first failure, or another one than before)."""
        if self.get(part) == fault:
            return False
        self[part] = fault
        return True

    def cleared(self, part: K) -> bool:
        """``part`` works: True when it was failing (log that it works again)."""
        return self.pop(part, None) is not None
