"""Hand-made TableRows for lake tests: an Ads-like table with lineage, ids above 2^53, money."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pyarrow as pa

from amzlake.transform.model import LINEAGE_FIELDS, Footprint, TableRows

TABLE = "ads_sp_campaigns_daily"
BIG_ID = 2**60 + 7  # above 2^53: a float would round it
DAY0 = date(2025, 3, 1)
T0 = datetime(2025, 3, 10, 6, 0, tzinfo=UTC)

BASE_SCHEMA = pa.schema([
    *LINEAGE_FIELDS,
    pa.field("campaign_id", pa.int64()),
    pa.field("impressions", pa.int64()),
    pa.field("cost", pa.decimal128(18, 4)),
    pa.field("currency", pa.string()),
])


def day(i: int) -> date:
    """The i-th test day."""
    return DAY0 + timedelta(days=i)


def slice_rows(
    days: Sequence[date],
    fetched_at: datetime = T0,
    *,
    account: str = "1001",
    identity: str = "ident-sp",
    cost: str = "1.2500",
    per_day: int = 3,
    table: str = TABLE,
    extra: dict[str, tuple[pa.DataType, Any]] | None = None,
    footprint: tuple[date, date] | None = None,
) -> TableRows:
    """A slice of `per_day` campaign rows on each of `days` (each row costs `cost`)."""
    schema = BASE_SCHEMA
    for name, (typ, _) in (extra or {}).items():
        schema = schema.append(pa.field(name, typ))
    cols: dict[str, list[Any]] = {n: [] for n in schema.names}
    for d in days:
        for i in range(per_day):
            cols["report_date"].append(d)
            cols["account_id"].append(account)
            cols["identity_key"].append(identity)
            cols["slice_key"].append(f"slice-{account}-{fetched_at.isoformat()}")
            cols["remote_report_id"].append("rep-1")
            cols["raw_key"].append(f"raw/{account}/{d}.json.gz")
            cols["fetched_at"].append(fetched_at)
            cols["campaign_id"].append(BIG_ID + i)
            cols["impressions"].append(100 + i)
            cols["cost"].append(Decimal(cost))
            cols["currency"].append("USD")
            for name, (_, value) in (extra or {}).items():
                cols[name].append(value)
    batch = pa.RecordBatch.from_pydict(cols, schema=schema)
    first, last = footprint or (min(days), max(days))
    return TableRows(table, schema, iter([batch]), Footprint(account, identity, first, last,
                                                             fetched_at))


def batches_of(rows: TableRows, size: int) -> Iterator[pa.RecordBatch]:
    """The rows' batches cut into batches of at most `size` rows."""
    for b in rows.batches:
        for start in range(0, b.num_rows, size):
            yield b.slice(start, size)


def glue_properties(endpoint: str, bucket: str) -> dict[str, str]:
    """pyiceberg properties of a Glue catalog and S3 warehouse behind `endpoint` (moto)."""
    creds = {"access-key-id": "testing", "secret-access-key": "testing", "region": "us-east-1"}
    return {
        "type": "glue", "warehouse": f"s3://{bucket}/warehouse",
        "glue.endpoint": endpoint, "s3.endpoint": endpoint,
        **{f"glue.{k}": v for k, v in creds.items()}, **{f"s3.{k}": v for k, v in creds.items()},
    }
