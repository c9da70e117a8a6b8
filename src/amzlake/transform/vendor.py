"""SP-API vendor report documents to typed Arrow record batches, one stream for all their tables.

A vendor document is one JSON object: `reportSpecification` and one or more arrays of (nested)
objects. It is read once with ijson (yajl2_c, `use_float=False`: integers stay ints, other numbers
exact Decimals), one element at a time; each element is flattened (nested objects -> prefixed
columns, Amount objects -> `_amount` + `_currency`, nested arrays -> rows of child tables with
their parents' keys) and queued for its table. Each table's batch iterator pulls the shared stream
forward until it has a batch (or the document ends), so memory holds one batch per table when the
tables are read in document order (aggregate first, as Amazon writes them).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any, BinaryIO

import ijson
import pyarrow as pa
from ijson.common import ObjectBuilder

from amzlake.errors import DocumentUnparseable
from amzlake.transform.jsonstream import (
    DocumentReader,
    document_reader,
    first_line,
    infer_type,
    is_incomplete,
    snippet,
    to_arrow,
)
from amzlake.transform.model import Footprint, ParsedDocument, SliceContext, TableRows
from amzlake.transform.names import path_column
from amzlake.transform.schemas import (
    VENDOR_DOCUMENTS,
    DateFrom,
    VendorDocument,
    VendorTable,
    option_column,
    vendor_schema,
)

BATCH_ROWS = 65_536
_REPORT_DATE = "report_date"
_OPTIONS_KEY = "reportOptions"


def _utc_day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return (moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)).date()


def _day(value: Any) -> date | None:
    if not isinstance(value, str):
        return None
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        return None


def footprint_days(context: SliceContext) -> tuple[date, date]:
    """The days a vendor slice covers: hourly slices end on an exclusive hour (a slice to
    midnight does not cover the next day)."""
    first, last = context.first_day, context.last_day
    if isinstance(context.end, datetime):
        end = context.end.astimezone(UTC) if context.end.tzinfo else context.end.replace(tzinfo=UTC)
        start = context.start
        if isinstance(start, datetime):
            first = (start.astimezone(UTC) if start.tzinfo else start.replace(tzinfo=UTC)).date()
        last = max(first, (end - timedelta(microseconds=1)).date())
    return first, last


class _Table:
    """One vendor table as the document reveals it: declared columns, then new fields."""

    def __init__(self, doc: VendorDocument, spec: VendorTable) -> None:
        self.spec = spec
        self.schema = vendor_schema(doc, spec)
        self.declared = frozenset(self.schema.names)
        self.pending: list[dict[str, Any]] = []
        self.rows = 0
        self.out: TableRows | None = None
        # Child tables: the next array level under this one (first path part after ours).
        self.children: dict[str, _Table] = {}


class _VendorParser:
    """Walks the document's events once and deals flattened rows to its tables."""

    def __init__(self, context: SliceContext, doc: VendorDocument, reader: DocumentReader) -> None:
        self.context = context
        self.doc = doc
        self.reader = reader
        self.tables = {t.name: _Table(doc, t) for t in doc.tables}
        self.roots: dict[str, _Table] = {}
        for t in self.tables.values():
            if len(t.spec.array) == 1:
                self.roots[t.spec.array[0]] = t
            else:
                parent = next(p for p in self.tables.values() if p.spec.array == t.spec.array[:-1])
                parent.children[t.spec.array[-1]] = t
        self.first_day, self.last_day = footprint_days(context)
        self.report_spec: dict[str, Any] = {}
        self.options: dict[str, Any] = dict(context.spec.get(_OPTIONS_KEY) or {})
        self.events = ijson.basic_parse(reader, use_float=False)
        self.done = False
        self.rows_seen = 0
        self.stream = self._rows()
        self._started = False

    # ---- the shared stream ----------------------------------------------------------------------

    def _next(self) -> tuple[str, Any]:
        try:
            return next(self.events)
        except StopIteration:
            raise DocumentUnparseable(
                "the document ends before its JSON object is closed") from None
        except ijson.JSONError as exc:
            if is_incomplete(exc):
                raise DocumentUnparseable(
                    f"the document ends before its JSON object is closed (after "
                    f"{self.rows_seen:,} rows)") from None
            raise DocumentUnparseable(
                f"bad JSON after {self.rows_seen:,} rows: {first_line(exc)}") from None

    def _value(self, event: str, value: Any) -> Any:
        """The whole JSON value that starts with (event, value)."""
        if event not in ("start_map", "start_array"):
            return value
        builder = ObjectBuilder()
        builder.event(event, value)
        depth = 1
        while depth:
            event, value = self._next()
            builder.event(event, value)
            if event in ("start_map", "start_array"):
                depth += 1
            elif event in ("end_map", "end_array"):
                depth -= 1
        return builder.value

    def start(self) -> None:
        """Check the document opens as a JSON object (raises DocumentUnparseable otherwise)."""
        event, value = self._next()
        if event != "start_map":
            kind = "an array" if event == "start_array" else f"a {event} {str(value)[:40]!r}"
            raise DocumentUnparseable(
                f"expected a JSON object with reportSpecification and the report's arrays, "
                f"found {kind}")
        self._started = True

    def _rows(self) -> Iterator[tuple[_Table, dict[str, Any]]]:
        while True:
            event, key = self._next()
            if event == "end_map":
                break
            assert event == "map_key"
            event, value = self._next()
            if key == "reportSpecification":
                spec = self._value(event, value)
                if not isinstance(spec, dict):
                    raise DocumentUnparseable("reportSpecification is not an object")
                self.report_spec = spec
                self.options.update(spec.get(_OPTIONS_KEY) or {})
                continue
            if key == "errorDetails":
                text = self._value(event, value)
                raise DocumentUnparseable(f"the document is Amazon's FATAL error report: {text}")
            table = self.roots.get(key)
            if table is None:
                # Not an array of this report type's rows (a new top-level member): read past it.
                self._value(event, value)
                continue
            if event != "start_array":
                raise DocumentUnparseable(
                    f"{key} should be an array of rows, found {event} "
                    f"{snippet(str(value).encode())}")
            index = 0
            while True:
                event, value = self._next()
                if event == "end_array":
                    break
                index += 1
                item = self._value(event, value)
                if not isinstance(item, dict):
                    raise DocumentUnparseable(
                        f"{key}[{index}] is {type(item).__name__} {str(item)[:40]!r}, "
                        "not an object")
                self.rows_seen += 1
                yield from self._flatten_tree(table, item, {}, None)
        try:
            extra = next(self.events)
        except StopIteration:
            return
        except ijson.JSONError as exc:
            raise DocumentUnparseable(f"bad JSON after the document's object: {exc}") from None
        raise DocumentUnparseable(f"unexpected data after the document's object: {extra}")

    def _flatten_tree(self, table: _Table, item: dict[str, Any], parent: dict[str, Any],
                      day: date | None) -> Iterator[tuple[_Table, dict[str, Any]]]:
        row: dict[str, Any] = {}
        nested: dict[str, list[Any]] = {}
        _flatten(item, (), row, nested, table.children)
        for parent_col, child_col in table.spec.parent_keys:
            row.setdefault(child_col, parent.get(parent_col))
        if day is None:
            day = self._report_date(table.spec.date_from, row, item)
        row[_REPORT_DATE] = day
        yield table, row
        for name, items in nested.items():
            child = table.children[name]
            for i, sub in enumerate(items, 1):
                if not isinstance(sub, dict):
                    raise DocumentUnparseable(f"{'.'.join(child.spec.array)}[{i}] is not an object")
                yield from self._flatten_tree(child, sub, row, day)

    def _report_date(self, rule: str, row: dict[str, Any], item: dict[str, Any]) -> date:
        day: date | None
        if rule == DateFrom.START_DATE:
            day = _day(row.get("start_date"))
        elif rule == DateFrom.START_TIME:
            day = _utc_day(row.get("start_time"))
        elif rule == DateFrom.START_DATE_TIME:
            day = _utc_day(row.get("start_date_time"))
        elif rule == DateFrom.COUPON_START:
            starts = [d for c in item.get("coupons") or [] if isinstance(c, dict)
                      if (d := _utc_day(c.get("startDateTime"))) is not None]
            day = min(starts) if starts else None
        elif rule == DateFrom.SPEC:
            day = _day(self.report_spec.get("dataStartTime"))
        else:
            day = None
        day = day or self.first_day
        if not self.first_day <= day <= self.last_day:
            raise DocumentUnparseable(
                f"a row of {rule} {day} is outside the slice's days "
                f"{self.first_day}..{self.last_day}")
        return day

    # ---- per-table batches ----------------------------------------------------------------------

    def pull(self, table: _Table) -> list[dict[str, Any]] | None:
        """The next batch of `table`'s rows, advancing the shared stream; None when done."""
        while not self.done and len(table.pending) < BATCH_ROWS:
            try:
                owner, row = next(self.stream)
            except StopIteration:
                self.done = True
                break
            owner.pending.append(row)
        rows, table.pending = table.pending, []
        return rows if rows or not self.done else None

    def batches(self, table: _Table) -> Iterator[pa.RecordBatch]:
        """`table`'s rows as record batches of up to BATCH_ROWS."""
        while (rows := self.pull(table)) is not None:
            if rows:
                batch = self._batch(table, rows)
                table.rows += batch.num_rows
                if table.out is not None:
                    table.out.rows = table.rows
                    table.out.schema = table.schema
                yield batch

    def _batch(self, table: _Table, rows: list[dict[str, Any]]) -> pa.RecordBatch:
        ctx = self.context
        n = len(rows)
        seen: dict[str, None] = {}
        for r in rows:
            seen.update(dict.fromkeys(r))
        for name in seen:
            if name not in table.schema.names and name != _REPORT_DATE:
                table.schema = table.schema.append(
                    pa.field(name, infer_type([r.get(name) for r in rows])))
        consts: dict[str, Any] = {
            "account_id": ctx.account_id, "identity_key": ctx.identity, "slice_key": ctx.slice_key,
            "remote_report_id": ctx.remote_report_id, "raw_key": ctx.raw_key,
            "fetched_at": ctx.fetched_at,
            "last_updated_date": _day(self.report_spec.get("lastUpdatedDate")),
        }
        for opt in self.doc.options:
            value = self.options.get(opt)
            consts[option_column(opt)] = None if value is None else str(value)
        arrays = []
        for field in table.schema:
            name = field.name
            if name == _REPORT_DATE:
                arrays.append(pa.array([r[_REPORT_DATE] for r in rows], pa.date32()))
            elif name in consts and name not in seen:
                arrays.append(pa.repeat(pa.scalar(consts[name], field.type), n))
            else:
                where = (f"{'.'.join(table.spec.array)} rows {table.rows + 1:,}-"
                         f"{table.rows + n:,} column {name!r}")
                arrays.append(to_arrow([r.get(name) for r in rows], field.type, where))
        return pa.RecordBatch.from_arrays(arrays, schema=table.schema)


def _flatten(obj: dict[str, Any], prefix: tuple[str, ...], out: dict[str, Any],
             nested: dict[str, list[Any]], children: dict[str, Any]) -> None:
    """Flatten one element into `out` (column -> value); child arrays go to `nested`."""
    for key, value in obj.items():
        path = (*prefix, key)
        if isinstance(value, dict):
            if "amount" in value and "currencyCode" in value and len(value) == 2:
                col = path_column(path)
                out[f"{col}_amount"] = value["amount"]
                out[f"{col}_currency"] = value["currencyCode"]
            else:
                _flatten(value, path, out, nested, {})
        elif isinstance(value, list) and not prefix and key in children:
            nested[key] = value
        else:
            out[path_column(path)] = value


def parse_vendor(context: SliceContext, stream: BinaryIO) -> ParsedDocument:
    """The vendor document in `stream` (gzip, or plain JSON if Amazon served it uncompressed) as
    the rows of its tables; raises DocumentUnparseable now for a document that is not gzip or not
    a JSON object, and while batches are read for the rest."""
    doc = VENDOR_DOCUMENTS.get(context.report_type)
    if doc is None:
        raise DocumentUnparseable(
            f"unknown vendor report type {context.report_type!r}: "
            "the catalogue has no schema for it")
    parser = _VendorParser(context, doc, document_reader(stream, context.raw_key))
    parser.start()
    first, last = parser.first_day, parser.last_day
    fp = Footprint(context.account_id, context.identity, first, last, context.fetched_at)
    out = []
    for t in parser.tables.values():
        rows = TableRows(table=t.spec.name, schema=t.schema, batches=parser.batches(t),
                         footprint=fp)
        t.out = rows
        out.append(rows)
    return ParsedDocument(context, out)

