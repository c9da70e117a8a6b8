"""The scaled clock and the token buckets that enforce documented rate limits."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from amzlake.catalog.limits import SPAPI_REPORTS_LIMITS, RateLimit
from amzlake.clock import ScaledClock
from amzlake.ratelimit import BucketSet, TokenBucket


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0

    def __call__(self) -> float:
        return self.t


def test_clock_scales_and_jumps() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    clock = ScaledClock(scale=1000.0, start=start)
    assert clock.now() >= start
    assert clock.real_seconds(3600) == pytest.approx(3.6)
    before = clock.now()
    after = clock.advance(86_400)
    assert (after - before).total_seconds() >= 86_400
    with pytest.raises(ValueError):
        clock.advance(-1)
    with pytest.raises(ValueError):
        ScaledClock(scale=0)
    with pytest.raises(ValueError):
        ScaledClock(start=datetime(2026, 1, 1))


def test_bucket_allows_burst_then_refills_at_rate() -> None:
    now = FakeTime()
    bucket = TokenBucket(SPAPI_REPORTS_LIMITS["createReport"], now)
    assert sum(bucket.try_take() for _ in range(20)) == 15  # burst 15
    assert bucket.wait_time() == pytest.approx(1 / 0.0167, rel=1e-3)
    now.t += 59.0
    assert not bucket.try_take()
    now.t += 1.0
    assert bucket.try_take()


def test_bucket_set_keys_are_independent() -> None:
    now = FakeTime()
    buckets = BucketSet(now)
    limit = RateLimit(1.0, 2)
    assert [buckets.try_take(("a",), limit) for _ in range(3)] == [True, True, False]
    assert buckets.try_take(("b",), limit)
    now.t += 1.0
    assert buckets.try_take(("a",), limit)


def test_header_value_reads_like_amazon() -> None:
    assert SPAPI_REPORTS_LIMITS["createReport"].header_value() == "0.0167"
    assert SPAPI_REPORTS_LIMITS["getReport"].header_value() == "2"
