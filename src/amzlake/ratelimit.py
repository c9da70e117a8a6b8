"""Token buckets on an injectable clock, shared by the emulator (to refuse) and clients (to wait)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from amzlake.catalog.limits import RateLimit

# A token short of 1 by float rounding only (a wait of (1 - t) / rate refills t to 0.99999...)
# counts as whole; else a waiter could sleep ever smaller slices of a second and never take it.
_WHOLE = 1.0 - 1e-9


@dataclass
class TokenBucket:
    """A bucket of `limit.burst` tokens refilled at `limit.rate` per second of `now()` time."""

    limit: RateLimit
    now: Callable[[], float]
    tokens: float = field(init=False)
    updated: float = field(init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.limit.burst)
        self.updated = self.now()

    def _refill(self) -> None:
        t = self.now()
        self.tokens = min(float(self.limit.burst), self.tokens + (t - self.updated) * self.limit.rate)
        self.updated = t

    def try_take(self) -> bool:
        """Take one token if there is one; returns whether the call may proceed."""
        self._refill()
        if self.tokens >= _WHOLE:
            self.tokens = max(0.0, self.tokens - 1.0)
            return True
        return False

    def wait_time(self) -> float:
        """Seconds (of `now()` time) until a token is available; 0 when one is."""
        self._refill()
        return 0.0 if self.tokens >= _WHOLE else (1.0 - self.tokens) / self.limit.rate


class BucketSet:
    """One token bucket per key, created on first use; thread-safe."""

    def __init__(self, now: Callable[[], float]) -> None:
        self._now = now
        self._buckets: dict[tuple[str, ...], TokenBucket] = {}
        self._lock = threading.Lock()

    def try_take(self, key: tuple[str, ...], limit: RateLimit) -> bool:
        """Charge one call to the bucket for `key`; returns False when it is empty (throttle)."""
        with self._lock:
            bucket = self._buckets.get(key)
            if bucket is None or bucket.limit != limit:
                bucket = self._buckets[key] = TokenBucket(limit, self._now)
            return bucket.try_take()


class SharedBudget(Protocol):
    """Token buckets that several processes draw from at once, one per key.

    In one process the clients' own buckets pace every call. On AWS each Lambda invocation is a
    process of its own, and a Map runs many at once against the same (account, operation): their
    calls must come out of one budget, Amazon's (aws/rate_budget.py keeps it in DynamoDB).
    """

    async def take(self, key: str, limit: RateLimit) -> float:
        """Wait for a token of `key`'s bucket (refilled at `limit`) and take it; returns the
        seconds waited. Raises ThrottledError rather than wait past the budget's patience."""
        ...

    async def drain(self, key: str) -> None:
        """Empty `key`'s bucket: Amazon answered 429, so every process waits a token's time."""
        ...
