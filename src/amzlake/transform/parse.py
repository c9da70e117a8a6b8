"""The transform's entry point: a raw document and its slice to typed rows per curated table."""

from __future__ import annotations

from typing import BinaryIO

from amzlake.errors import DocumentUnparseable
from amzlake.transform.ads import parse_ads
from amzlake.transform.model import ParsedDocument, SliceContext
from amzlake.transform.vendor import parse_vendor


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
