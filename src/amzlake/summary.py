"""What a run and the ledger say, for people (rich tables) and machines (JSON), and exit codes."""

from __future__ import annotations

from collections import Counter
from typing import Any

from rich.console import Console
from rich.table import Table

from amzlake.ingest.runner import RunResult
from amzlake.job import JobResult
from amzlake.storage.ledger import LedgerSummary
from amzlake.transform.curate import TransformResult

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_AUTH = 3


def exit_code_for(job: JobResult | RunResult) -> int:
    """0: everything fetched (or still being made) and curated; 1: some slices failed or
    documents were quarantined; 3: credentials refused."""
    result = job.ingestion if isinstance(job, JobResult) else job
    if result.auth_error:
        return EXIT_AUTH
    quarantined = job.quarantined + job.commit_errors if isinstance(job, JobResult) else 0
    return EXIT_PARTIAL if result.failed or quarantined else EXIT_OK


def transform_json(transforms: list[TransformResult]) -> dict[str, Any]:
    """What the run's transforms did."""
    commits = [c for t in transforms for c in t.commits]
    return {
        "transforms": len(transforms),
        "slices_curated": sum(1 for t in transforms for o in t.outcomes
                              if not o.quarantined and not o.error),
        "rows_committed": sum(c.rows_added for c in commits),
        "rows_replaced": sum(c.rows_replaced for c in commits),
        "tables": sorted({c.table for c in commits}),
        "quarantined": [{"raw_key": o.raw_key, "reason": o.quarantined}
                        for t in transforms for o in t.quarantined],
        "commit_errors": [{"slice": o.slice_key, "error": o.error}
                          for t in transforms for o in t.errors],
        "notify_failures": [f for t in transforms for f in t.notify_failures],
    }


def run_json(job: JobResult) -> dict[str, Any]:
    """The run as JSON: counts, why slices were planned, failures, slices left waiting, and
    what the transform curated."""
    result, planned = job.ingestion, job.planned
    return {
        "planned": len(planned),
        "reasons": dict(Counter(p.reason for p in planned)),
        "counts": result.counts(),
        "auth_error": result.auth_error,
        "failed": [{"slice": r.slice_key, "source": r.source, "account": r.account_id,
                    "report_type": r.report_type, "class": r.failure_class and r.failure_class.value,
                    "error": r.error} for r in result.failed],
        "waiting": [{"slice": r.slice_key, "report_type": r.report_type, "note": r.note}
                    for r in result.waiting],
        "transform": transform_json(job.transforms),
        "maintenance": None if job.maintenance is None else
        [r.as_json() for r in job.maintenance],
        "exit_code": exit_code_for(job),
    }


def print_run(console: Console, job: JobResult) -> None:
    """A short human summary of a run."""
    result, planned = job.ingestion, job.planned
    counts = result.counts()
    reasons = ", ".join(f"{k} {v}" for k, v in Counter(p.reason for p in planned).items())
    states = ", ".join(f"{k} {v}" for k, v in counts.items())
    console.print(f"planned {len(planned)} slice(s) ({reasons or 'nothing new'}); "
                  f"worked {len(result.results)}: {states or 'nothing to do'}", markup=False)
    for r in result.failed[:20]:
        console.print(f"  failed [{r.failure_class}] {r.source} {r.report_type} {r.account_id}: "
                      f"{r.error}", markup=False)
    if len(result.failed) > 20:
        console.print(f"  ... and {len(result.failed) - 20} more failures (amzlake status)")
    if result.waiting:
        console.print(f"  {len(result.waiting)} report(s) still being made by Amazon; "
                      "the next run picks them up", markup=False)
    if result.auth_error:
        console.print(f"credentials refused: {result.auth_error}", markup=False)
    t = transform_json(job.transforms)
    if t["slices_curated"] or t["quarantined"]:
        console.print(f"curated {t['slices_curated']} slice(s) into {len(t['tables'])} table(s): "
                      f"{t['rows_committed']} rows written, {t['rows_replaced']} replaced",
                      markup=False)
    for q in t["quarantined"]:
        console.print(f"  quarantined {q['raw_key']}: {q['reason']}", markup=False)
    for e in t["commit_errors"][:20]:
        console.print(f"  not curated (left for the next run) {e['slice']}: {e['error']}",
                      markup=False)
    if job.maintenance:
        from amzlake.lake.upkeep import report_line

        changed = [r for r in job.maintenance if "nothing to do" not in report_line(r)]
        console.print(f"maintained {len(job.maintenance)} table(s)"
                      + (":" if changed else ": nothing to do"), markup=False)
        for r in changed:
            console.print(f"  {report_line(r)}", markup=False)


def status_json(summaries: list[LedgerSummary]) -> list[dict[str, Any]]:
    """The ledger summary as JSON."""
    return [
        {
            "source": s.source, "account": s.account_id, "report_type": s.report_type,
            "counts": s.counts,
            "last_complete_day": s.last_complete_day and s.last_complete_day.isoformat(),
            "complete_through": s.complete_through and s.complete_through.isoformat(),
            "pending": s.pending,
            "failures": [{"slice": f.slice_key, "report_date": f.report_date.isoformat(),
                          "class": f.failure_class and f.failure_class.value, "error": f.error}
                         for f in s.failures],
        }
        for s in summaries
    ]


def print_status(console: Console, summaries: list[LedgerSummary]) -> None:
    """The ledger summary as a table, failures listed under it."""
    if not summaries:
        console.print("the ledger is empty: nothing has run yet (amzlake run)")
        return
    table = Table(title="amzlake status")
    for col in ("source", "account", "report type", "last complete day", "complete through",
                "pending", "failed"):
        table.add_column(col)
    for s in summaries:
        table.add_row(s.source, s.account_id, s.report_type,
                      str(s.last_complete_day or "-"), str(s.complete_through or "-"),
                      str(s.pending), str(len(s.failures)))
    console.print(table)
    for s in summaries:
        for f in s.failures[:5]:
            console.print(f"failed {s.source} {s.report_type} {s.account_id} {f.report_date} "
                          f"[{f.failure_class}]: {f.error}", markup=False)
