"""`amzlake demo` (until the pipeline lands): the emulator's own demonstration.

Starts an emulator, signs in through LWA, asks for one Ads report per profile and one vendor sales
report, polls them, downloads the documents without auth, and checks every figure against the
emulator's ground truth.
"""

from __future__ import annotations

import gzip
import json
import time
from dataclasses import asdict, dataclass
from datetime import timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import httpx
from rich.console import Console
from rich.table import Table

from amzlake.emulator.faults import Scenario
from amzlake.emulator.server import EmulatorServer

ADS_COLUMNS = ["date", "campaignId", "campaignName", "impressions", "clicks", "cost", "sales14d"]


@dataclass
class DemoRow:
    """One report the demo fetched and checked."""

    source: str
    account: str
    report_type: str
    dates: str
    status: str
    rows: int
    checked: str
    matches_truth: bool


def _poll(client: httpx.Client, url: str, headers: dict[str, str], key: str, done: set[str],
          timeout: float = 60.0) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        r = client.get(url, headers=headers)
        r.raise_for_status()
        body = r.json()
        if body[key] in done or time.monotonic() > deadline:
            return body
        time.sleep(0.1)


def _download(client: httpx.Client, url: str) -> Any:
    r = client.get(url)  # presigned: no auth headers
    r.raise_for_status()
    return json.loads(gzip.decompress(r.content))


def _truth(client: httpx.Client, api: str, report_id: str) -> dict[str, Any]:
    return client.get(f"/_emulator/truth/{api}/{report_id}").json()["truth"]


def run_demo(as_json: bool = False) -> list[DemoRow]:
    """Run the demonstration and print what it found; returns the checked reports."""
    console = Console(highlight=False)
    results: list[DemoRow] = []
    with EmulatorServer(Scenario(time_scale=3600.0)) as server, httpx.Client(
        base_url=server.base_url, timeout=30.0
    ) as client:
        creds = client.get("/_emulator/credentials").json()
        lwa = creds["lwa"]

        def token(refresh: str) -> str:
            r = client.post("/auth/o2/token", data={
                "grant_type": "refresh_token", "refresh_token": refresh,
                "client_id": lwa["client_id"], "client_secret": lwa["client_secret"],
            })
            r.raise_for_status()
            return r.json()["access_token"]

        if not as_json:
            console.print(f"emulator at {server.base_url}; signing in through LWA")
        ads = {"Authorization": f"Bearer {token(creds['ads']['refresh_token'])}",
               "Amazon-Advertising-API-ClientId": lwa["client_id"]}
        for profile in client.get("/v2/profiles", headers=ads).json():
            today = server.state.clock.now().astimezone(ZoneInfo(profile["timezone"])).date()
            start, end = today - timedelta(days=7), today - timedelta(days=1)
            headers = {**ads, "Amazon-Advertising-API-Scope": str(profile["profileId"]),
                       "Content-Type": "application/vnd.createasyncreportrequest.v3+json"}
            r = client.post("/reporting/reports", headers=headers, json={
                "startDate": start.isoformat(), "endDate": end.isoformat(),
                "configuration": {"adProduct": "SPONSORED_PRODUCTS", "reportTypeId": "spCampaigns",
                                  "groupBy": ["campaign"], "columns": ADS_COLUMNS,
                                  "timeUnit": "DAILY", "format": "GZIP_JSON"},
            })
            r.raise_for_status()
            report_id = r.json()["reportId"]
            report = _poll(client, f"/reporting/reports/{report_id}", headers, "status",
                           {"COMPLETED", "FAILED"})
            rows = _download(client, report["url"]) if report["status"] == "COMPLETED" else []
            truth = _truth(client, "ads", report_id)
            cost = sum((Decimal(str(row["cost"])) for row in rows), Decimal(0))
            results.append(DemoRow(
                "ads", f"{profile['countryCode']} {profile['profileId']}", "spCampaigns",
                f"{start}..{end}", report["status"], len(rows),
                f"cost {cost} {profile['currencyCode']}",
                len(rows) == truth["rows"] and cost == Decimal(str(truth["sums"]["cost"])),
            ))

        for vendor in creds["vendor"]:
            headers = {"x-amz-access-token": token(vendor["refresh_token"]),
                       "user-agent": "amzlake-demo/0.1 (Language=Python)"}
            end = server.state.clock.now().date() - timedelta(days=4)
            start = end - timedelta(days=6)
            r = client.post("/reports/2021-06-30/reports", headers=headers, json={
                "reportType": "GET_VENDOR_SALES_REPORT", "marketplaceIds": [vendor["marketplace_id"]],
                "dataStartTime": f"{start}T00:00:00Z", "dataEndTime": f"{end}T23:59:59Z",
                "reportOptions": {"reportPeriod": "DAY", "distributorView": "MANUFACTURING",
                                  "sellingProgram": "RETAIL"},
            })
            r.raise_for_status()
            report_id = r.json()["reportId"]
            report = _poll(client, f"/reports/2021-06-30/reports/{report_id}", headers,
                           "processingStatus", {"DONE", "FATAL", "CANCELLED"})
            rows, shipped = [], Decimal(0)
            if report["processingStatus"] == "DONE":
                doc = client.get(f"/reports/2021-06-30/documents/{report['reportDocumentId']}",
                                 headers=headers).json()
                body = _download(client, doc["url"])
                rows = body["salesByAsin"]
                shipped = sum((Decimal(str(x["shippedRevenue"]["amount"])) for x in rows), Decimal(0))
            truth = _truth(client, "spapi", report_id)
            expected = Decimal(str(truth["sums"].get("salesByAsin.shippedRevenue.amount", "NaN")))
            results.append(DemoRow(
                "vendor", f"{vendor['country_code']} {vendor['selling_partner_id']}",
                "GET_VENDOR_SALES_REPORT", f"{start}..{end}", report["processingStatus"], len(rows),
                f"shipped revenue {shipped}", shipped == expected,
            ))
        calls = client.get("/_emulator/calls").json()

    if as_json:
        print(json.dumps({"reports": [asdict(r) for r in results], "calls": calls["calls"]}, default=str))
        return results
    table = Table(title="Reports fetched from the emulator and checked against its ground truth")
    for col in ("source", "account", "report type", "dates", "status", "rows", "checked", "truth"):
        table.add_column(col)
    for r in results:
        table.add_row(r.source, r.account, r.report_type, r.dates, r.status, str(r.rows), r.checked,
                      "[green]matches[/]" if r.matches_truth else "[red]differs[/]")
    console.print(table)
    console.print("API calls: " + ", ".join(f"{k} {v}" for k, v in calls["calls"].items()))
    return results
