"""Streaming building blocks of the parsers: checked gunzip, array chunks, exact value conversion.

Nothing here holds a whole document: the gunzip reader hands out bytes as read, `array_chunks`
cuts a top-level JSON array into runs of whole elements of a bounded size, and the converters
turn one batch of parsed values into Arrow arrays.
"""

from __future__ import annotations

import contextlib
import gzip
import queue
import re
import threading
import zlib
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, BinaryIO, TypeVar

import orjson
import pyarrow as pa
from isal import igzip, isal_zlib

from amzlake.errors import DocumentUnparseable
from amzlake.slices import is_compressed

# JSON text per parsed run: ~6k Ads rows of 30 columns. Measured on a 712 MB document: 4 MB runs
# parse as fast as 8 MB ones (pyarrow splits a run into 1 MB blocks either way) with ~50 MB less
# peak RSS, as each run exists in ~3 copies (being cut, queued, parsed); 2 MB runs cost ~10% time.
CHUNK_BYTES = 4 << 20
MAX_ROW_BYTES = 256 << 20  # a single row longer than this is not a report row
_READ = 1 << 20
T = TypeVar("T")


class GzipReader:
    """A file-like gzip reader that turns every gzip failure into DocumentUnparseable."""

    def __init__(self, stream: BinaryIO) -> None:
        # ISA-L's gzip reader: the same format and checks as gzip.GzipFile, inflating several times
        # faster (the gunzip is a fifth of the parse's CPU with zlib).
        self._gz = igzip.GzipFile(fileobj=stream, mode="rb")
        self.consumed = 0  # uncompressed bytes handed out so far

    def read(self, size: int = -1) -> bytes:
        """Up to `size` uncompressed bytes (b"" at the end of a complete stream)."""
        try:
            data = self._gz.read(size)
        except EOFError:
            raise DocumentUnparseable(
                f"the gzip stream is truncated: it ends after {self.consumed:,} bytes of JSON "
                "without its end marker (download it again)"
            ) from None
        except (gzip.BadGzipFile, igzip.BadGzipFile, zlib.error, isal_zlib.error, OSError) as exc:
            raise DocumentUnparseable(
                f"the document is not valid gzip ({exc}) after {self.consumed:,} bytes of JSON "
                "(download it again)"
            ) from None
        self.consumed += len(data)
        return data


class PlainReader:
    """A document stored as served without compression (SP-API without compressionAlgorithm),
    read through GzipReader's interface."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream
        self.consumed = 0  # bytes handed out so far

    def read(self, size: int = -1) -> bytes:
        """Up to `size` bytes (b"" at the end)."""
        data = self._stream.read(size)
        self.consumed += len(data)
        return data


DocumentReader = GzipReader | PlainReader


def document_reader(stream: BinaryIO, raw_key: str) -> DocumentReader:
    """The reader for the raw document under `raw_key`: gzip or plain, as it was served."""
    return GzipReader(stream) if is_compressed(raw_key) else PlainReader(stream)


def snippet(data: bytes, limit: int = 40) -> str:
    """A short printable excerpt of `data` for error messages."""
    text = data[:limit].decode("utf-8", "replace")
    return repr(text + ("..." if len(data) > limit else ""))


# Between two elements of an array of objects: `},{`, with any whitespace around the comma.
_SEPARATOR = re.compile(rb"\}\s*,\s*\{")
_WS = b" \t\r\n"


def open_array(reader: DocumentReader) -> bytes:
    """The bytes after the opening `[` of a document that must be one JSON array (the first
    buffer); raises DocumentUnparseable when the document is empty or not an array."""
    buf = reader.read(_READ)
    while buf.lstrip(_WS + b"\xef\xbb\xbf") == b"":
        more = reader.read(_READ)
        if not more:
            raise DocumentUnparseable("the document is empty: expected a JSON array of report rows")
        buf += more
    buf = buf.lstrip(_WS + b"\xef\xbb\xbf")
    if not buf.startswith(b"["):
        raise DocumentUnparseable(
            f"expected a JSON array of report rows, but the document starts with {snippet(buf)}"
        )
    return buf[1:]


def array_chunks(reader: DocumentReader, head: bytes,
                 target: int = CHUNK_BYTES) -> Iterator[tuple[bytes, bytes, bool]]:
    """(elements, separator after them, is_last) runs of a JSON array's text after its `[`.

    A cut is made at the last `},{` of each buffer; it may fall inside a string or a nested
    value, which the caller finds out (the run does not parse) and mends by joining the run,
    its separator and the next run.
    """
    buf = head
    eof = False
    while True:
        # Pieces joined once per run: appending to one growing bytes would copy it every read.
        pieces, size = [buf], len(buf)
        while not eof and size < target:
            more = reader.read(_READ)
            if not more:
                eof = True
            pieces.append(more)
            size += len(more)
        buf = b"".join(pieces)
        if eof:
            tail = buf.rstrip(_WS)
            if not tail.endswith(b"]"):
                raise DocumentUnparseable(
                    "the JSON array is never closed: the document ends with "
                    f"{snippet(tail[-40:])} instead of ']'"
                )
            body = tail[:-1].rstrip(_WS)
            yield body, b"", True
            return
        cut = buf.rfind(b"},{")
        if cut >= 0:
            yield buf[: cut + 1], b",", False
            buf = buf[cut + 2 :]
            continue
        last = None
        for last in _SEPARATOR.finditer(buf):  # noqa: B007 - only the last match is wanted
            pass
        if last is not None:
            yield buf[: last.start() + 1], buf[last.start() + 1 : last.end() - 1], False
            buf = buf[last.end() - 1 :]
            continue
        if len(buf) > MAX_ROW_BYTES:
            raise DocumentUnparseable(
                f"no row boundary in {len(buf):,} bytes: not an array of report rows"
            )
        target = len(buf) * 2  # one very long row: read on until a boundary appears


def as_lines(run: bytes) -> bytes | None:
    """`run` (whole elements of an array of objects) as newline-delimited JSON, or None when the
    text has line breaks of its own (pretty-printed: lines are not rows).

    JSON strings cannot hold a raw line break, so in text without one every `}\n{` of the result
    was a `},{` separator: `from_lines` gives the exact text back. A `},{` inside a string is
    broken too; the caller's strict reader then refuses the lines and reads the text exactly.
    """
    if b"\n" in run or b"\r" in run:
        return None
    return run.replace(b"},{", b"}\n{")


def from_lines(lines: bytes) -> bytes:
    """The text `as_lines` made `lines` from."""
    return lines.replace(b"}\n{", b"},{")


def first_line(exc: Exception) -> str:
    """The first line of a parser's message (yajl adds a multi-line pointer to the spot)."""
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def is_incomplete(exc: Exception) -> bool:
    """Whether an ijson error means the text ended too early (not that it is malformed)."""
    return "premature EOF" in str(exc) or "Incomplete JSON" in str(exc)


# ---- Values to Arrow ----------------------------------------------------------------------------


def _json_text(value: Any) -> str:
    if isinstance(value, int | Decimal) and not isinstance(value, bool):
        return str(value)  # orjson refuses integers beyond 64 bits
    return orjson.dumps(value, default=str).decode()


def infer_type(values: list[Any]) -> pa.DataType:
    """The type of a new field from its values: bool, int64, float64 or string (nested values and
    mixed kinds become strings of JSON text; a field that is null throughout is a string)."""
    kinds = {type(v) for v in values if v is not None}
    if not kinds:
        return pa.string()
    if kinds == {bool}:
        return pa.bool_()
    if kinds == {int}:
        return pa.int64()
    if kinds <= {int, Decimal, float}:
        return pa.float64()
    return pa.string()


def _bad(where: str, value: Any, what: str) -> DocumentUnparseable:
    return DocumentUnparseable(f"{where}: {_json_text(value)[:60]} is not {what}")


def _first_bad(values: list[Any], ok: Any) -> Any:
    return next(v for v in values if v is not None and not ok(v))


def to_arrow(values: list[Any], typ: pa.DataType, where: str) -> pa.Array:
    """`values` (as ijson gives them: int, Decimal, str, bool, None, dict, list) as an Arrow array
    of `typ`; raises DocumentUnparseable naming `where` and the first value that cannot convert."""
    if pa.types.is_integer(typ):
        def ok_int(v: Any) -> bool:
            return isinstance(v, int) and not isinstance(v, bool)
        if not all(v is None or ok_int(v) for v in values):
            raise _bad(where, _first_bad(values, ok_int), "an integer")
        try:
            return pa.array(values, typ)
        except (pa.ArrowInvalid, OverflowError):
            biggest = max((v for v in values if v is not None), key=abs)
            raise _bad(where, biggest, "a 64-bit integer") from None
    if pa.types.is_decimal(typ):
        def ok_dec(v: Any) -> bool:
            return isinstance(v, int | Decimal) and not isinstance(v, bool)
        if not all(v is None or ok_dec(v) for v in values):
            raise _bad(where, _first_bad(values, ok_dec), "a number")
        try:
            return pa.array([None if v is None else Decimal(v) for v in values], typ)
        except (pa.ArrowInvalid, OverflowError):
            def fits(v: Any) -> bool:
                d = Decimal(v)
                limit = Decimal(10) ** (typ.precision - typ.scale)
                return d.as_tuple().exponent >= -typ.scale and abs(d) < limit
            what = f"an amount with at most {typ.scale} decimals"
            raise _bad(where, _first_bad(values, fits), what) from None
    if pa.types.is_floating(typ):
        def ok_num(v: Any) -> bool:
            return isinstance(v, int | Decimal | float) and not isinstance(v, bool)
        if not all(v is None or ok_num(v) for v in values):
            raise _bad(where, _first_bad(values, ok_num), "a number")
        return pa.array([None if v is None else float(v) for v in values], typ)
    if pa.types.is_boolean(typ):
        if not all(v is None or isinstance(v, bool) for v in values):
            raise _bad(where, _first_bad(values, lambda v: isinstance(v, bool)), "true or false")
        return pa.array(values, typ)
    if pa.types.is_date(typ):
        return pa.array([None if v is None else _date(v, where) for v in values], typ)
    if pa.types.is_timestamp(typ):
        return pa.array([None if v is None else _timestamp(v, where) for v in values], typ)
    # Strings: new fields of mixed or nested kinds keep their JSON text.
    return pa.array(
        [v if v is None or isinstance(v, str) else _json_text(v) for v in values], pa.string()
    )


def _date(value: Any, where: str) -> date:
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise _bad(where, value, "a date (YYYY-MM-DD)")


def _timestamp(value: Any, where: str) -> datetime:
    if isinstance(value, str):
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            pass
        else:
            # A date-time without an offset is UTC, as Amazon reads its own (catalog.vendor).
            return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    raise _bad(where, value, "an ISO-8601 date-time")


def arrow_pool() -> pa.MemoryPool:
    """The Arrow memory pool the parsers and the lake writer allocate from: the system allocator.

    pyarrow's default pool (mimalloc) kept ~50 MB more resident on 1M Ads rows (peak RSS 303 vs
    252 MB, same time): batches are built on pyarrow's threads and freed on others, and memory
    freed across threads stays with the thread that allocated it.
    """
    return pa.system_memory_pool()


def constant(value: Any, typ: pa.DataType, n: int) -> pa.Array:
    """An array of `n` copies of `value`."""
    return pa.repeat(pa.scalar(value, typ), n, memory_pool=arrow_pool())


_DONE = object()


def prefetched(items: Iterator[T], depth: int = 1) -> Iterator[T]:
    """`items`, produced one step ahead in a worker thread, so gunzip and cutting the next run
    (zlib releases the GIL) overlap with parsing this one; exceptions arrive in order. Memory:
    at most `depth` + 1 items in flight. Closing the iterator stops the worker."""
    q: queue.Queue[Any] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(item: Any) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def work() -> None:
        try:
            for item in items:
                if not put((True, item)):
                    return
        except BaseException as exc:  # handed to the consumer, raised there
            put((False, exc))
            return
        finally:
            # A generator is closed in the thread that runs it, so its own cleanup (an inner
            # prefetched worker, an open file) runs now, not whenever it is collected.
            close = getattr(items, "close", None)
            if close is not None:
                with contextlib.suppress(Exception):
                    close()
        put(_DONE)

    worker = threading.Thread(target=work, name="amzlake-gunzip", daemon=True)
    worker.start()
    try:
        while True:
            got = q.get()
            if got is _DONE:
                return
            ok, value = got
            if not ok:
                raise value
            yield value
    finally:
        stop.set()
        worker.join(timeout=5)
