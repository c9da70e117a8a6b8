"""The ingest state machine's steps, one function each, over the core's planner and runner.

The embedded runner loops create -> poll -> download in one process; here each of those is one
Lambda invocation and Step Functions keeps the loop (the Wait state between polls). Every step
holds the slice's ledger lease while it works, so a step never races another run on one slice,
and every step records what happened in the ledger before it returns or raises:

- `ThrottledError` (Amazon kept answering 429) and `RemoteError` (5xx, timeouts) are raised after
  recording, for the state machine's Retry with backoff; a create retried that way re-asks only
  if the ledger shows no report was made (SP-API: looked up with getReports first).
- anything unexpected is recorded on the slice (failed, retryable) and raised.
- an AuthError or CredentialsError is raised and leaves the slice as it was (it is the
  credentials, not the slice, that need a person).
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any

from amzlake.errors import (
    AuthError,
    CredentialsError,
    NotFoundError,
    RemoteError,
    StaleEntry,
    ThrottledError,
)
from amzlake.ingest import states
from amzlake.ingest.pipeline import Ingestion, discover_accounts
from amzlake.ingest.runner import Readiness, Runner, RunSettings
from amzlake.ingest.states import RETRIED_FAILURES, FailureClass, SliceState
from amzlake.slices import Account, Source, is_data_document
from amzlake.storage.ledger import Ledger, LedgerEntry

log = logging.getLogger(__name__)

# Step Functions passes at most 256 KiB between states, and the Map gathers every slice's result
# (~200 bytes each) into one: a run takes at most this many slices; the rest stay planned in the
# ledger and the next run takes them first (they are "resumable").
DEFAULT_MAX_SLICES = 1000

# check_report_status's statuses (the state machine's Choice reads them).
WAITING, READY, DONE, FAILED, EMPTY = "waiting", "ready", "done", "failed", "empty"
# The report outlived [run] max_wait: still live in the ledger, re-attached by the next run.
WAITED_OUT = "waited_out"

_STATUS_OF_STATE = {
    SliceState.DOWNLOADED: DONE, SliceState.CURATED: DONE, SliceState.EMPTY: EMPTY,
    SliceState.CANCELLED: EMPTY, SliceState.FAILED: FAILED,
    # A planned slice at check time was never asked for (its create was not recorded).
    SliceState.PLANNED: FAILED,
}


def _first_line(text: object, limit: int = 500) -> str:
    lines = str(text).splitlines()
    return lines[0][:limit] if lines else ""


def wait_seconds(settings: RunSettings, polls: int, now: datetime, deadline: datetime) -> int:
    """Whole seconds to wait before the next poll (Step Functions' Wait takes integers)."""
    left = (deadline - now).total_seconds()
    return max(1, math.ceil(min(settings.poll_delay(polls), max(left, 1.0))))


def account_from_entry(ingestion: Ingestion, entry: LedgerEntry) -> Account | None:
    """The entry's account from what the ledger kept and the config (no call to Amazon);
    None when the account is no longer configured or the ledger row predates its facts."""
    config = ingestion.config
    facts = entry.account
    if not all(facts.get(k) for k in ("region", "marketplace_id", "timezone")):
        return None
    if entry.source == Source.ADS.value:
        if not config.ads.enabled:
            return None
        app = config.ads.lwa_app
    else:
        configured = next((a for a in config.vendor.accounts
                           if a.selling_partner_id == entry.account_id
                           and a.marketplace_id == facts["marketplace_id"]), None)
        if configured is None or not config.vendor.enabled:
            return None
        app = config.vendor.account_lwa_app(configured)
    return Account(Source(entry.source), entry.account_id, facts["region"],
                   facts["marketplace_id"], facts.get("country_code", ""),
                   facts.get("currency_code", ""), facts["timezone"], app)


async def runner_for(ingestion: Ingestion, entry: LedgerEntry) -> Runner:
    """A runner that knows the entry's account (asking Amazon for the accounts only when the
    ledger row lacks their facts)."""
    account = account_from_entry(ingestion, entry)
    accounts = ([account] if account is not None
                else await discover_accounts(ingestion.config, ingestion.pool))
    return ingestion.runner(accounts)


@contextmanager
def leased(ingestion: Ingestion, slice_key: str) -> Iterator[LedgerEntry | None]:
    """The slice's entry under this invocation's lease (None: another run holds it)."""
    ledger = ingestion.ledger
    held = ledger.acquire(slice_key, ingestion.owner, ingestion.clock.now(),
                          ingestion.settings().lease)
    try:
        yield held
    finally:
        if held is not None:
            ledger.release(slice_key, ingestion.owner)


def _raise_for_failure(entry: LedgerEntry) -> None:
    """Raise the error the state machine retries on, when the entry records one."""
    if entry.state is not SliceState.FAILED:
        return
    if entry.failure_class is FailureClass.THROTTLED:
        raise ThrottledError(f"slice {entry.slice_key}: {entry.error}", operation="createReport")
    if entry.failure_class is FailureClass.RETRYABLE:
        raise RemoteError(f"slice {entry.slice_key}: {entry.error}", operation="createReport")


# ---- Plan -------------------------------------------------------------------------------------


def _backfill(event: Mapping[str, Any]) -> tuple[date, date] | None:
    window = event.get("backfill")
    if not window:
        return None
    try:
        return date.fromisoformat(window["start"]), date.fromisoformat(window["end"])
    except (KeyError, TypeError, ValueError):
        raise ValueError('backfill must be {"start": "YYYY-MM-DD", "end": "YYYY-MM-DD"}') from None


def run_id_for(event: Mapping[str, Any], now: datetime) -> str:
    """The run's id: the event's, else the execution's name, else one made from the time."""
    if event.get("run_id"):
        return str(event["run_id"])
    execution = str(event.get("execution") or "")
    if execution:
        return execution.rsplit(":", 1)[-1]
    return f"{now:%Y%m%dT%H%M%SZ}-{os.urandom(3).hex()}"


async def plan(ingestion: Ingestion, event: Mapping[str, Any]) -> dict[str, Any]:
    """{"run_id", "slices": [{"slice_key"}]}: the slices planned and recorded now, plus those an
    earlier run left live (re-attached, never asked again)."""
    prepared = await ingestion.prepare(_backfill(event))
    limit = int(event.get("max_slices") or DEFAULT_MAX_SLICES)
    work = prepared.work[:limit]
    if len(prepared.work) > limit:
        log.warning("%d slices to work; this run takes %d, the rest stay planned for the next",
                    len(prepared.work), limit)
    return {"run_id": run_id_for(event, ingestion.clock.now()),
            "slices": [{"slice_key": e.slice_key} for e in work]}


# ---- CreateReport -----------------------------------------------------------------------------


def _retry(runner: Runner, entry: LedgerEntry) -> LedgerEntry:
    """A create that failed transiently, planned again for the state machine's retry."""
    return runner.update(entry, states.replan(entry, runner.clock.now()))


async def create_report(ingestion: Ingestion, slice_key: str) -> dict[str, Any]:
    """{"slice_key", "state", "wait_seconds", "polls": 0}: the slice once its report is asked
    for (or re-attached, or as the ledger has it when there is nothing to ask)."""
    settings = ingestion.settings()
    with leased(ingestion, slice_key) as entry:
        if entry is None:  # another run works it: look again after a wait
            current = ingestion.ledger.get(slice_key)
            state = current.state.value if current else SliceState.PLANNED.value
            return {"slice_key": slice_key, "state": state,
                    "wait_seconds": math.ceil(settings.poll_initial), "polls": 0}
        runner = await runner_for(ingestion, entry)
        try:
            if entry.state is SliceState.FAILED and entry.failure_class in RETRIED_FAILURES:
                entry = _retry(runner, entry)
            if entry.state is SliceState.PLANNED:
                entry = await runner.request(entry)
        except (AuthError, CredentialsError):
            raise
        except Exception as e:
            runner.record_unexpected(entry, e)
            raise
        _raise_for_failure(entry)
    live = entry.state in states.LIVE_STATES
    return {"slice_key": slice_key, "state": entry.state.value,
            "wait_seconds": math.ceil(settings.poll_initial) if live else 0, "polls": 0}


# ---- CheckReportStatus ------------------------------------------------------------------------


def _check_result(slice_key: str, status: str, polls: int, wait: int = 0) -> dict[str, Any]:
    return {"slice_key": slice_key, "status": status, "wait_seconds": wait, "polls": polls}


async def check_report_status(ingestion: Ingestion, slice_key: str, polls: int) -> dict[str, Any]:
    """{"slice_key", "status", "wait_seconds", "polls"}: one status check of the slice's report.

    status: ready (download it), waiting (poll again after wait_seconds; polls counts this one),
    done / failed / empty (recorded in the ledger), waited_out (older than [run] max_wait:
    recorded, left live for the next run).
    """
    settings = ingestion.settings()
    polls = int(polls) + 1
    with leased(ingestion, slice_key) as entry:
        if entry is None:
            return _check_result(slice_key, WAITING, polls,
                                 math.ceil(settings.poll_delay(polls - 1)))
        if entry.state not in states.LIVE_STATES:
            return _check_result(slice_key, _STATUS_OF_STATE.get(entry.state, FAILED), polls)
        runner = await runner_for(ingestion, entry)
        try:
            check = await runner.check(entry)
        except (NotFoundError, ThrottledError, RemoteError) as e:
            entry = runner.poll_failed(entry, e)
            if isinstance(e, NotFoundError):
                return _check_result(slice_key, FAILED, polls)
            raise  # recorded as a note; the state machine retries with backoff
        except (AuthError, CredentialsError):
            raise
        except Exception as e:
            runner.record_unexpected(entry, e)
            raise
        entry = check.entry
        if check.readiness is Readiness.READY:
            return _check_result(slice_key, READY, polls)
        if check.readiness is Readiness.ENDED:
            return _check_result(slice_key, _STATUS_OF_STATE.get(entry.state, FAILED), polls)
        now = runner.clock.now()
        deadline = runner.deadline(entry)
        if now >= deadline:
            runner.waited_out(entry)
            return _check_result(slice_key, WAITED_OUT, polls)
        return _check_result(slice_key, WAITING, polls,
                             wait_seconds(settings, polls - 1, now, deadline))


# ---- DownloadReport ---------------------------------------------------------------------------


def _latest_data_key(entry: LedgerEntry) -> str | None:
    data = [r.key for r in entry.raw_objects if is_data_document(r.key)]
    return data[-1] if data else None


async def download_report(ingestion: Ingestion, slice_key: str) -> dict[str, Any]:
    """{"slice_key", "state", "raw_key"}: the slice once its document is streamed, verified,
    into the raw zone (raw_key: its key in the raw zone; None when nothing was stored)."""
    with leased(ingestion, slice_key) as entry:
        if entry is None or entry.state not in states.LIVE_STATES:
            current = entry or ingestion.ledger.get(slice_key)
            state = current.state.value if current else SliceState.PLANNED.value
            return {"slice_key": slice_key, "state": state,
                    "raw_key": _latest_data_key(current) if current else None}
        runner = await runner_for(ingestion, entry)
        try:
            url = None
            if entry.source == Source.VENDOR.value and entry.remote_document_id is None:
                check = await runner.check(entry)  # the document id is learnt from the status
                entry = check.entry
                if check.readiness is not Readiness.READY:
                    return {"slice_key": slice_key, "state": entry.state.value,
                            "raw_key": _latest_data_key(entry)}
                url = check.url
            entry = await runner.fetch(entry, url)
        except (NotFoundError, ThrottledError, RemoteError) as e:
            entry = runner.poll_failed(entry, e)
            if not isinstance(e, NotFoundError):
                raise
        except (AuthError, CredentialsError):
            raise
        except Exception as e:
            runner.record_unexpected(entry, e)
            raise
    return {"slice_key": slice_key, "state": entry.state.value,
            "raw_key": _latest_data_key(entry)}


# ---- Summarize --------------------------------------------------------------------------------


def _record_ending(ledger: Ledger, entry: LedgerEntry, result: Mapping[str, Any], owner: str,
                   now: datetime, settings: RunSettings) -> LedgerEntry:
    """The entry with what the state machine saw and the handlers could not record (a Lambda
    that crashed or timed out, a loop that ran out of polls); untouched if another run holds it."""
    error = result.get("error")
    waited_out = result.get("status") == WAITED_OUT
    if error is None and not waited_out:
        return entry
    held = ledger.acquire(entry.slice_key, owner, now, settings.lease)
    if held is None:
        return entry
    try:
        if error is not None:
            text = f"step failed: {_first_line(error)}: {_first_line(result.get('cause', ''))}"
            if held.state is SliceState.PLANNED:
                return ledger.update(held, states.mark_failed(
                    held, FailureClass.RETRYABLE, text, now))
            if held.state in states.LIVE_STATES:
                # The remote report may still be live: keep its id, the next run re-attaches.
                return ledger.update(held, states.mark_waited_out(held, text, now))
        elif held.state in states.LIVE_STATES:
            polls = result.get("polls")
            return ledger.update(held, states.mark_waited_out(
                held, f"still not ready after {polls} polls; the next run picks it up", now))
        return held
    except StaleEntry:
        return ledger.get(entry.slice_key) or entry
    finally:
        ledger.release(entry.slice_key, owner)


def summarize(ledger: Ledger, results: Sequence[Mapping[str, Any]], *, owner: str,
              now: datetime, settings: RunSettings | None = None) -> dict[str, Any]:
    """{"counts": {state: slices}, "failed": [...]}: where each slice of the run ended, from the
    ledger, after recording the failures only the state machine saw."""
    settings = settings or RunSettings()
    counts: dict[str, int] = {}
    failed: list[dict[str, Any]] = []
    seen: set[str] = set()
    for result in results:
        key = result.get("slice_key") if isinstance(result, Mapping) else None
        entry = ledger.get(str(key)) if key else None
        if entry is None or entry.slice_key in seen:
            if entry is None:
                counts["unknown"] = counts.get("unknown", 0) + 1
            continue
        seen.add(entry.slice_key)
        entry = _record_ending(ledger, entry, result, owner, now, settings)
        counts[entry.state.value] = counts.get(entry.state.value, 0) + 1
        if entry.state is SliceState.FAILED:
            failed.append({
                "slice_key": entry.slice_key, "source": entry.source,
                "account_id": entry.account_id, "report_type": entry.report_type,
                "report_date": entry.report_date.isoformat(),
                "failure_class": entry.failure_class.value if entry.failure_class else None,
                "error": entry.error,
            })
    return {"counts": dict(sorted(counts.items())), "failed": failed}
