"""DuckDB over the curated Iceberg tables, plus the views a user wants on day one.

Every table of the namespace is a DuckDB view by its own name over `read_parquet` of the table's
current data files (pyiceberg `scan().plan_files()`; copy-on-write commits leave no delete files).
A column the table has but none of its current files hold (added by schema evolution, or a table
with no rows yet) is a typed NULL, so every view has the table's whole current schema.
DuckDB's own iceberg extension downloads at run time and is not used.

Day-one views (built from whichever source tables exist; with none, an empty view of the same
columns, so queries never fail on a young lake):

v_ads_daily: daily ad spend, sales and ROAS per Ads profile, summed over the campaign-level
  tables of Sponsored Products, Brands and Display (ads_sp|sb|sd_campaigns_daily).
  report_date (the profile's local day), account_id (the profile id), currency (the profile's),
  impressions, clicks, cost (spend, decimal), sales (SP sales14d, SB/SD sales: 14-day attributed
  sales, decimal), roas (sales / cost, NULL when cost is 0), acos (cost / sales, NULL when sales
  is 0). A table holding two identities of one report type for one profile (say campaign and
  campaign+adGroup groupBys) would be counted twice: keep one campaign-level report per type.

v_vendor_daily_asin: vendor shipped revenue per ASIN and day, from vendor_sales_by_asin rows of
  the DAY report period. report_date, account_id (selling partner), marketplace_id, asin,
  distributor_view, selling_program, shipped_revenue (decimal), currency, shipped_units,
  ordered_revenue, ordered_units (MANUFACTURING view only, NULL otherwise), shipped_cogs.

v_tacos_daily_asin: TACoS per day and ASIN: Ads advertised-product spend (SP advertisedAsin,
  SD promotedAsin) / vendor shipped revenue (MANUFACTURING view, summed over selling programs),
  in the same marketplace. report_date, marketplace_id, asin, currency, ad_spend, shipped_revenue,
  tacos (ad_spend / shipped_revenue, NULL when there is no revenue). Rows with spend and no sales
  (or sales and no spend, ad_spend 0) are kept. The marketplace of an account comes from the
  `accounts` given to `open_duckdb` (the ledger knows it); without them, accounts are matched on
  currency, a stand-in that is exact only with one marketplace per currency.
"""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import duckdb
from pyiceberg.catalog import Catalog
from pyiceberg.exceptions import NoSuchNamespaceError
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.types import (
    BinaryType,
    BooleanType,
    DateType,
    DecimalType,
    DoubleType,
    FloatType,
    IcebergType,
    IntegerType,
    LongType,
    StringType,
    TimestampType,
    TimestamptzType,
    TimeType,
    UUIDType,
)

from amzlake.errors import AmzlakeError

DAY_ONE_VIEWS = ("v_ads_daily", "v_vendor_daily_asin", "v_tacos_daily_asin")

_DUCK_TYPES: dict[type, str] = {
    BooleanType: "BOOLEAN",
    IntegerType: "INTEGER",
    LongType: "BIGINT",
    FloatType: "FLOAT",
    DoubleType: "DOUBLE",
    DateType: "DATE",
    TimeType: "TIME",
    TimestampType: "TIMESTAMP",
    TimestamptzType: "TIMESTAMPTZ",
    StringType: "VARCHAR",
    UUIDType: "UUID",
    BinaryType: "BLOB",
}


@dataclass(frozen=True)
class LakeAccount:
    """An account's marketplace facts (from the ledger), for joins across sources."""

    source: str  # ads | vendor
    account_id: str
    marketplace_id: str | None = None
    country_code: str | None = None
    currency_code: str | None = None
    timezone: str | None = None


def quote_ident(name: str) -> str:
    """`name` as a DuckDB identifier."""
    return '"' + name.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def duckdb_type(t: IcebergType) -> str:
    """The DuckDB type of an Iceberg primitive type (VARCHAR for anything nested or unknown)."""
    if isinstance(t, DecimalType):
        return f"DECIMAL({t.precision},{t.scale})"
    return _DUCK_TYPES.get(type(t), "VARCHAR")


def _local_path(path: str) -> str:
    # DuckDB reads local files by path; s3:// would need its httpfs extension (a download).
    return path.removeprefix("file://")


def table_select_sql(schema: Schema, files: Sequence[str], present_ids: set[int]) -> str:
    """SELECT of every column of `schema` over `files`; typed NULL for columns no file holds."""
    cols = []
    for f in schema.fields:
        if files and f.field_id in present_ids:
            cols.append(quote_ident(f.name))
        else:
            cols.append(f"CAST(NULL AS {duckdb_type(f.field_type)}) AS {quote_ident(f.name)}")
    select = "SELECT " + ", ".join(cols)
    if not files:
        return select + " WHERE false"
    listing = ", ".join(_literal(_local_path(p)) for p in files)
    return (f"{select} FROM read_parquet([{listing}], union_by_name = true, "
            "hive_partitioning = false)")


def table_view_sql(table: Table) -> str:
    """The SELECT that shows `table`'s current rows (its current snapshot's data files)."""
    files: list[str] = []
    present: set[int] = set()
    if table.current_snapshot() is not None:
        for task in table.scan().plan_files():
            files.append(task.file.file_path)
            # A file's metrics name the columns it holds (by field id, mapped by name on write).
            present |= set(task.file.value_counts or {}) | set(task.file.null_value_counts or {})
    return table_select_sql(table.schema(), files, present)


def curated_tables(catalog: Catalog, namespace: str = "amzlake") -> list[str]:
    """The names of the curated tables in `namespace` (empty when it does not exist yet)."""
    try:
        return sorted(ident[-1] for ident in catalog.list_tables(namespace))
    except NoSuchNamespaceError:
        return []


def open_duckdb(
    catalog: Catalog,
    namespace: str = "amzlake",
    *,
    accounts: Iterable[LakeAccount] = (),
    connection: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection: every curated table a view by its name, plus the day-one views."""
    con = connection or duckdb.connect()
    columns: dict[str, set[str]] = {}
    for name in curated_tables(catalog, namespace):
        table = catalog.load_table((namespace, name))
        con.execute(f"CREATE OR REPLACE VIEW {quote_ident(name)} AS {table_view_sql(table)}")
        columns[name] = {f.name for f in table.schema().fields}
    _create_accounts(con, accounts)
    for view, sql in day_one_views_sql(columns).items():
        con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql}")
    return con


def ledger_accounts(ledger_location: str) -> list[LakeAccount]:
    """Each account's marketplace facts as the ledger recorded them (none if there is no ledger)."""
    from amzlake.storage.ledger import open_ledger

    if "://" not in ledger_location and not Path(ledger_location).is_file():
        return []  # never create an empty ledger just to read it
    ledger = open_ledger(ledger_location)
    try:
        return list(dict.fromkeys(
            LakeAccount(e.source, e.account_id, e.account.get("marketplace_id"),
                        e.account.get("country_code"), e.account.get("currency_code"),
                        e.account.get("timezone"))
            for e in ledger.query()))
    finally:
        ledger.close()


def open_config_duckdb(config: Any) -> duckdb.DuckDBPyConnection:
    """DuckDB over the lake an AmzlakeConfig names, with its ledger's account facts."""
    from amzlake.lake.catalog import catalog_from_config

    return open_duckdb(catalog_from_config(config),
                       accounts=ledger_accounts(config.storage.ledger_location))


def _create_accounts(con: duckdb.DuckDBPyConnection, accounts: Iterable[LakeAccount]) -> None:
    con.execute(
        "CREATE OR REPLACE TABLE lake_accounts (source VARCHAR, account_id VARCHAR, "
        "marketplace_id VARCHAR, country_code VARCHAR, currency_code VARCHAR, timezone VARCHAR)"
    )
    rows = [(a.source, a.account_id, a.marketplace_id, a.country_code, a.currency_code,
             a.timezone) for a in dict.fromkeys(accounts)]
    if rows:
        con.executemany("INSERT INTO lake_accounts VALUES (?, ?, ?, ?, ?, ?)", rows)


# ---- Day-one views ------------------------------------------------------------------------------


def _pick(cols: set[str], *names: str) -> str | None:
    return next((n for n in names if n in cols), None)


def _col(cols: set[str], names: Sequence[str], sql_type: str, alias: str) -> str:
    found = _pick(cols, *names)
    return f"{quote_ident(found)} AS {alias}" if found else f"CAST(NULL AS {sql_type}) AS {alias}"


_MONEY = "DECIMAL(18,4)"

_ADS_DAILY_EMPTY = (
    "SELECT CAST(NULL AS DATE) AS report_date, CAST(NULL AS VARCHAR) AS account_id, "
    "CAST(NULL AS VARCHAR) AS currency, CAST(NULL AS BIGINT) AS impressions, "
    "CAST(NULL AS BIGINT) AS clicks, CAST(NULL AS DECIMAL(38,4)) AS cost, "
    "CAST(NULL AS DECIMAL(38,4)) AS sales, CAST(NULL AS DOUBLE) AS roas, "
    "CAST(NULL AS DOUBLE) AS acos WHERE false"
)


def ads_daily_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_ads_daily SELECT over the campaign tables present in `columns` (name -> columns)."""
    parts = []
    for product in ("sp", "sb", "sd"):
        name = f"ads_{product}_campaigns_daily"
        cols = columns.get(name)
        if not cols or "cost" not in cols:
            continue
        parts.append(
            "SELECT report_date, account_id, "
            + ", ".join([
                _col(cols, ["currency"], "VARCHAR", "currency"),
                _col(cols, ["impressions"], "BIGINT", "impressions"),
                _col(cols, ["clicks"], "BIGINT", "clicks"),
                f"CAST(cost AS {_MONEY}) AS cost",
                f"CAST({_pick(cols, 'sales_14d', 'sales14d', 'sales') or 'NULL'} AS {_MONEY})"
                " AS sales",
            ])
            + f" FROM {quote_ident(name)}"
        )
    if not parts:
        return _ADS_DAILY_EMPTY
    union = " UNION ALL ".join(parts)
    return (
        "SELECT report_date, account_id, any_value(currency) AS currency, "
        "CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, sum(cost) AS cost, "
        "sum(sales) AS sales, "
        "CAST(sum(sales) AS DOUBLE) / NULLIF(CAST(sum(cost) AS DOUBLE), 0) AS roas, "
        "CAST(sum(cost) AS DOUBLE) / NULLIF(CAST(sum(sales) AS DOUBLE), 0) AS acos "
        f"FROM ({union}) GROUP BY report_date, account_id"
    )


def vendor_daily_asin_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_vendor_daily_asin SELECT (empty, typed, without vendor_sales_by_asin)."""
    cols = columns.get("vendor_sales_by_asin")
    fields = [
        ("report_date", ["report_date"], "DATE"),
        ("account_id", ["account_id"], "VARCHAR"),
        ("marketplace_id", ["marketplace_id"], "VARCHAR"),
        ("asin", ["asin"], "VARCHAR"),
        ("distributor_view", ["distributor_view"], "VARCHAR"),
        ("selling_program", ["selling_program"], "VARCHAR"),
        ("shipped_revenue", ["shipped_revenue_amount"], _MONEY),
        ("currency", ["shipped_revenue_currency", "currency"], "VARCHAR"),
        ("shipped_units", ["shipped_units"], "BIGINT"),
        ("ordered_revenue", ["ordered_revenue_amount"], _MONEY),
        ("ordered_units", ["ordered_units"], "BIGINT"),
        ("shipped_cogs", ["shipped_cogs_amount"], _MONEY),
    ]
    if not cols or "asin" not in cols:
        return ("SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {a}" for a, _, t in fields)
                + " WHERE false")
    where = " WHERE upper(report_period) = 'DAY'" if "report_period" in cols else ""
    return ("SELECT " + ", ".join(_col(cols, names, t, a) for a, names, t in fields)
            + f" FROM vendor_sales_by_asin{where}")


def tacos_daily_asin_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_tacos_daily_asin SELECT: advertised-ASIN spend over vendor shipped revenue."""
    spend_parts = []
    for name, asin in (("ads_sp_advertised_product_daily", ("advertised_asin",)),
                       ("ads_sd_advertised_product_daily", ("promoted_asin",))):
        cols = columns.get(name)
        found = _pick(cols or set(), *asin)
        if not cols or not found or "cost" not in cols:
            continue
        cur = "currency" if "currency" in cols else "CAST(NULL AS VARCHAR)"
        spend_parts.append(
            f"SELECT report_date, account_id, {quote_ident(found)} AS asin, {cur} AS currency, "
            f"CAST(cost AS {_MONEY}) AS cost FROM {quote_ident(name)}"
        )
    if not spend_parts:
        spend_parts.append(
            "SELECT CAST(NULL AS DATE) AS report_date, CAST(NULL AS VARCHAR) AS account_id, "
            "CAST(NULL AS VARCHAR) AS asin, CAST(NULL AS VARCHAR) AS currency, "
            f"CAST(NULL AS {_MONEY}) AS cost WHERE false"
        )
    # Market key: the account's marketplace when known, else its currency (see the module doc).
    market = ("coalesce({mp}, 'currency:' || {cur})")
    ads = (
        "SELECT s.report_date, "
        + market.format(mp="la.marketplace_id", cur="s.currency")
        + " AS market, la.marketplace_id, s.asin, any_value(s.currency) AS currency, "
        "sum(s.cost) AS ad_spend "
        f"FROM ({' UNION ALL '.join(spend_parts)}) s "
        "LEFT JOIN lake_accounts la ON la.source = 'ads' AND la.account_id = s.account_id "
        "WHERE s.asin IS NOT NULL GROUP BY ALL"
    )
    vendor_view = ("WHERE coalesce(upper(v.distributor_view), 'MANUFACTURING') = 'MANUFACTURING'")
    vendor = (
        "SELECT v.report_date, "
        + market.format(mp="coalesce(v.marketplace_id, la.marketplace_id)", cur="v.currency")
        + " AS market, coalesce(v.marketplace_id, la.marketplace_id) AS marketplace_id, v.asin, "
        "any_value(v.currency) AS currency, sum(v.shipped_revenue) AS shipped_revenue "
        "FROM v_vendor_daily_asin v "
        "LEFT JOIN lake_accounts la ON la.source = 'vendor' AND la.account_id = v.account_id "
        f"{vendor_view} GROUP BY ALL"
    )
    return (
        "SELECT coalesce(v.report_date, a.report_date) AS report_date, "
        "coalesce(v.marketplace_id, a.marketplace_id) AS marketplace_id, "
        "coalesce(v.asin, a.asin) AS asin, coalesce(v.currency, a.currency) AS currency, "
        f"coalesce(a.ad_spend, CAST(0 AS {_MONEY})) AS ad_spend, v.shipped_revenue, "
        "CAST(coalesce(a.ad_spend, 0) AS DOUBLE) / "
        "NULLIF(CAST(v.shipped_revenue AS DOUBLE), 0) AS tacos "
        f"FROM ({vendor}) v FULL OUTER JOIN ({ads}) a "
        "ON v.report_date = a.report_date AND v.market = a.market AND v.asin = a.asin"
    )


def day_one_views_sql(columns: Mapping[str, set[str]]) -> dict[str, str]:
    """The day-one views' SELECTs, in creation order, given each table's column names."""
    return {
        "v_ads_daily": ads_daily_sql(columns),
        "v_vendor_daily_asin": vendor_daily_asin_sql(columns),
        "v_tacos_daily_asin": tacos_daily_asin_sql(columns),
    }


# ---- Running a query (the `amzlake query` command) -----------------------------------------------

FORMATS = ("table", "csv", "json", "parquet")
_RESULT_VIEW = "__amzlake_result"
TABLE_ROW_LIMIT = 10_000  # rows a terminal table shows; files and pipes get every row


class QueryError(AmzlakeError):
    """The SQL is invalid or names something the lake does not have (one line)."""

    exit_code = 2


def error_line(e: BaseException) -> str:
    """DuckDB's error text on one line (its caret drawing under the SQL left out)."""
    lines = []
    for line in str(e).splitlines():
        if line.startswith("LINE ") or not line.strip():
            if lines:
                break
            continue
        lines.append(line.strip())
    return " ".join(lines) or type(e).__name__


def run_query(con: duckdb.DuckDBPyConnection, sql: str) -> duckdb.DuckDBPyRelation | None:
    """The result of `sql` (the last statement's), or None for a statement without rows."""
    try:
        return con.sql(sql.strip().rstrip(";"))
    except duckdb.Error as e:
        raise QueryError(f"query failed: {error_line(e)}") from None


def export(con: duckdb.DuckDBPyConnection, result: duckdb.DuckDBPyRelation, fmt: str,
           output: Path | None, stdout: BinaryIO | None = None) -> None:
    """Write `result` as csv, json (an array of objects) or parquet to `output`, else stdout."""
    options = {"csv": "FORMAT csv, HEADER true", "json": "FORMAT json, ARRAY true",
               "parquet": "FORMAT parquet"}[fmt]
    if fmt == "parquet" and output is None:
        raise QueryError("--format parquet needs --output FILE")
    try:
        result.create_view(_RESULT_VIEW, replace=True)
        if output is not None:
            con.execute(f"COPY (FROM {_RESULT_VIEW}) TO {_literal(str(output))} ({options})")
            return
        # Through a file, not /dev/stdout: callers (and tests) may have replaced sys.stdout.
        fd, tmp = tempfile.mkstemp(suffix=f".{fmt}")
        os.close(fd)
        try:
            con.execute(f"COPY (FROM {_RESULT_VIEW}) TO {_literal(tmp)} ({options})")
            out = stdout or sys.stdout.buffer
            with open(tmp, "rb") as f:
                shutil.copyfileobj(f, out)
            out.flush()
        finally:
            os.unlink(tmp)
    except duckdb.Error as e:
        raise QueryError(f"query failed: {error_line(e)}") from None


def table_rows(result: duckdb.DuckDBPyRelation, limit: int = TABLE_ROW_LIMIT
               ) -> tuple[list[str], list[tuple[Any, ...]], bool]:
    """Column names, up to `limit` rows, and whether there were more (for a terminal table)."""
    try:
        rows = result.limit(limit + 1).fetchall()
    except duckdb.Error as e:
        raise QueryError(f"query failed: {error_line(e)}") from None
    return list(result.columns), rows[:limit], len(rows) > limit
