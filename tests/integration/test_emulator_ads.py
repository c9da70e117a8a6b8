"""The Ads API of the emulator over real HTTP: profiles, report lifecycle, errors, duplicates."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from amzlake.catalog.ads import ADS_REPORT_TYPES
from tests.conftest import RunningEmulator, scenario_for_tests

CREATE_TYPE = "application/vnd.createasyncreportrequest.v3+json"
START, END = "2026-11-10", "2026-11-16"  # FIXED_NOW of the test scenario is 2026-11-20

# A representative groupBy per report type (the one that adds the most columns).
REPRESENTATIVE = {
    "spCampaigns": ["campaign", "adGroup"],
    "sdCampaigns": ["matchedTarget"],
    "sdAdGroup": ["adGroup"],
    "sdTargeting": ["targeting"],
    "sbCampaignPlacement": ["campaignPlacement"],
    "sbAdGroup": ["adGroup"],
}


@pytest.fixture(scope="module")
def shared() -> Iterator[RunningEmulator]:
    """One fast emulator for the read-mostly lifecycle tests of this module."""
    from amzlake.emulator.server import EmulatorServer

    server = EmulatorServer(scenario_for_tests()).start()
    client = httpx.Client(base_url=server.base_url, timeout=30.0)
    creds = client.get("/_emulator/credentials").json()
    yield RunningEmulator(server.base_url, server.state, creds, client)
    client.close()
    server.stop()


def profile_id(emu: RunningEmulator, country: str = "US") -> int:
    return next(p["profile_id"] for p in emu.credentials["ads"]["profiles"] if p["country_code"] == country)


def report_body(report: str, group_by: list[str] | None = None, **config: Any) -> dict[str, Any]:
    rt = ADS_REPORT_TYPES[report]
    group_by = group_by or REPRESENTATIVE.get(report) or [next(iter(rt.group_bys))]
    columns = sorted(c for c in rt.columns_for(group_by) if c not in ("startDate", "endDate"))
    configuration = {
        "adProduct": str(rt.ad_product),
        "reportTypeId": report,
        "groupBy": group_by,
        "columns": columns,
        "timeUnit": "DAILY",
        "format": "GZIP_JSON",
        **config,
    }
    return {"name": f"{report} test", "startDate": START, "endDate": END, "configuration": configuration}


def headers(emu: RunningEmulator, pid: int | None) -> dict[str, str]:
    return {**emu.ads_headers(pid), "Content-Type": CREATE_TYPE}


def create(emu: RunningEmulator, body: dict[str, Any], pid: int, prefix: str = "") -> httpx.Response:
    return emu.client.post(f"{prefix}/reporting/reports", headers=headers(emu, pid), content=json.dumps(body))


def poll(
    emu: RunningEmulator, report_id: str, pid: int, until: Callable[[dict], bool], timeout: float = 60.0
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        # Fresh headers each time: at the tests' time scale an access token lasts one real second.
        r = emu.client.get(f"/reporting/reports/{report_id}", headers=headers(emu, pid))
        assert r.status_code == 200, r.text
        body = r.json()
        if until(body) or time.monotonic() > deadline:
            return body
        time.sleep(0.05)


def download(url: str) -> list[dict[str, Any]]:
    r = httpx.get(url, timeout=60.0)  # a presigned URL: no auth headers at all
    assert r.status_code == 200
    return json.loads(gzip.decompress(r.content))


def test_profiles_list_and_get(shared: RunningEmulator) -> None:
    r = shared.client.get("/v2/profiles", headers=shared.ads_headers())
    assert r.status_code == 200
    profiles = r.json()
    assert {p["countryCode"] for p in profiles} == {"US", "DE", "JP"}
    us = next(p for p in profiles if p["countryCode"] == "US")
    assert us["currencyCode"] == "USD" and us["timezone"] == "America/Los_Angeles"
    assert us["accountInfo"]["marketplaceStringId"] == "ATVPDKIKX0DER"
    assert set(us["accountInfo"]) >= {"marketplaceStringId", "id", "type", "name", "validPaymentMethod"}
    one = shared.client.get(f"/v2/profiles/{us['profileId']}", headers=shared.ads_headers())
    assert one.json() == us
    eu = shared.client.get("/eu/v2/profiles", headers=shared.ads_headers()).json()
    assert [p["countryCode"] for p in eu] == ["DE"]


@pytest.mark.parametrize("report", sorted(ADS_REPORT_TYPES))
def test_full_lifecycle_for_every_report_type(shared: RunningEmulator, report: str) -> None:
    pid = profile_id(shared)
    body = report_body(report)
    r = create(shared, body, pid)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/vnd.createasyncreportresponse.v3+json")
    created = r.json()
    assert created["status"] == "PENDING"
    assert created["url"] is None and created["fileSize"] is None
    assert created["configuration"]["columns"] == body["configuration"]["columns"]
    assert created["createdAt"].endswith("Z") and len(created["createdAt"]) == 24

    done = poll(shared, created["reportId"], pid, lambda b: b["status"] in ("COMPLETED", "FAILED"))
    assert done["status"] == "COMPLETED", done
    assert done["fileSize"] > 0 and done["generatedAt"] and done["urlExpiresAt"]
    rows = download(done["url"])
    truth = shared.client.get(f"/_emulator/truth/ads/{created['reportId']}").json()["truth"]
    assert len(rows) == truth["rows"] > 0
    columns = body["configuration"]["columns"]
    assert all(list(row) == columns for row in rows)
    for col, expected in truth["sums"].items():
        got = sum(Decimal(str(row[col])) for row in rows if row[col] is not None)
        assert got == Decimal(str(expected)), col


def test_download_url_is_renewed_after_it_expires(emulator: RunningEmulator) -> None:
    pid = profile_id(emulator)
    rid = create(emulator, report_body("spCampaigns"), pid).json()["reportId"]
    done = poll(emulator, rid, pid, lambda b: b["status"] == "COMPLETED")
    again = poll(emulator, rid, pid, lambda b: True)
    assert again["url"] == done["url"]  # still valid: the same link
    emulator.client.post("/_emulator/clock/advance", params={"seconds": 3700})
    assert httpx.get(done["url"]).status_code != 200
    renewed = poll(emulator, rid, pid, lambda b: True)
    assert renewed["url"] != done["url"]
    assert download(renewed["url"])


@pytest.mark.parametrize(
    ("config", "top", "detail"),
    [
        ({"reportTypeId": "spKeywords"}, {}, "configuration reportTypeId is unknown or invalid"),
        (
            {"columns": ["impressions", "attributedSales14d"]},
            {},
            "configuration columns includes invalid values: (attributedSales14d)",
        ),
        (
            {"filters": [{"field": "campaignStatus", "values": ["ENABLED"]}]},
            {},
            "configuration filters includes fields: (campaignStatus) which are invalid for "
            "groupBys: advertiser. Allowed filters for groupBy advertiser: (adCreativeStatus)",
        ),
        (
            {},
            {"startDate": "2026-08-01", "endDate": "2026-08-02"},
            "startDate (2026-08-01) must be equal to or after report type data retention start "
            "date (2026-08-17)",
        ),
        ({}, {"endDate": "2026-11-21"}, "endDate (2026-11-21) must be equal to or before today (2026-11-20)"),
        (
            {},
            {"startDate": "2026-10-01"},
            "date range (47 days) exceeds the maximum of 31 days for reportTypeId spAdvertisedProduct",
        ),
        (
            {"timeUnit": "SUMMARY", "columns": ["impressions", "date"]},
            {},
            "configuration columns includes invalid values: (date)",
        ),
    ],
)
def test_validation_errors_are_400_with_amazons_text(
    shared: RunningEmulator, config: dict[str, Any], top: dict[str, Any], detail: str
) -> None:
    body = report_body("spAdvertisedProduct", columns=["impressions", "date"])
    body["configuration"].update(config)
    body.update(top)
    r = create(shared, body, profile_id(shared))
    assert r.status_code == 400
    assert r.json() == {"code": "400", "detail": detail}


def test_identical_create_while_pending_is_a_425_naming_the_first(make_emulator) -> None:
    emu = make_emulator(
        delays={
            "ads_queue": 3600,
            "ads_processing": 600,
            "spapi_queue": 5,
            "spapi_processing": 20,
            "sigma": 0,
        },
        time_scale=1.0,
    )
    pid = profile_id(emu)
    body = report_body("spTargeting")
    first = create(emu, body, pid)
    assert first.status_code == 200
    second = create(emu, body, pid)
    assert second.status_code == 425
    assert second.json() == {
        "code": "425",
        "detail": f"The Request is a duplicate of : {first.json()['reportId']}",
    }
    # Same request with the columns in another order is the same request.
    shuffled = json.loads(json.dumps(body))
    shuffled["configuration"]["columns"].reverse()
    assert create(emu, shuffled, pid).status_code == 425
    # A different range is a different request.
    other = json.loads(json.dumps(body))
    other["startDate"] = "2026-11-11"
    assert create(emu, other, pid).status_code == 200
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["distinct_requests"] == 2 and calls["duplicate_creates"] == 0
    assert calls["calls"]["ads.createAsyncReport"] == 4


def test_delete_cancels_only_a_pending_report(make_emulator) -> None:
    emu = make_emulator(
        delays={
            "ads_queue": 3600,
            "ads_processing": 60,
            "spapi_queue": 5,
            "spapi_processing": 20,
            "sigma": 0,
        },
        time_scale=1.0,
    )
    pid = profile_id(emu)
    rid = create(emu, report_body("spCampaigns"), pid).json()["reportId"]
    r = emu.client.delete(f"/reporting/reports/{rid}", headers=headers(emu, pid))
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("application/vnd.deleteasyncreportresponse.v3+json")
    assert r.json() == {"code": "200", "detail": "Report deleted", "reportId": rid}
    gone = emu.client.get(f"/reporting/reports/{rid}", headers=headers(emu, pid))
    assert gone.status_code == 404 and gone.json() == {"code": "404", "detail": "Not Found"}
    # Once the queue wait is over the report is processing and can no longer be deleted.
    rid2 = create(emu, report_body("spCampaigns"), pid).json()["reportId"]
    emu.client.post("/_emulator/clock/advance", params={"seconds": 3610})
    busy = emu.client.delete(f"/reporting/reports/{rid2}", headers=headers(emu, pid))
    assert busy.status_code == 400
    assert poll(emu, rid2, pid, lambda b: True)["status"] in ("PROCESSING", "COMPLETED")


def test_auth_and_scope_errors(shared: RunningEmulator) -> None:
    pid = profile_id(shared)
    client_id = shared.credentials["lwa"]["client_id"]
    path = "/reporting/reports/00000000-0000-4000-8000-000000000000"
    no_auth = shared.client.get(
        path, headers={"Amazon-Advertising-API-ClientId": client_id, "Amazon-Advertising-API-Scope": str(pid)}
    )
    assert no_auth.status_code == 401 and no_auth.json()["code"] == "401"
    bad = shared.client.get(
        path,
        headers={
            "Authorization": "Bearer Atza|nope",
            "Amazon-Advertising-API-ClientId": client_id,
            "Amazon-Advertising-API-Scope": str(pid),
        },
    )
    assert bad.status_code == 401
    assert (
        shared.client.get(
            "/v2/profiles",
            headers={"Authorization": "Bearer Atza|x", "Amazon-Advertising-API-ClientId": client_id},
        ).status_code
        == 401
    )
    h = shared.ads_headers()
    no_scope = shared.client.get(path, headers=h)
    assert no_scope.status_code == 400
    assert no_scope.json() == {"code": "400", "detail": "Invalid Advertiser or Marketplace ID."}
    unknown = shared.client.get(path, headers={**h, "Amazon-Advertising-API-Scope": "12345"})
    assert unknown.status_code == 401
    wrong_client = shared.client.get(
        path, headers={**shared.ads_headers(pid), "Amazon-Advertising-API-ClientId": "other"}
    )
    assert wrong_client.status_code == 401
    # A US profile on the EU host is not authorised; on its own host the report is just unknown.
    assert shared.client.get(f"/eu{path}", headers=shared.ads_headers(pid)).status_code == 401
    assert shared.client.get(f"/na{path}", headers=shared.ads_headers(pid)).status_code == 404


def test_create_rejects_a_non_json_content_type(shared: RunningEmulator) -> None:
    pid = profile_id(shared)
    r = shared.client.post(
        "/reporting/reports",
        headers={**shared.ads_headers(pid), "Content-Type": "text/plain"},
        content=json.dumps(report_body("spCampaigns")),
    )
    assert r.status_code == 415
    ok = shared.client.post(
        "/reporting/reports",
        headers={**shared.ads_headers(pid), "Content-Type": "application/json"},
        content=json.dumps(report_body("spCampaigns", startDate="2026-11-01")),
    )
    assert ok.status_code in (200, 425)


def test_jpy_profile_report_on_the_fe_host(shared: RunningEmulator) -> None:
    pid = profile_id(shared, "JP")
    body = report_body("spAdvertisedProduct", columns=["date", "adId", "cost", "sales14d"])
    r = create(shared, body, pid, prefix="/fe")
    assert r.status_code == 200, r.text
    done = poll(shared, r.json()["reportId"], pid, lambda b: b["status"] == "COMPLETED")
    rows = download(done["url"])
    assert rows and all(isinstance(row["cost"], int) for row in rows)
    assert all(isinstance(row["adId"], int) and row["adId"] > 2**53 for row in rows)
