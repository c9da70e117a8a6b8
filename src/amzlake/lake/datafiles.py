"""Describe Parquet files to Iceberg: the data files a commit adds, and where a file belongs.

Shared by the commit (amzlake.lake.writer) and compaction (amzlake.lake.maintenance).
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
from pyiceberg.conversions import from_bytes
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import (
    _check_pyarrow_schema_compatible,
    compute_statistics_plan,
    data_file_statistics_from_parquet_metadata,
    parquet_path_to_id_mapping,
    schema_to_pyarrow,
)
from pyiceberg.manifest import DataFile, DataFileContent, FileFormat
from pyiceberg.schema import Schema
from pyiceberg.table import Table
from pyiceberg.table.metadata import TableMetadata

from amzlake.lake.layout import LEGACY_PARTITION_COLUMNS, as_date, has_current_spec, month_of

Partition = tuple[str, int]  # (account_id, month)


def partition_of(table: Table, data_file: DataFile) -> Partition | None:
    """The (account, month) partition a file lies in, under any spec amzlake wrote it with, or
    from its bounds; None when it spans several (a file laid out by another tool)."""
    spec = table.specs()[data_file.spec_id]
    schema = table.schema()
    names = [schema.find_field(f.source_id).name for f in spec.fields]
    part = data_file.partition
    if has_current_spec(table) and spec.spec_id == table.spec().spec_id:
        return (str(part[0]), int(part[1]))
    if tuple(names) == LEGACY_PARTITION_COLUMNS:
        return (str(part[1]), month_of(as_date(part[0])))
    account = schema.find_field("account_id")
    day = schema.find_field("report_date")
    try:
        lo_acc = from_bytes(account.field_type, data_file.lower_bounds[account.field_id])
        hi_acc = from_bytes(account.field_type, data_file.upper_bounds[account.field_id])
        lo_day = as_date(from_bytes(day.field_type, data_file.lower_bounds[day.field_id]))
        hi_day = as_date(from_bytes(day.field_type, data_file.upper_bounds[day.field_id]))
    except (KeyError, TypeError):
        return None
    if lo_acc == hi_acc and len(str(lo_acc)) < 16 and month_of(lo_day) == month_of(hi_day):
        return (str(lo_acc), month_of(lo_day))  # bounds under 16 characters are not truncated
    return None


def output_schema(schema: Schema) -> pa.Schema:
    """The Arrow schema of the files a commit writes: the table's columns, with field ids,
    strings as plain (not large) Arrow strings like the parsers' own."""
    arrow = schema_to_pyarrow(schema, include_field_ids=True)
    fields = []
    for f in arrow:
        if pa.types.is_large_string(f.type):
            f = f.with_type(pa.string())
        elif pa.types.is_large_binary(f.type):
            f = f.with_type(pa.binary())
        fields.append(f)
    return pa.schema(fields)


def data_files(io: FileIO, meta: TableMetadata, paths: list[str], *, sorted_: bool
                ) -> list[DataFile]:
    """The Iceberg data files of the Parquet files at `paths`, as pyiceberg's
    `parquet_file_to_data_file` describes them (same checks, statistics and partition).

    Called per file it re-derives the table's side every time: a deep copy of the metadata per
    `Transaction.table_metadata` access and a full schema compatibility check. Done once here
    (and the check once per distinct file schema), many files register in a fraction of the
    time. `_check_pyarrow_schema_compatible` is pyiceberg 0.12's own check (private: revisit on
    upgrade).
    """
    if not paths:
        return []
    schema = meta.schema()
    stats_plan = compute_statistics_plan(schema, meta.properties)
    mapping = parquet_path_to_id_mapping(schema)
    spec = meta.spec()
    order = meta.default_sort_order_id if sorted_ else None
    checked: list[pa.Schema] = []
    out = []
    for path in paths:
        source = io.new_input(path)
        with source.open() as stream:
            parquet_meta = pq.read_metadata(stream)
        arrow_schema = parquet_meta.schema.to_arrow_schema()
        if not any(arrow_schema.equals(s) for s in checked):
            _check_pyarrow_schema_compatible(schema, arrow_schema,
                                             format_version=meta.format_version)
            checked.append(arrow_schema)
        stats = data_file_statistics_from_parquet_metadata(
            parquet_metadata=parquet_meta, stats_columns=stats_plan,
            parquet_column_mapping=mapping)
        out.append(DataFile.from_args(
            content=DataFileContent.DATA, file_path=path, file_format=FileFormat.PARQUET,
            partition=stats.partition(spec, schema), file_size_in_bytes=len(source),
            sort_order_id=order, spec_id=meta.default_spec_id, equality_ids=None,
            key_metadata=None, **stats.to_serialized_dict()))
    return out
