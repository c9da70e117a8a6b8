"""SP-API Reports 2021-06-30 for vendors over real HTTP: the whole report life cycle for every
vendor report type, FATAL and CANCELLED reports, 400s, listing and paging, cancelling, auth and
the createReport rate limit."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable, Iterable
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import jsonschema
import pytest

from amzlake.catalog.vendor import CLIENT_ERROR_TEXT, VENDOR_REPORT_TYPES
from tests.conftest import FIXED_NOW, RunningEmulator

EmulatorFactory = Callable[..., RunningEmulator]
REPORTS = "/reports/2021-06-30/reports"
DOCUMENTS = "/reports/2021-06-30/documents"
SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "spapi" / "schemas" / "reports"


@pytest.fixture
def emulator(make_emulator: EmulatorFactory) -> RunningEmulator:
    """The test emulator at 60x: a 5-minute document URL lasts 5 real seconds, an access token a
    real minute, while the clock can still be jumped past processing."""
    return make_emulator(time_scale=60.0)


def body_for(emu: RunningEmulator, report_type: str, vendor: int = 0) -> dict[str, Any]:
    """A valid createReport body for `report_type` at the test clock's start (2026-11-20)."""
    marketplace = emu.credentials["vendor"][vendor]["marketplace_id"]
    body: dict[str, Any] = {"reportType": report_type, "marketplaceIds": [marketplace]}
    week = {"dataStartTime": "2026-11-01T00:00:00Z", "dataEndTime": "2026-11-07T23:59:59Z"}
    options: dict[str, str] = {}
    if report_type in ("GET_VENDOR_SALES_REPORT", "GET_VENDOR_INVENTORY_REPORT"):
        options = {"reportPeriod": "WEEK", "distributorView": "MANUFACTURING",
                   "sellingProgram": "RETAIL"}
        body.update(week)
    elif report_type == "GET_VENDOR_FORECASTING_REPORT":
        options = {"sellingProgram": "RETAIL"}
    elif report_type.startswith("GET_VENDOR_REAL_TIME"):
        body["dataStartTime"] = (FIXED_NOW - timedelta(hours=6)).isoformat()
        body["dataEndTime"] = (FIXED_NOW - timedelta(hours=2)).isoformat()
    elif report_type == "GET_COUPON_PERFORMANCE_REPORT":
        options = {"campaignStartDateFrom": "2026-09-01T00:00:00Z",
                   "campaignStartDateTo": "2026-09-30T00:00:00Z"}
    elif report_type == "GET_PROMOTION_PERFORMANCE_REPORT":
        options = {"promotionStartDateFrom": "2026-09-01T00:00:00Z",
                   "promotionStartDateTo": "2026-09-30T00:00:00Z"}
    else:
        options = {"reportPeriod": "WEEK"}
        body.update(week)
        if report_type.endswith("SEARCH_QUERY_PERFORMANCE_REPORT"):
            options["asin"] = emu.state.world.asins(marketplace)[0]
    if options:
        body["reportOptions"] = options
    return body


def finish(emu: RunningEmulator, vendor: int, report_id: str) -> dict[str, Any]:
    """Move the clock past processing, wait for the document, return getReport's answer."""
    emu.client.post("/_emulator/clock/advance", params={"seconds": 1800})
    job = emu.state.jobs.find("spapi", report_id)
    assert job is not None
    if job.document_id is not None:  # CANCELLED reports have no document to wait for
        assert job.wait_ready(60)
    r = emu.client.get(f"{REPORTS}/{report_id}", headers=emu.spapi_headers(vendor))
    assert r.status_code == 200
    return r.json()


def download(emu: RunningEmulator, vendor: int, document_id: str) -> bytes:
    meta = emu.client.get(f"{DOCUMENTS}/{document_id}", headers=emu.spapi_headers(vendor))
    assert meta.status_code == 200
    body = meta.json()
    assert body["reportDocumentId"] == document_id and body["compressionAlgorithm"] == "GZIP"
    # The presigned URL needs no auth header, like Amazon's S3 links.
    raw = httpx.get(body["url"], timeout=30).content
    return gzip.decompress(raw)


def leaves(items: Iterable[Any], path: list[str]) -> Iterable[Any]:
    """Every value at `path` under `items`, through nested arrays; Amounts give their amount."""
    for item in items:
        if isinstance(item, list):
            yield from leaves(item, path)
            continue
        if not path:
            yield item["amount"] if isinstance(item, dict) else item
            continue
        if path[0] in item:
            yield from leaves([item[path[0]]], path[1:])


@pytest.mark.parametrize("report_type", sorted(VENDOR_REPORT_TYPES))
def test_report_life_cycle_for_every_type(emulator: RunningEmulator, report_type: str) -> None:
    emu = emulator
    created = emu.client.post(REPORTS, headers=emu.spapi_headers(), json=body_for(emu, report_type))
    assert created.status_code == 202, created.text
    assert created.headers["x-amzn-RateLimit-Limit"] == "0.0167"
    assert "x-amzn-RequestId" in created.headers
    report_id = created.json()["reportId"]
    assert report_id.isdigit() and len(report_id) == 11

    report = finish(emu, 0, report_id)
    assert report["processingStatus"] == "DONE", report
    assert report["reportType"] == report_type
    assert report["processingStartTime"] <= report["processingEndTime"]
    assert report["reportDocumentId"].startswith("amzn1.spdoc.1.4.na.")

    doc = json.loads(download(emu, 0, report["reportDocumentId"]))
    schema = json.loads((SCHEMAS / VENDOR_REPORT_TYPES[report_type].schema_file).read_text())
    jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker()).validate(doc)

    truth = emu.client.get(f"/_emulator/truth/spapi/{report_id}").json()["truth"]
    arrays = VENDOR_REPORT_TYPES[report_type].arrays
    assert truth["rows"] == sum(len(doc[a]) for a in arrays) > 0
    assert truth["sums"]
    for key, expected in truth["sums"].items():
        array, *path = key.split(".")
        got = sum(Decimal(str(v)) for v in leaves(doc[array], path))
        assert got == Decimal(str(expected)), key


def create(emu: RunningEmulator, body: dict[str, Any], vendor: int = 0) -> httpx.Response:
    return emu.client.post(REPORTS, headers=emu.spapi_headers(vendor), json=body)


def test_missing_options_end_fatal_with_an_error_document(emulator: RunningEmulator) -> None:
    emu = emulator
    body = body_for(emu, "GET_VENDOR_SALES_REPORT")
    body["reportOptions"] = {"reportPeriod": "WEEK"}
    report_id = create(emu, body).json()["reportId"]
    report = finish(emu, 0, report_id)
    assert report["processingStatus"] == "FATAL"
    error = json.loads(download(emu, 0, report["reportDocumentId"]))
    assert error == {"errorDetails": (
        "This report type requires the distributorView, sellingProgram reportOption to be "
        "specified. Please review the document for this report type on GitHub, provide a value "
        "for this reportOption in your request, and try again.")}


def test_misaligned_week_ends_fatal(emulator: RunningEmulator) -> None:
    emu = emulator
    body = body_for(emu, "GET_VENDOR_TRAFFIC_REPORT")
    body["dataStartTime"] = "2026-11-02T00:00:00Z"  # a Monday
    report = finish(emu, 0, create(emu, body).json()["reportId"])
    assert report["processingStatus"] == "FATAL"
    assert json.loads(download(emu, 0, report["reportDocumentId"])) == {
        "errorDetails": CLIENT_ERROR_TEXT}


def test_a_request_without_data_is_cancelled(emulator: RunningEmulator) -> None:
    emu = emulator
    body = body_for(emu, "GET_VENDOR_SALES_REPORT", vendor=1)  # the German account sells no FRESH
    body["reportOptions"]["sellingProgram"] = "FRESH"
    report = finish(emu, 1, create(emu, body, vendor=1).json()["reportId"])
    assert report["processingStatus"] == "CANCELLED"
    assert "reportDocumentId" not in report


@pytest.mark.parametrize(
    ("change", "details"),
    [
        ({"reportType": "GET_NOT_A_REPORT"}, "Invalid reportType"),
        ({"marketplaceIds": []}, "marketplaceIds"),
        ({"dataEndTime": "2027-01-01T00:00:00Z"}, "dataEndTime"),
        ({"reportOptions": {"reportPeriod": 7}}, "reportOptions"),
    ],
)
def test_malformed_creates_get_400(emulator: RunningEmulator, change: dict[str, Any],
                                   details: str) -> None:
    body = {**body_for(emulator, "GET_VENDOR_SALES_REPORT"), **change}
    r = create(emulator, body)
    assert r.status_code == 400
    error = r.json()["errors"][0]
    assert error["code"] == "InvalidInput" and details in error["message"]
    assert r.headers["x-amzn-RateLimit-Limit"] == "0.0167"


def test_get_reports_filters_and_pages(emulator: RunningEmulator) -> None:
    emu = emulator
    types = ["GET_VENDOR_SALES_REPORT", "GET_VENDOR_TRAFFIC_REPORT",
             "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT"]
    ids = [create(emu, body_for(emu, t)).json()["reportId"] for t in types * 2]
    bad = body_for(emu, "GET_VENDOR_TRAFFIC_REPORT")
    bad["reportOptions"] = {}
    fatal_id = create(emu, bad).json()["reportId"]
    finish(emu, 0, fatal_id)

    seen: list[str] = []
    r = emu.client.get(REPORTS, headers=emu.spapi_headers(),
                       params={"reportTypes": ",".join(types), "pageSize": 2})
    assert r.status_code == 200 and r.headers["x-amzn-RateLimit-Limit"] == "0.0222"
    while True:
        page = r.json()
        assert len(page["reports"]) <= 2
        seen += [x["reportId"] for x in page["reports"]]
        if "nextToken" not in page:
            break
        r = emu.client.get(REPORTS, headers=emu.spapi_headers(), params={"nextToken": page["nextToken"]})
        assert r.status_code == 200
    assert sorted(seen) == sorted([*ids, fatal_id]) and len(set(seen)) == len(seen)

    fatal = emu.client.get(REPORTS, headers=emu.spapi_headers(), params={
        "reportTypes": "GET_VENDOR_TRAFFIC_REPORT", "processingStatuses": "FATAL"}).json()
    assert [x["reportId"] for x in fatal["reports"]] == [fatal_id]
    other_market = emu.client.get(REPORTS, headers=emu.spapi_headers(), params={
        "reportTypes": ",".join(types), "marketplaceIds": "A1PA6795UKMFR9"}).json()
    assert other_market["reports"] == []
    # Reports of another selling partner are not listed.
    de = emu.client.get(REPORTS, headers=emu.spapi_headers(1),
                        params={"reportTypes": ",".join(types)}).json()
    assert de["reports"] == []


def test_get_reports_lists_a_report_made_in_the_same_second(make_emulator: EmulatorFactory) -> None:
    # A nearly frozen clock: the listing comes within the same virtual second as the create.
    # Every page (the first too) reads its bounds back from the query it encodes; whole seconds
    # there left such a report out of every page.
    emu = make_emulator(time_scale=0.001)
    made = create(emu, body_for(emu, "GET_VENDOR_SALES_REPORT")).json()["reportId"]
    listed = emu.client.get(REPORTS, headers=emu.spapi_headers(),
                            params={"reportTypes": "GET_VENDOR_SALES_REPORT"}).json()
    assert [x["reportId"] for x in listed["reports"]] == [made]


def test_get_reports_parameter_rules(emulator: RunningEmulator) -> None:
    emu = emulator
    for _ in range(3):
        create(emu, body_for(emu, "GET_VENDOR_SALES_REPORT"))
    first = emu.client.get(REPORTS, headers=emu.spapi_headers(),
                           params={"reportTypes": "GET_VENDOR_SALES_REPORT", "pageSize": 1}).json()
    token = first["nextToken"]
    mixed = emu.client.get(REPORTS, headers=emu.spapi_headers(),
                           params={"nextToken": token, "pageSize": 1})
    assert mixed.status_code == 400 and mixed.json()["errors"][0]["code"] == "InvalidInput"
    for params in ({}, {"reportTypes": "GET_VENDOR_SALES_REPORT", "pageSize": 101},
                   {"reportTypes": "GET_VENDOR_SALES_REPORT", "processingStatuses": "BAD_VALUE"}):
        assert emu.client.get(REPORTS, headers=emu.spapi_headers(), params=params).status_code == 400


def test_cancel_only_in_queue(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(time_scale=0.001)  # a frozen clock: the report stays IN_QUEUE
    report_id = create(emu, body_for(emu, "GET_VENDOR_SALES_REPORT")).json()["reportId"]
    assert emu.client.get(f"{REPORTS}/{report_id}", headers=emu.spapi_headers()).json()[
        "processingStatus"] == "IN_QUEUE"
    cancelled = emu.client.delete(f"{REPORTS}/{report_id}", headers=emu.spapi_headers())
    assert cancelled.status_code == 200 and cancelled.content == b""
    report = emu.client.get(f"{REPORTS}/{report_id}", headers=emu.spapi_headers()).json()
    assert report["processingStatus"] == "CANCELLED" and "reportDocumentId" not in report
    again = emu.client.delete(f"{REPORTS}/{report_id}", headers=emu.spapi_headers())
    assert again.status_code == 400 and "IN_QUEUE" in again.json()["errors"][0]["details"]
    assert emu.client.get(f"{REPORTS}/99999999999", headers=emu.spapi_headers()).status_code == 404


def test_done_reports_cannot_be_cancelled(emulator: RunningEmulator) -> None:
    emu = emulator
    report_id = create(emu, body_for(emu, "GET_VENDOR_TRAFFIC_REPORT")).json()["reportId"]
    assert finish(emu, 0, report_id)["processingStatus"] == "DONE"
    assert emu.client.delete(f"{REPORTS}/{report_id}", headers=emu.spapi_headers()).status_code == 400


def test_bad_tokens_get_403(emulator: RunningEmulator) -> None:
    emu = emulator
    query = {"reportTypes": "GET_VENDOR_SALES_REPORT"}
    missing = emu.client.get(REPORTS, params=query)
    assert missing.status_code == 403
    assert missing.json() == {"errors": [{
        "code": "Unauthorized", "message": "Access to requested resource is denied.",
        "details": "Access token is missing in the request header."}]}
    assert "x-amzn-RateLimit-Limit" not in missing.headers
    bogus = emu.client.get(REPORTS, params=query, headers={"x-amz-access-token": "Atza|nope"})
    assert bogus.status_code == 403 and bogus.json()["errors"][0]["code"] == "Unauthorized"
    # The Ads login's token grants nothing on SP-API.
    ads = emu.client.get(REPORTS, params=query,
                         headers={"x-amz-access-token": emu.access_token()})
    assert ads.status_code == 403
    calls = emu.client.get("/_emulator/calls").json()["calls"]
    assert "spapi.getReports" not in calls


def test_documents_of_other_partners_are_not_found(emulator: RunningEmulator) -> None:
    emu = emulator
    report = finish(emu, 0, create(emu, body_for(emu, "GET_VENDOR_TRAFFIC_REPORT")).json()[
        "reportId"])
    doc_id = report["reportDocumentId"]
    assert emu.client.get(f"{DOCUMENTS}/{doc_id}", headers=emu.spapi_headers(1)).status_code == 404
    missing = emu.client.get(f"{DOCUMENTS}/amzn1.spdoc.1.4.na.nope", headers=emu.spapi_headers())
    assert missing.status_code == 404 and missing.headers["x-amzn-RateLimit-Limit"] == "0.0167"


def test_create_report_rate_limit(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(time_scale=0.001)  # no token refills during the burst
    body = body_for(emu, "GET_VENDOR_TRAFFIC_REPORT")
    answers = [emu.client.post(REPORTS, headers=emu.spapi_headers(), json=body) for _ in range(16)]
    assert [a.status_code for a in answers] == [202] * 15 + [429]
    assert {a.headers["x-amzn-RateLimit-Limit"] for a in answers[:15]} == {"0.0167"}
    assert answers[15].json() == {"errors": [{
        "code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
        "details": ""}]}
    assert "x-amzn-RateLimit-Limit" not in answers[15].headers
    # Another selling partner has its own bucket.
    assert emu.client.post(REPORTS, headers=emu.spapi_headers(1),
                           json=body_for(emu, "GET_VENDOR_TRAFFIC_REPORT", 1)).status_code == 202
    # One create a minute comes back.
    emu.client.post("/_emulator/clock/advance", params={"seconds": 60})
    assert emu.client.post(REPORTS, headers=emu.spapi_headers(), json=body).status_code == 202
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["calls"]["spapi.createReport"] == 18
    assert calls["duplicate_creates"] == 15  # 16 accepted creates of one request for vendor 0
