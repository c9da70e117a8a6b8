"""Each emulator fault, worked through by `amzlake run`: the right ledger state, nothing lost."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from amzlake.catalog.vendor import CLIENT_ERROR_TEXT
from amzlake.config import AmzlakeConfig
from amzlake.ingest.pipeline import Ingestion
from amzlake.ingest.runner import RunResult
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.summary import exit_code_for
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config, run_once

LONG_TOKENS = 10**7  # see test_ingest_run.py
SMALL = {
    "ads": {"countries": ["US"], "reports": [{"report_type": "spCampaigns"}]},
    "vendor": {"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]},
}


@dataclass
class Run:
    """One faulty run: the emulator, the config used and what the run did."""

    emu: RunningEmulator
    config: AmzlakeConfig
    env: dict[str, str]
    result: RunResult
    ingestion: Ingestion
    planned: list[Any]

    def again(self) -> tuple[RunResult, list[Any]]:
        result, _, planned = run_once(self.emu, self.config, self.env)
        return result, planned


def _run(make_emulator: Any, tmp_path: Path, faults: list[dict[str, Any]], **sections: Any) -> Run:
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS, faults=faults)
    merged = {k: {**SMALL.get(k, {}), **sections.get(k, {})} for k in {*SMALL, *sections}}
    config, env = emulator_config(emu, tmp_path, **merged)
    result, ingestion, planned = run_once(emu, config, env)
    return Run(emu, config, env, result, ingestion, planned)


def _calls(emu: RunningEmulator) -> dict[str, Any]:
    return emu.client.get("/_emulator/calls").json()


def _all_fetched(result: Any) -> None:
    assert result.results and all(r.state is SliceState.DOWNLOADED for r in result.results), \
        [(r.state, r.error, r.note) for r in result.results]


@pytest.mark.parametrize("operation", ["ads.createAsyncReport", "spapi.createReport",
                                       "ads.getAsyncReport", "spapi.getReport",
                                       "spapi.getReportDocument"])
def test_throttle_storms_are_waited_out_without_duplicate_creates(make_emulator, tmp_path,
                                                                  operation: str) -> None:
    run = _run(make_emulator, tmp_path, [{"kind": "throttle", "operation": operation, "times": 4}])
    _all_fetched(run.result)
    calls = _calls(run.emu)
    assert calls["duplicate_creates"] == 0 and calls["distinct_requests"] == len(run.planned)


@pytest.mark.parametrize("operation", ["ads.getAsyncReport", "spapi.getReport", "spapi.createReport"])
def test_server_errors_are_retried(make_emulator, tmp_path, operation: str) -> None:
    run = _run(make_emulator, tmp_path, [
        {"kind": "server_error", "operation": operation, "status": 503, "times": 3}])
    _all_fetched(run.result)
    assert _calls(run.emu)["duplicate_creates"] == 0


@pytest.mark.parametrize("kind", ["truncate", "corrupt", "drop_download", "expire_url"])
def test_bad_downloads_are_never_kept_and_are_fetched_again(make_emulator, tmp_path, kind) -> None:
    run = _run(make_emulator, tmp_path, [{"kind": kind, "times": 2}])
    _all_fetched(run.result)
    # Exactly one object per slice: no partial or corrupt document was kept.
    assert len(list(run.ingestion.store.list())) == len(run.planned)
    assert all(len(e.raw_objects) == 1 for e in run.ingestion.ledger.query())
    assert _calls(run.emu)["duplicate_creates"] == 0


def test_validation_fatal_is_kept_classified_and_not_asked_again(make_emulator, tmp_path) -> None:
    run = _run(make_emulator, tmp_path, [
        {"kind": "fatal", "operation": "spapi.createReport", "reason": CLIENT_ERROR_TEXT}],
        ads={"enabled": False})
    assert run.result.failed and exit_code_for(run.result) == 1
    for e in run.ingestion.ledger.query():
        assert e.state is SliceState.FAILED and e.failure_class is FailureClass.FATAL_INPUT
        assert CLIENT_ERROR_TEXT in (e.error or "")
        (raw,) = e.raw_objects  # the error document is kept
        assert raw.key.endswith(".fatal.json.gz") and run.ingestion.store.exists(raw.key)
    creates = _calls(run.emu)["calls"]["spapi.createReport"]
    _, planned = run.again()
    assert planned == [] and _calls(run.emu)["calls"]["spapi.createReport"] == creates


def test_remote_fatal_and_ads_failures(make_emulator, tmp_path) -> None:
    run = _run(make_emulator, tmp_path, [
        {"kind": "fatal", "operation": "spapi.createReport", "reason": "Amazon broke"},
        {"kind": "fatal", "operation": "ads.createAsyncReport"}])
    classes = {(e.source, e.failure_class) for e in run.ingestion.ledger.query()}
    # Ads' failure text is Amazon's "internal error. Please retry": a new report may well work.
    assert classes == {("vendor", FailureClass.FATAL_REMOTE), ("ads", FailureClass.RETRYABLE)}


def test_cancelled_is_no_data(make_emulator, tmp_path) -> None:
    run = _run(make_emulator, tmp_path, [{"kind": "cancelled"}], ads={"enabled": False})
    assert {r.state for r in run.result.results} == {SliceState.EMPTY}
    assert exit_code_for(run.result) == 0


def test_a_stuck_report_is_left_live_and_reattached_next_run(make_emulator, tmp_path) -> None:
    run = _run(make_emulator, tmp_path, [{"kind": "stuck", "operation": "ads.createAsyncReport"}],
               vendor={"enabled": False}, run={"max_wait": {"default": "20m"}})
    assert {r.state for r in run.result.results} == {SliceState.PROCESSING}
    assert all("still not ready" in (r.note or "") for r in run.result.results)
    assert exit_code_for(run.result) == 0
    creates = _calls(run.emu)["calls"]["ads.createAsyncReport"]
    again, _ = run.again()
    assert len(again.results) == len(run.planned)  # the same slices, polled again
    assert _calls(run.emu)["calls"]["ads.createAsyncReport"] == creates  # never asked twice


def test_token_expiry_mid_run(make_emulator, tmp_path) -> None:
    emu: RunningEmulator = make_emulator(faults=[{"kind": "token_expiry", "seconds": 400}])
    config, env = emulator_config(emu, tmp_path, **SMALL)
    result, *_ = run_once(emu, config, env)
    _all_fetched(result)


def test_a_hanging_answer_times_out_and_is_retried(make_emulator, tmp_path) -> None:
    run = _run(make_emulator, tmp_path, [
        {"kind": "hang", "operation": "spapi.getReport", "seconds": 20, "times": 1}],
        ads={"enabled": False}, run={"http_timeout": "1s"})
    _all_fetched(run.result)


def test_wrong_credentials_stop_the_run_with_exit_code_3(make_emulator, tmp_path) -> None:
    emu: RunningEmulator = make_emulator()
    config, env = emulator_config(emu, tmp_path, **SMALL)
    env["LWA_SECRET"] = "not-the-secret"
    from amzlake.errors import AuthError

    with pytest.raises(AuthError) as caught:
        run_once(emu, config, env)
    assert caught.value.exit_code == 3
    assert "not-the-secret" not in str(caught.value)
