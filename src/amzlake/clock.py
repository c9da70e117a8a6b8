"""A clock whose virtual time runs `scale` times faster than real time (scale 1: the real clock).

Processing delays of minutes to hours and rate limits of one call a minute play out in seconds when
the emulator runs with a large time scale. Tests can also jump the clock forward.
"""

from __future__ import annotations

import asyncio
import threading
import time
from datetime import UTC, datetime, timedelta


class ScaledClock:
    """Virtual UTC time: `start` plus real elapsed time times `scale`, plus any manual jumps."""

    def __init__(self, scale: float = 1.0, start: datetime | None = None) -> None:
        if scale <= 0:
            raise ValueError(f"time scale must be positive, got {scale}")
        self.scale = scale
        start = start or datetime.now(UTC)
        if start.tzinfo is None:
            raise ValueError("clock start must be timezone-aware")
        self._start = start.astimezone(UTC)
        self._real0 = time.monotonic()
        self._jump = 0.0
        self._lock = threading.Lock()

    def elapsed(self) -> float:
        """Virtual seconds since the clock started."""
        with self._lock:
            return (time.monotonic() - self._real0) * self.scale + self._jump

    def now(self) -> datetime:
        """The current virtual time, timezone-aware UTC."""
        return self._start + timedelta(seconds=self.elapsed())

    def advance(self, seconds: float) -> datetime:
        """Jump virtual time forward by `seconds`; returns the new now."""
        if seconds < 0:
            raise ValueError("the clock only moves forward")
        with self._lock:
            self._jump += seconds
        return self.now()

    def real_seconds(self, virtual_seconds: float) -> float:
        """How long `virtual_seconds` take in real time."""
        return max(0.0, virtual_seconds) / self.scale

    async def sleep(self, virtual_seconds: float) -> None:
        """Sleep for `virtual_seconds` of virtual time."""
        await asyncio.sleep(self.real_seconds(virtual_seconds))
