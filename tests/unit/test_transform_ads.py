"""Ads documents to typed batches: exact ids and money, new fields, nulls, and every refusal."""

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
from amzlake.transform import ads as ads_module
from amzlake.transform.model import SliceContext
from amzlake.transform.parse import parse_document

FETCHED = datetime(2025, 6, 18, 12, tzinfo=UTC)
BIG_IDS = [144158449488730278, 9223372036854775807, 2**53 + 1]


def context(time_unit: str = "DAILY", start: date = date(2025, 6, 10),
            end: date = date(2025, 6, 11), **spec: Any) -> SliceContext:
    full = {"reportTypeId": "spCampaigns", "adProduct": "SPONSORED_PRODUCTS",
            "groupBy": ["campaign"], "columns": ["campaignId", "cost", "date"],
            "timeUnit": time_unit, "filters": [], "format": "GZIP_JSON", **spec}
    return SliceContext("ads", "1234", "spCampaigns", full, start, end, "slice-1", "report-1",
                        "raw/ads/x.json.gz", FETCHED, currency_code="EUR")


def gz(text: str | bytes) -> io.BytesIO:
    return io.BytesIO(gzip.compress(text.encode() if isinstance(text, str) else text))


def rows_doc(rows: list[dict[str, Any]], indent: int | None = None) -> io.BytesIO:
    return gz(json.dumps(rows, indent=indent, separators=None if indent else (",", ":")))


def read(ctx: SliceContext, stream: io.BytesIO) -> tuple[pa.Table, Any]:
    doc = parse_document(ctx, stream)
    (rows,) = doc.tables
    batches = list(rows.batches)
    return pa.Table.from_batches(batches, schema=rows.schema), rows


ROWS = [
    {"date": "2025-06-10", "campaignId": BIG_IDS[0], "campaignName": "A", "impressions": 10,
     "clicks": 2, "cost": 14.5, "clickThroughRate": 0.2, "sales14d": 100.05, "acosClicks14d": None},
    {"date": "2025-06-11", "campaignId": BIG_IDS[1], "campaignName": "B},{\"x\":1",
     "impressions": 3, "clicks": 0, "cost": 0.01, "clickThroughRate": 0.0, "sales14d": 0,
     "acosClicks14d": 0.1234},
    {"date": "2025-06-11", "campaignId": BIG_IDS[2], "campaignName": "C", "impressions": 7,
     "clicks": 1, "cost": 1234567.1234, "clickThroughRate": 0.1429, "sales14d": 0.1},
]


@pytest.mark.parametrize("indent", [None, 2], ids=["compact (pyarrow)", "pretty (exact reader)"])
def test_ids_money_dates_and_lineage_are_exact(indent: int | None) -> None:
    table, rows = read(context(), rows_doc(ROWS, indent))
    assert rows.table == "ads_sp_campaigns_daily" and rows.rows == 3
    assert table.column("campaign_id").to_pylist() == BIG_IDS
    assert table.column("cost").to_pylist() == [Decimal("14.5"), Decimal("0.01"),
                                                Decimal("1234567.1234")]
    assert sum(table.column("sales_14d").to_pylist()) == Decimal("100.15")
    assert table.column("click_through_rate").to_pylist() == [0.2, 0.0, 0.1429]
    assert table.column("acos_clicks_14d").to_pylist() == [None, 0.1234, None]  # missing -> null
    assert table.column("campaign_name").to_pylist() == ["A", 'B},{"x":1', "C"]
    assert table.column("report_date").to_pylist() == [date(2025, 6, 10), date(2025, 6, 11),
                                                       date(2025, 6, 11)]
    assert table.column("date").type == pa.date32()
    assert set(table.column("currency").to_pylist()) == {"EUR"}
    assert set(table.column("account_id").to_pylist()) == {"1234"}
    assert set(table.column("fetched_at").to_pylist()) == {FETCHED}
    assert set(table.column("raw_key").to_pylist()) == {"raw/ads/x.json.gz"}
    assert table.column("ad_group_id").null_count == 3  # a column of the type not asked for
    fp = rows.footprint
    assert (fp.account_id, fp.first_day, fp.last_day, fp.fetched_at) == (
        "1234", date(2025, 6, 10), date(2025, 6, 11), FETCHED)
    assert fp.identity_key == context().identity


def test_both_readers_give_the_same_table() -> None:
    fast, _ = read(context(), rows_doc(ROWS))
    exact, _ = read(context(), rows_doc(ROWS, indent=1))
    assert fast.equals(exact)


def test_many_runs_with_cuts_inside_strings_and_rows(monkeypatch: pytest.MonkeyPatch) -> None:
    # Runs of ~64 bytes: most cuts at `},{` fall inside a campaign name or mid-row.
    monkeypatch.setattr(ads_module, "CHUNK_BYTES", 64)
    rows = [{"date": "2025-06-10", "campaignId": 2**60 + i, "campaignName": "x},{y" * (i % 3),
             "cost": i / 100} for i in range(200)]
    table, info = read(context(), rows_doc(rows))
    assert info.rows == 200
    assert table.column("campaign_id").to_pylist() == [2**60 + i for i in range(200)]
    assert table.column("campaign_name").to_pylist() == [r["campaignName"] for r in rows]
    assert sum(table.column("cost").to_pylist()) == sum(Decimal(str(i / 100)) for i in range(200))


def test_unknown_fields_become_new_columns() -> None:
    rows = [{"date": "2025-06-10", "campaignId": 1, "newCount": 5, "newRate": 0.5,
             "newLabel": "2025-06-10", "newFlag": True, "brandNewThing": None},
            {"date": "2025-06-10", "campaignId": 2, "newCount": 7, "newRate": 1, "newLabel": "x"}]
    for stream in (rows_doc(rows), rows_doc(rows, indent=2)):
        table, info = read(context(), stream)
        assert info.schema.names[-5:] == table.schema.names[-5:]
        types = {f.name: str(f.type) for f in table.schema}
        assert types["new_count"] == "int64" and table.column("new_count").to_pylist() == [5, 7]
        assert types["new_rate"] == "double" and table.column("new_rate").to_pylist() == [0.5, 1.0]
        # A date-like string stays the text Amazon sent (pyarrow would make it a timestamp).
        assert table.column("new_label").to_pylist() == ["2025-06-10", "x"]
        assert types["new_flag"] == "bool"
        assert types["brand_new_thing"] == "string"  # null throughout: a nullable string


def test_summary_rows_take_the_slice_first_day() -> None:
    rows = [{"campaignId": 1, "cost": 1.5, "startDate": "2025-06-01", "endDate": "2025-06-30"}]
    table, info = read(context("SUMMARY", date(2025, 6, 1), date(2025, 6, 30)), rows_doc(rows))
    assert info.table == "ads_sp_campaigns_summary"
    assert table.column("report_date").to_pylist() == [date(2025, 6, 1)]
    assert table.column("end_date").to_pylist() == [date(2025, 6, 30)]


def test_empty_array_gives_no_rows() -> None:
    table, info = read(context(), gz(" [ ] \n"))
    assert table.num_rows == 0 and info.rows == 0


def test_daily_rows_without_dates_only_for_one_day() -> None:
    table, _ = read(context(start=date(2025, 6, 10), end=date(2025, 6, 10)),
                    rows_doc([{"campaignId": 1}]))
    assert table.column("report_date").to_pylist() == [date(2025, 6, 10)]
    with pytest.raises(DocumentUnparseable, match="no `date`"):
        read(context(), rows_doc([{"campaignId": 1}]))


def good_gzip() -> bytes:
    return gzip.compress(json.dumps(ROWS * 50).encode())


def corrupt_gzip() -> bytes:
    data = bytearray(good_gzip())
    for i in range(40, 60):
        data[i] ^= 0xFF
    return bytes(data)


UNPARSEABLE = [
    (b"not gzip at all", "not valid gzip"),
    (good_gzip()[:-30], "truncated"),
    (corrupt_gzip(), "not valid gzip|bad JSON|truncated"),
    (gzip.compress(b""), "empty"),
    (gzip.compress(b'{"rows": []}'), "expected a JSON array of report rows"),
    (gzip.compress(b'[{"campaignId": 1, "date": "2025-06-10"}'), "never closed"),
    (gzip.compress(b'[{"campaignId": 1 "date": "2025-06-10"}]'), "bad JSON"),
    (gzip.compress(b'[{"campaignId": 1, "date": "2025-06-10"},]'), "bad JSON"),
    (gzip.compress(b'[{"campaignId": 1, "date": "2025-06-10"}, 5]'), "row 2 is int"),
    (gzip.compress(b'[{"campaignId": "abc", "date": "2025-06-10"}]'),
     "field 'campaignId'.*\"abc\" is not an integer"),
    (gzip.compress(b'[{"campaignId": 1.5, "date": "2025-06-10"}]'), "1.5 is not an integer"),
    (gzip.compress(b'[{"campaignId": 18446744073709551616, "date": "2025-06-10"}]'),
     "not a 64-bit integer"),
    (gzip.compress(b'[{"cost": 1.23456, "date": "2025-06-10"}]'), "at most 4 decimals"),
    (gzip.compress(b'[{"cost": "x", "date": "2025-06-10"}]'), "is not a number"),
    (gzip.compress(b'[{"campaignId": 1, "date": "10/06/2025"}]'), "10/06/2025"),
    (gzip.compress(b'[{"campaignId": 1, "date": "2025-07-01"}]'), "outside the slice"),
    (gzip.compress(b'[{"campaignId": 1, "date": "2025-06-10"}] trailing'), "never closed"),
]


# Ids from the reasons: gzip bytes carry a timestamp, so ids made from them would differ between
# the test processes of a parallel run.
@pytest.mark.parametrize(("raw", "reason"), UNPARSEABLE, ids=[r for _, r in UNPARSEABLE])
def test_unparseable_documents_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentUnparseable, match=reason) as info:
        read(context(), io.BytesIO(raw))
    assert info.value.exit_code == 1 and info.value.reason == str(info.value)


def test_unknown_report_type_is_refused_at_once() -> None:
    with pytest.raises(DocumentUnparseable, match="unknown Ads report type 'spNope'"):
        parse_document(context(reportTypeId="spNope"), rows_doc(ROWS))


def test_a_known_field_first_seen_in_a_later_run_keeps_its_declared_type(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ads_module, "CHUNK_BYTES", 256)
    rows = [{"date": "2025-06-10", "campaignId": i} for i in range(40)]
    rows += [{"date": "2025-06-10", "campaignId": 99, "cost": 1.5, "clicks": 2**62}]
    table, info = read(context(), rows_doc(rows))
    assert table.schema.field("cost").type == pa.decimal128(18, 4)
    assert table.column("cost").to_pylist()[-1] == Decimal("1.5")
    assert table.column("clicks").to_pylist()[-1] == 2**62
    assert info.schema.names == table.schema.names  # no new column for a known field


def test_abandoning_a_document_stops_its_reader(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ads_module, "CHUNK_BYTES", 256)
    doc = parse_document(context(), rows_doc([{"date": "2025-06-10", "campaignId": i}
                                              for i in range(500)]))
    batches = doc.tables[0].batches
    first = next(batches)
    assert first.num_rows > 0
    batches.close()  # the gunzip worker thread is told to stop and joined
    import threading
    assert not [t for t in threading.enumerate() if t.name == "amzlake-gunzip" and t.is_alive()]


# ---- CSV (the gross-and-invalid-traffic reports offer it) ------------------------------------


def gi_context(fmt: str = "CSV") -> SliceContext:
    return context(reportTypeId="spGrossAndInvalids", groupBy=["campaign"], format=fmt,
                   columns=["date", "campaignName", "grossImpressions", "invalidClickThroughRate"])


GI_ROWS = [
    {"date": "2025-06-10", "campaignName": "Spring, \"big\"\nsale", "grossImpressions": 2**40,
     "invalidClickThroughRate": 0.125, "newField": "007"},
    {"date": "2025-06-11", "campaignName": "B", "grossImpressions": 0,
     "invalidClickThroughRate": None, "newField": "x"},
]


def gi_csv(rows: list[dict[str, Any]]) -> io.BytesIO:
    import csv

    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: "" if v is None else v for k, v in r.items()} for r in rows)
    return gz(out.getvalue())


def test_a_csv_document_gives_the_same_table_as_its_json() -> None:
    from_csv, rows = read(gi_context("CSV"), gi_csv(GI_ROWS))
    from_json, _ = read(gi_context("GZIP_JSON"), rows_doc(GI_ROWS))
    assert rows.table == "ads_sp_gross_and_invalids_daily" and rows.rows == 2
    assert from_csv.column("campaign_name").to_pylist() == ['Spring, "big"\nsale', "B"]
    assert from_csv.column("gross_impressions").to_pylist() == [2**40, 0]
    assert from_csv.column("invalid_click_through_rate").to_pylist() == [0.125, None]
    assert from_csv.column("report_date").to_pylist() == [date(2025, 6, 10), date(2025, 6, 11)]
    # A field the catalogue does not know: a new string column, its text as sent ("007").
    assert from_csv.column("new_field").to_pylist() == ["007", "x"]
    assert from_csv.schema == from_json.schema
    # Every column alike, lineage included: the same identity, so switching the format of a
    # report replaces its rows rather than adding a second copy.
    assert from_csv.drop_columns(["new_field"]).equals(from_json.drop_columns(["new_field"]))


def test_a_csv_document_in_many_blocks_keeps_every_row() -> None:
    # Names with line breaks (quoted), so some fall on the reader's block boundaries.
    many = [{"date": f"2025-06-1{i % 2}", "campaignName": f"c{i}\nline 2", "grossImpressions": i,
             "invalidClickThroughRate": i / 1000} for i in range(60_000)]
    table, rows = read(gi_context(), gi_csv(many))
    assert rows.rows == table.num_rows == 60_000
    assert sum(table.column("gross_impressions").to_pylist()) == sum(range(60_000))
    assert table.column("campaign_name").to_pylist() == [r["campaignName"] for r in many]


@pytest.mark.parametrize(("raw", "reason"), [
    (b"", "empty: expected a CSV header"),
    (b"date,date\n2025-06-10,2025-06-10\n", "empty or repeated names"),
    (b"date,grossImpressions\n2025-06-10,many\n", "bad CSV after row 0"),
    (b"date,grossImpressions\n2025-06-10,1,2\n", "bad CSV"),
], ids=["empty", "repeated names", "not a number", "extra cell"])
def test_unparseable_csv_documents_say_why(raw: bytes, reason: str) -> None:
    with pytest.raises(DocumentUnparseable, match=reason):
        read(gi_context(), gz(raw))


def test_a_truncated_csv_document_is_refused() -> None:
    body = gzip.compress(gi_csv(GI_ROWS * 2000).getvalue())
    with pytest.raises(DocumentUnparseable, match="truncated"):
        read(gi_context(), io.BytesIO(body[: len(body) // 2]))
