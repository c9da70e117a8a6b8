"""`amzlake run` in-process against the emulator: every default report lands in the raw zone."""

from __future__ import annotations

import hashlib
import os
import time
from collections import Counter
from datetime import date
from pathlib import Path

from amzlake.ingest.states import SliceState
from amzlake.storage.file_store import INCOMING
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


def test_two_runs_at_once_never_ask_twice(make_emulator, tmp_path: Path) -> None:
    import asyncio

    from amzlake.ingest.pipeline import Ingestion
    from amzlake.secrets import CredentialChain

    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path, ads={"reports": [{"report_type": "spCampaigns"},
                                                                  {"report_type": "sdCampaigns"}]},
                                  vendor={"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]})

    async def one() -> list:
        ingestion = Ingestion.open(config, emu.state.clock, CredentialChain.default(environ=env))
        try:
            result, _ = await ingestion.run()
        finally:
            await ingestion.aclose()
        return result.results

    async def both() -> tuple[list, list]:
        return await asyncio.gather(one(), one())

    first, second = asyncio.run(both())
    worked = Counter(r.slice_key for r in (*first, *second) if not r.skipped)
    calls = emu.client.get("/_emulator/calls").json()
    assert calls["duplicate_creates"] == 0
    assert calls["distinct_requests"] == len(worked)
    assert all(r.state in (SliceState.DOWNLOADED, SliceState.EMPTY)
               for r in (*first, *second) if not r.skipped)


def test_next_day_re_pulls_restated_days_and_keeps_every_pull(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "reports": [{"report_type": "spCampaigns"}]})
    run_once(emu, config, env)
    emu.client.post("/_emulator/clock/advance", params={"seconds": 86_400})
    result, ingestion, planned = run_once(emu, config, env)
    reasons = Counter(p.reason for p in planned)
    assert reasons["new"] == 1 and reasons["restatement"] >= 3
    assert all(r.state is SliceState.DOWNLOADED for r in result.results)
    # The re-pulled day's numbers moved (conversions mature), and the first pull is still kept.
    day = max(p.slice.start for p in planned if p.reason == "restatement")  # 2 days old
    pulls = [e for e in ingestion.ledger.query(report_type="spCampaigns")
             if e.start <= day <= e.end]
    assert len(pulls) == 2
    truths = [emu.client.get(f"/_emulator/truth/ads/{e.remote_report_id}").json()["truth"]
              for e in pulls]
    per_day = [t["details"]["byDate"][day.isoformat()] for t in truths]
    assert per_day[0] != per_day[1]
    assert all(ingestion.store.exists(r.key) for e in pulls for r in e.raw_objects)


def test_yesterday_is_each_profiles_own(make_emulator, tmp_path: Path) -> None:
    # 2026-11-20 15:00 UTC is 07:00 on the 20th in Los Angeles but already 00:00 on the 21st in
    # Tokyo: the newest complete day is the 19th for the US profile and the 20th for the JP one.
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US", "JP"], "lookback_days": 3,
                                       "reports": [{"report_type": "spCampaigns"}]})
    result, ingestion, _ = run_once(emu, config, env)
    assert all(r.state is SliceState.DOWNLOADED for r in result.results)
    newest: dict[str, date] = {}
    for e in ingestion.ledger.query():
        country = e.account["country_code"]
        newest[country] = max(newest.get(country, e.end), e.end)
    assert newest == {"US": date(2026, 11, 19), "JP": date(2026, 11, 20)}
    # The emulator made each document for the profile's own days (its truth, by date).
    for e in ingestion.ledger.query():
        truth = emu.client.get(f"/_emulator/truth/ads/{e.remote_report_id}").json()["truth"]
        assert max(truth["details"]["byDate"]) == e.end.isoformat()


def test_a_run_sweeps_what_killed_downloads_left_a_day_ago(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "lookback_days": 1,
                                       "reports": [{"report_type": "spCampaigns"}]})
    folder = Path(config.storage.raw_location) / INCOMING
    folder.mkdir(parents=True)
    old, fresh = folder / "20261101T000000000000Z.json.gz.a1.tmp", folder / "x.json.gz.b2.tmp"
    for leftover in (old, fresh):
        leftover.write_bytes(b"\x1f\x8b cut off")
    two_days_ago = time.time() - 2 * 86_400
    os.utime(old, (two_days_ago, two_days_ago))
    run_once(emu, config, env)
    assert not old.exists() and fresh.exists()


def test_every_vendor_report_type_lands(make_emulator, tmp_path: Path) -> None:
    from amzlake.catalog.vendor import VENDOR_REPORT_TYPES

    emu: RunningEmulator = make_emulator(token_lifetime=LONG_TOKENS)
    asin = emu.state.world.asins(emu.credentials["vendor"][0]["marketplace_id"])[0]
    reports = [{"report_type": t} for t in VENDOR_REPORT_TYPES
               if t != "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT"]
    reports.append({"report_type": "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT",
                    "options": {"asin": asin}})
    config, env = emulator_config(emu, tmp_path, ads={"enabled": False},
                                  vendor={"reports": reports, "brand_analytics": True})
    result, ingestion, _ = run_once(emu, config, env)
    assert not result.failed, [(r.report_type, r.error) for r in result.failed][:5]
    landed = {e.report_type for e in ingestion.ledger.query()
              if e.state in (SliceState.DOWNLOADED, SliceState.EMPTY)}
    assert landed == set(VENDOR_REPORT_TYPES)
