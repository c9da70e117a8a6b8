"""Each injected fault, seen by a client of the real APIs over HTTP."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import httpx
import pytest

from tests.conftest import FIXED_NOW, RunningEmulator

EmulatorFactory = Callable[..., RunningEmulator]
REPORTS = "/reports/2021-06-30/reports"


def _sales_request(emu: RunningEmulator) -> dict[str, Any]:
    end = (FIXED_NOW - timedelta(days=10)).date()
    start = end - timedelta(days=6)
    return {
        "reportType": "GET_VENDOR_SALES_REPORT",
        "marketplaceIds": [emu.credentials["vendor"][0]["marketplace_id"]],
        "dataStartTime": f"{start}T00:00:00Z",
        "dataEndTime": f"{end}T23:59:59Z",
        "reportOptions": {"reportPeriod": "DAY", "distributorView": "MANUFACTURING",
                          "sellingProgram": "RETAIL"},
    }


def _ads_request(start: str = "2026-11-10", end: str = "2026-11-16") -> dict[str, Any]:
    return {
        "startDate": start, "endDate": end,
        "configuration": {"adProduct": "SPONSORED_PRODUCTS", "reportTypeId": "spCampaigns",
                          "groupBy": ["campaign"], "columns": ["date", "campaignId", "cost"],
                          "timeUnit": "DAILY", "format": "GZIP_JSON"},
    }


def _ads_headers(emu: RunningEmulator) -> dict[str, str]:
    profile = emu.credentials["ads"]["profiles"][0]["profile_id"]
    return {**emu.ads_headers(profile),
            "Content-Type": "application/vnd.createasyncreportrequest.v3+json"}


def _wait_spapi(emu: RunningEmulator, headers: dict[str, str], report_id: str) -> dict[str, Any]:
    emu.client.post("/_emulator/clock/advance", params={"seconds": 1800})
    emu.state.jobs.find("spapi", report_id).wait_ready(30)
    return emu.client.get(f"{REPORTS}/{report_id}", headers=headers).json()


def test_throttle_storm_on_create_then_recovery(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "throttle", "operation": "spapi.createReport", "times": 3}])
    headers = emu.spapi_headers()
    answers = [emu.client.post(REPORTS, headers=headers, json=_sales_request(emu)) for _ in range(4)]
    assert [a.status_code for a in answers] == [429, 429, 429, 202]
    assert answers[0].json() == {"errors": [{
        "code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
        "details": ""}]}
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["calls"]["spapi.createReport"] == 4
    assert calls["distinct_requests"] == 1 and calls["duplicate_creates"] == 0


def test_server_errors_in_the_ads_shape(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "server_error", "operation": "ads.getAsyncReport",
                                 "status": 500, "times": 2}])
    headers = _ads_headers(emu)
    report_id = emu.client.post("/reporting/reports", headers=headers, json=_ads_request()).json()["reportId"]
    answers = [emu.client.get(f"/reporting/reports/{report_id}", headers=headers) for _ in range(3)]
    assert [a.status_code for a in answers] == [500, 500, 200]
    assert answers[0].json()["code"] == "500"


def test_slow_and_hanging_answers_time_clients_out(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[
        {"kind": "slow", "operation": "ads.listProfiles", "seconds": 1.5, "times": 1},
        {"kind": "hang", "operation": "spapi.getReports", "seconds": 30, "times": 1},
    ])
    ads = emu.ads_headers()
    spapi = emu.spapi_headers()
    with pytest.raises(httpx.ReadTimeout):
        emu.client.get("/v2/profiles", headers=ads, timeout=0.3)
    assert emu.client.get("/v2/profiles", headers=ads).status_code == 200
    with pytest.raises(httpx.ReadTimeout):
        emu.client.get(REPORTS, params={"reportTypes": "GET_VENDOR_SALES_REPORT"}, headers=spapi,
                       timeout=0.3)
    assert emu.client.get(REPORTS, params={"reportTypes": "GET_VENDOR_SALES_REPORT"},
                          headers=spapi).status_code == 200


def test_fatal_report_carries_an_error_document(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "fatal", "operation": "spapi.createReport",
                                 "reason": "Injected failure for the test"}])
    headers = emu.spapi_headers()
    report_id = emu.client.post(REPORTS, headers=headers, json=_sales_request(emu)).json()["reportId"]
    report = _wait_spapi(emu, headers, report_id)
    assert report["processingStatus"] == "FATAL"
    doc = emu.client.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}", headers=headers)
    body = json.loads(gzip.decompress(httpx.get(doc.json()["url"]).content))
    assert body == {"errorDetails": "Injected failure for the test"}


def test_ads_failed_report(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "fatal", "operation": "ads.createAsyncReport"}])
    headers = _ads_headers(emu)
    report_id = emu.client.post("/reporting/reports", headers=headers, json=_ads_request()).json()["reportId"]
    emu.client.post("/_emulator/clock/advance", params={"seconds": 1800})
    report = emu.client.get(f"/reporting/reports/{report_id}", headers=headers).json()
    assert report["status"] == "FAILED"
    assert report["failureReason"] and report["url"] is None


def test_cancelled_report_has_no_document(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "cancelled"}])
    headers = emu.spapi_headers()
    report_id = emu.client.post(REPORTS, headers=headers, json=_sales_request(emu)).json()["reportId"]
    report = _wait_spapi(emu, headers, report_id)
    assert report["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in report


def test_stuck_report_stays_queued_and_can_be_cancelled(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "stuck", "operation": "spapi.createReport"}])
    headers = emu.spapi_headers()
    report_id = emu.client.post(REPORTS, headers=headers, json=_sales_request(emu)).json()["reportId"]
    # Far longer than any drawn delay, yet inside the access token's hour.
    emu.client.post("/_emulator/clock/advance", params={"seconds": 3000})
    report = emu.client.get(f"{REPORTS}/{report_id}", headers=headers).json()
    assert report["processingStatus"] == "IN_QUEUE"
    assert emu.client.delete(f"{REPORTS}/{report_id}", headers=headers).status_code == 200
    report = emu.client.get(f"{REPORTS}/{report_id}", headers=headers).json()
    assert report["processingStatus"] == "CANCELLED"


def test_token_expiry_mid_run(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "token_expiry", "seconds": 600}])
    spapi = emu.spapi_headers()
    ads = emu.ads_headers()
    query = {"reportTypes": "GET_VENDOR_SALES_REPORT"}
    assert emu.client.get(REPORTS, params=query, headers=spapi).status_code == 200
    assert emu.client.get("/v2/profiles", headers=ads).status_code == 200
    emu.client.post("/_emulator/clock/advance", params={"seconds": 601})
    expired = emu.client.get(REPORTS, params=query, headers=spapi)
    assert expired.status_code == 403
    assert expired.json()["errors"][0]["code"] == "Unauthorized"
    assert emu.client.get("/v2/profiles", headers=ads).status_code == 401
    # A refreshed token works again.
    assert emu.client.get(REPORTS, params=query, headers=emu.spapi_headers()).status_code == 200


def test_get_report_rate_limit_is_two_per_second_burst_fifteen(make_emulator: EmulatorFactory) -> None:
    # A nearly frozen clock: no token refills during the burst, so the count is exact.
    emu = make_emulator(time_scale=0.001)
    headers = emu.spapi_headers()
    report_id = emu.client.post(REPORTS, headers=headers, json=_sales_request(emu)).json()["reportId"]
    answers = [emu.client.get(f"{REPORTS}/{report_id}", headers=headers) for _ in range(20)]
    codes = [a.status_code for a in answers]
    assert codes == [200] * 15 + [429] * 5
    assert answers[0].headers["x-amzn-RateLimit-Limit"] == "2"
    emu.client.post("/_emulator/clock/advance", params={"seconds": 1.0})  # 2 tokens back
    codes = [emu.client.get(f"{REPORTS}/{report_id}", headers=headers).status_code for _ in range(3)]
    assert codes == [200, 200, 429]
