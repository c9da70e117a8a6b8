"""A curated table as a pyarrow dataset that DuckDB can prune: a query reads what it filters to.

The dataset lists the current snapshot's data files (copy-on-write commits leave no delete files)
and gives each file a guarantee from the Iceberg metadata: its account (the partition value) and
its report_date range (the column bounds, exact for dates). DuckDB pushes a query's filters and
column list into the dataset's scanner, and pyarrow skips every file whose guarantee rules the
filter out without opening it, then row groups by their statistics. So a 30-day query opens the
files of those 30 days whatever the table's age, and `SELECT 1` opens none.

Columns are matched by name (pyarrow reads Parquet by name; amzlake never renames a column), and a
column the table has but a file lacks (added by schema evolution) reads as NULL.
"""

from __future__ import annotations

from datetime import date
from urllib.parse import urlparse

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from pyiceberg.conversions import from_bytes
from pyiceberg.io.pyarrow import schema_to_pyarrow
from pyiceberg.manifest import DataFile
from pyiceberg.table import Table

from amzlake.lake.datafiles import partition_of
from amzlake.lake.layout import as_date


def arrow_schema(table: Table) -> pa.Schema:
    """The table's columns as Arrow types (plain strings, no field-id metadata)."""
    fields = []
    for f in schema_to_pyarrow(table.schema(), include_field_ids=False):
        if pa.types.is_large_string(f.type):
            f = f.with_type(pa.string())
        elif pa.types.is_large_binary(f.type):
            f = f.with_type(pa.binary())
        fields.append(f.with_nullable(True))
    return pa.schema(fields)


def _day_bounds(table: Table, data_file: DataFile) -> tuple[date, date] | None:
    field = table.schema().find_field("report_date")
    try:
        lo = from_bytes(field.field_type, data_file.lower_bounds[field.field_id])
        hi = from_bytes(field.field_type, data_file.upper_bounds[field.field_id])
    except (KeyError, TypeError):
        return None
    return as_date(lo), as_date(hi)


def file_guarantee(table: Table, data_file: DataFile) -> ds.Expression:
    """What every row of `data_file` satisfies: its account and its report_date range."""
    guarantee = ds.scalar(True)
    part = partition_of(table, data_file)
    if part is not None:
        guarantee = guarantee & (ds.field("account_id") == part[0])
    bounds = _day_bounds(table, data_file)
    if bounds is not None:
        guarantee = (guarantee & (ds.field("report_date") >= pa.scalar(bounds[0], pa.date32()))
                     & (ds.field("report_date") <= pa.scalar(bounds[1], pa.date32())))
    return guarantee


def _filesystem(table: Table, paths: list[str]) -> tuple[pafs.FileSystem, list[str]]:
    """The pyarrow file system the table's files live on, and the files' paths on it."""
    location = urlparse(table.location())
    scheme = location.scheme or "file"
    fs = table.io.fs_by_scheme(scheme, location.netloc)  # type: ignore[attr-defined]
    out = []
    for p in paths:
        parsed = urlparse(p)
        out.append(parsed.path if parsed.scheme in ("", "file") else f"{parsed.netloc}{parsed.path}")
    return fs, out


def table_dataset(table: Table) -> ds.Dataset:
    """The table's current rows as a dataset whose files carry their guarantees."""
    schema = arrow_schema(table)
    files = ([task.file for task in table.scan().plan_files()]
             if table.current_snapshot() is not None else [])
    if not files:
        return ds.dataset(pa.table({f.name: pa.array([], f.type) for f in schema}, schema=schema))
    fs, paths = _filesystem(table, [f.file_path for f in files])
    return ds.FileSystemDataset.from_paths(
        paths, schema=schema, format=ds.ParquetFileFormat(), filesystem=fs,
        partitions=[file_guarantee(table, f) for f in files])
