"""The vendor report registry, period arithmetic and the 400-versus-FATAL judgement of a create."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from amzlake.catalog.periods import (
    ReportPeriod,
    count_periods,
    full_hours,
    is_aligned,
    period_bounds,
    split_periods,
)
from amzlake.catalog.vendor import (
    CLIENT_ERROR_TEXT,
    DAY_SAME_DAY_TEXT,
    VENDOR_REPORT_TYPES,
    DateRule,
    FatalRule,
    VendorRequestRejected,
    option_combinations,
    validate_create,
)

SCHEMAS = Path(__file__).resolve().parents[3] / "shared" / "reference" / "spapi" / "schemas" / "reports"
US = "ATVPDKIKX0DER"
NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
dates = st.dates(min_value=date(1990, 1, 1), max_value=date(2100, 12, 31))
periods = st.sampled_from(list(ReportPeriod))


# ---- Registry -----------------------------------------------------------------------------------


def test_registry_covers_every_vendor_schema() -> None:
    vendor_schemas = {p.name for p in SCHEMAS.glob("vendor*.json")}
    ba_schemas = {p.name for p in SCHEMAS.glob("sellingPartner*.json")}
    registered = {t.schema_file for t in VENDOR_REPORT_TYPES.values()}
    assert vendor_schemas | ba_schemas <= registered
    assert len(VENDOR_REPORT_TYPES) == 15


@pytest.mark.parametrize("rt", VENDOR_REPORT_TYPES.values(), ids=lambda t: t.report_type)
def test_registry_matches_the_schema(rt: Any) -> None:
    schema = json.loads((SCHEMAS / rt.schema_file).read_text())
    assert set(rt.arrays) <= set(schema["required"])
    spec = schema["properties"]["reportSpecification"]["properties"]
    options = spec.get("reportOptions", {}).get("properties", {})
    if "reportPeriod" in options and "enum" in options["reportPeriod"]:
        assert {p.value for p in rt.periods} == set(options["reportPeriod"]["enum"])
    for name in ("distributorView", "sellingProgram"):
        if name in options and rt.option(name) is not None:
            assert set(rt.option(name).values) == set(options[name]["enum"])
    if rt.date_rule is DateRule.PERIODS:
        assert rt.periods and rt.option("reportPeriod") is not None


def test_option_combinations_of_sales_are_the_cross_product() -> None:
    combos = option_combinations(VENDOR_REPORT_TYPES["GET_VENDOR_SALES_REPORT"])
    assert len(combos) == 5 * 2 * 3
    assert {"reportPeriod": "WEEK", "distributorView": "SOURCING", "sellingProgram": "FRESH"} in combos


# ---- Period arithmetic --------------------------------------------------------------------------


@given(periods, dates)
def test_period_bounds_hold_the_day_and_are_aligned(period: ReportPeriod, day: date) -> None:
    start, end = period_bounds(period, day)
    assert start <= day <= end
    assert is_aligned(period, start, end)
    assert period_bounds(period, start) == (start, end) == period_bounds(period, end)
    # The next period starts the day after.
    assert period_bounds(period, end + timedelta(days=1))[0] == end + timedelta(days=1)


@given(dates)
def test_weeks_run_sunday_to_saturday(day: date) -> None:
    start, end = period_bounds(ReportPeriod.WEEK, day)
    assert start.weekday() == 6 and end.weekday() == 5 and (end - start).days == 6


@given(dates)
def test_months_quarters_years_are_calendar_periods(day: date) -> None:
    m0, m1 = period_bounds(ReportPeriod.MONTH, day)
    q0, q1 = period_bounds(ReportPeriod.QUARTER, day)
    y0, y1 = period_bounds(ReportPeriod.YEAR, day)
    assert m0 == day.replace(day=1) and (m1 + timedelta(days=1)).day == 1
    assert q0.month in (1, 4, 7, 10) and q0.day == 1 and (q1 - q0).days in (89, 90, 91)
    assert (y0, y1) == (date(day.year, 1, 1), date(day.year, 12, 31))


@given(periods, dates, st.integers(0, 400))
def test_split_covers_the_range_with_contiguous_periods(
    period: ReportPeriod, start: date, length: int
) -> None:
    end = start + timedelta(days=length)
    parts = split_periods(period, start, end)
    assert parts[0][0] <= start and parts[-1][1] >= end
    assert len(parts) == count_periods(period, start, end)
    for (_, e), (s, _) in pairwise(parts):
        assert s == e + timedelta(days=1)
    if is_aligned(period, start, end):
        assert parts[0][0] == start and parts[-1][1] == end


def test_misaligned_examples() -> None:
    assert is_aligned(ReportPeriod.WEEK, date(2021, 6, 6), date(2021, 6, 19))  # schema example
    assert not is_aligned(ReportPeriod.WEEK, date(2021, 6, 7), date(2021, 6, 19))
    assert not is_aligned(ReportPeriod.MONTH, date(2021, 6, 1), date(2021, 6, 29))
    assert is_aligned(ReportPeriod.QUARTER, date(2021, 4, 1), date(2021, 9, 30))


def test_full_hours_inside_a_range() -> None:
    start = datetime(2022, 4, 20, 19, 30, tzinfo=UTC)
    hours = full_hours(start, datetime(2022, 4, 20, 22, 10, tzinfo=UTC))
    assert [h.hour for h in hours] == [20, 21]
    assert full_hours(start, start + timedelta(minutes=50)) == []


# ---- Validation ---------------------------------------------------------------------------------


def sales(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "reportType": "GET_VENDOR_SALES_REPORT",
        "marketplaceIds": [US],
        "dataStartTime": "2026-11-01T00:00:00Z",
        "dataEndTime": "2026-11-07T23:59:59Z",
        "reportOptions": {"reportPeriod": "DAY", "distributorView": "MANUFACTURING",
                          "sellingProgram": "RETAIL"},
    }
    body.update(overrides)
    return body


def judge(body: Any, now: datetime = NOW) -> Any:
    return validate_create(body, now=now, account_marketplace_id=US)


def test_a_valid_request_runs() -> None:
    decision = judge(sales())
    assert decision.fatal is None
    assert decision.request.start_day == date(2026, 11, 1)
    assert decision.request.end_day == date(2026, 11, 7)


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ([1, 2], "JSON object"),
        (sales(reportType=None), "reportType"),
        (sales(reportType="GET_NOT_A_REPORT"), "Invalid reportType"),
        (sales(marketplaceIds=[]), "marketplaceIds"),
        (sales(marketplaceIds=US), "marketplaceIds"),
        (sales(marketplaceIds=[US] * 26), "1 to 25"),
        (sales(reportOptions="DAY"), "reportOptions"),
        (sales(reportOptions={"reportPeriod": 1}), "must be a string"),
        (sales(dataStartTime="yesterday"), "dataStartTime"),
        (sales(dataEndTime="2026-11-21T00:00:00Z"), "dataEndTime must be prior"),
        (sales(dataStartTime="2026-11-30", dataEndTime="2026-11-30"), "dataStartTime must be prior"),
    ],
)
def test_malformed_requests_are_rejected_with_400(body: Any, fragment: str) -> None:
    with pytest.raises(VendorRequestRejected) as err:
        judge(body)
    assert fragment in err.value.message


def test_missing_options_fatal_with_amazons_text() -> None:
    decision = judge(sales(reportOptions={"reportPeriod": "DAY"}))
    assert decision.fatal.rule is FatalRule.MISSING_OPTIONS
    assert decision.fatal.text == (
        "This report type requires the distributorView, sellingProgram reportOption to be "
        "specified. Please review the document for this report type on GitHub, provide a value "
        "for this reportOption in your request, and try again."
    )
    # Options sent as a list are accepted and end FATAL for missing options, as at Amazon.
    listed = judge(sales(reportOptions=[{"reportPeriod": "DAY"}]))
    assert listed.fatal.text.startswith(
        "This report type requires the reportPeriod, distributorView, sellingProgram reportOption"
    )


WEEK = {"reportPeriod": "WEEK", "distributorView": "MANUFACTURING", "sellingProgram": "RETAIL"}


@pytest.mark.parametrize(
    ("body", "rule", "text"),
    [
        (sales(reportOptions={**WEEK, "sellingProgram": "WHOLESALE"}), FatalRule.INVALID_OPTION,
         CLIENT_ERROR_TEXT),
        (sales(reportOptions={**WEEK, "viewBy": "vendorcode"}), FatalRule.UNKNOWN_OPTION,
         CLIENT_ERROR_TEXT),
        ({**sales(), "reportType": "GET_VENDOR_TRAFFIC_REPORT"}, FatalRule.UNKNOWN_OPTION,
         CLIENT_ERROR_TEXT),
        (sales(marketplaceIds=["A1PA6795UKMFR9"]), FatalRule.MARKETPLACE, CLIENT_ERROR_TEXT),
        (sales(marketplaceIds=[US, "A2EUQ1WTGCTBG2"]), FatalRule.MARKETPLACE, CLIENT_ERROR_TEXT),
        (sales(dataStartTime="2026-11-07", dataEndTime="2026-11-01"), FatalRule.RANGE_ORDER,
         CLIENT_ERROR_TEXT),
        # A WEEK must start on a Sunday (2026-11-02 is a Monday).
        (sales(reportOptions=WEEK, dataStartTime="2026-11-02", dataEndTime="2026-11-14"),
         FatalRule.MISALIGNED, CLIENT_ERROR_TEXT),
        # 16 days of DAY data: the maximum is 15.
        (sales(dataStartTime="2026-10-01", dataEndTime="2026-10-16"), FatalRule.SPAN,
         CLIENT_ERROR_TEXT),
        # DAY data starts at most 1,460 days back.
        (sales(dataStartTime="2022-11-19", dataEndTime="2022-11-20"), FatalRule.LOOKBACK,
         CLIENT_ERROR_TEXT),
        # Yesterday's DAY data needs 72 hours after the Pacific close.
        (sales(dataStartTime="2026-11-18", dataEndTime="2026-11-19"), FatalRule.NOT_AVAILABLE,
         CLIENT_ERROR_TEXT),
        ({"reportType": "GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT", "marketplaceIds": [US],
          "dataStartTime": "2026-11-01", "dataEndTime": "2026-11-02",
          "reportOptions": {"reportPeriod": "DAY"}}, FatalRule.SPAN, DAY_SAME_DAY_TEXT),
        ({"reportType": "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", "marketplaceIds": [US],
          "dataStartTime": "2026-10-04", "dataEndTime": "2026-10-17",
          "reportOptions": {"reportPeriod": "WEEK"}}, FatalRule.SPAN, CLIENT_ERROR_TEXT),
    ],
)
def test_accepted_requests_that_end_fatal(body: dict[str, Any], rule: FatalRule, text: str) -> None:
    decision = judge(body)
    assert decision.fatal is not None
    assert (decision.fatal.rule, decision.fatal.text) == (rule, text)


def test_availability_lag_per_period() -> None:
    # Week 2026-11-08..14 closes at Pacific midnight on the 15th (08:00 UTC); +48 h.
    body = sales(reportOptions=WEEK, dataStartTime="2026-11-08", dataEndTime="2026-11-14")
    assert judge(body, now=datetime(2026, 11, 17, 7, 59, tzinfo=UTC)).fatal.rule is FatalRule.NOT_AVAILABLE
    assert judge(body, now=datetime(2026, 11, 17, 8, 0, tzinfo=UTC)).fatal is None


def test_day_lookback_boundary() -> None:
    first_ok = date(2026, 11, 20) - timedelta(days=1460)
    ok = sales(dataStartTime=first_ok.isoformat(), dataEndTime=first_ok.isoformat())
    assert judge(ok).fatal is None
    too_old = (first_ok - timedelta(days=1)).isoformat()
    assert judge(sales(dataStartTime=too_old, dataEndTime=too_old)).fatal.rule is FatalRule.LOOKBACK


def rt_body(report_type: str, start: datetime, end: datetime) -> dict[str, Any]:
    return {"reportType": report_type, "marketplaceIds": [US],
            "dataStartTime": start.isoformat(), "dataEndTime": end.isoformat()}


def test_real_time_windows() -> None:
    inventory = "GET_VENDOR_REAL_TIME_INVENTORY_REPORT"
    assert judge(rt_body(inventory, NOW - timedelta(hours=30), NOW - timedelta(hours=8))).fatal is None
    assert judge(rt_body(inventory, NOW - timedelta(hours=169), NOW - timedelta(hours=150))
                 ).fatal.rule is FatalRule.LOOKBACK
    assert judge(rt_body(inventory, NOW - timedelta(hours=30), NOW)).fatal.rule is FatalRule.SPAN
    traffic = "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT"
    assert judge(rt_body(traffic, NOW - timedelta(hours=3), NOW - timedelta(minutes=61))).fatal is None
    assert judge(rt_body(traffic, NOW - timedelta(hours=3), NOW - timedelta(minutes=59))
                 ).fatal.rule is FatalRule.HOUR_WINDOW


def test_coupon_windows() -> None:
    def coupon(lo: str, hi: str) -> dict[str, Any]:
        return {"reportType": "GET_COUPON_PERFORMANCE_REPORT", "marketplaceIds": [US],
                "reportOptions": {"campaignStartDateFrom": lo, "campaignStartDateTo": hi}}

    assert judge(coupon("2026-10-01T00:00:00Z", "2026-10-31T00:00:00Z")).fatal is None
    assert judge(coupon("2024-10-01T00:00:00Z", "2024-10-20T00:00:00Z")).fatal.rule is FatalRule.LOOKBACK
    assert judge(coupon("2026-08-01T00:00:00Z", "2026-10-31T00:00:00Z")).fatal.rule is FatalRule.SPAN
    assert judge(coupon("tomorrow", "2026-10-31T00:00:00Z")).fatal.rule is FatalRule.INVALID_OPTION
    missing = judge({**coupon("a", "b"), "reportOptions": {}}).fatal
    assert missing.rule is FatalRule.MISSING_OPTIONS and "campaignStartDateFrom" in missing.text


def test_forecast_needs_only_a_selling_program() -> None:
    body = {"reportType": "GET_VENDOR_FORECASTING_REPORT", "marketplaceIds": [US],
            "reportOptions": {"sellingProgram": "FRESH"}}
    assert judge(body).fatal is None
    assert judge({**body, "reportOptions": {"sellingProgram": "BUSINESS"}}).fatal.rule is (
        FatalRule.INVALID_OPTION
    )


def test_dedupe_key_ignores_time_of_day_for_period_reports() -> None:
    a = judge(sales()).request.dedupe_key()
    b = judge(sales(dataStartTime="2026-11-01T08:00:00Z", dataEndTime="2026-11-07")).request.dedupe_key()
    c = judge(sales(dataEndTime="2026-11-06")).request.dedupe_key()
    assert a == b != c
