"""connectors.linkhealth, the link health of the Modbus poller, the InfluxDB feed and store-and-forward: pure."""

from __future__ import annotations

import random

from connectors.linkhealth import Backoff, Change, LinkHealth, PartFaults
from twin.readings import Quality


def test_backoff_without_jitter_doubles_from_the_minimum_up_to_the_maximum() -> None:
    b = Backoff(1.0, 60.0)
    assert [b.next_delay() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    b.reset()
    assert b.attempts == 0 and b.next_delay() == 1.0


def test_backoff_with_jitter_draws_from_the_upper_half_of_a_doubling_window() -> None:
    # the n-th delay is uniform in [u/2, u], u = min(max, min * 2**n): never below the minimum
    b = Backoff(0.1, 1.0, jitter=True, rng=random.Random(3))
    rng = random.Random(3)
    for n in range(1, 12):
        upper = min(1.0, 0.1 * 2.0 ** n)
        assert b.next_delay() == upper * rng.uniform(0.5, 1.0)
        assert b.attempts == n


def test_a_link_goes_stale_at_once_and_bad_after_bad_after_s_whatever_the_retries() -> None:
    link = LinkHealth(bad_after_s=10.0, backoff=Backoff(1.0, 4.0))
    assert link.up and link.may_try(0.0)
    assert link.fail(100.0, "refused") is Change.DOWN
    assert link.quality(100.0) is Quality.STALE and link.retry_at == 101.0 and not link.may_try(100.5)
    assert link.fail(101.0, "refused") is Change.NONE  # the same failure again: nothing to log
    assert link.fail(103.0, "timeout") is Change.REASON
    assert link.quality(109.9) is Quality.STALE and link.quality(110.0) is Quality.BAD
    assert link.attempts == 3 and link.delay == 4.0
    assert link.answered(112.5) == 12.5  # how long it was down, once
    assert link.up and link.attempts == 0 and link.answered(113.0) is None


def test_a_failure_without_backoff_allows_a_retry_at_once() -> None:
    link = LinkHealth(bad_after_s=10.0, backoff=Backoff(1.0, 4.0))
    assert link.fail(5.0, "connection lost", back_off=False) is Change.DOWN
    assert link.may_try(5.0) and link.attempts == 0


def test_part_faults_are_news_once_per_change_and_once_when_they_end() -> None:
    faults: PartFaults[str, str] = PartFaults()
    assert not faults
    assert faults.failed("a", "exception 2") and not faults.failed("a", "exception 2")
    assert faults.failed("a", "exception 4") and faults
    assert faults.cleared("a") and not faults.cleared("a") and not faults
