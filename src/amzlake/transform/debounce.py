"""The quiet-period debounce of guidance step 4: transform once raw documents stop arriving.

Downloads announce themselves; the transform starts when no announcement has come for the quiet
period, then takes every raw document not yet curated. A burst of a hundred downloads so becomes one
transform, and a report that lands late starts another.
"""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Protocol


class Clock(Protocol):
    """Aware `now()` and `sleep(seconds)` on the same (possibly scaled) clock."""

    def now(self) -> datetime: ...

    async def sleep(self, virtual_seconds: float) -> None: ...


class Debouncer:
    """Fires once there is news and none has come for `quiet` seconds of `clock` time."""

    def __init__(self, quiet: float, clock: Clock) -> None:
        if quiet < 0:
            raise ValueError("the quiet period cannot be negative")
        self.quiet = quiet
        self.clock = clock
        self._last: datetime | None = None
        self._pending = False
        self._closed = False
        self._wake = asyncio.Event()

    def announce(self) -> None:
        """A new raw document has arrived."""
        self._last = self.clock.now()
        self._pending = True
        self._wake.set()

    def close(self) -> None:
        """No more announcements will come: a waiter with pending news fires at once."""
        self._closed = True
        self._wake.set()

    @property
    def pending(self) -> bool:
        return self._pending

    async def wait(self) -> bool:
        """True when it is time to transform; False once closed with nothing pending."""
        while True:
            if not self._pending:
                if self._closed:
                    return False
                self._wake.clear()
                await self._wake.wait()
                continue
            if self._closed:
                self._pending = False
                return True
            assert self._last is not None
            remaining = self.quiet - (self.clock.now() - self._last).total_seconds()
            if remaining <= 0:
                self._pending = False
                return True
            self._wake.clear()
            sleeper = asyncio.ensure_future(self.clock.sleep(remaining))
            woken = asyncio.ensure_future(self._wake.wait())
            # A close cuts the wait short; a new announcement just moves the deadline.
            await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            for task in (sleeper, woken):
                task.cancel()
