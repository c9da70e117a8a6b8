"""When the runner checks a report again: the growing interval, and the closer one of a run's tail."""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amzlake.ingest.runner import Runner, RunSettings, RunTail

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)
SETTINGS = RunSettings()  # poll_initial 30 s, factor 1.2, cap 300 s; tail: 5% of the age


def test_the_interval_grows_by_the_factor_up_to_the_cap() -> None:
    delays = [SETTINGS.poll_delay(n) for n in range(0, 20)]
    assert delays[:3] == pytest.approx([30.0, 36.0, 43.2])
    assert all(b >= a for a, b in itertools.pairwise(delays))
    assert max(delays) == 300.0 == delays[-1]


@given(first=st.floats(0, 20_000), finish_after=st.floats(0, 20_000))
def test_in_the_tail_a_finished_report_is_seen_within_5_percent_of_its_age(
        first: float, finish_after: float) -> None:
    # Checks from `first` on at the tail's intervals; the report finishes at age T.
    finish = first + finish_after
    age = first
    while age < finish:
        age += SETTINGS.tail_poll_delay(age)
    late = age - finish
    assert late <= min(SETTINGS.poll_max, max(SETTINGS.poll_initial, 0.05 * finish)) + 1e-6


@given(age=st.floats(0, 100_000))
def test_tail_checks_are_never_closer_than_the_first_interval_nor_rarer_than_the_cap(age: float) -> None:
    assert SETTINGS.poll_initial <= SETTINGS.tail_poll_delay(age) <= SETTINGS.poll_max


def test_the_tail_is_reached_when_at_most_its_size_of_slices_remain() -> None:
    tail = RunTail(6, 4)
    assert not tail.reached.is_set()
    tail.finished()
    assert not tail.reached.is_set()
    tail.finished()
    assert tail.reached.is_set() and tail.unfinished == 4
    assert RunTail(3, 4).reached.is_set()  # a small run is its own tail


class HeldClock:
    """Virtual time that moves only when a sleep ends; sleeps longer than `held` never end alone."""

    def __init__(self, held: float = 100.0) -> None:
        self.t = NOW
        self.held = held
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        return self.t

    async def sleep(self, virtual_seconds: float) -> None:
        self.sleeps.append(round(virtual_seconds, 6))
        if virtual_seconds > self.held:
            await asyncio.Event().wait()
        self.t += timedelta(seconds=virtual_seconds)


async def _settle() -> None:
    """Let the waiting task reach its sleep."""
    for _ in range(5):
        await asyncio.sleep(0)


def _runner(clock: HeldClock, unfinished: int) -> Runner:
    none: Any = None  # the wait touches neither the ledger, the store nor the clients
    runner = Runner(ledger=none, store=none, clients=none, clock=clock, accounts={}, owner="test")
    runner.tail = RunTail(unfinished, SETTINGS.tail_slices)
    return runner


def test_before_the_tail_the_wait_is_the_whole_interval() -> None:
    clock = HeldClock()
    runner = _runner(clock, unfinished=10)
    polled = clock.now()
    asyncio.run(runner.until_next_check(polled, NOW - timedelta(seconds=600),
                                        polled + timedelta(seconds=60)))
    assert clock.sleeps == [60.0]
    assert clock.now() == polled + timedelta(seconds=60)


def test_reaching_the_tail_wakes_a_long_wait_and_checks_at_the_tail_interval() -> None:
    clock = HeldClock()
    runner = _runner(clock, unfinished=5)
    polled = clock.now()
    started = polled - timedelta(seconds=1200)  # the report is 20 minutes old: tail interval 60 s

    async def scenario() -> None:
        waiting = asyncio.create_task(runner.until_next_check(
            polled, started, polled + timedelta(seconds=250)))
        await _settle()
        assert not waiting.done() and clock.sleeps == [250.0]
        clock.t += timedelta(seconds=20)  # another slice ends 20 s later: 4 remain
        runner.tail.finished()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
    assert clock.sleeps == [250.0, 40.0]
    assert clock.now() == polled + timedelta(seconds=60)


def test_in_the_tail_a_check_already_overdue_comes_at_once() -> None:
    clock = HeldClock()
    runner = _runner(clock, unfinished=5)
    polled = clock.now()

    async def scenario() -> None:
        waiting = asyncio.create_task(runner.until_next_check(
            polled, polled - timedelta(seconds=300), polled + timedelta(seconds=200)))
        await _settle()
        clock.t += timedelta(seconds=45)  # past the tail interval (30 s) when the tail arrives
        runner.tail.finished()
        await asyncio.wait_for(waiting, 5)

    asyncio.run(scenario())
    assert clock.sleeps == [200.0, 0.0]
    assert clock.now() == polled + timedelta(seconds=45)
