"""The transform step: every downloaded raw document into the curated tables (guidance step 5).

Documents are parsed and committed in a pool of worker processes, one slice per task: the parse is
CPU-bound Python, and each commit is an independent Iceberg transaction (the writer retries when two
land on one table at once). The ledger, the quarantine and the notifications stay in this process.
A document that cannot be parsed is quarantined with its reason: recorded next to the raw zone and
in the ledger (as a retryable failure, so the next run asks Amazon for it again); the others go on.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from amzlake.errors import DocumentCorrupt, DocumentUnparseable, StaleEntry
from amzlake.ingest import states
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.lake.writer import CommitResult, LakeWriter
from amzlake.notify import CommitEvent, Notifier, QuarantineEvent, broadcast
from amzlake.slices import is_data_document
from amzlake.storage.ledger import Ledger, LedgerEntry
from amzlake.storage.objects import ObjectStore, open_store
from amzlake.transform.model import SliceContext
from amzlake.transform.parse import cleared_tables, parse_document

log = logging.getLogger(__name__)

QUARANTINE_PREFIX = "quarantine"


@dataclass(frozen=True)
class CurateTask:
    """What a worker needs to curate one slice (picklable)."""

    context: SliceContext
    raw_location: str
    lake_dir: str
    catalog_overrides: tuple[tuple[str, str], ...] = ()
    namespace: str = "amzlake"
    clear: bool = False  # a re-pull with no data: remove the slice's rows, read no document


@dataclass(frozen=True)
class CurateOutcome:
    """What became of one slice's document."""

    slice_key: str
    raw_key: str
    commits: tuple[CommitResult, ...] = ()
    quarantined: str | None = None  # the reason, when the document could not be used

    @property
    def rows(self) -> int:
        return sum(c.rows_added for c in self.commits)


@dataclass
class TransformResult:
    """What one transform did."""

    outcomes: list[CurateOutcome] = field(default_factory=list)
    notify_failures: list[str] = field(default_factory=list)

    @property
    def quarantined(self) -> list[CurateOutcome]:
        return [o for o in self.outcomes if o.quarantined]

    @property
    def commits(self) -> list[CommitResult]:
        return [c for o in self.outcomes for c in o.commits]


def context_for(entry: LedgerEntry) -> SliceContext:
    """The transform's view of a downloaded slice: its newest data document."""
    data = [r for r in entry.raw_objects if is_data_document(r.key)]
    if not data:
        raise ValueError(f"slice {entry.slice_key} has no data document")
    return _context(entry, data[-1].key, data[-1].fetched_at)


def cleared_context(entry: LedgerEntry) -> SliceContext:
    """The transform's view of a slice whose newest pull had no data (its rows are to go)."""
    return _context(entry, "", entry.finished_at or entry.updated_at)


def _context(entry: LedgerEntry, raw_key: str, fetched_at: datetime) -> SliceContext:
    return SliceContext(
        source=entry.source, account_id=entry.account_id, report_type=entry.report_type,
        spec=entry.spec, start=entry.start, end=entry.end, slice_key=entry.slice_key,
        remote_report_id=entry.remote_report_id, raw_key=raw_key, fetched_at=fetched_at,
        currency_code=entry.account.get("currency_code"), timezone=entry.account.get("timezone"),
        marketplace_id=entry.account.get("marketplace_id"),
    )


def curate(task: CurateTask) -> CurateOutcome:
    """Parse one document and replace its slice in every table it feeds (runs in a worker); for
    a `clear` task, replace the slice's rows with none."""
    ctx = task.context
    store = open_store(task.raw_location)
    writer = LakeWriter(open_catalog(Path(task.lake_dir), dict(task.catalog_overrides)),
                        task.namespace)
    commits: list[CommitResult] = []
    try:
        if task.clear:
            for rows in cleared_tables(ctx):
                if writer.exists(rows.table):  # no table yet: nothing of the slice to remove
                    done = writer.replace(rows)
                    if done.committed:  # rows were removed (none there: no commit, no event)
                        commits.append(done)
            return CurateOutcome(ctx.slice_key, ctx.raw_key, tuple(commits))
        with store.open_read(ctx.raw_key) as stream:
            parsed = parse_document(ctx, stream)
            for rows in parsed.tables:
                commits.append(writer.replace(rows))
    except (DocumentUnparseable, DocumentCorrupt) as e:
        # Tables already committed for this document keep a consistent slice of their own;
        # the quarantine says which document failed and why.
        return CurateOutcome(ctx.slice_key, ctx.raw_key, tuple(commits), str(e))
    return CurateOutcome(ctx.slice_key, ctx.raw_key, tuple(commits))


def pending(ledger: Ledger) -> list[LedgerEntry]:
    """Downloaded slices whose newest document is not curated yet, and slices Amazon answered
    with no data that the curated tables do not reflect yet (row_count unknown); oldest first.
    The days of a re-pull may hold rows of an earlier, wider slice, so every such answer counts."""
    entries = ledger.query(states=[SliceState.DOWNLOADED])
    entries += [e for e in ledger.query(states=[SliceState.EMPTY]) if e.row_count is None]
    return sorted(entries, key=_fetched)


def _fetched(e: LedgerEntry) -> datetime:
    if e.state is SliceState.EMPTY or not e.raw_objects:
        return e.finished_at or e.updated_at
    return e.raw_objects[-1].fetched_at


def curate_tasks(entries: Sequence[LedgerEntry], *, raw_location: str, lake_dir: Path | str,
                 catalog_overrides: tuple[tuple[str, str], ...] = (),
                 namespace: str = "amzlake") -> list[CurateTask]:
    """One task per slice of `entries` (a slice listed twice is curated once), in their order."""
    tasks = {
        e.slice_key: (
            CurateTask(cleared_context(e), raw_location, str(lake_dir), catalog_overrides,
                       namespace, clear=True)
            if e.state is SliceState.EMPTY else
            CurateTask(context_for(e), raw_location, str(lake_dir), catalog_overrides, namespace))
        for e in entries
    }
    return list(tasks.values())


def record_outcome(outcome: CurateOutcome, result: TransformResult, *, ledger: Ledger,
                   store: ObjectStore, notifiers: Sequence[Notifier], now: datetime) -> None:
    """Adds `outcome` to `result`, marks its slice curated or quarantined in the ledger, writes the
    quarantine record and tells the notifiers; returns nothing.

    Runs where the ledger is (this process, or a Spark driver), whoever computed the outcome.
    """
    result.outcomes.append(outcome)
    entry = ledger.get(outcome.slice_key)
    if entry is not None:
        try:
            if outcome.quarantined:
                ledger.update(entry, states.mark_failed(
                    entry, FailureClass.RETRYABLE, f"quarantined: {outcome.quarantined}", now))
            elif entry.state is SliceState.DOWNLOADED:
                ledger.update(entry, states.mark_curated(entry, outcome.rows, now))
            elif entry.state is SliceState.EMPTY and entry.row_count is None:
                ledger.update(entry, {"row_count": 0, "updated_at": now})  # no rows left
        except StaleEntry:
            log.warning("slice %s changed while it was curated; the next transform takes it",
                        outcome.slice_key)
    for c in outcome.commits:
        result.notify_failures += broadcast(notifiers, CommitEvent(
            table=c.table, snapshot_id=c.snapshot_id, rows_added=c.rows_added,
            rows_replaced=c.rows_replaced, partitions=tuple(d.isoformat() for d in c.partitions),
            slice_key=outcome.slice_key, account_id=entry.account_id if entry else "",
            report_type=entry.report_type if entry else ""))
    if outcome.quarantined:
        write_quarantine(store, outcome, entry, now)
        result.notify_failures += broadcast(notifiers, QuarantineEvent(
            raw_key=outcome.raw_key, reason=outcome.quarantined, slice_key=outcome.slice_key,
            account_id=entry.account_id if entry else "",
            report_type=entry.report_type if entry else ""))


def write_quarantine(store: ObjectStore, outcome: CurateOutcome, entry: LedgerEntry | None,
                     now: datetime) -> str:
    """Writes a record of the refused document beside the raw zone (the document itself stays
    put); returns the record's key."""
    record = orjson.dumps({
        "raw_key": outcome.raw_key, "reason": outcome.quarantined,
        "slice_key": outcome.slice_key, "at": now.isoformat(),
        "report_type": entry.report_type if entry else None,
    })
    key = f"{QUARANTINE_PREFIX}/{outcome.raw_key}.{now.strftime('%Y%m%dT%H%M%S%fZ')}.json"

    async def one() -> None:
        async def body():  # type: ignore[no-untyped-def]
            yield record

        await store.put_stream(key, body())

    asyncio.run(one())
    return key


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: the workers start clean of this process's threads (asyncio, HTTP clients).
    return ProcessPoolExecutor(max_workers=workers,
                               mp_context=multiprocessing.get_context("forkserver"))


class Transformer:
    """Curates pending slices, records them in the ledger, tells the notifiers."""

    def __init__(self, *, ledger: Ledger, store: ObjectStore, raw_location: str, lake_dir: Path,
                 notifiers: Sequence[Notifier], workers: int = 2,
                 catalog_overrides: dict[str, str] | None = None, namespace: str = "amzlake",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.namespace = namespace  # the catalog namespace (Glue: the database) of the tables
        self.ledger = ledger
        self.store = store
        self.raw_location = raw_location
        self.lake_dir = lake_dir
        self.notifiers = list(notifiers)
        self.workers = workers
        self.catalog_overrides = tuple(sorted((catalog_overrides or {}).items()))
        self.now = now

    def run(self, entries: Sequence[LedgerEntry] | None = None) -> TransformResult:
        """Curate `entries` (default: every pending slice)."""
        work = list(pending(self.ledger) if entries is None else entries)
        result = TransformResult()
        if not work:
            return result
        tasks = curate_tasks(work, raw_location=self.raw_location, lake_dir=self.lake_dir,
                             catalog_overrides=self.catalog_overrides, namespace=self.namespace)
        if self.workers == 1 or len(tasks) == 1:
            for task in tasks:
                self.record(curate(task), result)
            return result
        with _pool(min(self.workers, len(tasks))) as pool:
            futures = [pool.submit(curate, task) for task in tasks]
            for future in as_completed(futures):
                self.record(future.result(), result)
        return result

    def record(self, outcome: CurateOutcome, result: TransformResult) -> None:
        """Records one outcome (see record_outcome); returns nothing."""
        record_outcome(outcome, result, ledger=self.ledger, store=self.store,
                       notifiers=self.notifiers, now=self.now())
