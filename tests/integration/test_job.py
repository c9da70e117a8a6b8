"""`amzlake run` end to end in-process: ingest, debounced transform, curated tables, notifications."""

from __future__ import annotations

import asyncio
import gzip
import json
from pathlib import Path

import pyarrow.compute as pc

from amzlake.emulator.faults import Fault, FaultKind, FaultPlan
from amzlake.ingest.pipeline import Ingestion
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.job import JobResult, run_job, transformer_for
from amzlake.lake.catalog import open_catalog
from amzlake.secrets import CredentialChain
from amzlake.storage.ledger import RawObject
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config

SMALL = {
    "ads": {"countries": ["US"], "reports": [{"report_type": "spCampaigns"},
                                             {"report_type": "spAdvertisedProduct"}]},
    "vendor": {"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]},
    "transform": {"quiet_period": "5s", "workers": 2},
}


def _job(emu: RunningEmulator, config, env) -> tuple[JobResult, Ingestion]:
    async def go() -> tuple[JobResult, Ingestion]:
        ingestion = Ingestion.open(config, emu.state.clock, CredentialChain.default(environ=env))
        try:
            return await run_job(config, emu.state.clock, ingestion=ingestion), ingestion
        finally:
            await ingestion.pool.aclose()

    return asyncio.run(go())


def _table_rows(config, name: str) -> int:
    catalog = open_catalog(Path(config.storage.lake))
    return catalog.load_table(("amzlake", name)).scan().to_arrow().num_rows


def test_run_curates_every_download_and_reruns_change_nothing(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    events = tmp_path / "events.jsonl"
    config, env = emulator_config(emu, tmp_path, notify={"jsonl": str(events)}, **SMALL)
    job, ingestion = _job(emu, config, env)
    entries = ingestion.ledger.query()
    assert entries and {e.state for e in entries} == {SliceState.CURATED}
    assert job.transforms and job.quarantined == 0
    # Rows in the tables are the emulator's rows, slice by slice.
    truth_rows = 0
    for e in entries:
        api = "ads" if e.source == "ads" else "spapi"
        truth = emu.client.get(f"/_emulator/truth/{api}/{e.remote_report_id}").json()["truth"]
        truth_rows += truth["rows"]
    tables = {c.table for t in job.transforms for c in t.commits}
    assert {"ads_sp_campaigns_daily", "ads_sp_advertised_product_daily",
            "vendor_sales_by_asin"} <= tables
    assert sum(e.row_count or 0 for e in entries) == truth_rows
    # One event per commit, naming its table and snapshot.
    lines = [json.loads(x) for x in events.read_text().splitlines()]
    assert len(lines) == len(job.transforms[0].commits) + sum(len(t.commits) for t in job.transforms[1:])
    assert all(x["kind"] == "commit" and x["snapshot_id"] for x in lines)
    before = {t: _table_rows(config, t) for t in tables}
    # The same day again: nothing new to ask for, nothing to transform, the same tables.
    again, _ = _job(emu, config, env)
    assert again.planned == [] and again.rows_committed == 0
    assert {t: _table_rows(config, t) for t in tables} == before


def test_a_restated_day_replaces_its_numbers(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "reports": [{"report_type": "spCampaigns"}]},
                                  transform={"quiet_period": "5s"})
    _job(emu, config, env)
    table = open_catalog(Path(config.storage.lake)).load_table(("amzlake", "ads_sp_campaigns_daily"))
    first = table.scan().to_arrow()
    emu.client.post("/_emulator/clock/advance", params={"seconds": 86_400})
    job, ingestion = _job(emu, config, env)
    assert any(p.reason == "restatement" for p in job.planned)
    table = open_catalog(Path(config.storage.lake)).load_table(("amzlake", "ads_sp_campaigns_daily"))
    second = table.scan().to_arrow()
    # Each (day, campaign) appears once: the restated pull replaced the first one's rows.
    keys = pc.binary_join_element_wise(pc.cast(second["report_date"], "string"),
                                       pc.cast(second["campaign_id"], "string"), "|")
    assert len(pc.unique(keys)) == second.num_rows
    assert second.num_rows >= first.num_rows
    # And the restated day's numbers are the new pull's.
    day = max(p.slice.start for p in job.planned if p.reason == "restatement")
    newest = max((e for e in ingestion.ledger.query() if e.start <= day <= e.end),
                 key=lambda e: e.raw_objects[-1].fetched_at)
    truth = emu.client.get(f"/_emulator/truth/ads/{newest.remote_report_id}").json()["truth"]
    on_day = second.filter(pc.equal(second["report_date"], day))
    assert on_day.num_rows == truth["details"]["byDate"][day.isoformat()]["rows"]


def test_a_day_restated_to_no_data_loses_its_rows(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    config, env = emulator_config(emu, tmp_path, ads={"enabled": False},
                                  vendor={"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]},
                                  transform={"quiet_period": "5s"})
    _job(emu, config, env)
    lake = Path(config.storage.lake)
    first = open_catalog(lake).load_table(("amzlake", "vendor_sales_by_asin")).scan().to_arrow()
    # From now on Amazon answers every sales report with CANCELLED: no data for the range.
    emu.state.faults = FaultPlan([Fault(kind=FaultKind.CANCELLED,
                                        report_type="GET_VENDOR_SALES_REPORT")], seed=1)
    emu.client.post("/_emulator/clock/advance", params={"seconds": 86_400})
    job, ingestion = _job(emu, config, env)
    repulled = [p.slice for p in job.planned if p.reason == "restatement"]
    assert repulled
    emptied = [ingestion.ledger.get(s.key) for s in repulled]
    assert all(e is not None and e.state is SliceState.EMPTY and e.row_count == 0 for e in emptied)
    after = open_catalog(lake).load_table(("amzlake", "vendor_sales_by_asin")).scan().to_arrow()
    gone = {(s.account.account_id, s.start) for s in repulled}
    kept = [(a, d) for a, d in zip(first["account_id"].to_pylist(),
                                   first["report_date"].to_pylist(), strict=True)
            if (a, d) not in gone]
    assert sorted(zip(after["account_id"].to_pylist(), after["report_date"].to_pylist(),
                      strict=True)) == sorted(kept)
    assert len(kept) < first.num_rows  # the re-pulled days had rows before


def test_an_ads_document_without_rows_is_empty_and_clears_a_restated_day(make_emulator,
                                                                        tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    config, env = emulator_config(emu, tmp_path, vendor={"enabled": False},
                                  ads={"countries": ["US"], "reports": [{"report_type": "spCampaigns"}]},
                                  transform={"quiet_period": "5s"})
    _job(emu, config, env)
    lake = Path(config.storage.lake)
    first = open_catalog(lake).load_table(("amzlake", "ads_sp_campaigns_daily")).scan().to_arrow()
    emu.state.faults = FaultPlan([Fault(kind=FaultKind.NO_ROWS)], seed=1)  # every report: `[]`
    emu.client.post("/_emulator/clock/advance", params={"seconds": 86_400})
    job, ingestion = _job(emu, config, env)
    answered = [ingestion.ledger.get(p.slice.key) for p in job.planned]
    assert answered and all(e is not None and e.state is SliceState.EMPTY for e in answered)
    for e in answered:
        assert e is not None and e.note == "the document has no rows" and e.row_count == 0
        with ingestion.store.open_read(e.raw_objects[-1].key) as f:
            assert gzip.decompress(f.read()) == b"[]"  # kept as served, like any document
    after = open_catalog(lake).load_table(("amzlake", "ads_sp_campaigns_daily")).scan().to_arrow()
    restated = {p.slice.start for p in job.planned if p.reason == "restatement"}
    assert restated
    assert not set(after["report_date"].to_pylist()) & restated
    assert after.num_rows == sum(1 for d in first["report_date"].to_pylist() if d not in restated)


def test_an_unparseable_document_is_quarantined_and_the_rest_goes_on(make_emulator,
                                                                     tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    events = tmp_path / "events.jsonl"
    config, env = emulator_config(emu, tmp_path, notify={"jsonl": str(events)},
                                  transform={"quiet_period": "1h"}, **{k: v for k, v in SMALL.items()
                                                                       if k != "transform"})

    async def ingest_only() -> Ingestion:
        ingestion = Ingestion.open(config, emu.state.clock, CredentialChain.default(environ=env))
        await ingestion.run()
        await ingestion.pool.aclose()
        return ingestion

    ingestion = asyncio.run(ingest_only())
    victim = next(e for e in ingestion.ledger.query() if e.report_type == "spCampaigns")
    # A valid gzip whose JSON is not an array of rows.
    bad_key = victim.raw_objects[-1].key.replace(".json.gz", "0.json.gz")

    async def put() -> None:
        async def body():  # type: ignore[no-untyped-def]
            yield gzip.compress(b'{"not": "an array"}')

        await ingestion.store.put_stream(bad_key, body())

    asyncio.run(put())
    info = ingestion.store.head(bad_key)
    raw = RawObject(bad_key, info.sha256, info.size, victim.raw_objects[-1].fetched_at)
    ingestion.ledger.update(victim, {"raw_objects": (*victim.raw_objects, raw)})
    result = transformer_for(config, ingestion.ledger, ingestion.store, emu.state.clock).run()
    assert [o.slice_key for o in result.quarantined] == [victim.slice_key]
    states = {e.slice_key: e for e in ingestion.ledger.query()}
    assert states[victim.slice_key].state is SliceState.FAILED
    assert states[victim.slice_key].failure_class is FailureClass.RETRYABLE
    assert "quarantined" in states[victim.slice_key].error
    assert all(e.state is SliceState.CURATED for k, e in states.items() if k != victim.slice_key)
    assert list(ingestion.store.list("quarantine/"))
    kinds = [json.loads(x)["kind"] for x in events.read_text().splitlines()]
    assert kinds.count("quarantine") == 1 and kinds.count("commit") >= 2


def test_transform_watch_curates_new_downloads_once_quiet(make_emulator, tmp_path: Path) -> None:
    from amzlake.ingest.states import SliceState
    from amzlake.job import watch

    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    config, env = emulator_config(emu, tmp_path, transform={"quiet_period": "60s",
                                                             "poll_interval": "10s"},
                                  **{k: v for k, v in SMALL.items() if k != "transform"})

    async def go() -> tuple[list, list]:
        ingestion = Ingestion.open(config, emu.state.clock, CredentialChain.default(environ=env))
        stop = asyncio.Event()
        watcher = asyncio.create_task(watch(config, ingestion.ledger, ingestion.store,
                                            emu.state.clock, stop))
        await ingestion.run()  # downloads land; the watcher sees them and waits for quiet
        await ingestion.pool.aclose()
        for _ in range(600):  # up to 60 s of real time (600x clock: quiet is 0.1 s)
            if all(e.state is SliceState.CURATED for e in ingestion.ledger.query()):
                break
            await asyncio.sleep(0.1)
        stop.set()
        return await watcher, ingestion.ledger.query()

    results, entries = asyncio.run(go())
    assert entries and all(e.state is SliceState.CURATED for e in entries)
    assert sum(len(r.outcomes) for r in results) == len(entries)
