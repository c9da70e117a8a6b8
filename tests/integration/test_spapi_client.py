"""The SP-API Reports client against the emulator over HTTP: life cycle, paging, faults, tokens."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from amzlake.errors import OutcomeUnknown, RequestTimeout, UnexpectedResponse
from amzlake.slices import VendorReportSpec
from amzlake.sources.hosts import emulator_hosts
from amzlake.sources.http import RetryPolicy, ScaledTimer, SystemTimer, Timeouts, Timer
from amzlake.sources.lwa import LwaTokenProvider
from amzlake.sources.spapi import (
    ProcessingStatus,
    ReportDocument,
    SpApiClient,
    SpApiReport,
    data_times,
    user_agent,
)
from tests.conftest import FIXED_NOW, RunningEmulator

EmulatorFactory = Callable[..., RunningEmulator]

SALES = VendorReportSpec.of("GET_VENDOR_SALES_REPORT", {
    "reportPeriod": "DAY", "distributorView": "MANUFACTURING", "sellingProgram": "RETAIL"})
END = (FIXED_NOW - timedelta(days=10)).date()
START = END - timedelta(days=6)
FAST_RETRY = RetryPolicy(max_attempts=6, base=1.0, cap=30.0, max_elapsed=600.0)


def _client(emu: RunningEmulator, *, lwa_timer: Timer | None = None,
            timeouts: Timeouts | None = None, retry: RetryPolicy | None = None
            ) -> tuple[SpApiClient, LwaTokenProvider, str]:
    """A client for the first vendor on its region's host, paced on the emulator's time."""
    vendor = emu.credentials["vendor"][0]
    hosts = emulator_hosts(emu.base_url, vendor["region"])
    timer = ScaledTimer(emu.state.clock.scale)
    lwa = emu.credentials["lwa"]
    tokens = LwaTokenProvider(hosts.spapi_lwa, lwa["client_id"], SecretStr(lwa["client_secret"]),
                              SecretStr(vendor["refresh_token"]), timer=lwa_timer or timer)
    client = SpApiClient(hosts.spapi, tokens, account=vendor["selling_partner_id"], timer=timer,
                         retry=retry or FAST_RETRY, timeouts=timeouts)
    return client, tokens, vendor["marketplace_id"]


async def _close(client: SpApiClient, tokens: LwaTokenProvider) -> None:
    await client.aclose()
    await tokens.aclose()


async def _wait(client: SpApiClient, report_id: str) -> SpApiReport:
    for _ in range(600):
        report = await client.get_report(report_id)
        if report.processing_status.terminal:
            return report
        await asyncio.sleep(0.02)
    raise AssertionError(f"report {report_id} did not finish")


def _calls(emu: RunningEmulator) -> dict[str, Any]:
    return emu.client.get("/_emulator/calls").json()


def test_create_poll_document_and_download(emulator: RunningEmulator) -> None:
    client, tokens, marketplace = _client(emulator)

    async def go() -> tuple[str, SpApiReport, ReportDocument, bytes]:
        try:
            report_id = await client.create_report(marketplace, SALES, START, END)
            report = await _wait(client, report_id)
            assert report.report_document_id is not None
            document = await client.get_report_document(report.report_document_id)
            data = b"".join([c async for c in client.download(document.url)])
            return report_id, report, document, data
        finally:
            await _close(client, tokens)

    report_id, report, document, data = asyncio.run(go())
    assert report.processing_status is ProcessingStatus.DONE
    assert report.report_type == "GET_VENDOR_SALES_REPORT"
    assert report.marketplace_ids == (marketplace,)
    assert report.data_start_time is not None and report.data_start_time.date() == START
    assert document.compression == "GZIP"
    assert "?" not in repr(document)  # the presigned query stays out of reprs
    truth = emulator.client.get(f"/_emulator/truth/spapi/{report_id}").json()
    assert len(data) == truth["document"]["size"]
    assert hashlib.sha256(data).hexdigest() == truth["document"]["sha256"]
    body = json.loads(gzip.decompress(data))
    assert body["reportSpecification"]["reportType"] == "GET_VENDOR_SALES_REPORT"
    assert body["reportSpecification"]["dataStartTime"] == START.isoformat()
    assert body["reportSpecification"]["dataEndTime"] == END.isoformat()
    assert len(body["salesAggregate"]) == 7  # one row per day
    calls = _calls(emulator)["calls"]
    assert (calls["spapi.createReport"], calls["spapi.getReportDocument"],
            calls["spapi.download"]) == (1, 1, 1)


def test_a_real_time_report_takes_hour_aligned_utc_times(emulator: RunningEmulator) -> None:
    client, tokens, marketplace = _client(emulator)
    spec = VendorReportSpec.of("GET_VENDOR_REAL_TIME_INVENTORY_REPORT")
    end = FIXED_NOW.replace(minute=0) - timedelta(hours=2)
    start = end - timedelta(hours=6)

    async def go() -> SpApiReport:
        try:
            return await _wait(client, await client.create_report(marketplace, spec, start, end))
        finally:
            await _close(client, tokens)

    report = asyncio.run(go())
    assert report.processing_status is ProcessingStatus.DONE
    assert (report.data_start_time, report.data_end_time) == (start, end)


def test_get_reports_follows_next_token(emulator: RunningEmulator) -> None:
    client, tokens, marketplace = _client(emulator)

    async def go() -> tuple[list[str], list[SpApiReport]]:
        try:
            ids = []
            for weeks in range(3):
                end = END - timedelta(weeks=weeks)
                ids.append(await client.create_report(marketplace, SALES,
                                                      end - timedelta(days=6), end))
            found = [r async for r in client.get_reports(
                ["GET_VENDOR_SALES_REPORT"], marketplace_ids=[marketplace],
                created_since=FIXED_NOW - timedelta(days=1), page_size=1)]
            return ids, found
        finally:
            await _close(client, tokens)

    ids, found = asyncio.run(go())
    assert sorted(r.report_id for r in found) == sorted(ids)
    # Three pages of one: the emulator refuses a nextToken sent with any other parameter.
    assert _calls(emulator)["calls"]["spapi.getReports"] == 3


def test_a_429_storm_on_create_is_ridden_out_with_one_create(make_emulator: EmulatorFactory
                                                             ) -> None:
    emu = make_emulator(faults=[{"kind": "throttle", "operation": "spapi.createReport",
                                 "times": 3}])
    client, tokens, marketplace = _client(emu)

    async def go() -> str:
        try:
            return await client.create_report(marketplace, SALES, START, END)
        finally:
            await _close(client, tokens)

    assert asyncio.run(go())
    stats = client.http.stats()["spapi.createReport"]
    assert (stats.calls, stats.throttled, stats.retries) == (4, 3, 3)
    calls = _calls(emu)
    assert calls["calls"]["spapi.createReport"] == 4
    assert calls["distinct_requests"] == 1 and calls["duplicate_creates"] == 0


def test_server_errors_are_retried(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "server_error", "operation": "spapi.getReport",
                                 "status": 503, "times": 2}])
    client, tokens, marketplace = _client(emu)

    async def go() -> SpApiReport:
        try:
            return await _wait(client, await client.create_report(marketplace, SALES, START, END))
        finally:
            await _close(client, tokens)

    assert asyncio.run(go()).processing_status is ProcessingStatus.DONE
    assert client.http.stats()["spapi.getReport"].server_errors == 2


def test_token_expiry_mid_run_costs_one_refresh(make_emulator: EmulatorFactory) -> None:
    # Only the first token is short-lived; later ones outlast the test whatever the time scale.
    emu = make_emulator(token_lifetime=1e7,
                        faults=[{"kind": "token_expiry", "seconds": 600, "times": 1}])
    client, tokens, marketplace = _client(emu, lwa_timer=SystemTimer())

    async def go() -> None:
        try:
            report_id = await client.create_report(marketplace, SALES, START, END)
            emu.client.post("/_emulator/clock/advance", params={"seconds": 601})
            await _wait(client, report_id)
        finally:
            await _close(client, tokens)

    asyncio.run(go())
    assert tokens.fetches == 2
    assert client.http.stats()["spapi.getReport"].refreshes == 1
    assert _calls(emu)["calls"]["lwa.token"] == 2


def test_a_hanging_answer_times_out_after_the_configured_timeout(
    make_emulator: EmulatorFactory,
) -> None:
    emu = make_emulator(faults=[{"kind": "hang", "operation": "spapi.getReports", "seconds": 5}])
    client, tokens, _ = _client(emu, timeouts=Timeouts(connect=2.0, read=0.3, write=2.0,
                                                       pool=2.0),
                                retry=RetryPolicy(max_attempts=2, base=1.0, cap=1.0))

    async def go() -> None:
        try:
            [r async for r in client.get_reports(["GET_VENDOR_SALES_REPORT"])]
        finally:
            await _close(client, tokens)

    with pytest.raises(RequestTimeout):
        asyncio.run(go())
    assert client.http.stats()["spapi.getReports"].transport_errors == 2


def test_a_create_whose_answer_is_lost_is_not_repeated(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "hang", "operation": "spapi.createReport", "seconds": 5,
                                 "times": 1}])
    client, tokens, marketplace = _client(emu, timeouts=Timeouts(connect=2.0, read=0.3,
                                                                 write=2.0, pool=2.0))

    async def go() -> None:
        try:
            await client.create_report(marketplace, SALES, START, END)
        finally:
            await _close(client, tokens)

    with pytest.raises(OutcomeUnknown):
        asyncio.run(go())
    assert _calls(emu)["calls"]["spapi.createReport"] == 1


def test_fatal_report_has_an_error_document_and_cancelled_has_none(
    make_emulator: EmulatorFactory,
) -> None:
    emu = make_emulator(faults=[
        {"kind": "fatal", "operation": "spapi.createReport", "reason": "Injected", "times": 1},
        {"kind": "cancelled", "times": 1},
    ])
    client, tokens, marketplace = _client(emu)

    async def go() -> tuple[SpApiReport, bytes, SpApiReport]:
        try:
            fatal = await _wait(client, await client.create_report(marketplace, SALES, START, END))
            assert fatal.report_document_id is not None
            doc = await client.get_report_document(fatal.report_document_id)
            data = b"".join([c async for c in client.download(doc.url)])
            cancelled = await _wait(client, await client.create_report(
                marketplace, SALES, START - timedelta(days=7), END - timedelta(days=7)))
            return fatal, data, cancelled
        finally:
            await _close(client, tokens)

    fatal, data, cancelled = asyncio.run(go())
    assert fatal.processing_status is ProcessingStatus.FATAL
    assert json.loads(gzip.decompress(data)) == {"errorDetails": "Injected"}
    assert cancelled.processing_status is ProcessingStatus.CANCELLED
    assert cancelled.report_document_id is None


def test_cancel_a_queued_report(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "stuck", "operation": "spapi.createReport"}])
    client, tokens, marketplace = _client(emu)

    async def go() -> SpApiReport:
        try:
            report_id = await client.create_report(marketplace, SALES, START, END)
            await client.cancel_report(report_id)
            return await client.get_report(report_id)
        finally:
            await _close(client, tokens)

    assert asyncio.run(go()).processing_status is ProcessingStatus.CANCELLED


# ---- pure rules and shapes the emulator does not produce ----------------------------------------


def test_user_agent_has_the_format_sp_api_asks_for() -> None:
    agent = user_agent()
    assert re.fullmatch(r"amzlake/[0-9][^ ]* \(Language=Python/3\.\d+; Platform=[^)]+\)", agent)
    assert len(agent) <= 500


def test_dates_by_the_report_types_date_rule() -> None:
    assert data_times(SALES, date(2026, 11, 1), date(2026, 11, 7)) == {
        "dataStartTime": "2026-11-01T00:00:00Z", "dataEndTime": "2026-11-07T23:59:59Z"}
    hourly = VendorReportSpec.of("GET_VENDOR_REAL_TIME_SALES_REPORT")
    at = datetime(2026, 11, 19, 13, tzinfo=UTC)
    assert data_times(hourly, at, at + timedelta(hours=3)) == {
        "dataStartTime": "2026-11-19T13:00:00Z", "dataEndTime": "2026-11-19T16:00:00Z"}
    with pytest.raises(ValueError, match="not on the hour"):
        data_times(hourly, at.replace(minute=30), at + timedelta(hours=3))
    with pytest.raises(ValueError, match="timezone-aware"):
        data_times(hourly, at.replace(tzinfo=None), at.replace(tzinfo=None))
    forecast = VendorReportSpec.of("GET_VENDOR_FORECASTING_REPORT", {"sellingProgram": "RETAIL"})
    assert data_times(forecast, None, None) == {}
    with pytest.raises(ValueError, match="takes no"):
        data_times(forecast, date(2026, 11, 1), date(2026, 11, 7))


class _StaticTokens:
    async def token(self) -> SecretStr:
        return SecretStr("Atza|x")

    async def refresh(self, stale: SecretStr | None = None) -> SecretStr:
        return SecretStr("Atza|y")


def test_an_unknown_processing_status_is_an_error_naming_it() -> None:
    client = SpApiClient("https://sp.test", _StaticTokens(), limits={},
                         transport=httpx.MockTransport(lambda r: httpx.Response(200, json={
                             "reportId": "1", "reportType": "X", "createdTime": "2026-11-20T00:00Z",
                             "processingStatus": "DONE_NO_DATA"})))
    with pytest.raises(UnexpectedResponse) as info:
        asyncio.run(client.get_report("1"))
    assert "'DONE_NO_DATA'" in str(info.value) and "spapi.getReport" in str(info.value)
