"""The rate budget Lambda invocations share (aws/rate_budget.py), on a moto server's DynamoDB:
tokens are never spent twice, waits are bounded, and clients in separate event loops (as
separate invocations are) stay within Amazon's limit together where each alone would not."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta

import boto3
import pytest
from pydantic import SecretStr

from amzlake.aws.rate_budget import PARTITION_KEY, DynamoBudget
from amzlake.catalog.limits import RateLimit
from amzlake.errors import ThrottledError
from amzlake.slices import VendorReportSpec
from amzlake.sources.hosts import emulator_hosts
from amzlake.sources.http import RetryPolicy, ScaledTimer
from amzlake.sources.lwa import LwaTokenProvider
from amzlake.sources.spapi import SpApiClient
from tests.conftest import FIXED_NOW, RunningEmulator


@pytest.fixture
def table(moto_server: str, aws_env: None, monkeypatch: pytest.MonkeyPatch) -> str:
    """A fresh rate-budget table on the moto server (as the stack makes it)."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_server)
    name = f"rate-{uuid.uuid4().hex[:10]}"
    boto3.client("dynamodb").create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        AttributeDefinitions=[{"AttributeName": PARTITION_KEY, "AttributeType": "S"}],
        KeySchema=[{"AttributeName": PARTITION_KEY, "KeyType": "HASH"}])
    return name


@dataclass
class FakeTime:
    """A wall clock that moves only when the budget sleeps; the sleeps are recorded."""

    now: float = 1_800_000_000.0
    sleeps: list[float] = field(default_factory=list)

    def wall(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def in_processes(count: int, work: Callable[[], Awaitable[None]], timeout: float) -> None:
    """Run `work` `count` times at once, each in its own thread and event loop, as separate
    Lambda invocations (processes) would; wait for all."""
    threads = [threading.Thread(target=lambda: asyncio.run(work())) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout)


def test_a_bucket_gives_its_burst_then_one_token_per_interval_and_drains(table: str) -> None:
    fake = FakeTime()
    budget = DynamoBudget(table, wall=fake.wall, sleep=fake.sleep, patience=100.0,
                          rng=random.Random(5))
    limit = RateLimit(0.5, 3)  # a token every 2 s, 3 at once

    async def go() -> list[float]:
        return [await budget.take("spapi|A1|getReport", limit) for _ in range(5)]

    waits = asyncio.run(go())
    assert waits[:3] == [0.0, 0.0, 0.0]
    # Then a token every 2 s: the 4th at 2 s, the 5th at 4 s (each wait may overshoot by a
    # quarter interval of jitter, which the next wait then has less of).
    assert 2.0 <= waits[3] <= 2.5 and 4.0 <= waits[3] + waits[4] <= 4.5, waits
    fake.now += 10.0  # idle: the bucket fills up to its burst again, not beyond
    assert asyncio.run(go())[:3] == [0.0, 0.0, 0.0]
    asyncio.run(budget.drain("spapi|A1|getReport"))
    fake.now += 1.0
    assert 1.0 <= asyncio.run(budget.take("spapi|A1|getReport", limit)) <= 1.5
    # Keys are separate buckets.
    assert asyncio.run(budget.take("spapi|A2|getReport", limit)) == 0.0


def test_a_wait_past_the_patience_is_a_throttled_error(table: str) -> None:
    fake = FakeTime()
    budget = DynamoBudget(table, wall=fake.wall, sleep=fake.sleep, patience=30.0)
    limit = RateLimit(0.0167, 1)  # createReport-like: one a minute

    async def go() -> None:
        await budget.take("spapi|A1|createReport", limit)
        await budget.take("spapi|A1|createReport", limit)

    with pytest.raises(ThrottledError, match=r"spapi\|A1\|createReport: the next token is") as e:
        asyncio.run(go())
    assert e.value.operation == "spapi.createReport"
    assert fake.sleeps == []  # refused at once rather than slept on


def test_concurrent_takers_never_spend_more_than_the_bucket_holds(table: str) -> None:
    """Six processes' worth of takers (each its own client and event loop) on one key for a
    second: at most burst + rate * elapsed tokens go out in all, whoever loses the races."""
    limit, takers, seconds = RateLimit(20.0, 5), 6, 1.0
    taken: list[float] = []
    lock = threading.Lock()
    start = time.time()

    async def taker() -> None:
        budget = DynamoBudget(table, patience=10.0)
        while time.time() - start < seconds:
            await budget.take("ads|P1|getAsyncReport", limit)
            with lock:
                taken.append(time.time())

    in_processes(takers, taker, timeout=60)
    inside = [t for t in taken if t - start <= seconds]
    elapsed = max(inside) - start
    assert len(inside) <= limit.burst + limit.rate * elapsed + 1, (len(inside), elapsed)
    assert len(inside) >= limit.burst + 1  # and it did hand tokens out while others waited


# ---- Clients of one account in separate event loops, against the emulator's limits -----------


SALES = VendorReportSpec.of("GET_VENDOR_SALES_REPORT", {
    "reportPeriod": "DAY", "distributorView": "MANUFACTURING", "sellingProgram": "RETAIL"})
END = (FIXED_NOW - timedelta(days=10)).date()


def _client(emu: RunningEmulator, budget: DynamoBudget | None) -> SpApiClient:
    vendor = emu.credentials["vendor"][0]
    hosts = emulator_hosts(emu.base_url, vendor["region"])
    lwa = emu.credentials["lwa"]
    timer = ScaledTimer(emu.state.clock.scale)
    tokens = LwaTokenProvider(hosts.spapi_lwa, lwa["client_id"], SecretStr(lwa["client_secret"]),
                              SecretStr(vendor["refresh_token"]), timer=timer)
    return SpApiClient(hosts.spapi, tokens, account=vendor["selling_partner_id"], timer=timer,
                       retry=RetryPolicy(max_attempts=12, base=0.5, cap=4.0), shared=budget)


def _fleet(emu: RunningEmulator, make_budget: Callable[[], DynamoBudget | None],
           invocations: int, calls: int) -> int:
    """`invocations` clients, each in its own thread and event loop, each asking getReport
    `calls` times at once; returns the 429s they got in all (every call must succeed)."""
    vendor = emu.credentials["vendor"][0]

    async def create() -> str:
        client = _client(emu, None)
        try:
            return await client.create_report(vendor["marketplace_id"], SALES, END, END)
        finally:
            await client.aclose()

    report_id = asyncio.run(create())
    throttled: list[int] = []

    async def invocation() -> None:
        client = _client(emu, make_budget())
        try:
            await asyncio.gather(*(client.get_report(report_id) for _ in range(calls)))
            throttled.append(int(client.http.stats()["spapi.getReport"].throttled))
        finally:
            await client.aclose()

    in_processes(invocations, invocation, timeout=120)
    assert len(throttled) == invocations  # every invocation got all its answers
    return sum(throttled)


def test_invocations_sharing_the_budget_stay_within_amazons_limit(
        make_emulator: Callable[..., RunningEmulator], table: str) -> None:
    # getReport: 2 calls a second, burst 15 (SP-API's documented limit, which the emulator
    # enforces); at time scale 10 that is 20 a real second. 6 invocations ask 8 times each.
    emu = make_emulator(time_scale=10.0, token_lifetime=10**7)
    scale = emu.state.clock.scale
    alone = _fleet(emu, lambda: None, invocations=6, calls=8)
    emu.state.clock.advance(60)  # Amazon's bucket fills up again
    shared = _fleet(emu, lambda: DynamoBudget(table, scale=scale, patience=600.0,
                                              sleep=ScaledTimer(scale).sleep),
                    invocations=6, calls=8)
    print(f"429s: {alone} with a budget per invocation, {shared} with one shared budget")
    # Each alone spends its own burst of 15: together they run into Amazon's bucket.
    assert alone >= 15
    # Sharing one bucket, they wait their turn instead (a 429 or so may come from our bucket
    # and Amazon's being out of phase by a network latency; each drains the shared bucket).
    assert shared <= 3, (alone, shared)
