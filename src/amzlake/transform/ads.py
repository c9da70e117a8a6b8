"""Ads report documents (one GZIP JSON array of flat objects, or gzip CSV for the reports that
offer it) to typed Arrow record batches.

Fast path: the array is cut into runs of whole rows of about 4 MB; a run becomes
newline-delimited JSON by replacing its `},{` separators and is read by pyarrow's C++ JSON reader
with an explicit schema (int64 ids are parsed as integers, never through a float; money straight
to decimal(18,4)). A run that reader refuses (a `},{` inside a string, pretty-printed text, a value
of the wrong kind) is read again exactly with ijson (`use_float=False`), which either converts it
or names the row and value that cannot be converted. Memory holds one run at a time.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import date
from typing import Any, BinaryIO

import ijson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pcsv
import pyarrow.json as pj

from amzlake.catalog.ads import ADS_REPORT_TYPES, FORMAT_CSV, FORMAT_GZIP_JSON, TimeUnit
from amzlake.errors import DocumentUnparseable
from amzlake.transform.jsonstream import (
    CHUNK_BYTES,
    MAX_ROW_BYTES,
    GzipReader,
    array_chunks,
    arrow_pool,
    as_lines,
    constant,
    first_line,
    from_lines,
    infer_type,
    is_incomplete,
    open_array,
    prefetched,
    snippet,
    to_arrow,
)
from amzlake.transform.model import Footprint, ParsedDocument, SliceContext, TableRows
from amzlake.transform.names import snake
from amzlake.transform.schemas import ads_schema, ads_table_name

_STANDARD = (pa.int64(), pa.float64(), pa.string(), pa.bool_())


class _AdsColumns:
    """The columns of one Ads table as a document reveals them: declared ones, then new fields."""

    def __init__(self, report_type_id: str, time_unit: str) -> None:
        self.schema = ads_schema(report_type_id, time_unit)
        self.by_field: dict[str, str] = {}  # Amazon field -> column
        self.raw: dict[str, pa.DataType] = {}  # Amazon field -> type as read (dates as strings)
        rt = ADS_REPORT_TYPES[report_type_id]
        for g in (rt.base_columns, *(g.columns for g in rt.group_bys.values())):
            for f in g:
                col = snake(f)
                if col in self.schema.names:
                    self.by_field[f] = col
                    t = self.schema.field(col).type
                    self.raw[f] = pa.string() if pa.types.is_date(t) else t

    def add(self, name: str, typ: pa.DataType) -> None:
        """Register a field the catalogue does not know as a new nullable column."""
        col = snake(name)
        if col in self.schema.names:
            owner = next((f for f, c in self.by_field.items() if c == col), col)
            raise DocumentUnparseable(
                f"new field {name!r} would be column {col!r}, which field {owner!r} already uses"
            )
        self.by_field[name] = col
        self.raw[name] = typ
        self.schema = self.schema.append(pa.field(col, typ))

    def raw_schema(self) -> pa.Schema:
        """The schema pyarrow reads a run with (Amazon's names; dates as strings)."""
        return pa.schema([pa.field(f, t) for f, t in self.raw.items()])


class _AdsParser:
    """Turns one Ads document into record batches of its table."""

    def __init__(self, context: SliceContext, reader: GzipReader, head: bytes) -> None:
        spec = context.spec
        self.context = context
        self.time_unit = str(spec.get("timeUnit", "DAILY"))
        self.columns = _AdsColumns(str(spec["reportTypeId"]), self.time_unit)
        self.reader = reader
        self.head = head
        self.rows = 0
        self.table: TableRows | None = None
        self.present: dict[str, pa.DataType] | None = None  # fields seen (None: none read yet)

    def batches(self) -> Iterator[pa.RecordBatch]:
        """The document's rows, one record batch per run of ~4 MB of JSON."""
        carry = b""
        # Gunzip, cutting and turning runs into lines all happen in the worker thread (zlib
        # releases the GIL; the rest overlaps pyarrow's parse of the previous run, which does too).
        runs = prefetched(_lined(array_chunks(self.reader, self.head, CHUNK_BYTES)))
        try:
            for text, lines, sep, last in runs:
                if carry:  # rare: the previous cut fell inside a row
                    joined = carry + (from_lines(text) if lines else text)
                    nd = as_lines(joined)
                    text, lines = (joined, False) if nd is None else (nd, True)
                if not text.strip():
                    continue
                raw = self._fast(text) if lines else None
                if raw is None:
                    exact = from_lines(text) if lines else text
                    try:
                        raw = self._exact(exact)
                    except _Incomplete as exc:
                        if last:
                            raise DocumentUnparseable(
                                f"bad JSON after row {self.rows:,}: {exc}") from None
                        carry = exact + sep  # join it with the next run
                        continue
                carry = b""
                yield from self._counted(self._finish(raw))
        finally:
            runs.close()  # stops the gunzip worker if the reader stops early

    def csv_batches(self, header: tuple[list[str], bytes]) -> Iterator[pa.RecordBatch]:
        """The rows of a CSV document (the gross-and-invalid-traffic reports may be asked for in
        CSV), read by pyarrow's streaming CSV reader with the catalogue's types; a field the
        catalogue does not know becomes a new string column, its text kept as sent."""
        names, head = header
        for name in names:
            if name not in self.columns.raw:
                self.columns.add(name, pa.string())
        known = {n: self.columns.raw[n] for n in names}
        try:
            rows = pcsv.open_csv(
                pa.PythonFile(_Replayed(head, self.reader), mode="r"),
                read_options=pcsv.ReadOptions(block_size=1 << 20),
                # A quoted name may hold a line break; the reader must not cut the row there.
                parse_options=pcsv.ParseOptions(newlines_in_values=True),
                convert_options=pcsv.ConvertOptions(column_types=known, strings_can_be_null=True),
                memory_pool=arrow_pool(),
            )
            for batch in rows:
                yield from self._counted(self._finish(pa.Table.from_batches([batch])))
        except pa.ArrowInvalid as exc:
            raise DocumentUnparseable(f"bad CSV after row {self.rows:,}: {exc}") from None

    def _counted(self, batch: pa.RecordBatch) -> Iterator[pa.RecordBatch]:
        """`batch` (unless empty), its rows counted and the table's schema brought up to date."""
        self.rows += batch.num_rows
        if self.table is not None:
            self.table.rows = self.rows
            self.table.schema = self.columns.schema
        if batch.num_rows:
            yield batch

    def _fast(self, nd: bytes) -> pa.Table | None:
        """The run (as newline-delimited JSON) read by pyarrow, or None when it must be read
        exactly instead."""
        for _ in range(3):
            # Only the fields the document has shown so far: every absent field named in an
            # explicit schema costs pyarrow time on every row (measured: ~30% for 55 vs 30).
            explicit = self.present if self.present is not None else self.columns.raw
            try:
                table = pj.read_json(
                    pa.BufferReader(nd),  # zero copy (a BytesIO is copied block by block)
                    read_options=pj.ReadOptions(block_size=1 << 20),
                    parse_options=pj.ParseOptions(
                        explicit_schema=pa.schema(list(explicit.items())),
                        unexpected_field_behavior="infer",
                    ),
                    memory_pool=arrow_pool(),
                )
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
                return None
            if self.present is None:
                self.present = {f.name: f.type for f in table.schema
                                if f.name in self.columns.raw and table.column(f.name).null_count
                                < table.num_rows}
            new = [f for f in table.schema if f.name not in explicit]
            if not new:
                return table
            if any(pa.types.is_nested(f.type) for f in new if f.name not in self.columns.raw):
                return None  # nested values: kept as JSON text by the exact reader
            for f in new:
                if f.name not in self.columns.raw:
                    # pyarrow infers date-like strings as timestamps: they stay strings, as sent.
                    self.columns.add(f.name, f.type if f.type in _STANDARD else pa.string())
                # Read again with the field typed (a known field is never left to inference).
                self.present[f.name] = self.columns.raw[f.name]
        return None

    def _exact(self, text: bytes) -> pa.Table:
        """The run read with ijson, every value converted exactly or refused with its row."""
        rows: list[dict[str, Any]] = []
        try:
            for item in ijson.items(io.BytesIO(b"[" + text + b"]"), "item", use_float=False):
                if not isinstance(item, dict):
                    raise DocumentUnparseable(
                        f"row {self.rows + len(rows) + 1:,} is {type(item).__name__} "
                        f"{str(item)[:40]!r}, not an object: expected an array of report rows")
                rows.append(item)
        except ijson.JSONError as exc:
            if is_incomplete(exc):
                raise _Incomplete(str(exc)) from None
            raise DocumentUnparseable(
                f"bad JSON after row {self.rows + len(rows):,}: {first_line(exc)}") from None
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        for name in seen:
            if name not in self.columns.raw:
                self.columns.add(name, infer_type([r.get(name) for r in rows]))
        arrays = []
        for name, typ in self.columns.raw.items():
            where = f"row {self.rows + 1:,}+ field {name!r}"
            arrays.append(to_arrow([r.get(name) for r in rows], typ, where))
        return pa.Table.from_arrays(arrays, schema=self.columns.raw_schema())

    def _finish(self, raw: pa.Table) -> pa.RecordBatch:
        """Lineage first, then the declared and new columns under their curated names and types."""
        ctx = self.context
        n = raw.num_rows
        cols: dict[str, pa.Array | pa.ChunkedArray] = {}
        for f in raw.schema:
            col = self.columns.by_field[f.name]
            target = self.columns.schema.field(col).type
            arr = raw.column(f.name)
            if arr.type != target:
                try:
                    arr = pc.cast(arr, target, memory_pool=arrow_pool())
                except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                    raise DocumentUnparseable(
                        f"rows {self.rows + 1:,}-{self.rows + n:,} field {f.name!r}: {exc}"
                    ) from None
            cols[col] = arr
        report_date = self._report_dates(cols.get("date"), n)
        out = []
        for field in self.columns.schema:
            name = field.name
            if name == "report_date":
                out.append(report_date)
            elif name in _LINEAGE_VALUES:
                out.append(constant(_LINEAGE_VALUES[name](ctx), field.type, n))
            elif name == "currency":
                out.append(constant(ctx.currency_code, pa.string(), n))
            elif name in cols:
                arr = cols[name]
                out.append(_one_chunk(arr))
            else:
                out.append(pa.nulls(n, field.type, memory_pool=arrow_pool()))
        return pa.RecordBatch.from_arrays(out, schema=self.columns.schema)

    def _report_dates(self, dates: pa.Array | pa.ChunkedArray | None, n: int) -> pa.Array:
        ctx = self.context
        first, last = ctx.first_day, ctx.last_day
        if self.time_unit != TimeUnit.DAILY.value:
            return constant(first, pa.date32(), n)
        if dates is None or (n and dates.null_count):
            if first == last:
                return constant(first, pa.date32(), n)
            raise DocumentUnparseable(
                f"a DAILY report over {first}..{last} whose rows have no `date`: its rows "
                "cannot be given a day (add the `date` column to the report's columns)")
        arr = _one_chunk(dates)
        if n:
            lo, hi = pc.min_max(arr).values()
            if lo.as_py() < first or hi.as_py() > last:
                bad = lo.as_py() if lo.as_py() < first else hi.as_py()
                raise DocumentUnparseable(
                    f"a row is dated {bad}, outside the slice's days {first}..{last}")
        return arr


def _csv_header(reader: GzipReader) -> tuple[list[str], bytes]:
    """(field names of the header line, the bytes read so far): the first line of a CSV
    document, which names its columns as Amazon's fields."""
    head = b""
    while b"\n" not in head:
        more = reader.read(64 << 10)
        if not more:
            break
        head += more
        if len(head) > MAX_ROW_BYTES:
            raise DocumentUnparseable("the CSV header line never ends")
    line = head.split(b"\n", 1)[0].rstrip(b"\r")
    if not line.strip():
        raise DocumentUnparseable("the document is empty: expected a CSV header of report fields")
    try:
        names = next(csv.reader([line.decode("utf-8")]))
    except (UnicodeDecodeError, csv.Error) as exc:
        raise DocumentUnparseable(f"the CSV header is not readable: {exc}") from None
    if len(set(names)) != len(names) or not all(names):
        raise DocumentUnparseable(f"the CSV header {snippet(line)} has empty or repeated names")
    return names, head


class _Replayed(io.RawIOBase):
    """`head`, then the rest of `reader`: a stream pyarrow reads after the header was peeked."""

    def __init__(self, head: bytes, reader: GzipReader) -> None:
        self._head = memoryview(head)
        self._reader = reader

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._head:
            n = min(len(buffer), len(self._head))
            buffer[:n] = self._head[:n]
            self._head = self._head[n:]
            return n
        data = self._reader.read(len(buffer))
        buffer[:len(data)] = data
        return len(data)


def _lined(runs: Iterator[tuple[bytes, bytes, bool]]) -> Iterator[tuple[bytes, bool, bytes, bool]]:
    """(text, is_lines, separator, is_last): each run as newline-delimited JSON where it can be,
    else as it came (only one copy of a run is kept)."""
    for run, sep, last in runs:
        lines = as_lines(run)
        yield (run, False, sep, last) if lines is None else (lines, True, sep, last)


def _one_chunk(arr: pa.Array | pa.ChunkedArray) -> pa.Array:
    # pyarrow's reader gives a chunk per 1 MB block; a record batch column is one array.
    return arr.combine_chunks(memory_pool=arrow_pool()) if isinstance(arr, pa.ChunkedArray) else arr


class _Incomplete(Exception):
    """A run ended inside a row (the cut fell inside a string or a nested value)."""


_LINEAGE_VALUES: dict[str, Any] = {
    "account_id": lambda c: c.account_id,
    "identity_key": lambda c: c.identity,
    "slice_key": lambda c: c.slice_key,
    "remote_report_id": lambda c: c.remote_report_id,
    "raw_key": lambda c: c.raw_key,
    "fetched_at": lambda c: c.fetched_at,
}


def footprint(context: SliceContext, first: date | None = None,
              last: date | None = None) -> Footprint:
    """The rows a slice replaces: its account and identity on its days."""
    return Footprint(context.account_id, context.identity, first or context.first_day,
                     last or context.last_day, context.fetched_at)


def parse_ads(context: SliceContext, stream: BinaryIO) -> ParsedDocument:
    """The Ads document in `stream` (gzip) as its table's rows; raises DocumentUnparseable now for
    a document that is not gzip or not a JSON array, and while batches are read for the rest."""
    spec = context.spec
    rt = spec.get("reportTypeId")
    if rt not in ADS_REPORT_TYPES:
        raise DocumentUnparseable(
            f"unknown Ads report type {rt!r}: the catalogue has no schema for it")
    fmt = spec.get("format", FORMAT_GZIP_JSON)
    if fmt not in (FORMAT_GZIP_JSON, FORMAT_CSV):
        raise DocumentUnparseable(
            f"Ads documents in format {fmt} are not supported; ask for GZIP_JSON or CSV")
    reader = GzipReader(stream)
    if fmt == FORMAT_CSV:
        parser = _AdsParser(context, reader, b"")
        batches = parser.csv_batches(_csv_header(reader))
    else:
        parser = _AdsParser(context, reader, open_array(reader))
        batches = parser.batches()
    table = TableRows(
        table=ads_table_name(rt, parser.time_unit),
        schema=parser.columns.schema,
        batches=batches,
        footprint=footprint(context),
    )
    parser.table = table
    return ParsedDocument(context, [table])
