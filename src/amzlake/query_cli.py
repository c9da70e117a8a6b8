"""`amzlake query`: run SQL over the lake, and print or write the result.

Kept light on purpose: `amzlake query` is what people type all day, so it starts as fast as DuckDB
itself. The command's options are parsed here with argparse when it is run (amzlake.entry sends
`amzlake query ...` here before the Typer app, whose import alone costs more than DuckDB's), and
the Typer command (`amzlake query --help`) calls the same `execute`. The configuration and the
Iceberg catalog are only opened when the statement reads the lake (amzlake.lake.query).
"""

from __future__ import annotations

import argparse
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import duckdb

from amzlake.errors import AmzlakeError, ConfigError
from amzlake.lake.query import FORMATS, LakeSession, QueryError, error_line, export, run_query

TABLE_ROW_LIMIT = 40  # rows a printed table shows; csv, json and parquet give every row
_RESULT_TABLE = "__amzlake_shown"


@dataclass(frozen=True)
class QueryArgs:
    """The options of `amzlake query`."""

    sql: str
    fmt: str = "table"
    output: Path | None = None
    config: Path | None = None


def parse(argv: list[str]) -> QueryArgs:
    """The query options in `argv` (ConfigError for unknown or missing ones)."""

    class _Parser(argparse.ArgumentParser):
        def error(self, message: str) -> None:  # type: ignore[override]
            raise ConfigError(f"query: {message} (see amzlake query --help)")

    p = _Parser(prog="amzlake query", add_help=False)
    p.add_argument("sql")
    p.add_argument("--format", "-f", dest="fmt", default="table")
    p.add_argument("--output", "-o", type=Path)
    p.add_argument("--config", "-c", type=Path)
    ns = p.parse_args(argv)
    return QueryArgs(ns.sql, ns.fmt, ns.output, ns.config)


class _LazyConfig:
    """The configuration, read on first use."""

    def __init__(self, path: Path | None) -> None:
        if path is not None and not path.is_file():
            raise ConfigError(f"--config {path}: no such file")
        self.path = path
        self._config: Any = None

    def get(self) -> Any:
        if self._config is None:
            from amzlake.config import load_config

            self._config = load_config(self.path)
        return self._config


def session_for(config: Path | None) -> LakeSession:
    """A lazy session over the configured lake: the config is read when a table is needed."""
    from amzlake.lake.query import ledger_accounts

    lazy = _LazyConfig(config)

    def catalog() -> Any:
        from amzlake.lake.catalog import catalog_from_config

        return catalog_from_config(lazy.get())

    return LakeSession(catalog, accounts=lambda: ledger_accounts(
        lazy.get().storage.ledger_location))


def execute(args: QueryArgs, out: TextIO | None = None) -> None:
    """Run the query and print it as a table, or write it as csv, json or parquet."""
    if args.fmt not in FORMATS:
        raise ConfigError(f"--format {args.fmt!r}: allowed: {', '.join(FORMATS)}")
    if args.fmt == "table" and args.output is not None:
        raise ConfigError("--output needs --format csv, json or parquet (a table is for a terminal)")
    session = session_for(args.config)
    session.prepare(args.sql)
    result = run_query(session.con, args.sql)
    if result is None:
        return
    if args.fmt != "table":
        export(session.con, result, args.fmt, args.output)
        return
    print_table(session.con, result, out=out or sys.stdout)


def print_table(con: duckdb.DuckDBPyConnection, result: duckdb.DuckDBPyRelation, *,
                limit: int = TABLE_ROW_LIMIT, out: TextIO, width: int | None = None
                ) -> tuple[int, int]:
    """Print the first `limit` rows as a box table (DuckDB's renderer) and how many rows there
    were in all; (rows shown, rows in all). The result is materialised once in DuckDB (which
    spills to disk when it must), so it is counted without running the query twice. On a
    terminal the table fits its width; elsewhere it is never cut or wrapped."""
    try:
        result.create(_RESULT_TABLE)
        table = con.table(_RESULT_TABLE)
        total = con.execute(f"SELECT count(*) FROM {_RESULT_TABLE}").fetchall()[0][0]
        if width is None:
            width = shutil.get_terminal_size().columns if out.isatty() else 1_000_000
        saved = sys.stdout
        sys.stdout = out  # DuckDB's renderer prints through Python's stdout
        try:
            table.limit(limit).show(max_width=width, max_rows=limit + 1, max_col_width=width)
        finally:
            sys.stdout = saved
    except duckdb.Error as e:
        raise QueryError(f"query failed: {error_line(e)}") from None
    shown = min(total, limit)
    if total > shown:
        out.write(f"({total - shown} more rows not shown, {total} in all; "
                  "use --format csv, json or parquet to get them all)\n")
    return shown, total


def main(argv: list[str]) -> None:
    """`amzlake query ARGS`: errors as one line and the exit code the README promises."""
    try:
        execute(parse(argv))
    except AmzlakeError as e:
        sys.stderr.write(f"amzlake: error: {e}\n")
        sys.exit(e.exit_code)
