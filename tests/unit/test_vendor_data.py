"""Vendor documents: schema-valid for every type and option, internally consistent, restated like
Amazon's, deterministic, and streamed in bounded chunks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import jsonschema
import pytest

from amzlake.catalog.periods import ReportPeriod, days, period_bounds
from amzlake.catalog.vendor import VENDOR_REPORT_TYPES, DateRule, option_combinations
from amzlake.emulator.vendor_data import (
    fatal_document,
    has_data,
    hourly_ordered_units,
    local_day_hours,
    vendor_document,
)
from amzlake.emulator.vendor_facts import sales_day, vendor_catalogue
from amzlake.emulator.world import build_world

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "spapi" / "schemas" / "reports"
WORLD = build_world(seed=3)
US, DE = WORLD.vendor_accounts
AS_OF = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
# Complete periods old enough to be available on AS_OF, one per reportPeriod.
RANGES = {
    "DAY": (date(2026, 11, 3), date(2026, 11, 9)),
    "WEEK": (date(2026, 10, 18), date(2026, 11, 7)),
    "MONTH": (date(2026, 9, 1), date(2026, 10, 31)),
    "QUARTER": (date(2026, 7, 1), date(2026, 9, 30)),
    "YEAR": (date(2025, 1, 1), date(2025, 12, 31)),
}
# One period each, for the reports that cannot span several.
SINGLE = {
    "DAY": (date(2026, 11, 9), date(2026, 11, 9)),
    "WEEK": (date(2026, 11, 1), date(2026, 11, 7)),
    "MONTH": (date(2026, 10, 1), date(2026, 10, 31)),
    "QUARTER": RANGES["QUARTER"],
}


@cache
def schema(name: str) -> jsonschema.Validator:
    body = json.loads((SCHEMAS / name).read_text())
    cls = jsonschema.validators.validator_for(body)
    return cls(body, format_checker=cls.FORMAT_CHECKER)


def render(report_type: str, options: dict[str, str], start: Any, end: Any,
           as_of: datetime = AS_OF, account: Any = US) -> tuple[dict[str, Any], Any, list[bytes]]:
    plan = vendor_document(WORLD, account, report_type, options, start, end, as_of)
    chunks = list(plan.chunks)
    return json.loads(b"".join(chunks)), plan.truth, chunks


def request_cases() -> Iterator[tuple[str, dict[str, str], Any, Any]]:
    """Every report type with every option combination and every reportPeriod."""
    asin = WORLD.asins(US.marketplace.marketplace_id)[0]
    for name, rt in VENDOR_REPORT_TYPES.items():
        for options in option_combinations(rt):
            if name.endswith("SEARCH_QUERY_PERFORMANCE_REPORT"):
                options = {**options, "asin": asin}
            if rt.date_rule is DateRule.PERIODS:
                table = SINGLE if not rt.spans_multiple_periods else RANGES
                if rt.brand_analytics and options["reportPeriod"] == "DAY":
                    table = SINGLE
                start, end = table[options["reportPeriod"]]
            elif rt.date_rule is DateRule.HOURS:
                start, end = AS_OF - timedelta(hours=7, minutes=20), AS_OF - timedelta(hours=2)
            elif rt.date_rule is DateRule.START_DATE_OPTIONS:
                assert rt.start_window
                options = {rt.start_window.option_from: "2026-09-20T00:00:00Z",
                           rt.start_window.option_to: "2026-10-20T00:00:00Z"}
                start = end = None
            else:
                start = end = None
            yield name, options, start, end


CASES = list(request_cases())


@pytest.mark.parametrize(("report_type", "options", "start", "end"), CASES,
                         ids=[f"{c[0]}-{'-'.join(c[1].values())}" for c in CASES])
def test_every_document_validates_against_its_schema(
    report_type: str, options: dict[str, str], start: Any, end: Any
) -> None:
    assert has_data(WORLD, US, report_type, options, start, end, AS_OF)
    doc, truth, _ = render(report_type, options, start, end)
    schema(VENDOR_REPORT_TYPES[report_type].schema_file).validate(doc)
    arrays = VENDOR_REPORT_TYPES[report_type].arrays
    assert truth.rows == sum(len(doc[a]) for a in arrays) > 0
    assert truth.details["arrays"] == {a: len(doc[a]) for a in arrays}


def money(row: dict[str, Any], field: str) -> Decimal:
    return Decimal(str(row[field]["amount"]))


SALES = "GET_VENDOR_SALES_REPORT"
MANU_RETAIL = {"distributorView": "MANUFACTURING", "sellingProgram": "RETAIL"}


def test_sales_aggregate_is_the_exact_sum_of_its_asins() -> None:
    doc, truth, _ = render(SALES, {"reportPeriod": "WEEK", **MANU_RETAIL}, *RANGES["WEEK"])
    assert len(doc["salesAggregate"]) == 3
    for agg in doc["salesAggregate"]:
        rows = [r for r in doc["salesByAsin"] if r["startDate"] == agg["startDate"]]
        assert len(rows) == US.size * 40 and agg["endDate"] == rows[0]["endDate"]
        for f in ("orderedUnits", "shippedUnits", "customerReturns"):
            assert agg[f] == sum(r[f] for r in rows)
        for f in ("orderedRevenue", "shippedRevenue", "shippedCogs"):
            assert money(agg, f) == sum(money(r, f) for r in rows)
            assert agg[f]["currencyCode"] == "USD"
    # Truth sums are exactly what the document prints.
    assert truth.sums["salesByAsin.shippedRevenue"] == sum(
        money(r, "shippedRevenue") for r in doc["salesByAsin"])
    assert truth.sums["salesAggregate.orderedUnits"] == sum(
        r["orderedUnits"] for r in doc["salesAggregate"])


def test_a_week_is_the_sum_of_its_days() -> None:
    week = (date(2026, 11, 1), date(2026, 11, 7))
    weekly, _, _ = render(SALES, {"reportPeriod": "WEEK", **MANU_RETAIL}, *week)
    daily, _, _ = render(SALES, {"reportPeriod": "DAY", **MANU_RETAIL}, *week)
    assert len(daily["salesAggregate"]) == 7
    for f in ("orderedUnits", "shippedUnits", "customerReturns"):
        assert weekly["salesAggregate"][0][f] == sum(r[f] for r in daily["salesAggregate"])
    assert money(weekly["salesAggregate"][0], "shippedCogs") == sum(
        money(r, "shippedCogs") for r in daily["salesAggregate"])
    traffic_w, _, _ = render("GET_VENDOR_TRAFFIC_REPORT", {"reportPeriod": "WEEK"}, *week)
    traffic_d, _, _ = render("GET_VENDOR_TRAFFIC_REPORT", {"reportPeriod": "DAY"}, *week)
    assert traffic_w["trafficAggregate"][0]["glanceViews"] == sum(
        r["glanceViews"] for r in traffic_d["trafficAggregate"])


def test_fields_follow_view_and_program() -> None:
    sourcing, _, _ = render(SALES, {"reportPeriod": "DAY", "distributorView": "SOURCING",
                                    "sellingProgram": "RETAIL"}, *RANGES["DAY"])
    assert all("orderedUnits" not in r and "orderedRevenue" not in r for r in sourcing["salesByAsin"])
    fresh, _, _ = render(SALES, {"reportPeriod": "DAY", "distributorView": "MANUFACTURING",
                                 "sellingProgram": "FRESH"}, *RANGES["DAY"])
    assert all("customerReturns" not in r for r in fresh["salesAggregate"])
    assert 0 < len({r["asin"] for r in fresh["salesByAsin"]}) < US.size * 40
    # Amazon Fresh is emulated in the US only: a German FRESH request finds no data (CANCELLED).
    assert not has_data(WORLD, DE, SALES, {"reportPeriod": "DAY", **MANU_RETAIL,
                                           "sellingProgram": "FRESH"}, *RANGES["DAY"], AS_OF)
    de, _, _ = render(SALES, {"reportPeriod": "DAY", **MANU_RETAIL}, *RANGES["DAY"], account=DE)
    assert de["salesAggregate"][0]["shippedRevenue"]["currencyCode"] == "EUR"


def test_inventory_rows_and_rates() -> None:
    doc, _, _ = render("GET_VENDOR_INVENTORY_REPORT", {"reportPeriod": "WEEK", **MANU_RETAIL},
                       *RANGES["WEEK"])
    for agg in doc["inventoryAggregate"]:
        rows = [r for r in doc["inventoryByAsin"] if r["startDate"] == agg["startDate"]]
        for f in ("netReceivedInventoryUnits", "sellableOnHandInventoryUnits",
                  "unhealthyInventoryUnits", "openPurchaseOrderUnits"):
            assert agg[f] == sum(r[f] for r in rows)
        for f in ("netReceivedInventoryCost", "sellableOnHandInventoryCost"):
            assert money(agg, f) == sum(money(r, f) for r in rows)
        assert 0 <= agg["uft"] <= 1 and 0 <= agg["procurableProductOutOfStockRate"] <= 1
    daily, _, _ = render("GET_VENDOR_INVENTORY_REPORT", {"reportPeriod": "DAY", **MANU_RETAIL},
                         *RANGES["DAY"])
    # Unhealthy inventory is not available at daily granularity (as at Amazon).
    assert all("unhealthyInventoryUnits" not in r for r in daily["inventoryByAsin"])


def test_nppm_aggregate_is_revenue_weighted() -> None:
    doc, _, _ = render("GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT", {"reportPeriod": "MONTH"},
                       *RANGES["MONTH"])
    for agg in doc["netPureProductMarginAggregate"]:
        margins = [r["netPureProductMargin"] for r in doc["netPureProductMarginByAsin"]
                   if r["startDate"] == agg["startDate"]]
        assert min(margins) <= agg["netPureProductMargin"] <= max(margins)


def test_real_time_hours_add_up_to_the_day() -> None:
    cat = vendor_catalogue(WORLD, US)
    local = date(2026, 11, 18)
    hours, grid = hourly_ordered_units(cat, local)
    assert len(hours) == 24
    totals = sales_day(cat, local, "MANUFACTURING", "RETAIL", AS_OF.date()).ordered_units
    assert (grid.sum(axis=1) == totals).all()
    # The same day through the HTTP document: every full hour of the Pacific day.
    first, last = local_day_hours(local, ZoneInfo(cat.timezone))[::23]
    doc, _, _ = render("GET_VENDOR_REAL_TIME_SALES_REPORT", {}, first, last + timedelta(hours=1))
    assert sum(r["orderedUnits"] for r in doc["reportData"]) == int(totals.sum())
    revenue = sum(Decimal(str(r["orderedRevenue"])) for r in doc["reportData"])
    assert revenue == Decimal(int((totals * cat.price).sum())) / 100
    assert doc["reportSpecification"]["reportOptions"] == {"currencyCode": "USD"}


def test_forecast_percentiles_are_ordered() -> None:
    doc, _, _ = render("GET_VENDOR_FORECASTING_REPORT", {"sellingProgram": "RETAIL"}, None, None)
    rows = doc["forecastByAsin"]
    assert {r["forecastGenerationDate"] for r in rows} == {"2026-11-15"}  # the Sunday before
    assert len({r["startDate"] for r in rows}) == 27
    for r in rows:
        assert 0 <= r["meanForecastUnits"] <= r["p70ForecastUnits"] <= r["p80ForecastUnits"] <= (
            r["p90ForecastUnits"])
        assert (date.fromisoformat(r["endDate"]) - date.fromisoformat(r["startDate"])).days == 6


def test_coupon_totals_and_budgets() -> None:
    options = {"campaignStartDateFrom": "2026-08-01T00:00:00Z",
               "campaignStartDateTo": "2026-08-31T00:00:00Z"}
    doc, truth, _ = render("GET_COUPON_PERFORMANCE_REPORT", options, None, None)
    assert doc["campaigns"]
    for c in doc["campaigns"]:
        assert c["totalClips"] == sum(x["clips"] for x in c["coupons"])
        assert c["totalRedemptions"] == sum(x["redemptions"] for x in c["coupons"])
        for x in c["coupons"]:
            assert x["redemptions"] <= x["clips"] and 0 <= x["budgetPercentageUsed"] <= 100
        assert "2026-08-01" <= c["coupons"][0]["startDateTime"][:10] <= "2026-08-31"
    assert truth.sums["campaigns.totalClips"] == sum(c["totalClips"] for c in doc["campaigns"])


def test_brand_analytics_funnels_and_shares() -> None:
    doc, _, _ = render("GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT",
                       {"reportPeriod": "MONTH"}, *SINGLE["MONTH"])
    for r in doc["dataByAsin"]:
        assert r["impressionData"]["impressionCount"] >= r["clickData"]["clickCount"] >= (
            r["cartAddData"]["cartAddCount"]) >= r["purchaseData"]["purchaseCount"]
    terms, _, _ = render("GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", {"reportPeriod": "WEEK"},
                         *SINGLE["WEEK"])
    by_term: dict[str, float] = {}
    for r in terms["dataByDepartmentAndSearchTerm"]:
        by_term[r["searchTerm"]] = by_term.get(r["searchTerm"], 0) + r["clickShare"]
    assert max(by_term.values()) <= 1.0
    one_asin = WORLD.asins(US.marketplace.marketplace_id)[5]
    sqp, _, _ = render("GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT",
                       {"reportPeriod": "WEEK", "asin": one_asin}, *SINGLE["WEEK"])
    assert {r["asin"] for r in sqp["dataByAsin"]} == {one_asin}
    assert not has_data(WORLD, US, "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT",
                        {"reportPeriod": "WEEK", "asin": "B000NOTMINE"}, *SINGLE["WEEK"], AS_OF)


def test_recent_periods_are_restated_old_ones_are_not() -> None:
    options = {"reportPeriod": "DAY", **MANU_RETAIL}
    recent = (date(2026, 11, 10), date(2026, 11, 16))
    old = (date(2026, 8, 2), date(2026, 8, 8))
    later = AS_OF + timedelta(days=3)
    a, _, _ = render(SALES, options, *recent)
    b, _, _ = render(SALES, options, *recent, as_of=later)
    assert a["salesByAsin"] != b["salesByAsin"]
    # Shipped figures only grow towards their final value; orders are never restated.
    assert sum(r["shippedUnits"] for r in a["salesByAsin"]) < sum(
        r["shippedUnits"] for r in b["salesByAsin"])
    assert [r["orderedUnits"] for r in a["salesByAsin"]] == [r["orderedUnits"] for r in b["salesByAsin"]]
    assert a["reportSpecification"]["lastUpdatedDate"] == "2026-11-20"
    assert b["reportSpecification"]["lastUpdatedDate"] == "2026-11-23"
    c, _, _ = render(SALES, options, *old)
    d, _, _ = render(SALES, options, *old, as_of=later)
    assert c == d
    assert c["reportSpecification"]["lastUpdatedDate"] == "2026-09-07"


def test_same_seed_same_bytes_other_seed_other_data() -> None:
    options = {"reportPeriod": "WEEK", **MANU_RETAIL}
    _, _, one = render(SALES, options, *RANGES["WEEK"])
    _, _, two = render(SALES, options, *RANGES["WEEK"])
    assert b"".join(one) == b"".join(two)
    other = vendor_document(build_world(seed=4), build_world(seed=4).vendor_accounts[0], SALES,
                            options, *RANGES["WEEK"], AS_OF)
    assert b"".join(other.chunks) != b"".join(one)


def test_documents_stream_in_bounded_chunks_and_scale_with_size() -> None:
    big = build_world(seed=3, size=25)
    account = big.vendor_accounts[0]
    plan = vendor_document(big, account, SALES, {"reportPeriod": "DAY", **MANU_RETAIL},
                           *RANGES["DAY"], AS_OF)
    largest = rows = 0
    n_chunks = 0
    for chunk in plan.chunks:
        largest = max(largest, len(chunk))
        n_chunks += 1
    rows = plan.truth.rows
    assert rows == 7 + 7 * 40 * 25
    assert n_chunks > 10 and largest < 2_000_000


def test_every_day_of_a_period_counts() -> None:
    cat = vendor_catalogue(WORLD, US)
    start, end = period_bounds(ReportPeriod.MONTH, date(2026, 9, 15))
    units = sum(int(sales_day(cat, d, "MANUFACTURING", "RETAIL", AS_OF.date()).shipped_units.sum())
                for d in days(start, end))
    doc, _, _ = render(SALES, {"reportPeriod": "MONTH", **MANU_RETAIL}, start, end)
    assert doc["salesAggregate"][0]["shippedUnits"] == units


def test_fatal_document() -> None:
    plan = fatal_document("A client error occurred.")
    assert json.loads(b"".join(plan.chunks)) == {"errorDetails": "A client error occurred."}
