"""Vendor documents to typed batches: Amounts, nested objects, child tables, dates, refusals."""

from __future__ import annotations

import gzip
import io
import json
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pytest

from amzlake.errors import DocumentUnparseable
from amzlake.transform.model import SliceContext
from amzlake.transform.parse import parse_document

FETCHED = datetime(2025, 6, 18, 12, tzinfo=UTC)


def context(report_type: str, options: dict[str, str], start: date | datetime,
            end: date | datetime) -> SliceContext:
    spec = {"reportType": report_type, "reportOptions": options}
    return SliceContext("vendor", "amzn1.vg.1", report_type, spec, start, end, "slice-v",
                        "report-v", "raw/vendor/x.json.gz", FETCHED, currency_code="USD")


def gz(doc: Any) -> io.BytesIO:
    text = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    return io.BytesIO(gzip.compress(text))


def read_all(ctx: SliceContext, stream: io.BytesIO, order: list[str] | None = None
             ) -> dict[str, pa.Table]:
    doc = parse_document(ctx, stream)
    by_name = {t.table: t for t in doc.tables}
    out = {}
    for name in order or list(by_name):
        t = by_name[name]
        batches = list(t.batches)
        out[name] = pa.Table.from_batches(batches, schema=t.schema)
        assert t.rows == out[name].num_rows
    return out


def money(amount: str) -> dict[str, Any]:
    return {"amount": float(amount), "currencyCode": "USD"}


SALES_OPTIONS = {"reportPeriod": "DAY", "distributorView": "MANUFACTURING",
                 "sellingProgram": "RETAIL"}


def sales_doc(**extra_row: Any) -> dict[str, Any]:
    def row(day: str, asin: str | None, revenue: str) -> dict[str, Any]:
        r: dict[str, Any] = {"startDate": day, "endDate": day}
        if asin:
            r["asin"] = asin
        r.update({"customerReturns": 1, "orderedRevenue": money(revenue), "orderedUnits": 2,
                  "shippedCogs": money("1.10"), "shippedRevenue": money(revenue),
                  "shippedUnits": 3})
        return r

    return {
        "reportSpecification": {"reportType": "GET_VENDOR_SALES_REPORT",
                                "reportOptions": SALES_OPTIONS, "lastUpdatedDate": "2025-06-17",
                                "dataStartTime": "2025-06-10", "dataEndTime": "2025-06-11",
                                "marketplaceIds": ["ATVPDKIKX0DER"]},
        "salesAggregate": [row("2025-06-10", None, "30.30"), row("2025-06-11", None, "0.01")],
        "salesByAsin": [row("2025-06-10", "B000000001", "10.10"),
                        {**row("2025-06-10", "B000000002", "20.20"), **extra_row},
                        row("2025-06-11", "B000000001", "0.01")],
    }


SALES_CTX = context("GET_VENDOR_SALES_REPORT", SALES_OPTIONS, date(2025, 6, 10), date(2025, 6, 11))


@pytest.mark.parametrize("order", [["vendor_sales_aggregate", "vendor_sales_by_asin"],
                                   ["vendor_sales_by_asin", "vendor_sales_aggregate"]])
def test_sales_amounts_options_and_dates(order: list[str]) -> None:
    tables = read_all(SALES_CTX, gz(sales_doc()), order)
    agg, by_asin = tables["vendor_sales_aggregate"], tables["vendor_sales_by_asin"]
    assert (agg.num_rows, by_asin.num_rows) == (2, 3)
    assert by_asin.column("shipped_revenue_amount").type == pa.decimal128(18, 4)
    assert sum(by_asin.column("shipped_revenue_amount").to_pylist()) == Decimal("30.31")
    assert set(by_asin.column("shipped_revenue_currency").to_pylist()) == {"USD"}
    assert by_asin.column("asin").to_pylist() == ["B000000001", "B000000002", "B000000001"]
    assert by_asin.column("report_date").to_pylist() == [date(2025, 6, 10), date(2025, 6, 10),
                                                         date(2025, 6, 11)]
    for t in (agg, by_asin):
        assert set(t.column("report_period").to_pylist()) == {"DAY"}
        assert set(t.column("distributor_view").to_pylist()) == {"MANUFACTURING"}
        assert set(t.column("selling_program").to_pylist()) == {"RETAIL"}
        assert set(t.column("last_updated_date").to_pylist()) == {date(2025, 6, 17)}
        assert set(t.column("remote_report_id").to_pylist()) == {"report-v"}


def test_footprint_covers_the_slice_days() -> None:
    doc = parse_document(SALES_CTX, gz(sales_doc()))
    for t in doc.tables:
        assert (t.footprint.first_day, t.footprint.last_day) == (date(2025, 6, 10),
                                                                 date(2025, 6, 11))
        assert t.footprint.identity_key == SALES_CTX.identity


def test_unknown_fields_become_columns_and_missing_ones_are_null() -> None:
    doc = sales_doc(newScore=7, newRatio=0.25, newMoney={"amount": 1.5, "currencyCode": "USD"},
                    newBlock={"inner": "x"}, newList=[1, 2])
    del doc["salesByAsin"][0]["customerReturns"]
    by_asin = read_all(SALES_CTX, gz(doc))["vendor_sales_by_asin"]
    assert by_asin.column("customer_returns").to_pylist() == [None, 1, 1]
    assert by_asin.column("new_score").to_pylist() == [None, 7, None]
    assert by_asin.column("new_score").type == pa.int64()
    assert by_asin.column("new_ratio").type == pa.float64()
    assert by_asin.column("new_money_amount").type == pa.float64()  # new: inferred, not declared
    assert by_asin.column("new_money_currency").to_pylist() == [None, "USD", None]
    assert by_asin.column("new_block_inner").to_pylist() == [None, "x", None]
    assert by_asin.column("new_list").to_pylist() == [None, "[1,2]", None]


def test_real_time_hours_are_utc_and_a_slice_to_midnight_stays_in_its_day() -> None:
    doc = {"reportSpecification": {"reportType": "GET_VENDOR_REAL_TIME_SALES_REPORT",
                                   "reportOptions": {"currencyCode": "USD"}},
           "reportData": [{"startTime": "2025-06-17T22:00:00Z", "endTime": "2025-06-17T23:00:00Z",
                           "asin": "B1", "orderedUnits": 2, "orderedRevenue": 19.98},
                          {"startTime": "2025-06-17T23:00:00+00:00",
                           "endTime": "2025-06-18T00:00:00Z", "asin": "B2", "orderedUnits": 1,
                           "orderedRevenue": 5}]}
    ctx = context("GET_VENDOR_REAL_TIME_SALES_REPORT", {},
                  datetime(2025, 6, 17, 0, tzinfo=UTC), datetime(2025, 6, 18, 0, tzinfo=UTC))
    parsed = parse_document(ctx, gz(doc))
    (rows,) = parsed.tables
    assert (rows.footprint.first_day, rows.footprint.last_day) == (date(2025, 6, 17),) * 2
    t = pa.Table.from_batches(list(rows.batches), schema=rows.schema)
    assert rows.table == "vendor_real_time_sales"
    assert t.column("start_time").type == pa.timestamp("us", tz="UTC")
    assert t.column("start_time").to_pylist()[1] == datetime(2025, 6, 17, 23, tzinfo=UTC)
    assert t.column("report_date").to_pylist() == [date(2025, 6, 17)] * 2
    assert t.column("ordered_revenue").to_pylist() == [Decimal("19.98"), Decimal("5")]
    assert t.column("currency_code").to_pylist() == ["USD", "USD"]


def test_nested_brand_analytics_objects_are_flattened() -> None:
    doc = {"reportSpecification": {"dataStartTime": "2025-06-01", "dataEndTime": "2025-06-07"},
           "dataByAsin": [{"startDate": "2025-06-01", "endDate": "2025-06-07", "asin": "B1",
                           "impressionData": {"impressionCount": 10,
                                              "impressionMedianPrice": money("22.99")},
                           "clickData": {"clickCount": 2, "clickRate": 0.2}}]}
    ctx = context("GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT",
                  {"reportPeriod": "WEEK"}, date(2025, 6, 1), date(2025, 6, 7))
    t = read_all(ctx, gz(doc))["vendor_ba_search_catalog_performance_by_asin"]
    row = t.to_pylist()[0]
    assert row["impression_data_impression_count"] == 10
    assert row["impression_data_impression_median_price_amount"] == Decimal("22.99")
    assert row["click_data_click_rate"] == 0.2
    assert row["purchase_data_purchase_count"] is None
    assert row["report_period"] == "WEEK" and row["option_asins"] is None


def test_coupon_campaigns_feed_three_tables_with_their_parents_keys() -> None:
    doc = {"reportSpecification": {"reportType": "GET_COUPON_PERFORMANCE_REPORT"},
           "campaigns": [{"campaignId": "C1", "currencyCode": "USD", "totalClips": 5,
                          "coupons": [{"couponId": "K1", "startDateTime": "2025-05-21T06:00:00Z",
                                       "clips": 3, "budget": 100, "totalDiscount": 1.25,
                                       "asins": [{"asin": "B1", "discountAmount": 26},
                                                 {"asin": "B2", "discountAmount": 10.5}]},
                                      {"couponId": "K2", "startDateTime": "2025-05-20T06:00:00Z",
                                       "clips": 2, "asins": []}]}]}
    ctx = context("GET_COUPON_PERFORMANCE_REPORT", {}, date(2025, 5, 20), date(2025, 6, 15))
    tables = read_all(ctx, gz(doc))
    camp, coupons, asins = (tables["vendor_coupon_campaigns"], tables["vendor_coupons"],
                            tables["vendor_coupon_asins"])
    assert camp.column("total_clips").to_pylist() == [5]
    assert "coupons" not in camp.column_names
    assert coupons.column("coupon_id").to_pylist() == ["K1", "K2"]
    assert coupons.column("campaign_id").to_pylist() == ["C1", "C1"]
    assert coupons.column("currency_code").to_pylist() == ["USD", "USD"]
    assert sum(coupons.column("clips").to_pylist()) == 5
    assert coupons.column("total_discount").to_pylist() == [Decimal("1.25"), None]
    assert asins.column("coupon_id").to_pylist() == ["K1", "K1"]
    assert asins.column("discount_amount").to_pylist() == [26.0, 10.5]
    # Every level is dated by the campaign's first coupon start (UTC).
    for t in (camp, coupons, asins):
        assert set(t.column("report_date").to_pylist()) == {date(2025, 5, 20)}


def test_search_terms_rows_take_the_report_period_start() -> None:
    doc = {"reportSpecification": {"dataStartTime": "2025-06-01", "dataEndTime": "2025-06-07"},
           "dataByDepartmentAndSearchTerm": [{"searchTerm": "lamp", "clickShare": 0.5}]}
    ctx = context("GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", {"reportPeriod": "WEEK"},
                  date(2025, 6, 1), date(2025, 6, 7))
    t = read_all(ctx, gz(doc))["vendor_ba_search_terms"]
    assert t.column("report_date").to_pylist() == [date(2025, 6, 1)]


UNPARSEABLE = [
    (b"plain text", "not valid gzip"),
    (gzip.compress(json.dumps(sales_doc()).encode())[:-20], "truncated"),
    (gzip.compress(b'[{"a": 1}]'), "expected a JSON object.*found an array"),
    (gzip.compress(b'{"salesByAsin": {"asin": "B1"}}'), "salesByAsin should be an array"),
    (gzip.compress(b'{"salesByAsin": [1]}'), r"salesByAsin\[1\] is int"),
    (gzip.compress(b'{"salesByAsin": [{"asin": "B1",}]}'), "bad JSON"),
    (gzip.compress(b'{"salesByAsin": [{"asin": "B1"}]'), "ends before its JSON object is closed"),
    (gzip.compress(b'{"salesByAsin": [{"asin": "B1", "startDate": "2025-06-10"}]} {}'),
     "after the document's object"),
    (gzip.compress(b'{"errorDetails": "Report period is not valid"}'),
     "FATAL error report: Report period is not valid"),
    (gzip.compress(b'{"salesByAsin": [{"startDate": "2025-06-10", "orderedUnits": "many"}]}'),
     "column 'ordered_units'.*\"many\" is not an integer"),
    (gzip.compress(b'{"salesByAsin": [{"startDate": "2025-06-10", '
                   b'"orderedRevenue": {"amount": 1.00001, "currencyCode": "USD"}}]}'),
     "at most 4 decimals"),
    (gzip.compress(b'{"salesByAsin": [{"startDate": "2025-07-10"}]}'), "outside the slice"),
]


# Ids from the reasons: gzip bytes carry a timestamp, so ids made from them would differ between
# the test processes of a parallel run.
@pytest.mark.parametrize(("raw", "reason"), UNPARSEABLE, ids=[r for _, r in UNPARSEABLE])
def test_unparseable_documents_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentUnparseable, match=reason):
        read_all(SALES_CTX, io.BytesIO(raw))


def test_unknown_vendor_report_type_is_refused() -> None:
    with pytest.raises(DocumentUnparseable, match="unknown vendor report type"):
        parse_document(context("GET_NOPE", {}, date(2025, 6, 1), date(2025, 6, 1)), gz({}))
