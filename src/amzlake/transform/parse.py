"""The transform's entry point: a raw document and its slice to typed rows per curated table."""

from __future__ import annotations

from typing import BinaryIO

from amzlake.errors import DocumentUnparseable
from amzlake.transform.ads import parse_ads
from amzlake.transform.model import Footprint, ParsedDocument, SliceContext, TableRows
from amzlake.transform.schemas import VENDOR_DOCUMENTS, ads_schema, ads_table_name, vendor_schema
from amzlake.transform.vendor import footprint_days, parse_vendor


def parse_document(context: SliceContext, stream: BinaryIO) -> ParsedDocument:
    """The rows `stream` (a raw gzip document as stored) holds, by table, chosen by the slice's
    source and report type.

    Rows are parsed while the tables' batches are read, so DocumentUnparseable (corrupt or
    truncated gzip, bad JSON, wrong shape, a value its column cannot hold) is raised here for what
    the first bytes show and otherwise from a batch iterator: a caller commits nothing of a
    document until every one of its batches was read. A batch's schema is the table's declared
    schema plus any new fields seen so far (appended, nullable); `TableRows.schema` follows it.
    """
    if context.source == "ads":
        return parse_ads(context, stream)
    if context.source == "vendor":
        return parse_vendor(context, stream)
    raise DocumentUnparseable(f"unknown source {context.source!r}: expected ads or vendor")


def cleared_tables(context: SliceContext) -> list[TableRows]:
    """No rows for every table a slice feeds, over the slice's footprint: replacing with them
    removes the rows an earlier pull of the slice left, when a re-pull comes back with no data
    (an Ads document of `[]`, a CANCELLED SP-API report) (DESIGN invariant 3)."""
    if context.source == "ads":
        unit = str(context.spec.get("timeUnit", "DAILY"))
        rt = str(context.spec["reportTypeId"])
        schemas = {ads_table_name(rt, unit): ads_schema(rt, unit)}
        first, last = context.first_day, context.last_day
    elif context.source == "vendor":
        doc = VENDOR_DOCUMENTS.get(context.report_type)
        if doc is None:
            raise DocumentUnparseable(f"unknown vendor report type {context.report_type!r}: "
                                      "the catalogue has no schema for it")
        schemas = {t.name: vendor_schema(doc, t) for t in doc.tables}
        first, last = footprint_days(context)
    else:
        raise DocumentUnparseable(f"unknown source {context.source!r}: expected ads or vendor")
    fp = Footprint(context.account_id, context.identity, first, last, context.fetched_at)
    return [TableRows(table=name, schema=schema, batches=iter(()), footprint=fp)
            for name, schema in schemas.items()]
