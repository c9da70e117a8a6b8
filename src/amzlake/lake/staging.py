"""Stage a slice's rows as Parquet files in its table's partitions, before any commit.

Staging is the parallel half of a commit: transform workers (or Spark executors) parse documents
and write their rows here, each into one file per (account, month) partition of the table, with
Iceberg field ids. The commit (amzlake.lake.writer) then folds the staged files of many slices into
the table at once, per table, so N workers never race N commits on one table.

Rows arrive in document order, which can interleave days. They wait in per-day buffers until a row
group's worth is there or all buffers together pass `buffer_bytes` (then the biggest is written as
a row group of one day), so memory stays bounded whatever the slice size. What is left at the end
is written in day order, several days to a row group. Every row group so holds one day, or a run of
days in order: the commit's merge reads a staged file in day order without sorting it.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import date

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from pyiceberg.io import FileIO
from pyiceberg.io.pyarrow import BUFFER_SIZE, PyArrowFileIO
from pyiceberg.schema import Schema

from amzlake.errors import AmzlakeError
from amzlake.lake.layout import REQUIRED_COLUMNS, ROW_GROUP_ROWS, month_of, with_field_ids
from amzlake.lake.merge import dictionary_columns, partition_folder
from amzlake.transform.jsonstream import arrow_pool, prefetched
from amzlake.transform.model import Footprint, TableRows


class LakeCommitError(AmzlakeError):
    """A slice could not be committed to its Iceberg table (the message says why)."""


@dataclass(frozen=True)
class StagedFile:
    """One staged Parquet file: a partition's rows of one slice."""

    path: str
    account_id: str
    month: int
    rows_per_day: tuple[tuple[date, int], ...]
    row_groups: int

    @property
    def rows(self) -> int:
        return sum(n for _, n in self.rows_per_day)

    @property
    def days(self) -> set[date]:
        return {d for d, _ in self.rows_per_day}


@dataclass(frozen=True)
class StagedRows:
    """A slice's rows for one table, staged and ready to commit (picklable: crosses processes)."""

    table: str
    footprint: Footprint
    slice_key: str
    files: tuple[StagedFile, ...] = ()
    columns_added: tuple[str, ...] = ()

    @property
    def rows(self) -> int:
        return sum(f.rows for f in self.files)

    @property
    def days(self) -> set[date]:
        return {d for f in self.files for d in f.days}


@dataclass
class _DayBuffer:
    batches: list[pa.RecordBatch] = field(default_factory=list)
    rows: int = 0
    nbytes: int = 0


@dataclass
class _OpenFile:
    writer: pq.ParquetWriter
    stream: object
    path: str
    month: int
    counts: dict[date, int] = field(default_factory=dict)
    row_groups: int = 0


class Stager:
    """Streams one slice's batches into staged files of its table (see the module doc)."""

    def __init__(self, io: FileIO, location: str, footprint: Footprint,
                 table_schema: Callable[[pa.Schema], Schema], *,
                 row_group_rows: int = ROW_GROUP_ROWS, buffer_bytes: int = 8 * 1024 * 1024,
                 max_open_files: int = 8, compression: str = "zstd") -> None:
        self.io = small_buffer_io(io)
        self.location = location
        self.fp = footprint
        self.table_schema = table_schema  # adds unknown columns to the table; its schema
        self.row_group_rows = row_group_rows
        self.buffer_bytes = buffer_bytes
        self.max_open_files = max_open_files
        self.compression = compression
        self.schema: pa.Schema | None = None  # the current batches' schema, with field ids
        self.buffers: dict[date, _DayBuffer] = {}
        self.buffered = 0
        self.open: dict[int, _OpenFile] = {}
        self.files: list[StagedFile] = []

    def add(self, batch: pa.RecordBatch) -> None:
        """Stage one batch (its rows must be the footprint's account and identity)."""
        if batch.num_rows == 0:
            return
        batch = self._conform(batch)
        if self.schema is None or not batch.schema.equals(self.schema, check_metadata=False):
            # A new column mid-stream: the files so far keep their schema, new ones get the new.
            self._close_all()
            self.schema = with_field_ids(batch.schema, self.table_schema(batch.schema))
        for day, part in split_by_day(batch):
            buf = self.buffers.setdefault(day, _DayBuffer())
            buf.batches.append(part)
            buf.rows += part.num_rows
            buf.nbytes += part.nbytes
            self.buffered += part.nbytes
            if buf.rows >= self.row_group_rows:
                self._flush([day])
        while self.buffered > self.buffer_bytes and self.buffers:
            self._flush([max(self.buffers, key=lambda d: self.buffers[d].nbytes)])

    def close(self) -> list[StagedFile]:
        """Write what is buffered; the staged files."""
        self._close_all()
        return self.files

    def abort(self) -> None:
        """Remove every file staged so far (the slice is not committed)."""
        for f in self.open.values():
            with contextlib.suppress(Exception):  # already failing: the first error is reported
                f.writer.close()
                f.stream.close()  # type: ignore[attr-defined]
            self.files.append(StagedFile(f.path, self.fp.account_id, f.month, (), 0))
        self.open.clear()
        discard_files(self.io, [f.path for f in self.files])

    def _conform(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        for name in REQUIRED_COLUMNS:
            if name not in batch.schema.names:
                raise LakeCommitError(f"rows lack the lineage column {name}")
            if batch.column(name).null_count:
                raise LakeCommitError(f"rows have null {name} (a lineage column is required)")
        for name, want in (("account_id", self.fp.account_id),
                           ("identity_key", self.fp.identity_key)):
            col = batch.column(name)
            if not pc.all(pc.equal(col, pa.scalar(want, col.type), memory_pool=arrow_pool()),
                          memory_pool=arrow_pool()).as_py():
                raise LakeCommitError(f"rows with another {name} than the footprint's {want!r}")
        schema = pa.schema(
            [f.with_nullable(f.name not in REQUIRED_COLUMNS) for f in batch.schema]
        )
        return pa.RecordBatch.from_arrays(batch.columns, schema=schema)

    def _flush(self, days: Iterable[date]) -> None:
        """Write the buffered rows of `days` (in day order), one row group per month's run."""
        by_month: dict[int, list[pa.RecordBatch]] = {}
        counts: dict[int, dict[date, int]] = {}
        for day in sorted(days):
            buf = self.buffers.pop(day)
            self.buffered -= buf.nbytes
            by_month.setdefault(month_of(day), []).extend(buf.batches)
            counts.setdefault(month_of(day), {})[day] = buf.rows
        for month, batches in by_month.items():
            out = self._file(month)
            table = pa.Table.from_batches(batches, schema=self.schema)
            out.writer.write_table(table, row_group_size=self.row_group_rows)
            out.row_groups += -(-table.num_rows // self.row_group_rows)
            for day, n in counts[month].items():
                out.counts[day] = out.counts.get(day, 0) + n

    def _file(self, month: int) -> _OpenFile:
        if month in self.open:
            self.open[month] = self.open.pop(month)  # most recently used last
            return self.open[month]
        if len(self.open) >= self.max_open_files:
            self._close(next(iter(self.open)))  # a later row of its month starts another file
        assert self.schema is not None
        path = (f"{partition_folder(self.location, self.fp.account_id, month)}/"
                f"{uuid.uuid4()}.parquet")
        stream = self.io.new_output(path).create(overwrite=False)
        writer = pq.ParquetWriter(stream, self.schema, compression=self.compression,
                                  use_dictionary=dictionary_columns(self.schema),
                                  memory_pool=arrow_pool())
        self.open[month] = _OpenFile(writer, stream, path, month)
        return self.open[month]

    def _close(self, month: int) -> None:
        f = self.open.pop(month)
        f.writer.close()
        f.stream.close()  # type: ignore[attr-defined]
        self.files.append(StagedFile(f.path, self.fp.account_id, month,
                                     tuple(sorted(f.counts.items())), f.row_groups))

    def _close_all(self) -> None:
        if self.buffers:
            self._flush(list(self.buffers))
        for month in list(self.open):
            self._close(month)


def stage_rows(rows: TableRows, stager: Stager) -> list[StagedFile]:
    """Stream every batch of `rows` through `stager`; the staged files (none left on error)."""
    # The next batch is parsed in a worker thread while this one is encoded: both run mostly
    # in pyarrow with the GIL released, so a second core is not idle while Parquet is written.
    batches = prefetched(iter(rows.batches))
    try:
        total = 0
        for batch in batches:
            total += batch.num_rows
            stager.add(batch)
        rows.rows = total
        return stager.close()
    except BaseException:
        stager.abort()
        raise
    finally:
        batches.close()  # type: ignore[attr-defined]


def discard_files(io: FileIO, paths: Iterable[str]) -> None:
    """Delete files that will not be committed (an orphan left behind is harmless)."""
    for path in paths:
        with contextlib.suppress(OSError):
            io.delete(path)


def small_buffer_io(io: FileIO) -> FileIO:
    """`io` with a 64 KiB write buffer per file (pyiceberg's default, 1 MiB, times every open
    file was most of the writer's memory)."""
    if isinstance(io, PyArrowFileIO):
        return PyArrowFileIO(properties={**io.properties, BUFFER_SIZE: str(64 * 1024)})
    return io


def split_by_day(batch: pa.RecordBatch) -> Iterator[tuple[date, pa.RecordBatch]]:
    """The batch's rows per report_date (the batch itself when it holds one day)."""
    col = batch.column("report_date")
    days = pc.unique(col, memory_pool=arrow_pool()).to_pylist()
    if len(days) == 1:
        yield days[0], batch
        return
    for day in sorted(days):
        mask = pc.equal(col, pa.scalar(day, col.type), memory_pool=arrow_pool())
        yield day, pc.filter(batch, mask, memory_pool=arrow_pool())
