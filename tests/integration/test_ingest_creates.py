"""Creates: a lost answer's report is found and attached, never asked twice; a create waiting
for its turn keeps its lease; an account has a bounded number of creates under way."""

from __future__ import annotations

import threading
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from amzlake.ingest.runner import _lost_create_alike
from amzlake.ingest.states import CREATE_SENT, FailureClass, SliceState
from amzlake.storage.ledger import LedgerEntry, open_ledger
from tests.integration.ingest_helpers import emulator_config, run_once

SLOW_CREATE = 2.5  # real seconds the emulator sits on the create before making the report


def _wait_for_reports(emu, report_type: str, n: int) -> list[dict]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        jobs = [j for j in emu.client.get("/_emulator/reports").json()["reports"]
                if j["report_type"] == report_type]
        if len(jobs) >= n:
            return jobs
        time.sleep(0.1)
    raise AssertionError(f"the emulator never made {n} {report_type} reports")


@pytest.mark.parametrize("report_type", ["GET_VENDOR_SALES_REPORT", "GET_VENDOR_FORECASTING_REPORT"])
def test_a_lost_create_is_looked_up_and_attached_on_the_next_run(make_emulator, tmp_path: Path,
                                                                 report_type: str) -> None:
    # The first create's answer comes after the client gave up (its timeout is 1 s): the
    # report exists at the emulator, the runner does not know its id. Forecasting reports show
    # no data times in getReports, so they are matched by type, marketplace and creation time.
    emu = make_emulator(faults=[{"kind": "slow", "operation": "spapi.createReport",
                                 "seconds": SLOW_CREATE, "times": 1}])
    config, env = emulator_config(emu, tmp_path, ads={"enabled": False},
                                  vendor={"reports": [{"report_type": report_type}]},
                                  run={"http_timeout": "1s"})
    first, ingestion, planned = run_once(emu, config, env)
    lost = [r for r in first.results if r.state is SliceState.FAILED]
    assert len(lost) == 1 and lost[0].failure_class is FailureClass.RETRYABLE, first.results
    assert "answer was lost" in (lost[0].error or "")
    assert all(r.state is SliceState.DOWNLOADED for r in first.results if r not in lost)

    # The late create lands at the emulator; once the failure's retry time (5 virtual minutes)
    # has come, the next run looks the report up instead of asking again.
    jobs = _wait_for_reports(emu, report_type, len(planned))
    time.sleep(1.0)  # 10 virtual minutes at the test clock's 600x
    second, ingestion, _ = run_once(emu, config, env)
    assert [r.state for r in second.results] == [SliceState.DOWNLOADED]

    entry = ingestion.ledger.get(lost[0].slice_key)
    assert entry is not None and entry.remote_report_id in {j["report_id"] for j in jobs}
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["calls"]["spapi.createReport"] == len(planned)  # the lost one was not sent again
    assert calls["duplicate_creates"] == 0
    assert len(_wait_for_reports(emu, report_type, len(planned))) == len(planned)


def test_a_lost_create_is_not_retried_before_its_retry_time(make_emulator, tmp_path: Path) -> None:
    emu = make_emulator(faults=[{"kind": "slow", "operation": "spapi.createReport",
                                 "seconds": SLOW_CREATE, "times": 1}], time_scale=1.0)
    config, env = emulator_config(emu, tmp_path, ads={"enabled": False},
                                  vendor={"reports": [{"report_type": "GET_VENDOR_FORECASTING_REPORT"}]},
                                  run={"http_timeout": "1s", "poll_initial": "1s"})
    first, _, planned = run_once(emu, config, env)
    assert sorted(r.state for r in first.results) == sorted(
        [SliceState.FAILED] + [SliceState.DOWNLOADED] * (len(planned) - 1))
    second, _, _ = run_once(emu, config, env)  # seconds later: not yet due
    assert second.results == []
    assert emu.client.get("/_emulator/calls").json()["calls"]["spapi.createReport"] == len(planned)


def _entry(key: str, *, note: str | None, start: date, remote: str | None = None) -> LedgerEntry:
    now = datetime(2026, 11, 20, tzinfo=UTC)
    return LedgerEntry(slice_key=key, source="vendor", account_id="A", report_type="T", spec={},
                       start=start, end=start, report_date=start, state=SliceState.PLANNED,
                       created_at=now, updated_at=now, note=note, remote_report_id=remote)


def test_lost_creates_getreports_cannot_tell_apart_are_recognised() -> None:
    day, other_day = date(2026, 11, 1), date(2026, 11, 2)
    mine = _entry("mine", note=CREATE_SENT, start=day)
    # Another option set of the same type and days, also lost: the same to getReports.
    assert _lost_create_alike(mine, _entry("b", note=CREATE_SENT, start=day), dated=True)
    # Other days: told apart by their data times, unless the type sends none.
    assert not _lost_create_alike(mine, _entry("c", note=CREATE_SENT, start=other_day), dated=True)
    assert _lost_create_alike(mine, _entry("c", note=CREATE_SENT, start=other_day), dated=False)
    # Not lost: no create sent yet, or its report id is known; and never itself.
    assert not _lost_create_alike(mine, _entry("d", note=None, start=day), dated=False)
    assert not _lost_create_alike(mine, _entry("e", note=CREATE_SENT, start=day, remote="9"),
                                  dated=False)
    assert not _lost_create_alike(mine, mine, dated=False)


def test_a_run_keeps_its_lease_while_a_create_waits(make_emulator, tmp_path: Path) -> None:
    # The create takes 5 real seconds (50 virtual minutes at 600x), far past the 15-minute lease:
    # meanwhile another run must not be able to take the slice over and ask for it again.
    emu = make_emulator(faults=[{"kind": "slow", "operation": "ads.createAsyncReport",
                                 "seconds": 5.0, "times": 1}])
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "reports": [{"report_type": "spCampaigns"}]})
    outcome: list[Any] = []
    running = threading.Thread(target=lambda: outcome.append(run_once(emu, config, env)))
    running.start()
    time.sleep(3.0)  # 30 virtual minutes: the lease, unless extended, lapsed at 15
    other = open_ledger(config.storage.ledger_location)
    try:
        waiting = [e for e in other.query(states=[SliceState.PLANNED]) if e.note == CREATE_SENT]
        assert len(waiting) == 1
        taken = other.acquire(waiting[0].slice_key, "another run", emu.state.clock.now(),
                              timedelta(minutes=15))
        assert taken is None
    finally:
        other.close()
        running.join(60)
    result, _, planned = outcome[0]
    assert all(r.state is SliceState.DOWNLOADED for r in result.results)
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["calls"]["ads.createAsyncReport"] == len(planned) and calls["duplicate_creates"] == 0


def test_an_account_has_at_most_concurrency_creates_under_way(make_emulator, tmp_path: Path) -> None:
    # Every create takes 0.4 s real: with concurrency 2, at most two slices of the profile may
    # carry the "create sent" mark at any moment, however many are planned.
    emu = make_emulator(faults=[{"kind": "slow", "operation": "ads.createAsyncReport",
                                 "seconds": 0.4, "times": 1000}])
    reports = [{"report_type": t} for t in ("spCampaigns", "sbCampaigns", "sdCampaigns",
                                            "spTargeting", "sbAds", "sdAdGroup")]
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "reports": reports},
                                  run={"concurrency": 2})
    outcome: list[Any] = []
    running = threading.Thread(target=lambda: outcome.append(run_once(emu, config, env)))
    running.start()
    seen: list[int] = []
    ledger = None
    while running.is_alive():
        time.sleep(0.05)
        if ledger is None:
            if not Path(config.storage.ledger_location).exists():
                continue
            ledger = open_ledger(config.storage.ledger_location)
        marked = [e for e in ledger.query(states=[SliceState.PLANNED]) if e.note == CREATE_SENT]
        seen.append(len(marked))
    running.join()
    assert ledger is not None
    ledger.close()
    result, _, planned = outcome[0]
    assert len(planned) > 6 and all(r.state is SliceState.DOWNLOADED for r in result.results)
    assert max(seen) == 2, seen
