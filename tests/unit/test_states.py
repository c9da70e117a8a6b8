"""The slice state machine: each transition from each state, allowed or refused; what it sets."""

from __future__ import annotations

import dataclasses
import pickle
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from amzlake.errors import InvalidTransition
from amzlake.ingest import states
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.slices import Account, Slice, Source, VendorReportSpec
from amzlake.storage.ledger import LedgerEntry, RawObject, check_changes, planned_entry

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)
ACCOUNT = Account(Source.VENDOR, "A1VENDOR", "NA", "ATVPDKIKX0DER", "US", "USD",
                  "America/Los_Angeles")
SLICE = Slice(ACCOUNT, VendorReportSpec.of("GET_VENDOR_SALES_REPORT", {"reportPeriod": "DAY"}),
              date(2026, 11, 18), date(2026, 11, 18))
RAW = RawObject("raw/vendor/x/2026-11-18/A1VENDOR/k/1.json.gz", "ab" * 32, 123, NOW, "doc-1")

P, RQ, PR, DL, CU, EM, CA, FA = (SliceState.PLANNED, SliceState.REQUESTED, SliceState.PROCESSING,
                                 SliceState.DOWNLOADED, SliceState.CURATED, SliceState.EMPTY,
                                 SliceState.CANCELLED, SliceState.FAILED)

# The table written out by hand (not read from states.ALLOWED): changing it must be deliberate.
EXPECTED: dict[str, tuple[set[SliceState], SliceState]] = {
    "mark_create_sent": ({P}, P),
    "mark_requested": ({P}, RQ),
    "mark_processing": ({RQ, PR}, PR),
    "mark_downloaded": ({RQ, PR}, DL),
    "mark_empty": ({RQ, PR, DL}, EM),
    "mark_cancelled": ({P, RQ, PR}, CA),
    "mark_failed": ({P, RQ, PR, DL}, FA),
    "mark_curated": ({DL, CU}, CU),
    "mark_waited_out": ({RQ, PR}, PR),
    # failed here means a retryable failure; fatal ones are covered below
    "replan": ({CU, EM, CA, FA}, P),
}


def entry(state: SliceState = P, **fields: Any) -> LedgerEntry:
    """A ledger entry for SLICE in `state`."""
    base = planned_entry(SLICE, NOW - timedelta(days=1))
    if state is FA:
        fields.setdefault("failure_class", FailureClass.RETRYABLE)
    return dataclasses.replace(base, state=state, **fields)


def call(name: str, e: LedgerEntry) -> dict[str, Any]:
    """Run the transition `name` on `e` with ordinary arguments."""
    if name == "mark_requested":
        return states.mark_requested(e, "rpt-1", NOW)
    if name == "mark_downloaded":
        return states.mark_downloaded(e, RAW, 10, NOW)
    if name == "mark_failed":
        return states.mark_failed(e, FailureClass.RETRYABLE, "HTTP 503", NOW)
    if name == "mark_curated":
        return states.mark_curated(e, 10, NOW)
    if name == "mark_waited_out":
        return states.mark_waited_out(e, "still IN_PROGRESS after 2h", NOW)
    return getattr(states, name)(e, NOW)


def test_the_table_names_every_transition_and_state() -> None:
    assert set(states.transition_names()) == set(EXPECTED)
    assert {s.value for s in SliceState} == {
        "planned", "requested", "processing", "downloaded", "curated", "empty", "cancelled",
        "failed"}
    assert {f.value for f in FailureClass} == {"throttled", "retryable", "fatal-input",
                                               "fatal-remote"}


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("state", list(SliceState))
def test_every_transition_from_every_state(name: str, state: SliceState) -> None:
    allowed, target = EXPECTED[name]
    e = entry(state)
    if state in allowed:
        changes = call(name, e)
        assert changes["state"] is target
        assert changes["updated_at"] == NOW
        # The changes are ones the ledger accepts.
        check_changes(e, changes)
    else:
        with pytest.raises(InvalidTransition) as info:
            call(name, e)
        err = info.value
        assert (err.slice_key, err.from_state, err.to_state) == (SLICE.key, state.value,
                                                                 target.value)
        assert f"slice {SLICE.key}: cannot go from {state.value} to {target.value}" in str(err)


@pytest.mark.parametrize("failure", [FailureClass.FATAL_INPUT, FailureClass.FATAL_REMOTE])
def test_fatal_failures_are_replanned_only_by_force(failure: FailureClass) -> None:
    e = entry(FA, failure_class=failure, error="FATAL: invalid date range")
    with pytest.raises(InvalidTransition, match=f"a {failure.value} failure is retried only"):
        states.replan(e, NOW)
    assert states.replan(e, NOW, force=True)["state"] is P


@pytest.mark.parametrize("failure", [FailureClass.THROTTLED, FailureClass.RETRYABLE])
def test_throttled_and_retryable_failures_are_replanned(failure: FailureClass) -> None:
    e = entry(FA, failure_class=failure)
    changes = states.replan(e, NOW)
    assert changes["failure_class"] is None and changes["error"] is None


def test_a_lost_create_keeps_its_mark_and_time_through_a_replan() -> None:
    sent_at = NOW - timedelta(minutes=20)
    sent = {**states.mark_create_sent(entry(P), sent_at), "state": FA,
            "failure_class": FailureClass.RETRYABLE}
    changes = states.replan(dataclasses.replace(entry(P), **sent), NOW)
    assert changes["note"] == states.CREATE_SENT and changes["requested_at"] == sent_at
    # Any other failure is planned afresh.
    changes = states.replan(entry(FA, note="create refused: no report was made"), NOW)
    assert changes["note"] == "replanned from failed" and changes["requested_at"] is None


def test_force_replans_a_downloaded_slice_but_never_a_live_one() -> None:
    with pytest.raises(InvalidTransition, match="only with force"):
        states.replan(entry(DL), NOW)
    assert states.replan(entry(DL), NOW, force=True)["state"] is P
    for live in (P, RQ, PR):
        with pytest.raises(InvalidTransition, match="never replanned"):
            states.replan(entry(live, remote_report_id="rpt-9"), NOW, force=True)


def test_requested_counts_attempts_but_reattaching_does_not() -> None:
    e = entry(P, attempts=2)
    asked = states.mark_requested(e, "rpt-1", NOW)
    assert asked["attempts"] == 3 and asked["remote_report_id"] == "rpt-1"
    assert asked["requested_at"] == NOW
    again = states.mark_requested(e, "rpt-1", NOW, attached=True)
    assert again["attempts"] == 2 and again["note"] == "re-attached to a live report"
    with pytest.raises(ValueError, match="remote report id"):
        states.mark_requested(e, "", NOW)


def test_downloads_append_raw_objects_and_replan_keeps_them() -> None:
    older = dataclasses.replace(RAW, key="raw/older.json.gz", document_id="doc-0")
    e = entry(PR, raw_objects=(older,), remote_report_id="rpt-1")
    changes = states.mark_downloaded(e, RAW, 10, NOW)
    assert changes["raw_objects"] == (older, RAW)
    assert changes["remote_document_id"] == "doc-1" and changes["row_count"] == 10
    curated = dataclasses.replace(e, **{**check_changes(e, changes), "state": CU})
    again = states.replan(curated, NOW)
    assert "raw_objects" not in again  # untouched: raw is append-only
    assert again["remote_report_id"] is None and again["note"] == "replanned from curated"


def test_failures_carry_class_reason_and_retry_time() -> None:
    later = NOW + timedelta(minutes=5)
    changes = states.mark_failed(entry(RQ), FailureClass.THROTTLED, "429 x5", NOW, retry_at=later)
    assert changes["failure_class"] is FailureClass.THROTTLED
    assert changes["error"] == "429 x5" and changes["next_attempt_at"] == later
    with pytest.raises(ValueError, match="fatal-input failure has no retry time"):
        states.mark_failed(entry(RQ), FailureClass.FATAL_INPUT, "bad", NOW, retry_at=later)
    failed = entry(FA, next_attempt_at=later)
    assert not states.retry_due(failed, NOW)
    assert states.retry_due(failed, later)
    assert states.retry_due(entry(FA), NOW)


def test_empty_waited_out_and_curated_set_their_fields() -> None:
    assert states.mark_empty(entry(PR), NOW)["row_count"] is None  # until the lake has it
    assert states.mark_empty(entry(PR), NOW)["note"] == "Amazon reported no data"
    waited = states.mark_waited_out(entry(RQ), "IN_QUEUE for 6h", NOW)
    assert waited["state"] is PR and waited["note"] == "IN_QUEUE for 6h"
    assert states.mark_processing(entry(PR, note="IN_QUEUE for 6h"), NOW)["note"] is None
    assert states.mark_curated(entry(DL), 42, NOW)["row_count"] == 42
    with pytest.raises(ValueError, match="negative row count"):
        states.mark_curated(entry(DL), -1, NOW)


def test_naive_times_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        states.mark_processing(entry(RQ), datetime(2026, 11, 20, 15, 0))


def test_a_refused_transition_survives_pickling_for_process_pools() -> None:
    with pytest.raises(InvalidTransition) as info:
        states.mark_curated(entry(P), 1, NOW)
    back = pickle.loads(pickle.dumps(info.value))
    assert (back.slice_key, back.from_state, back.to_state) == (SLICE.key, "planned", "curated")
    assert str(back) == str(info.value)
