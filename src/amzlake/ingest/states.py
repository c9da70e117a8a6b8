"""The slice state machine: ledger states, failure classes and one pure function per transition.

Each `mark_*` function checks that the slice may take that step and returns the ledger changes
(field name -> new value) to hand to `Ledger.update`, which applies them with compare-and-set.
Nothing here does I/O, so the runner, the planner and the AWS Lambdas share one set of rules.

    planned -> requested -> processing -> downloaded -> curated
    requested/processing -> empty (Amazon confirmed no data) | cancelled (we cancelled) | failed
    curated/empty/cancelled/failed(throttled, retryable) -> planned   (replan: lookback, retry)
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from amzlake.errors import InvalidTransition

if TYPE_CHECKING:  # the ledger imports this module, so the entry type is only needed for typing
    from amzlake.storage.ledger import LedgerEntry, RawObject

# The note of a slice whose create is under way or was sent without a recorded answer.
CREATE_SENT = "create sent"


class SliceState(StrEnum):
    """Where a slice is in its life (DESIGN.md, "ledger")."""

    PLANNED = "planned"
    REQUESTED = "requested"
    PROCESSING = "processing"
    DOWNLOADED = "downloaded"
    CURATED = "curated"
    EMPTY = "empty"
    CANCELLED = "cancelled"
    FAILED = "failed"


class FailureClass(StrEnum):
    """Why a failed slice failed, which decides whether it is retried."""

    THROTTLED = "throttled"  # 429s outlasted our budget: retry later
    RETRYABLE = "retryable"  # 5xx, timeouts, a corrupt download: retry
    FATAL_INPUT = "fatal-input"  # Amazon refused the request itself (400, validation FATAL)
    FATAL_REMOTE = "fatal-remote"  # Amazon failed the report for reasons of its own


Changes = dict[str, Any]
S = SliceState

# Which states each transition may start from: the whole table, as data, so tests can walk it.
ALLOWED: Mapping[str, frozenset[SliceState]] = MappingProxyType({
    "mark_create_sent": frozenset({S.PLANNED}),
    "mark_requested": frozenset({S.PLANNED}),
    "mark_processing": frozenset({S.REQUESTED, S.PROCESSING}),
    "mark_downloaded": frozenset({S.REQUESTED, S.PROCESSING}),
    "mark_empty": frozenset({S.REQUESTED, S.PROCESSING, S.DOWNLOADED}),
    "mark_cancelled": frozenset({S.PLANNED, S.REQUESTED, S.PROCESSING}),
    "mark_failed": frozenset({S.PLANNED, S.REQUESTED, S.PROCESSING, S.DOWNLOADED}),
    "mark_curated": frozenset({S.DOWNLOADED, S.CURATED}),
    "mark_waited_out": frozenset({S.REQUESTED, S.PROCESSING}),
    "replan": frozenset({S.CURATED, S.EMPTY, S.CANCELLED, S.FAILED}),
})

# The state each transition leads to.
TARGET: Mapping[str, SliceState] = MappingProxyType({
    "mark_create_sent": S.PLANNED,
    "mark_requested": S.REQUESTED,
    "mark_processing": S.PROCESSING,
    "mark_downloaded": S.DOWNLOADED,
    "mark_empty": S.EMPTY,
    "mark_cancelled": S.CANCELLED,
    "mark_failed": S.FAILED,
    "mark_curated": S.CURATED,
    "mark_waited_out": S.PROCESSING,
    "replan": S.PLANNED,
})

# Failures a plain replan retries; the others need `force` (a fatal-input request would only be
# refused again as is, and a fatal-remote one is left for a person to look at).
RETRIED_FAILURES = frozenset({FailureClass.THROTTLED, FailureClass.RETRYABLE})
# States that mean "a remote report may still be live": never replanned, even by force
# (DESIGN invariant 1: at most one live remote report per slice).
LIVE_STATES = frozenset({S.REQUESTED, S.PROCESSING})
# States whose work is finished for now (a complete day in `amzlake status`).
DONE_STATES = frozenset({S.DOWNLOADED, S.CURATED, S.EMPTY})
# States a run still has to work on.
PENDING_STATES = frozenset({S.PLANNED, S.REQUESTED, S.PROCESSING})


def _check(entry: LedgerEntry, step: str) -> None:
    if entry.state not in ALLOWED[step]:
        raise InvalidTransition(entry.slice_key, entry.state.value, TARGET[step].value,
                                f"{step} needs one of {sorted(s.value for s in ALLOWED[step])}")


def _aware(now: datetime) -> datetime:
    if now.tzinfo is None:
        raise ValueError("ledger times must be timezone-aware")
    return now


def mark_create_sent(entry: LedgerEntry, now: datetime) -> Changes:
    """Changes for a planned slice whose create is about to be sent: the mark and its time, so
    that if the answer is lost the report can be looked up among those made since."""
    _check(entry, "mark_create_sent")
    return {"state": S.PLANNED, "note": CREATE_SENT, "requested_at": _aware(now),
            "updated_at": _aware(now)}


def mark_requested(entry: LedgerEntry, remote_report_id: str, now: datetime, *,
                   attached: bool = False) -> Changes:
    """Changes for a planned slice whose report Amazon accepted (or that we re-attached to)."""
    _check(entry, "mark_requested")
    if not remote_report_id:
        raise ValueError(f"slice {entry.slice_key}: a requested slice needs its remote report id")
    return {
        "state": S.REQUESTED,
        "remote_report_id": str(remote_report_id),
        "remote_document_id": None,
        "requested_at": _aware(now),
        "finished_at": None,
        # `attempts` counts reports we asked for; re-attaching to a live one is not a new ask.
        "attempts": entry.attempts if attached else entry.attempts + 1,
        "failure_class": None,
        "error": None,
        "next_attempt_at": None,
        "note": "re-attached to a live report" if attached else None,
        "updated_at": now,
    }


def mark_processing(entry: LedgerEntry, now: datetime) -> Changes:
    """Changes for a slice whose report Amazon has started to process."""
    _check(entry, "mark_processing")
    return {"state": S.PROCESSING, "note": None, "updated_at": _aware(now)}


def mark_downloaded(entry: LedgerEntry, raw_object: RawObject, row_hint: int | None,
                    now: datetime) -> Changes:
    """Changes for a slice whose document is now in the raw zone (added to its raw objects)."""
    _check(entry, "mark_downloaded")
    return {
        "state": S.DOWNLOADED,
        "raw_objects": (*entry.raw_objects, raw_object),  # raw is append-only: keep older pulls
        "remote_document_id": raw_object.document_id,
        "row_count": row_hint,
        "finished_at": _aware(now),
        "failure_class": None,
        "error": None,
        "note": None,
        "updated_at": now,
    }


def mark_empty(entry: LedgerEntry, now: datetime, note: str = "Amazon reported no data") -> Changes:
    """Changes for a slice Amazon confirmed has no data (SP-API CANCELLED, or zero rows).

    `row_count` stays unknown (None) until the transform has applied the answer to the curated
    tables (removing what earlier pulls of these days left there) and sets it to 0.
    """
    _check(entry, "mark_empty")
    return {"state": S.EMPTY, "row_count": None, "finished_at": _aware(now), "note": note,
            "failure_class": None, "error": None, "updated_at": now}


def mark_cancelled(entry: LedgerEntry, now: datetime,
                   note: str = "cancelled by amzlake") -> Changes:
    """Changes for a slice whose report we cancelled (or that we dropped before asking)."""
    _check(entry, "mark_cancelled")
    return {"state": S.CANCELLED, "finished_at": _aware(now), "note": note, "updated_at": now}


def mark_failed(entry: LedgerEntry, failure_class: FailureClass, error: str, now: datetime,
                retry_at: datetime | None = None, note: str | None = None) -> Changes:
    """Changes for a failed slice: its class, the reason (no secrets) and when to retry, if ever;
    `note` replaces the slice's note when given (e.g. that no report was made)."""
    _check(entry, "mark_failed")
    failure_class = FailureClass(failure_class)
    if retry_at is not None and failure_class not in RETRIED_FAILURES:
        raise ValueError(
            f"slice {entry.slice_key}: a {failure_class.value} failure has no retry time")
    return {
        "state": S.FAILED,
        "failure_class": failure_class,
        "error": error,
        "finished_at": _aware(now),
        "next_attempt_at": _aware(retry_at) if retry_at is not None else None,
        "updated_at": now,
        **({"note": note} if note is not None else {}),
    }


def mark_curated(entry: LedgerEntry, rows: int, now: datetime) -> Changes:
    """Changes for a slice whose rows replaced its slice in the curated tables."""
    _check(entry, "mark_curated")
    if rows < 0:
        raise ValueError(f"slice {entry.slice_key}: negative row count {rows}")
    return {"state": S.CURATED, "row_count": rows, "note": None, "updated_at": _aware(now)}


def mark_waited_out(entry: LedgerEntry, note: str, now: datetime) -> Changes:
    """Changes for a slice whose report outlived its maximum wait: still live, for the next run."""
    _check(entry, "mark_waited_out")
    return {"state": S.PROCESSING, "note": note, "updated_at": _aware(now)}


def replan(entry: LedgerEntry, now: datetime, *, force: bool = False) -> Changes:
    """Changes that make a finished or failed slice planned again (lookback re-pull, retry).

    Without `force` only curated, empty, cancelled and throttled/retryable failures qualify; `force`
    also allows fatal failures and a downloaded slice. A slice that may have a live remote report
    (requested, processing) is never replanned.
    """
    allowed = ALLOWED["replan"] | ({S.DOWNLOADED} if force else frozenset())
    if entry.state not in allowed:
        raise InvalidTransition(entry.slice_key, entry.state.value, S.PLANNED.value,
                                "a live or unfinished slice is never replanned"
                                if entry.state in LIVE_STATES | {S.PLANNED}
                                else "only with force")
    if (entry.state is S.FAILED and not force
            and entry.failure_class not in RETRIED_FAILURES):
        cls = entry.failure_class.value if entry.failure_class else "unclassified"
        raise InvalidTransition(entry.slice_key, entry.state.value, S.PLANNED.value,
                                f"a {cls} failure is retried only with force")
    return {
        "state": S.PLANNED,
        "remote_report_id": None,
        "remote_document_id": None,
        "finished_at": None,
        "failure_class": None,
        "error": None,
        "next_attempt_at": None,
        # raw_objects and row_count stay: raw is append-only and the curated rows are still there.
        # A create that failed with its outcome unknown may have made a report: keep the mark and
        # its time, so the next request looks it up before asking again (DESIGN invariant 1).
        **({"note": CREATE_SENT, "requested_at": entry.requested_at} if entry.note == CREATE_SENT
           else {"note": f"replanned from {entry.state.value}", "requested_at": None}),
        "updated_at": _aware(now),
    }


def retry_due(entry: LedgerEntry, now: datetime) -> bool:
    """Whether a failed slice's retry time (if it has one) has come."""
    return entry.next_attempt_at is None or entry.next_attempt_at <= now


def transition_names() -> tuple[str, ...]:
    """The names of every transition function, in table order."""
    return tuple(ALLOWED)
