"""The Ads client against the emulator over HTTP: profiles, reports, 425, faults, token expiry."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
from collections.abc import Callable
from datetime import date
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from amzlake.errors import AuthError, NotFoundError, RequestTimeout, UnexpectedResponse
from amzlake.slices import AdsReportSpec
from amzlake.sources.ads import (
    CREATE_REQUEST_TYPE,
    CREATE_RESPONSE_TYPE,
    AdsClient,
    AdsCreated,
    AdsReport,
    AdsReportStatus,
    duplicate_report_id,
)
from amzlake.sources.hosts import emulator_hosts
from amzlake.sources.http import RetryPolicy, ScaledTimer, SystemTimer, Timeouts, Timer
from amzlake.sources.lwa import LwaTokenProvider
from tests.conftest import RunningEmulator

EmulatorFactory = Callable[..., RunningEmulator]

SPEC = AdsReportSpec(
    report_type_id="spCampaigns",
    ad_product="SPONSORED_PRODUCTS",
    group_by=("campaign",),
    columns=("date", "campaignId", "impressions", "clicks", "cost"),
)
START, END = date(2026, 11, 10), date(2026, 11, 16)
FAST_RETRY = RetryPolicy(max_attempts=6, base=1.0, cap=30.0, max_elapsed=600.0)


def _us_profile(emu: RunningEmulator) -> dict[str, Any]:
    return next(p for p in emu.credentials["ads"]["profiles"] if p["region"] == "NA")


def _client(emu: RunningEmulator, *, lwa_timer: Timer | None = None,
            timeouts: Timeouts | None = None, retry: RetryPolicy | None = None,
            client_secret: str | None = None) -> tuple[AdsClient, LwaTokenProvider]:
    """A client on the emulator's NA host, paced on the emulator's virtual time."""
    hosts = emulator_hosts(emu.base_url, "NA")
    timer = ScaledTimer(emu.state.clock.scale)
    lwa = emu.credentials["lwa"]
    tokens = LwaTokenProvider(
        hosts.ads_lwa, lwa["client_id"], SecretStr(client_secret or lwa["client_secret"]),
        SecretStr(emu.credentials["ads"]["refresh_token"]), timer=lwa_timer or timer,
    )
    client = AdsClient(hosts.ads, lwa["client_id"], tokens, timer=timer,
                       retry=retry or FAST_RETRY, timeouts=timeouts)
    return client, tokens


async def _close(client: AdsClient, tokens: LwaTokenProvider) -> None:
    await client.aclose()
    await tokens.aclose()


async def _wait(client: AdsClient, profile_id: int, report_id: str) -> AdsReport:
    for _ in range(600):
        report = await client.get_report(profile_id, report_id)
        if report.done:
            return report
        await asyncio.sleep(0.02)
    raise AssertionError(f"report {report_id} did not finish")


def _calls(emu: RunningEmulator) -> dict[str, Any]:
    return emu.client.get("/_emulator/calls").json()


def test_profiles_of_the_region(emulator: RunningEmulator) -> None:
    client, tokens = _client(emulator)

    async def go() -> list[Any]:
        try:
            return await client.list_profiles()
        finally:
            await _close(client, tokens)

    profiles = asyncio.run(go())
    expected = {p["profile_id"]: p for p in emulator.credentials["ads"]["profiles"]
                if p["region"] == "NA"}
    assert {p.profile_id for p in profiles} == set(expected)
    for p in profiles:
        assert p.timezone == expected[p.profile_id]["timezone"]
        assert p.currency_code == expected[p.profile_id]["currency_code"]
        assert p.marketplace_id


def test_create_poll_and_download_one_report(emulator: RunningEmulator) -> None:
    profile_id = _us_profile(emulator)["profile_id"]
    client, tokens = _client(emulator)

    async def go() -> tuple[AdsCreated, AdsReport, bytes]:
        try:
            created = await client.create_report(profile_id, SPEC, START, END, name="amzlake test")
            report = await _wait(client, profile_id, created.report_id)
            assert report.url is not None
            data = b"".join([c async for c in client.download(report.url)])
            return created, report, data
        finally:
            await _close(client, tokens)

    created, report, data = asyncio.run(go())
    assert not created.duplicate and created.report is not None
    assert created.report.status is AdsReportStatus.PENDING
    assert created.report.configuration["reportTypeId"] == "spCampaigns"
    assert report.status is AdsReportStatus.COMPLETED
    assert (report.start_date, report.end_date) == ("2026-11-10", "2026-11-16")
    # The bytes are the document exactly as the emulator spooled it: gzip, not decoded.
    truth = emulator.client.get(f"/_emulator/truth/ads/{created.report_id}").json()
    assert report.file_size == len(data) == truth["document"]["size"]
    assert hashlib.sha256(data).hexdigest() == truth["document"]["sha256"]
    rows = json.loads(gzip.decompress(data))
    assert len(rows) == truth["truth"]["rows"] > 0
    assert set(rows[0]) == set(SPEC.columns)
    calls = _calls(emulator)
    assert calls["calls"]["ads.createAsyncReport"] == 1
    assert calls["calls"]["ads.download"] == 1


def test_a_duplicate_create_re_attaches_to_the_live_report(make_emulator: EmulatorFactory) -> None:
    # The first report never leaves the queue, so the repeat is surely a 425.
    emu = make_emulator(faults=[{"kind": "stuck", "operation": "ads.createAsyncReport",
                                 "times": 1}])
    profile_id = _us_profile(emu)["profile_id"]
    client, tokens = _client(emu)

    async def go() -> tuple[AdsCreated, AdsCreated, AdsReport]:
        try:
            first = await client.create_report(profile_id, SPEC, START, END)
            again = await client.create_report(profile_id, SPEC, START, END)
            polled = await client.get_report(profile_id, again.report_id)
            await client.delete_report(profile_id, first.report_id)
            with pytest.raises(NotFoundError):
                await client.get_report(profile_id, first.report_id)
            return first, again, polled
        finally:
            await _close(client, tokens)

    first, again, polled = asyncio.run(go())
    assert again == AdsCreated(first.report_id, True, None)
    assert polled.status is AdsReportStatus.PENDING
    calls = _calls(emu)
    assert calls["calls"]["ads.createAsyncReport"] == 2
    assert calls["distinct_requests"] == 1 and calls["duplicate_creates"] == 0


def test_a_429_storm_on_create_is_ridden_out_with_one_create(make_emulator: EmulatorFactory
                                                             ) -> None:
    emu = make_emulator(faults=[{"kind": "throttle", "operation": "ads.createAsyncReport",
                                 "times": 3}])
    profile_id = _us_profile(emu)["profile_id"]
    client, tokens = _client(emu)

    async def go() -> AdsCreated:
        try:
            return await client.create_report(profile_id, SPEC, START, END)
        finally:
            await _close(client, tokens)

    created = asyncio.run(go())
    assert not created.duplicate
    stats = client.http.stats()["ads.createAsyncReport"]
    assert (stats.calls, stats.throttled, stats.retries) == (4, 3, 3)
    calls = _calls(emu)
    assert calls["calls"]["ads.createAsyncReport"] == 4
    assert calls["distinct_requests"] == 1 and calls["duplicate_creates"] == 0
    assert calls["creates"][0]["count"] == 1


def test_server_errors_on_polling_are_retried(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "server_error", "operation": "ads.getAsyncReport",
                                 "status": 500, "times": 2}])
    profile_id = _us_profile(emu)["profile_id"]
    client, tokens = _client(emu)

    async def go() -> AdsReport:
        try:
            created = await client.create_report(profile_id, SPEC, START, END)
            return await _wait(client, profile_id, created.report_id)
        finally:
            await _close(client, tokens)

    assert asyncio.run(go()).status is AdsReportStatus.COMPLETED
    assert client.http.stats()["ads.getAsyncReport"].server_errors == 2


def test_token_expiry_mid_run_costs_one_refresh(make_emulator: EmulatorFactory) -> None:
    # Only the first token is short-lived; later ones outlast the test whatever the time scale.
    emu = make_emulator(token_lifetime=1e7,
                        faults=[{"kind": "token_expiry", "seconds": 600, "times": 1}])
    # LWA on real time: the client believes its token is good, the emulator says it expired.
    client, tokens = _client(emu, lwa_timer=SystemTimer())

    async def go() -> None:
        try:
            await client.list_profiles()
            emu.client.post("/_emulator/clock/advance", params={"seconds": 601})
            await client.list_profiles()
            await client.list_profiles()
        finally:
            await _close(client, tokens)

    asyncio.run(go())
    assert tokens.fetches == 2
    stats = client.http.stats()["ads.listProfiles"]
    assert (stats.calls, stats.refreshes) == (4, 1)
    assert _calls(emu)["calls"]["lwa.token"] == 2


def test_a_hanging_answer_times_out_after_the_configured_timeout(
    make_emulator: EmulatorFactory,
) -> None:
    emu = make_emulator(faults=[{"kind": "hang", "operation": "ads.listProfiles", "seconds": 5}])
    timeouts = Timeouts(connect=2.0, read=0.3, write=2.0, pool=2.0)
    client, tokens = _client(emu, timeouts=timeouts,
                             retry=RetryPolicy(max_attempts=2, base=1.0, cap=1.0))

    async def go() -> None:
        try:
            await client.list_profiles()
        finally:
            await _close(client, tokens)

    with pytest.raises(RequestTimeout) as info:
        asyncio.run(go())
    assert "ads.listProfiles: timed out (ReadTimeout" in str(info.value)
    stats = client.http.stats()["ads.listProfiles"]
    assert (stats.calls, stats.transport_errors) == (2, 2)


def test_a_failed_report_carries_its_reason(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "fatal", "operation": "ads.createAsyncReport",
                                 "reason": "Injected failure"}])
    profile_id = _us_profile(emu)["profile_id"]
    client, tokens = _client(emu)

    async def go() -> AdsReport:
        try:
            created = await client.create_report(profile_id, SPEC, START, END)
            return await _wait(client, profile_id, created.report_id)
        finally:
            await _close(client, tokens)

    report = asyncio.run(go())
    assert report.status is AdsReportStatus.FAILED
    assert report.failure_reason == "Injected failure" and report.url is None


def test_wrong_client_secret_is_an_auth_error_without_the_secret(emulator: RunningEmulator
                                                                 ) -> None:
    wrong = "amzn1.oa2-cs.v1.not-the-right-secret"
    client, tokens = _client(emulator, client_secret=wrong)

    async def go() -> None:
        try:
            await client.list_profiles()
        finally:
            await _close(client, tokens)

    with pytest.raises(AuthError) as info:
        asyncio.run(go())
    text = str(info.value)
    assert "invalid_client" in text
    assert wrong not in text and emulator.credentials["ads"]["refresh_token"] not in text
    assert emulator.credentials["lwa"]["client_id"] not in text


# ---- shapes the emulator does not produce: scripted answers -------------------------------------


class _StaticTokens:
    async def token(self) -> SecretStr:
        return SecretStr("Atza|x")

    async def refresh(self, stale: SecretStr | None = None) -> SecretStr:
        return SecretStr("Atza|y")


def _scripted(handler: Callable[[httpx.Request], httpx.Response]) -> AdsClient:
    return AdsClient("https://ads.test", "client-1", _StaticTokens(), limits={},
                     transport=httpx.MockTransport(handler))


def test_requests_use_the_specs_content_types_and_headers() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={
            "reportId": "r-1", "status": "PENDING", "startDate": "2026-11-10",
            "endDate": "2026-11-16", "configuration": {}, "createdAt": "2026-11-20T15:00:00.000Z",
            "updatedAt": "2026-11-20T15:00:00.000Z"})

    client = _scripted(handler)
    spec = AdsReportSpec("spTargeting", "SPONSORED_PRODUCTS", ("targeting",),
                         ("date", "keywordId"), filters=(("keywordType", ("BROAD", "EXACT")),))
    asyncio.run(client.create_report(123456789012345678, spec, START, END))
    request = seen[0]
    assert request.headers["Content-Type"] == CREATE_REQUEST_TYPE
    assert request.headers["Accept"] == CREATE_RESPONSE_TYPE
    assert request.headers["Amazon-Advertising-API-Scope"] == "123456789012345678"
    assert request.headers["Amazon-Advertising-API-ClientId"] == "client-1"
    assert request.headers["Authorization"] == "Bearer Atza|x"
    assert json.loads(request.content) == {
        "startDate": "2026-11-10", "endDate": "2026-11-16",
        "configuration": {"adProduct": "SPONSORED_PRODUCTS", "reportTypeId": "spTargeting",
                          "groupBy": ["targeting"], "columns": ["date", "keywordId"],
                          "timeUnit": "DAILY", "format": "GZIP_JSON",
                          "filters": [{"field": "keywordType", "values": ["BROAD", "EXACT"]}]},
    }


def test_an_unknown_status_is_an_error_naming_it() -> None:
    client = _scripted(lambda r: httpx.Response(200, json={
        "reportId": "r-1", "status": "ARCHIVED", "startDate": "", "endDate": "",
        "configuration": {}}))
    with pytest.raises(UnexpectedResponse) as info:
        asyncio.run(client.get_report(1, "r-1"))
    assert "'ARCHIVED'" in str(info.value) and "ads.getAsyncReport" in str(info.value)


def test_the_duplicate_detail_names_the_report() -> None:
    assert duplicate_report_id(
        "The Request is a duplicate of : 0b5e1f3a-7c0d-4f5e-9d1a-2b3c4d5e6f70"
    ) == "0b5e1f3a-7c0d-4f5e-9d1a-2b3c4d5e6f70"
    assert duplicate_report_id("Too early") is None
