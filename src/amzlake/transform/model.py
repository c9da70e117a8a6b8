"""What a parsed raw document is: rows for one or more curated tables, and what they replace.

A slice's rows replace, in one atomic commit per table, every row of the same account and the same
report identity on the days the slice covers (its footprint). Slices of one report can overlap
(a month fetched once, then single days re-pulled as Amazon restates them); on each day the rows
of the most recent fetch win, so nothing is double counted whatever the order of commits.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

import orjson
import pyarrow as pa

from amzlake.catalog.ads import FORMAT_GZIP_JSON

# Lineage and replacement columns on every curated row, first in every table.
LINEAGE_FIELDS: tuple[pa.Field, ...] = (
    pa.field("report_date", pa.date32(), nullable=False),  # the partition day of the row
    pa.field("account_id", pa.string(), nullable=False),
    pa.field("identity_key", pa.string(), nullable=False),  # report identity (see identity_key)
    pa.field("slice_key", pa.string(), nullable=False),
    pa.field("remote_report_id", pa.string()),
    pa.field("raw_key", pa.string(), nullable=False),
    pa.field("fetched_at", pa.timestamp("us", tz="UTC"), nullable=False),
)


def identity_key(source: str, spec: dict[str, Any], marketplace_id: str | None = None) -> str:
    """The report identity whose rows a slice replaces: the spec without its column list, in
    its marketplace.

    Columns are the shape of a report, not which rows it holds: adding a column to the config must
    replace yesterday's rows, not sit beside them; so is the format. Ads: type, ad product, groupBy,
    timeUnit, filters; vendor: type and options. The marketplace tells apart one vendor selling
    partner's marketplaces (an Ads profile is one marketplace already).
    """
    ident = {k: v for k, v in spec.items() if k != "columns"}
    if "format" in ident:
        # The format is how a document is encoded, not which rows it holds: a CSV report replaces
        # its JSON twin. Every format counts as the default, so identities stay what they were.
        ident["format"] = FORMAT_GZIP_JSON
    blob = orjson.dumps({"source": source, "spec": ident, "marketplace": marketplace_id},
                        option=orjson.OPT_SORT_KEYS)
    return hashlib.sha256(blob).hexdigest()[:16]


@dataclass(frozen=True)
class SliceContext:
    """What the transform knows of a raw document's slice (from its ledger row)."""

    source: str  # ads | vendor
    account_id: str
    report_type: str
    spec: dict[str, Any]  # the normalised spec
    start: date | datetime
    end: date | datetime
    slice_key: str
    remote_report_id: str | None
    raw_key: str
    fetched_at: datetime
    currency_code: str | None = None  # the account's currency (Ads money has none of its own)
    timezone: str | None = None
    marketplace_id: str | None = None

    @property
    def identity(self) -> str:
        return identity_key(self.source, self.spec, self.marketplace_id)

    @property
    def first_day(self) -> date:
        return self.start.date() if isinstance(self.start, datetime) else self.start

    @property
    def last_day(self) -> date:
        return self.end.date() if isinstance(self.end, datetime) else self.end


@dataclass(frozen=True)
class Footprint:
    """The rows a slice replaces in a table: same account and identity, these days."""

    account_id: str
    identity_key: str
    first_day: date
    last_day: date
    fetched_at: datetime  # rows fetched later than this are newer and are kept


@dataclass
class TableRows:
    """Typed rows of one curated table from one document, streamed as record batches."""

    table: str  # e.g. ads_sp_campaigns_daily, vendor_sales_by_asin
    schema: pa.Schema  # LINEAGE_FIELDS first; may grow as unknown fields appear
    batches: Iterator[pa.RecordBatch]
    footprint: Footprint
    rows: int = 0  # filled while batches are consumed


@dataclass
class ParsedDocument:
    """All tables one raw document feeds (vendor reports feed an aggregate and a by-ASIN table)."""

    context: SliceContext
    tables: list[TableRows] = field(default_factory=list)
