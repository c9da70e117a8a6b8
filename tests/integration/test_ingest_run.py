"""`amzlake run` in-process against the emulator: every default report lands in the raw zone."""

from __future__ import annotations

import hashlib
from collections import Counter
from pathlib import Path

from amzlake.ingest.states import SliceState
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config, run_once

# At the tests' 600x clock an access token's hour is six real seconds, less than a busy machine may
# take between two calls; token expiry has its own tests, so these runs get long-lived tokens.
LONG_TOKENS = 10**7


def test_first_run_fetches_every_default_report_once(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path)
    result, ingestion, planned = run_once(emu, config, env)
    counts = result.counts()
    assert result.auth_error is None
    assert set(counts) <= {"downloaded", "empty"}, (counts, [r.error for r in result.failed][:5])
    entries = ingestion.ledger.query()
    assert len(entries) == len(planned) == len(result.results)
    # Every default report type of every account is there.
    by_type = Counter((e.source, e.report_type) for e in entries)
    assert len({t for s, t in by_type if s == "ads"}) == 20
    assert {t for s, t in by_type if s == "vendor"} >= {
        "GET_VENDOR_SALES_REPORT", "GET_VENDOR_INVENTORY_REPORT", "GET_VENDOR_TRAFFIC_REPORT",
        "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT", "GET_VENDOR_FORECASTING_REPORT",
        "GET_VENDOR_REAL_TIME_SALES_REPORT", "GET_VENDOR_REAL_TIME_INVENTORY_REPORT",
        "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT"}
    # Raw is exact: each stored document is the emulator's document byte for byte.
    for e in entries:
        if e.state is SliceState.DOWNLOADED:
            raw = e.raw_objects[-1]
            job = emu.state.jobs.find("ads" if e.source == "ads" else "spapi", e.remote_report_id)
            assert job is not None and job.document is not None
            with ingestion.store.open_read(raw.key) as f:
                body = f.read()
            assert hashlib.sha256(body).hexdigest() == raw.sha256 == job.document.sha256
            prefix = f"{e.source}/{e.report_type}/{e.report_date}/{e.account_id}/{e.slice_key}/"
            assert raw.key.startswith(prefix)
    # One create per slice, none duplicated.
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["duplicate_creates"] == 0
    assert calls["distinct_requests"] == len(entries)


def test_a_second_run_the_same_day_asks_for_nothing_new(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"reports": [{"report_type": "spCampaigns"}]})
    first, _, planned = run_once(emu, config, env)
    assert planned and all(r.state is SliceState.DOWNLOADED for r in first.results)
    creates = emu.client.get("/_emulator/calls").json()["calls"]["ads.createAsyncReport"]
    second, _, planned_again = run_once(emu, config, env)
    assert planned_again == [] and second.results == []
    assert emu.client.get("/_emulator/calls").json()["calls"]["ads.createAsyncReport"] == creates
