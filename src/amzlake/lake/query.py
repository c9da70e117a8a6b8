"""DuckDB over the curated Iceberg tables: `amzlake query`, the demo and the tests.

A statement gets only what it names: its tables (each a pyarrow dataset DuckDB prunes by the
files' accounts and days, amzlake.lake.datasets), the day-one views it uses with their source
tables (amzlake.lake.views) and `lake_accounts`. A statement that names nothing of the lake
(`SELECT 1`) never opens the catalog; one that lists the lake (SHOW TABLES, information_schema,
anything that is not a query) gets every table. So a query's cost follows the tables and days it
reads, not the number of tables or the lake's history. DuckDB's own iceberg extension downloads at
run time and is not used.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import duckdb

from amzlake.errors import AmzlakeError
from amzlake.lake.names import literal
from amzlake.lake.views import ACCOUNTS_TABLE, DAY_ONE_VIEWS, VIEW_SOURCES, day_one_views_sql

# Table functions and references that list the database itself: the statement may see any table.
_LISTING = ("show", "information_schema", "duckdb_tables", "duckdb_views", "duckdb_columns",
            "pragma", "sqlite_master", "describe", "summarize")


class LakeUnreadable(AmzlakeError):
    """A table's metadata or data files are not where the catalog says (moved or deleted)."""

    exit_code = 2


@dataclass(frozen=True)
class LakeAccount:
    """An account's marketplace facts (from the ledger), for joins across sources."""

    source: str  # ads | vendor
    account_id: str
    marketplace_id: str | None = None
    country_code: str | None = None
    currency_code: str | None = None
    timezone: str | None = None


def curated_tables(catalog: Any, namespace: str = "amzlake") -> list[str]:
    """The names of the curated tables in `namespace` (empty when it does not exist yet)."""
    from pyiceberg.exceptions import NoSuchNamespaceError

    try:
        return sorted(ident[-1] for ident in catalog.list_tables(namespace))
    except NoSuchNamespaceError:
        return []


def referenced_names(sql: str) -> set[str] | None:
    """The table names `sql` reads (lower case), or None when it may read any (it lists the
    database, or DuckDB cannot serialise it: not a query)."""
    lowered = sql.lower()
    if any(word in lowered for word in _LISTING):
        return None
    try:
        tree = json.loads(duckdb.execute("SELECT json_serialize_sql(?)", [sql]).fetchall()[0][0])
    except duckdb.Error:
        return None
    if tree.get("error"):
        return None
    found: set[str] = set()
    stack: list[Any] = [tree]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if node.get("type") == "BASE_TABLE" and node.get("table_name"):
                found.add(str(node["table_name"]).lower())
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return found


class LakeSession:
    """A DuckDB connection that brings in the lake's tables and views a statement names."""

    def __init__(self, catalog: Callable[[], Any], namespace: str = "amzlake", *,
                 accounts: Callable[[], Iterable[LakeAccount]] = tuple,
                 connection: duckdb.DuckDBPyConnection | None = None) -> None:
        self._open_catalog = catalog
        self._catalog: Any = None
        self.namespace = namespace
        self._accounts = accounts
        self.con = connection or duckdb.connect()
        self._tables: list[str] | None = None
        self.registered: dict[str, set[str]] = {}  # table -> its columns
        self._views: set[str] = set()

    def catalog(self) -> Any:
        """The Iceberg catalog (opened on first use)."""
        if self._catalog is None:
            self._catalog = self._open_catalog()
        return self._catalog

    def tables(self) -> list[str]:
        """The lake's table names."""
        if self._tables is None:
            self._tables = curated_tables(self.catalog(), self.namespace)
        return self._tables

    def prepare(self, sql: str) -> None:
        """Bring in what `sql` reads."""
        names = referenced_names(sql)
        if names is None:
            self.bring(None)
        elif names:
            self.bring(names)

    def bring(self, names: set[str] | None) -> None:
        """Register `names` (tables, day-one views, lake_accounts; None: everything)."""
        views = set(DAY_ONE_VIEWS) if names is None else names & set(DAY_ONE_VIEWS)
        if "v_tacos_daily_asin" in views:
            views.add("v_vendor_daily_asin")  # it reads that view
        wanted = set(self.tables()) if names is None else names & set(self.tables())
        for view in views:
            wanted |= set(VIEW_SOURCES[view]) & set(self.tables())
        for name in sorted(wanted - set(self.registered)):
            self._register(name)
        if (views or names is None or ACCOUNTS_TABLE in (names or set())) \
                and ACCOUNTS_TABLE not in self.registered:
            _create_accounts(self.con, self._accounts())
            self.registered[ACCOUNTS_TABLE] = set()
        sql = day_one_views_sql({n: c for n, c in self.registered.items() if n != ACCOUNTS_TABLE})
        for view in [v for v in DAY_ONE_VIEWS if v in views and v not in self._views]:
            self.con.execute(f"CREATE OR REPLACE VIEW {view} AS {sql[view]}")
            self._views.add(view)

    def _register(self, name: str) -> None:
        from amzlake.lake.datasets import table_dataset

        try:
            table = self.catalog().load_table((self.namespace, name))
            dataset = table_dataset(table)
        except (FileNotFoundError, OSError) as e:
            raise LakeUnreadable(f"table {name}: {_missing(e)}: the lake's files are not where "
                                 "its catalog says (was the lake folder moved or deleted?)") from None
        self.con.register(name, dataset)
        self.registered[name] = set(dataset.schema.names)

    def run(self, sql: str) -> duckdb.DuckDBPyRelation | None:
        """The result of `sql` (see run_query), after bringing in what it reads."""
        self.prepare(sql)
        return run_query(self.con, sql)


def _missing(e: BaseException) -> str:
    path = getattr(e, "filename", None)
    return f"{path} is missing" if path else f"cannot read: {e}"


def open_duckdb(
    catalog: Any,
    namespace: str = "amzlake",
    *,
    accounts: Iterable[LakeAccount] = (),
    connection: duckdb.DuckDBPyConnection | None = None,
) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with every curated table by its name, plus the day-one views."""
    known = list(accounts)
    session = LakeSession(lambda: catalog, namespace, accounts=lambda: known,
                          connection=connection)
    session.bring(None)
    return session.con


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


def config_session(config: Any) -> LakeSession:
    """A lazy session over the lake an AmzlakeConfig names, with its ledger's account facts."""
    from amzlake.lake.catalog import catalog_from_config

    return LakeSession(lambda: catalog_from_config(config),
                       accounts=lambda: ledger_accounts(config.storage.ledger_location))


def open_config_duckdb(config: Any) -> duckdb.DuckDBPyConnection:
    """DuckDB over every table of the lake an AmzlakeConfig names (with its accounts)."""
    session = config_session(config)
    session.bring(None)
    return session.con


def _create_accounts(con: duckdb.DuckDBPyConnection, accounts: Iterable[LakeAccount]) -> None:
    con.execute(
        f"CREATE OR REPLACE TABLE {ACCOUNTS_TABLE} (source VARCHAR, account_id VARCHAR, "
        "marketplace_id VARCHAR, country_code VARCHAR, currency_code VARCHAR, timezone VARCHAR)"
    )
    rows = [(a.source, a.account_id, a.marketplace_id, a.country_code, a.currency_code,
             a.timezone) for a in dict.fromkeys(accounts)]
    if rows:
        con.executemany(f"INSERT INTO {ACCOUNTS_TABLE} VALUES (?, ?, ?, ?, ?, ?)", rows)


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
            con.execute(f"COPY (FROM {_RESULT_VIEW}) TO {literal(str(output))} ({options})")
            return
        # Through a file, not /dev/stdout: callers (and tests) may have replaced sys.stdout.
        fd, tmp = tempfile.mkstemp(suffix=f".{fmt}")
        os.close(fd)
        try:
            con.execute(f"COPY (FROM {_RESULT_VIEW}) TO {literal(tmp)} ({options})")
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
