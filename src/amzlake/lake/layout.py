"""How a curated table is laid out: its partitions, sort order, file sizes and properties.

A real lake holds up to 500 Ads profiles, two years of history and months of daily runs, so the
layout is chosen for that age, not for one run:

- **Partitions: identity(account_id), month(report_date).** A slice always belongs to one account
  and covers days, so its replacement touches the files of a few (account, month) partitions and
  never anyone else's rows. One partition per account and calendar month keeps a table at a few
  thousand files for hundreds of profiles over years (a day-partitioned table would hold one file
  per day, account and report). The report identity is not a partition: tables that hold several
  identities per account (vendor periods, distributor views, selling programs) would multiply
  their files by them.
- **Files sorted by report_date, then identity_key**, split at day boundaries when a partition
  outgrows the target file size: a restated day rewrites only the file that holds it, and a
  filter on report_date prunes whole files and row groups.
- **Every Parquet file carries Iceberg field ids** (PARQUET:field_id) from the table's schema, so
  engines that resolve columns by id (Athena, Spark, Trino) read every value. Files written by
  earlier versions have none; the table keeps its name mapping for them.

Tables made by earlier versions (partitioned by report_date, account_id, identity_key) are moved to
this spec when the writer first opens them (a metadata-only change); their files are rewritten into
the new partitions by maintenance (amzlake.lake.maintenance).
"""

from __future__ import annotations

from datetime import date, timedelta

import pyarrow as pa
from pyiceberg.partitioning import PartitionField, PartitionSpec
from pyiceberg.schema import Schema
from pyiceberg.table import Table, TableProperties
from pyiceberg.table.sorting import SortDirection, SortField, SortOrder
from pyiceberg.transforms import IdentityTransform, MonthTransform, Transform

from amzlake.transform.model import LINEAGE_FIELDS

# (source column, transform, partition field name), in spec order.
PARTITION_FIELDS: tuple[tuple[str, Transform, str], ...] = (
    ("account_id", IdentityTransform(), "account_id"),
    ("report_date", MonthTransform(), "report_date_month"),
)
SORT_COLUMNS = ("report_date", "identity_key")
REQUIRED_COLUMNS = frozenset(f.name for f in LINEAGE_FIELDS if not f.nullable)
# The spec of tables written before this layout (amzlake 0.1): one partition per day and identity.
LEGACY_PARTITION_COLUMNS = ("report_date", "account_id", "identity_key")

FIELD_ID_KEY = b"PARQUET:field_id"
TARGET_FILE_BYTES = 256 * 1024 * 1024
ROW_GROUP_ROWS = 131_072
# Write properties of every curated table (Iceberg's own keys, so other engines honour them too).
TABLE_PROPERTIES = {
    # After a conflict the days held by newer fetches must be decided again: amzlake retries
    # itself (amzlake.lake.writer), pyiceberg's own retry would re-apply a stale decision.
    TableProperties.COMMIT_NUM_RETRIES: "0",
    "write.parquet.compression-codec": "zstd",
    "write.target-file-size-bytes": str(TARGET_FILE_BYTES),
    # Each commit writes a new metadata file; keep the last few, not every one since creation.
    TableProperties.METADATA_DELETE_AFTER_COMMIT_ENABLED: "true",
    TableProperties.METADATA_PREVIOUS_VERSIONS_MAX: "10",
}
_EPOCH = date(1970, 1, 1)


def partition_spec_for(schema: Schema) -> PartitionSpec:
    """identity(account_id), month(report_date) over `schema`."""
    return PartitionSpec(*[
        PartitionField(source_id=schema.find_field(column).field_id, field_id=1000 + i,
                       transform=transform, name=name)
        for i, (column, transform, name) in enumerate(PARTITION_FIELDS)
    ])


def sort_order_for(schema: Schema) -> SortOrder:
    """report_date, identity_key ascending over `schema`."""
    return SortOrder(*[
        SortField(source_id=schema.find_field(column).field_id, transform=IdentityTransform(),
                  direction=SortDirection.ASC)
        for column in SORT_COLUMNS
    ])


def has_current_spec(table: Table) -> bool:
    """Whether `table` is partitioned as PARTITION_FIELDS say (else it is to be migrated)."""
    spec, schema = table.spec(), table.schema()
    found = [(schema.find_field(f.source_id).name, str(f.transform)) for f in spec.fields]
    return found == [(column, str(transform)) for column, transform, _ in PARTITION_FIELDS]


def month_of(day: date) -> int:
    """Iceberg's month value of `day`: months since 1970-01."""
    return (day.year - 1970) * 12 + day.month - 1


def month_start(month: int) -> date:
    """The first day of Iceberg month value `month`."""
    return date(1970 + month // 12, month % 12 + 1, 1)


def month_end(month: int) -> date:
    """The last day of Iceberg month value `month`."""
    return month_start(month + 1) - timedelta(days=1)


def month_label(month: int) -> str:
    """`month` as yyyy-mm (the partition folder's name, as Iceberg writes it)."""
    start = month_start(month)
    return f"{start.year:04d}-{start.month:02d}"


def as_date(value: object) -> date:
    """A date partition or bound value as a date (Iceberg keeps dates as days since the epoch)."""
    if isinstance(value, date):
        return value
    if isinstance(value, int):
        return _EPOCH + timedelta(days=value)
    raise TypeError(f"not a date value: {value!r}")


def nullable_data_schema(schema: pa.Schema) -> pa.Schema:
    """`schema` with every column nullable except the required lineage columns.

    Only the lineage is a hard contract; a data column a later document lacks must not make the
    table refuse it, and a new column is by definition absent from the rows already there.
    """
    return pa.schema(
        [f.with_nullable(f.name not in REQUIRED_COLUMNS) for f in schema], metadata=schema.metadata
    )


def with_field_ids(schema: pa.Schema, table_schema: Schema) -> pa.Schema:
    """`schema` with each column's Iceberg field id (PARQUET:field_id) from `table_schema`.

    Raises KeyError for a column the table does not have (add it to the table first)."""
    fields = []
    for f in schema:
        field_id = table_schema.find_field(f.name).field_id
        metadata = {**(f.metadata or {}), FIELD_ID_KEY: str(field_id).encode()}
        fields.append(f.with_metadata(metadata))
    return pa.schema(fields)


def target_file_bytes(table: Table) -> int:
    """The table's target data file size (write.target-file-size-bytes), in bytes."""
    try:
        return max(1, int(table.properties.get("write.target-file-size-bytes", TARGET_FILE_BYTES)))
    except ValueError:
        return TARGET_FILE_BYTES
