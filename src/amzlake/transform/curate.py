"""The transform step: every downloaded raw document into the curated tables (guidance step 5).

Two phases, each spread over a pool of worker processes (the parse is CPU-bound Python):
1. stage: one task per slice parses its document and writes its rows as staged Parquet files of
   the tables it feeds (amzlake.lake.staging); nothing is committed yet.
2. commit: one task per table applies every staged slice of that table in one atomic Iceberg
   commit (amzlake.lake.writer), so a transform of thousands of slices makes one commit per table
   instead of thousands of racing ones, and a partition's rows are rewritten once per run.
The ledger, the quarantine and the notifications stay in this process. A document that cannot be
parsed is quarantined with its reason: recorded next to the raw zone and in the ledger (as a
retryable failure, so the next run asks Amazon for it again); the others go on. A table whose
commit fails leaves its slices downloaded (the next transform takes them again; replace-by-slice
makes that safe) and the transform reports the error.
"""

from __future__ import annotations

import asyncio
import logging
import multiprocessing
from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from amzlake.errors import DocumentCorrupt, DocumentUnparseable, StaleEntry
from amzlake.ingest import states
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.lake.writer import CommitResult, LakeWriter, StagedRows
from amzlake.notify import CommitEvent, Notifier, QuarantineEvent, broadcast
from amzlake.slices import is_data_document
from amzlake.storage.ledger import Ledger, LedgerEntry
from amzlake.storage.objects import ObjectStore, open_store
from amzlake.transform.claims import Claims
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
    error: str | None = None  # a commit failed for another reason: the slice stays pending

    @property
    def rows(self) -> int:
        return sum(c.rows_added for c in self.commits)


@dataclass(frozen=True)
class StageOutcome:
    """One slice's staged rows per table, or why its document could not be used."""

    slice_key: str
    raw_key: str
    staged: tuple[StagedRows, ...] = ()
    quarantined: str | None = None
    clear: bool = False


@dataclass(frozen=True)
class CommitTask:
    """What a worker needs to commit one table's staged slices (picklable)."""

    table: str
    staged: tuple[StagedRows, ...]
    lake_dir: str
    catalog_overrides: tuple[tuple[str, str], ...] = ()
    namespace: str = "amzlake"
    committed_at: datetime | None = None  # the job clock's time (snapshot ages for maintenance)


@dataclass(frozen=True)
class TableCommit:
    """One table's commit: a result per staged slice, or the error that stopped it."""

    table: str
    results: tuple[tuple[str, CommitResult], ...] = ()  # (slice_key, result)
    error: str | None = None
    slice_keys: tuple[str, ...] = ()


@dataclass
class TransformResult:
    """What one transform did."""

    outcomes: list[CurateOutcome] = field(default_factory=list)
    notify_failures: list[str] = field(default_factory=list)

    @property
    def errors(self) -> list[CurateOutcome]:
        return [o for o in self.outcomes if o.error]

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


def _writer(lake_dir: str, overrides: Iterable[tuple[str, str]], namespace: str,
            now: datetime | None = None) -> LakeWriter:
    catalog = open_catalog(Path(lake_dir), dict(overrides))
    if now is None:
        return LakeWriter(catalog, namespace)
    return LakeWriter(catalog, namespace, now=lambda: now)


def stage_slices(tasks: Sequence[CurateTask]) -> list[StageOutcome]:
    """`stage_slice` for a chunk of tasks of one lake, sharing its catalog and tables."""
    if not tasks:
        return []
    writer = _writer(tasks[0].lake_dir, tasks[0].catalog_overrides, tasks[0].namespace)
    return [stage_slice(task, writer) for task in tasks]


def stage_slice(task: CurateTask, writer: LakeWriter | None = None) -> StageOutcome:
    """Parse one document and stage its rows for every table it feeds (runs in a worker); for a
    `clear` task, an empty staging over the slice's footprint in every table that exists."""
    ctx = task.context
    writer = writer or _writer(task.lake_dir, task.catalog_overrides, task.namespace)
    done: list[StagedRows] = []
    try:
        if task.clear:
            staged = tuple(StagedRows(rows.table, rows.footprint, ctx.slice_key)
                           for rows in cleared_tables(ctx) if writer.exists(rows.table))
            return StageOutcome(ctx.slice_key, ctx.raw_key, staged, clear=True)
        with open_store(task.raw_location).open_read(ctx.raw_key) as stream:
            parsed = parse_document(ctx, stream)
            for rows in parsed.tables:
                done.append(writer.stage(rows, ctx.slice_key))
    except (DocumentUnparseable, DocumentCorrupt) as e:
        # Nothing of the document is committed: the quarantine says which one failed and why.
        writer.discard(done)
        return StageOutcome(ctx.slice_key, ctx.raw_key, quarantined=str(e), clear=task.clear)
    except BaseException:
        writer.discard(done)
        raise
    return StageOutcome(ctx.slice_key, ctx.raw_key, tuple(done))


def commit_table(task: CommitTask) -> TableCommit:
    """Commit one table's staged slices in one atomic commit (runs in a worker)."""
    keys = tuple(s.slice_key for s in task.staged)
    writer = _writer(task.lake_dir, task.catalog_overrides, task.namespace, task.committed_at)
    try:
        results = writer.commit(task.table, task.staged)
    except Exception as e:
        # Not the documents' fault (a catalog or storage error, or too many conflicts): the
        # slices stay downloaded for the next transform.
        log.error("table %s: commit of %d slice(s) failed: %s", task.table, len(keys), e)
        return TableCommit(task.table, error=f"{type(e).__name__}: {e}"[:1000], slice_keys=keys)
    return TableCommit(task.table, tuple(zip(keys, results, strict=True)), slice_keys=keys)


def commit_tasks(staged: Iterable[StageOutcome], *, lake_dir: Path | str,
                 catalog_overrides: tuple[tuple[str, str], ...] = (),
                 namespace: str = "amzlake", committed_at: datetime | None = None
                 ) -> list[CommitTask]:
    """One commit task per table, holding every staged slice of that table."""
    by_table: dict[str, list[StagedRows]] = defaultdict(list)
    for outcome in staged:
        for rows in outcome.staged:
            by_table[rows.table].append(rows)
    return [CommitTask(table, tuple(rows), str(lake_dir), catalog_overrides, namespace,
                       committed_at) for table, rows in sorted(by_table.items())]


def outcomes_of(staged: Sequence[StageOutcome], commits: Iterable[TableCommit]) -> list[CurateOutcome]:
    """Each slice's outcome from its staging and the commits of its tables, in staging order."""
    results: dict[str, list[CommitResult]] = defaultdict(list)
    errors: dict[str, list[str]] = defaultdict(list)
    for commit in commits:
        for key, result in commit.results:
            results[key].append(result)
        if commit.error:
            for key in commit.slice_keys:
                errors[key].append(f"table {commit.table}: {commit.error}")
    out = []
    for s in staged:
        got = results.get(s.slice_key, [])
        if s.clear:
            got = [c for c in got if c.committed]  # rows were removed (none there: no event)
        out.append(CurateOutcome(s.slice_key, s.raw_key, tuple(got), s.quarantined,
                                 "; ".join(errors[s.slice_key]) or None))
    return out


def curate_all(tasks: Sequence[CurateTask], executor: Executor | None = None, *,
               workers: int = 1, committed_at: datetime | None = None) -> list[CurateOutcome]:
    """Stage every task's slice, then commit per table; every slice's outcome (in a pool when an
    executor is given, else in this process)."""
    if not tasks:
        return []
    run = executor.map if executor is not None else map
    # Chunks of slices per worker call: a worker opens the catalog and each table once per chunk.
    size = max(1, min(32, len(tasks) // (4 * workers)))
    chunks = [tasks[i:i + size] for i in range(0, len(tasks), size)]
    staged = [o for chunk in run(stage_slices, chunks) for o in chunk]
    first = tasks[0]
    commits = commit_tasks(staged, lake_dir=first.lake_dir,
                           catalog_overrides=first.catalog_overrides, namespace=first.namespace,
                           committed_at=committed_at)
    return outcomes_of(staged, run(commit_table, commits))


def curate(task: CurateTask) -> CurateOutcome:
    """Parse one document and replace its slice in every table it feeds (one slice alone)."""
    return curate_all([task])[0]


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
    if outcome.error:
        # Left as it is in the ledger: the next transform takes the slice again.
        log.error("slice %s not curated: %s", outcome.slice_key, outcome.error)
    elif entry is not None:
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


# What a transform worker imports: loaded once by the forkserver, so each new worker starts with
# them instead of importing pyiceberg, SQLAlchemy and pyarrow itself (seconds per worker).
WORKER_PRELOAD = ["amzlake.transform.curate", "amzlake.transform.parse", "amzlake.lake.writer"]


def _pool(workers: int) -> ProcessPoolExecutor:
    # forkserver: the workers start clean of this process's threads (asyncio, HTTP clients).
    # The preload applies when this process starts the forkserver (not when the emulator, in the
    # same process, started it first with its own).
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(WORKER_PRELOAD)
    return ProcessPoolExecutor(max_workers=workers, mp_context=context)


class Transformer:
    """Curates pending slices, records them in the ledger, tells the notifiers."""

    def __init__(self, *, ledger: Ledger, store: ObjectStore, raw_location: str, lake_dir: Path,
                 notifiers: Sequence[Notifier], workers: int = 2,
                 catalog_overrides: dict[str, str] | None = None, namespace: str = "amzlake",
                 now: Callable[[], datetime] = lambda: datetime.now(UTC),
                 real_seconds: Callable[[float], float] = lambda s: s) -> None:
        self.namespace = namespace  # the catalog namespace (Glue: the database) of the tables
        self.ledger = ledger
        self.store = store
        self.raw_location = raw_location
        self.lake_dir = lake_dir
        self.notifiers = list(notifiers)
        self.workers = workers
        self.catalog_overrides = tuple(sorted((catalog_overrides or {}).items()))
        self.now = now
        self.real_seconds = real_seconds  # the job clock's virtual seconds in wall seconds

    def run(self, entries: Sequence[LedgerEntry] | None = None) -> TransformResult:
        """Curate `entries` (default: every pending slice) that no other process is curating."""
        work = list(pending(self.ledger) if entries is None else entries)
        if not work:
            return TransformResult()
        with Claims(self.ledger, self.now, self.real_seconds) as claims:
            return self._curate(claims.take(work))

    def _curate(self, work: list[LedgerEntry]) -> TransformResult:
        result = TransformResult()
        if not work:
            return result
        tasks = curate_tasks(work, raw_location=self.raw_location, lake_dir=self.lake_dir,
                             catalog_overrides=self.catalog_overrides, namespace=self.namespace)
        if self.workers == 1 or len(tasks) == 1:
            outcomes = curate_all(tasks, committed_at=self.now())
        else:
            workers = min(self.workers, len(tasks))
            with _pool(workers) as pool:
                outcomes = curate_all(tasks, pool, workers=workers, committed_at=self.now())
        for outcome in outcomes:
            self.record(outcome, result)
        return result

    def record(self, outcome: CurateOutcome, result: TransformResult) -> None:
        """Records one outcome (see record_outcome); returns nothing."""
        record_outcome(outcome, result, ledger=self.ledger, store=self.store,
                       notifiers=self.notifiers, now=self.now())
