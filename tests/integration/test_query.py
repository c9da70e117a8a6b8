"""DuckDB over the curated lake: tables by name, day-one views with known answers, the CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from pyiceberg.catalog import Catalog

from amzlake.lake.catalog import open_catalog
from amzlake.lake.query import LakeAccount, open_duckdb
from amzlake.lake.writer import LakeWriter
from amzlake.transform.model import LINEAGE_FIELDS, Footprint, TableRows
from tests.integration.lake_helpers import BIG_ID, T0, day, slice_rows

D = day(0)
US, CA = "ATVPDKIKX0DER", "A2EUQ1WTGCTBG2"
MONEY = pa.decimal128(18, 4)


def table_rows(table: str, fields: list[pa.Field], records: list[dict[str, Any]], account: str,
               days: tuple[date, date] = (D, D)) -> TableRows:
    """A slice of hand-written records (lineage filled in) for `table`."""
    schema = pa.schema([*LINEAGE_FIELDS, *fields])
    lineage = {"account_id": account, "identity_key": f"id-{table}", "slice_key": "s",
               "remote_report_id": "r", "raw_key": "raw/k", "fetched_at": T0}
    full = [{"report_date": D, **lineage, **r} for r in records]
    batch = pa.RecordBatch.from_pylist(full, schema=schema)
    return TableRows(table, schema, iter([batch]),
                     Footprint(account, f"id-{table}", days[0], days[1], T0))


def ads_rows(table: str, records: list[dict[str, Any]], account: str = "1001",
             currency: str = "USD", asin_column: str | None = None) -> TableRows:
    fields = [pa.field("campaign_id", pa.int64()), pa.field("impressions", pa.int64()),
              pa.field("clicks", pa.int64()), pa.field("cost", MONEY),
              pa.field("sales_14d" if table.startswith("ads_sp") else "sales", MONEY),
              pa.field("currency", pa.string())]
    if asin_column:
        fields.append(pa.field(asin_column, pa.string()))
    full = [{"campaign_id": BIG_ID, "impressions": 100, "clicks": 5, "currency": currency, **r}
            for r in records]
    return table_rows(table, fields, full, account)


def vendor_rows(records: list[dict[str, Any]], account: str = "VENDOR1") -> TableRows:
    fields = [pa.field("report_period", pa.string()), pa.field("distributor_view", pa.string()),
              pa.field("selling_program", pa.string()), pa.field("asin", pa.string()),
              pa.field("shipped_revenue_amount", MONEY),
              pa.field("shipped_revenue_currency", pa.string()),
              pa.field("shipped_units", pa.int64())]
    full = [{"report_period": "DAY", "distributor_view": "MANUFACTURING",
             "selling_program": "RETAIL", "shipped_revenue_currency": "USD", "shipped_units": 1,
             **r} for r in records]
    return table_rows("vendor_sales_by_asin", fields, full, account)


@pytest.fixture
def lake(tmp_path: Path) -> Path:
    """A lake with Ads campaign and advertised-product tables and vendor sales by ASIN."""
    w = LakeWriter(open_catalog(tmp_path / "lake"))
    w.replace(ads_rows("ads_sp_campaigns_daily",
                       [{"cost": Decimal("10"), "sales_14d": Decimal("40")}]))
    w.replace(ads_rows("ads_sb_campaigns_daily", [{"cost": Decimal("5"), "sales": Decimal("10")}]))
    w.replace(ads_rows("ads_sp_advertised_product_daily", [
        {"cost": Decimal("6"), "advertised_asin": "B0A"},
        {"cost": Decimal("4"), "advertised_asin": "B0A"},
        {"cost": Decimal("3"), "advertised_asin": "B0B"},
    ], asin_column="advertised_asin"))
    # A Canadian profile advertising the same ASIN: never joined to US vendor sales.
    w.replace(ads_rows("ads_sp_advertised_product_daily",
                       [{"cost": Decimal("7"), "advertised_asin": "B0A"}], account="2002",
                       currency="CAD", asin_column="advertised_asin"))
    w.replace(vendor_rows([
        {"asin": "B0A", "shipped_revenue_amount": Decimal("200")},
        {"asin": "B0A", "shipped_revenue_amount": Decimal("999"), "distributor_view": "SOURCING"},
        {"asin": "B0A", "shipped_revenue_amount": Decimal("5000"), "report_period": "WEEK"},
        {"asin": "B0C", "shipped_revenue_amount": Decimal("50")},
    ]))
    return tmp_path / "lake"


ACCOUNTS = [LakeAccount("ads", "1001", US, "US", "USD"),
            LakeAccount("ads", "2002", CA, "CA", "CAD"),
            LakeAccount("vendor", "VENDOR1", US, "US", "USD")]


def test_every_table_is_visible_by_its_name(lake: Path) -> None:
    con = open_duckdb(open_catalog(lake))
    names = {r[0] for r in con.sql("SHOW TABLES").fetchall()}
    assert {"ads_sp_campaigns_daily", "ads_sb_campaigns_daily", "vendor_sales_by_asin",
            "ads_sp_advertised_product_daily", "v_ads_daily", "v_tacos_daily_asin"} <= names
    ids = con.sql("SELECT campaign_id FROM ads_sp_campaigns_daily").fetchall()
    assert ids == [(BIG_ID,)]  # above 2^53, intact through DuckDB
    types = dict(con.sql("SELECT column_name, column_type FROM (DESCRIBE ads_sp_campaigns_daily)")
                 .fetchall())
    assert types["cost"] == "DECIMAL(18,4)" and types["report_date"] == "DATE"
    assert types["fetched_at"] == "TIMESTAMP WITH TIME ZONE" and types["campaign_id"] == "BIGINT"


def test_v_ads_daily_sums_products_per_profile_and_day(lake: Path) -> None:
    con = open_duckdb(open_catalog(lake))
    rows = con.sql("SELECT report_date, account_id, currency, impressions, clicks, cost, sales, "
                   "roas, acos FROM v_ads_daily").fetchall()
    assert rows == [(D, "1001", "USD", 200, 10, Decimal("15.0000"), Decimal("50.0000"),
                     pytest.approx(50 / 15), pytest.approx(0.3))]


def test_v_vendor_daily_asin_keeps_day_rows_only(lake: Path) -> None:
    con = open_duckdb(open_catalog(lake))
    rows = con.sql("SELECT asin, distributor_view, shipped_revenue, currency "
                   "FROM v_vendor_daily_asin ORDER BY asin, distributor_view").fetchall()
    assert rows == [("B0A", "MANUFACTURING", Decimal("200.0000"), "USD"),
                    ("B0A", "SOURCING", Decimal("999.0000"), "USD"),
                    ("B0C", "MANUFACTURING", Decimal("50.0000"), "USD")]


@pytest.mark.parametrize("accounts", [ACCOUNTS, []], ids=["by-marketplace", "by-currency"])
def test_v_tacos_daily_asin_joins_spend_and_revenue_in_one_marketplace(
        lake: Path, accounts: list[LakeAccount]) -> None:
    con = open_duckdb(open_catalog(lake), accounts=accounts)
    rows = con.sql("SELECT asin, currency, ad_spend, shipped_revenue, tacos "
                   "FROM v_tacos_daily_asin ORDER BY asin, currency").fetchall()
    assert rows == [
        ("B0A", "CAD", Decimal("7.0000"), None, None),  # Canada: no Canadian sales
        ("B0A", "USD", Decimal("10.0000"), Decimal("200.0000"), pytest.approx(0.05)),
        ("B0B", "USD", Decimal("3.0000"), None, None),
        ("B0C", "USD", Decimal("0.0000"), Decimal("50.0000"), 0.0),
    ]
    if accounts:
        mps = dict(con.sql("SELECT currency, any_value(marketplace_id) FROM v_tacos_daily_asin "
                           "GROUP BY ALL").fetchall())
        assert mps == {"USD": US, "CAD": CA}


def test_views_work_on_an_empty_lake(tmp_path: Path) -> None:
    con = open_duckdb(open_catalog(tmp_path / "lake"))
    for view in ("v_ads_daily", "v_vendor_daily_asin", "v_tacos_daily_asin"):
        assert con.execute(f"SELECT count(*) FROM {view}").fetchone() == (0,)
    assert "roas" in con.sql("FROM v_ads_daily").columns


def test_a_column_added_later_reads_null_for_old_rows_and_empty_tables_have_columns(
        tmp_path: Path) -> None:
    catalog: Catalog = open_catalog(tmp_path / "lake")
    w = LakeWriter(catalog)
    w.replace(slice_rows([day(0)]))
    w.replace(slice_rows([day(1)], extra={"new_metric": (pa.int64(), 9)}))
    # The only rows with the new column are replaced by an empty restatement: no file holds it.
    w.replace(slice_rows([day(1)], T0.replace(hour=9), per_day=0, footprint=(day(1), day(1))))
    con = open_duckdb(catalog)
    counts = con.execute("SELECT count(*), count(new_metric) FROM ads_sp_campaigns_daily")
    assert counts.fetchone() == (3, 0)
    w.replace(slice_rows([day(0)], T0.replace(hour=10), per_day=0, footprint=(day(0), day(0))))
    con = open_duckdb(catalog)
    assert con.execute("SELECT count(*) FROM ads_sp_campaigns_daily").fetchone() == (0,)
    assert "new_metric" in con.sql("FROM ads_sp_campaigns_daily").columns


# ---- `amzlake query` -----------------------------------------------------------------------------


def amzlake(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run([sys.executable, "-m", "amzlake", *args], cwd=cwd, capture_output=True,
                          timeout=120)


@pytest.fixture
def project(lake: Path) -> Path:
    folder = lake.parent
    (folder / "amzlake.toml").write_text('[storage]\nlake = "lake"\n')
    return folder


TACOS_SQL = ("SELECT asin, ad_spend, shipped_revenue, tacos FROM v_tacos_daily_asin "
             "WHERE currency = 'USD' ORDER BY asin")


def test_query_prints_a_table(project: Path) -> None:
    done = amzlake("query", TACOS_SQL, cwd=project)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    assert "asin" in out and "B0A" in out and "0.05" in out and "200.0000" in out


def test_query_writes_csv_json_and_parquet(project: Path) -> None:
    csv = amzlake("query", TACOS_SQL, "--format", "csv", cwd=project)
    assert csv.returncode == 0, csv.stderr
    lines = csv.stdout.decode().splitlines()
    assert lines[0] == "asin,ad_spend,shipped_revenue,tacos"
    assert lines[1].startswith("B0A,10.0000,200")
    assert len(lines) == 4

    js = amzlake("query", TACOS_SQL, "--format", "json", cwd=project)
    assert js.returncode == 0, js.stderr
    rows = json.loads(js.stdout)
    assert rows[0]["asin"] == "B0A" and rows[0]["tacos"] == pytest.approx(0.05)
    assert [r["asin"] for r in rows] == ["B0A", "B0B", "B0C"]

    out = project / "tacos.parquet"
    pqt = amzlake("query", TACOS_SQL, "--format", "parquet", "--output", str(out), cwd=project)
    assert pqt.returncode == 0, pqt.stderr
    t = pq.read_table(out)
    assert t.column_names == ["asin", "ad_spend", "shipped_revenue", "tacos"]
    assert t["shipped_revenue"].to_pylist()[0] == Decimal("200.0000")

    ids = project / "ids.csv"
    big = amzlake("query", "SELECT campaign_id FROM ads_sp_campaigns_daily", "--format", "csv",
                  "--output", str(ids), cwd=project)
    assert big.returncode == 0 and ids.read_text().splitlines()[1] == str(BIG_ID)


@pytest.mark.parametrize(("sql", "expected"), [
    ("SELEC 1", "syntax error"),
    ("SELECT * FROM no_such_table", "no_such_table"),
])
def test_query_errors_are_one_line_exit_2(project: Path, sql: str, expected: str) -> None:
    done = amzlake("query", sql, cwd=project)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("amzlake: error: query failed:")
    assert expected in err


def test_query_parquet_needs_an_output_file(project: Path) -> None:
    done = amzlake("query", "SELECT 1", "--format", "parquet", cwd=project)
    assert done.returncode == 2 and b"--output" in done.stderr


# ---- What a statement opens ----------------------------------------------------------------------


def test_a_statement_that_reads_nothing_of_the_lake_never_opens_the_catalog() -> None:
    from amzlake.lake.query import LakeSession

    def no_catalog() -> Catalog:
        raise AssertionError("the catalog was opened")

    session = LakeSession(no_catalog)
    assert session.run("SELECT 1 AS one, 2 + 2 AS four").fetchall() == [(1, 4)]
    assert session.run("SELECT sum(i) FROM range(10) t(i)").fetchall() == [(45,)]
    assert session.registered == {}


def test_a_statement_opens_only_the_tables_and_views_it_names(lake: Path) -> None:
    from amzlake.lake.query import LakeSession

    session = LakeSession(lambda: open_catalog(lake), accounts=lambda: ACCOUNTS)
    session.run("SELECT count(*) FROM ads_sb_campaigns_daily").fetchall()
    assert set(session.registered) == {"ads_sb_campaigns_daily"}
    rows = session.run("SELECT currency, sum(cost) FROM v_ads_daily GROUP BY ALL").fetchall()
    assert rows == [("USD", Decimal("15.0000"))]
    assert set(session.registered) == {"ads_sb_campaigns_daily", "ads_sp_campaigns_daily",
                                       "lake_accounts"}
    session.run("SHOW TABLES").fetchall()  # lists the lake: everything is there now
    assert {"vendor_sales_by_asin", "ads_sp_advertised_product_daily"} <= set(session.registered)


def test_filters_on_report_date_and_account_skip_files_unopened(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch
                                                                ) -> None:
    import pyarrow.fs as pafs

    from amzlake.lake import datasets
    from amzlake.lake.query import LakeSession

    catalog = open_catalog(tmp_path / "lake")
    w = LakeWriter(catalog)
    for account in ("1001", "2002", "3003"):
        for month in range(6):  # six months of history for three profiles: 18 files
            w.replace(slice_rows([day(31 * month + d) for d in range(3)], account=account))
    opened: list[str] = []

    def unused(*_: object) -> None:
        raise NotImplementedError("a query only reads")

    def handler(inner: pafs.FileSystem) -> pafs.FileSystemHandler:
        """A file system handler that counts the files a query opens."""

        def open_input_file(_self: object, path: str) -> object:
            opened.append(path)
            return inner.open_input_file(path)

        methods = {name: unused for name in (
            "get_file_info_selector", "create_dir", "delete_dir", "delete_dir_contents",
            "delete_root_dir_contents", "delete_file", "move", "copy_file", "open_input_stream",
            "open_output_stream", "open_append_stream")}
        methods.update(
            open_input_file=open_input_file,
            get_file_info=lambda _self, paths: inner.get_file_info(paths),
            get_type_name=lambda _self: "counting",
            normalize_path=lambda _self, path: path,
            __eq__=lambda self, other: self is other,
            __ne__=lambda self, other: self is not other)
        return type("Counting", (pafs.FileSystemHandler,), methods)()

    real = datasets._filesystem

    def counting(table: object, paths: list[str]) -> tuple[object, list[str]]:
        fs, out = real(table, paths)  # type: ignore[arg-type]
        return pafs.PyFileSystem(handler(fs)), out

    monkeypatch.setattr(datasets, "_filesystem", counting)
    session = LakeSession(lambda: catalog)
    one_month = ("SELECT count(*), sum(cost) FROM ads_sp_campaigns_daily "
                 f"WHERE report_date BETWEEN DATE '{day(62)}' AND DATE '{day(70)}'")
    assert session.run(one_month).fetchall() == [(27, Decimal("33.7500"))]
    assert len(set(opened)) == 3  # that month's file of each profile, of 18
    opened.clear()
    one_profile = one_month + " AND account_id = '2002'"
    assert session.run(one_profile).fetchall() == [(9, Decimal("11.2500"))]
    assert len(set(opened)) == 1
    opened.clear()
    assert session.run("SELECT count(*) FROM ads_sp_campaigns_daily").fetchall() == [(162,)]
    assert len(set(opened)) == 18


def test_a_moved_lake_is_one_line_exit_2_naming_the_missing_path(project: Path) -> None:
    moved = project.parent / "moved"
    project.rename(moved)
    done = amzlake("query", "SELECT count(*) FROM ads_sp_campaigns_daily", cwd=moved)
    assert done.returncode == 2
    err = done.stderr.decode()
    assert err.count("\n") == 1 and err.startswith("amzlake: error: table ads_sp_campaigns_daily")
    assert str(project / "lake") in err and "moved" in err


def test_a_large_result_shows_its_first_rows_and_how_many_there_are(project: Path) -> None:
    done = amzlake("query", "SELECT i, i * 2 AS j FROM range(250000) t(i)", cwd=project)
    assert done.returncode == 0, done.stderr
    out = done.stdout.decode()
    body = [line for line in out.splitlines() if line.startswith("│")]
    assert len(body) == 2 + 40  # header, types, forty rows: not a box per row
    assert "(249960 more rows not shown, 250000 in all;" in out
    assert max(len(line) for line in out.splitlines()) < 200
