"""The quiet-period debounce, on a scaled clock (no wall-time assertions)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from amzlake.clock import ScaledClock
from amzlake.transform.debounce import Debouncer

START = datetime(2026, 11, 20, tzinfo=UTC)


def test_fires_once_after_the_last_arrival_plus_the_quiet_period() -> None:
    async def go() -> tuple[float, list[float]]:
        clock = ScaledClock(scale=1000.0, start=START)  # 30 s quiet = 30 ms real
        debouncer = Debouncer(30.0, clock)
        fired: list[float] = []

        async def waiter() -> None:
            while await debouncer.wait():
                fired.append(clock.elapsed())

        task = asyncio.create_task(waiter())
        arrivals = []
        for _ in range(4):  # a burst: one every 10 virtual seconds
            debouncer.announce()
            arrivals.append(clock.elapsed())
            await clock.sleep(10)
        await clock.sleep(60)
        debouncer.close()
        await task
        return arrivals[-1], fired

    last, fired = asyncio.run(go())
    assert len(fired) == 1  # the burst became one transform
    assert fired[0] - last >= 30.0


def test_close_fires_pending_news_at_once_and_then_stops() -> None:
    async def go() -> list[bool]:
        clock = ScaledClock(scale=1.0, start=START)
        debouncer = Debouncer(3600.0, clock)  # an hour: only close can end the wait in time
        debouncer.announce()
        debouncer.close()
        return [await debouncer.wait(), await debouncer.wait()]

    assert asyncio.run(asyncio.wait_for(go(), timeout=5)) == [True, False]


def test_a_late_arrival_starts_another_transform() -> None:
    async def go() -> int:
        clock = ScaledClock(scale=1000.0, start=START)
        debouncer = Debouncer(20.0, clock)
        count = 0

        async def waiter() -> None:
            nonlocal count
            while await debouncer.wait():
                count += 1

        task = asyncio.create_task(waiter())
        debouncer.announce()
        await clock.sleep(50)
        debouncer.announce()
        await clock.sleep(50)
        debouncer.close()
        await task
        return count

    assert asyncio.run(go()) == 2
