"""The main job of the embedded runtime: ingest, and transform once downloads fall quiet.

`amzlake run` = guidance steps 1-3 (the ingestion) with step 4's debounce: every download
announces itself, and the transform (steps 5-7: curated tables, ledger, notifications) starts
whenever no new document has arrived for the quiet period, and once more at the end for whatever
is left. `amzlake transform --watch` runs the same debounce over the ledger alone.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from amzlake.clock import ScaledClock
from amzlake.config import AmzlakeConfig
from amzlake.ingest.pipeline import Ingestion
from amzlake.ingest.planner import PlannedSlice
from amzlake.ingest.runner import RunResult
from amzlake.ingest.states import SliceState
from amzlake.lake.maintenance import TableReport
from amzlake.lake.upkeep import maintain_if_due
from amzlake.notify import notifiers_from_config
from amzlake.storage.ledger import Ledger, LedgerEntry
from amzlake.storage.objects import ObjectStore
from amzlake.transform.curate import Transformer, TransformResult, pending
from amzlake.transform.debounce import Debouncer

log = logging.getLogger(__name__)


@dataclass
class JobResult:
    """What a run did: the ingestion, and each transform it triggered."""

    ingestion: RunResult
    planned: list[PlannedSlice]
    transforms: list[TransformResult] = field(default_factory=list)
    maintenance: list[TableReport] | None = None  # None: not due this run

    @property
    def commit_errors(self) -> int:
        return sum(len(t.errors) for t in self.transforms)

    @property
    def quarantined(self) -> int:
        return sum(len(t.quarantined) for t in self.transforms)

    @property
    def rows_committed(self) -> int:
        return sum(c.rows_added for t in self.transforms for c in t.commits)


def transformer_for(config: AmzlakeConfig, ledger: Ledger, store: ObjectStore,
                    clock: ScaledClock) -> Transformer:
    """The transform step as [storage], [transform] and [notify] describe it."""
    return Transformer(
        ledger=ledger, store=store, raw_location=config.storage.raw_location,
        lake_dir=Path(config.storage.lake), notifiers=notifiers_from_config(config.notify),
        workers=config.transform.workers, now=clock.now, real_seconds=clock.real_seconds,
    )


async def transform_when_quiet(debouncer: Debouncer, transformer: Transformer) -> list[TransformResult]:
    """Transform every time the debouncer fires, until it is closed with nothing pending."""
    done: list[TransformResult] = []
    while await debouncer.wait():
        # The transform spawns processes and blocks: keep the event loop free for ingestion.
        done.append(await asyncio.to_thread(transformer.run))
    return done


async def run_job(config: AmzlakeConfig, clock: ScaledClock, *,
                  backfill: tuple[date, date] | None = None,
                  listener: Callable[[LedgerEntry], None] | None = None,
                  on_start: Callable[[list[LedgerEntry]], None] | None = None,
                  ingestion: Ingestion | None = None) -> JobResult:
    """One `amzlake run` (or backfill): ingest, transforming whenever downloads fall quiet."""
    own = ingestion is None
    ingestion = ingestion or Ingestion.open(config, clock)
    try:
        transformer = transformer_for(config, ingestion.ledger, ingestion.store, clock)
        debouncer = Debouncer(config.transform.quiet_period.total_seconds(), clock)
        if pending(ingestion.ledger):
            debouncer.announce()  # left by an earlier run that stopped before its transform

        def heard(entry: LedgerEntry) -> None:
            if listener is not None:
                listener(entry)
            # A download to curate, or a "no data" answer whose days may hold older rows.
            if entry.state in (SliceState.DOWNLOADED, SliceState.EMPTY):
                debouncer.announce()

        transforms = asyncio.create_task(transform_when_quiet(debouncer, transformer))
        try:
            result, planned = await ingestion.run(backfill=backfill, listener=heard,
                                                  on_start=on_start)
        finally:
            debouncer.close()
        job = JobResult(result, planned, await transforms)
        # At the end, once a day by default: compaction, snapshot expiry, orphans ([maintenance]).
        job.maintenance = await asyncio.to_thread(maintain_if_due, config, clock.now())
        return job
    finally:
        if own:
            await ingestion.aclose()


def _newest_answer(entry: LedgerEntry) -> str:
    """What a pending slice's latest answer was: its newest document, or "no data" at a time."""
    if entry.state is SliceState.DOWNLOADED and entry.raw_objects:
        return entry.raw_objects[-1].key
    return f"no data at {entry.finished_at or entry.updated_at}"


async def watch(config: AmzlakeConfig, ledger: Ledger, store: ObjectStore, clock: ScaledClock,
                stop: asyncio.Event) -> list[TransformResult]:
    """`amzlake transform --watch`: look for new downloads every poll interval; transform each
    burst once it has been quiet for the quiet period; until `stop` is set."""
    transformer = transformer_for(config, ledger, store, clock)
    debouncer = Debouncer(config.transform.quiet_period.total_seconds(), clock)
    seen: set[tuple[str, str]] = set()

    async def look() -> None:
        while not stop.is_set():
            fresh = {(e.slice_key, _newest_answer(e)) for e in pending(ledger)}
            if fresh - seen:
                seen.update(fresh)
                debouncer.announce()
            sleeper = asyncio.ensure_future(clock.sleep(config.transform.poll_interval.total_seconds()))
            stopper = asyncio.ensure_future(stop.wait())
            await asyncio.wait({sleeper, stopper}, return_when=asyncio.FIRST_COMPLETED)
            for t in (sleeper, stopper):
                t.cancel()
        debouncer.close()

    looker = asyncio.create_task(look())
    results = await transform_when_quiet(debouncer, transformer)
    await looker
    return results
