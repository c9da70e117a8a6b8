"""The Glue job's transform in pyspark local mode gives the same curated lake as the embedded one.

One ingestion from the emulator (Ads and vendor report types) feeds two copies of the ledger and
raw zone: the embedded Transformer (process pool) curates one into lake A, the Glue job's entry
point (`main`, argparse, a local SparkSession with 2 threads, curate() on the Python workers) the other into
lake B. Both see the same unparseable document for one slice. The tables, the ledgers, the
quarantine records and the notifications must agree.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import sqlite3
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from amzlake.aws.glue_job import JobArgs, catalog_overrides, main, parse_args
from amzlake.errors import ConfigError
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.notify import JsonLinesNotifier
from amzlake.storage.ledger import RawObject, open_ledger
from amzlake.storage.objects import open_store
from amzlake.transform.curate import QUARANTINE_PREFIX, Transformer
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config, run_once

REPORTS: dict[str, Any] = {
    "ads": {"countries": ["US"], "reports": [{"report_type": "spCampaigns"},
                                             {"report_type": "spAdvertisedProduct"},
                                             {"report_type": "sbCampaigns"}]},
    "vendor": {"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"},
                           {"report_type": "GET_VENDOR_TRAFFIC_REPORT"}]},
}


def _java_missing() -> bool:
    home = os.environ.get("JAVA_HOME")
    return shutil.which("java") is None and not (home and Path(home, "bin", "java").exists())


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    """A local SparkSession (2 threads) whose Python workers are this interpreter (amzlake importable)."""
    if _java_missing():
        pytest.skip("Java is missing: pyspark local mode needs a JVM (Java 17)")
    pyspark_sql = pytest.importorskip("pyspark.sql")
    # local[2, 4]: two threads, and a failed task is tried up to 4 times as on a cluster (Spark's
    # spark.task.maxFailures default; local mode otherwise gives up at once). A Python worker that
    # is slow to start on a loaded machine then costs a retry, not the run; curate() is
    # replace-by-slice, so a retried task commits the same rows.
    session = (pyspark_sql.SparkSession.builder.master("local[2,4]").appName("amzlake-glue-test")
               .config("spark.ui.enabled", "false")
               .config("spark.sql.shuffle.partitions", "2")
               .config("spark.driver.bindAddress", "127.0.0.1")
               .config("spark.driver.host", "127.0.0.1")
               .config("spark.pyspark.python", sys.executable)
               .config("spark.pyspark.driver.python", sys.executable)
               .getOrCreate())
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


def _copy_ledger(src: Path, dst: Path) -> Path:
    # SQLite's backup API: a consistent copy whatever the WAL holds.
    with sqlite3.connect(src) as a, sqlite3.connect(dst) as b:
        a.backup(b)
    return dst


def _tables(lake: Path) -> dict[str, list[tuple]]:
    """Every curated table's rows, each as a sorted tuple of (column, value) pairs, sorted."""
    catalog = open_catalog(lake)
    out = {}
    for ident in catalog.list_tables("amzlake"):
        rows = catalog.load_table(ident).scan().to_arrow().to_pylist()
        out[ident[-1]] = sorted((tuple(sorted(r.items())) for r in rows), key=repr)
    return out


def _ledger_view(path: Path) -> dict[str, tuple]:
    ledger = open_ledger(path)
    try:
        return {e.slice_key: (e.state, e.failure_class, e.error, e.row_count)
                for e in ledger.query()}
    finally:
        ledger.close()


def _events(path: Path) -> list[tuple]:
    """The notifications, without their snapshot ids and times (those differ per lake)."""
    out = []
    for line in path.read_text().splitlines():
        e = json.loads(line)
        out.append((e["kind"], e.get("table"), e["slice_key"], e.get("rows_added"),
                    e.get("rows_replaced"), tuple(e.get("partitions") or ()), e.get("reason")))
    return sorted(out, key=repr)


def _break_one_document(raw: Path, ledger_path: Path) -> tuple[str, str]:
    """Gives one spCampaigns slice a newer document that is valid gzip but not an array of rows."""
    ledger, store = open_ledger(ledger_path), open_store(raw)
    try:
        victim = next(e for e in ledger.query(states=[SliceState.DOWNLOADED])
                      if e.report_type == "spCampaigns")
        bad_key = victim.raw_objects[-1].key.replace(".json.gz", "0.json.gz")

        async def put() -> None:
            async def body():  # type: ignore[no-untyped-def]
                yield gzip.compress(b'{"not": "an array"}')

            await store.put_stream(bad_key, body())

        asyncio.run(put())
        info = store.head(bad_key)
        assert info is not None
        raw_object = RawObject(bad_key, info.sha256, info.size, victim.raw_objects[-1].fetched_at)
        ledger.update(victim, {"raw_objects": (*victim.raw_objects, raw_object)})
        return victim.slice_key, bad_key
    finally:
        ledger.close()


def test_glue_job_in_local_spark_curates_the_same_rows_as_the_embedded_transform(
        make_emulator, spark, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    ingest_ledger = tmp_path / "ingest.sqlite"
    config, env = emulator_config(emu, tmp_path, storage={"raw": str(tmp_path / "raw"),
                                                          "ledger": str(ingest_ledger)}, **REPORTS)
    result, ingestion, _ = run_once(emu, config, env)
    ingestion.ledger.close()
    assert not result.failed
    victim, bad_key = _break_one_document(tmp_path / "raw", ingest_ledger)
    ledger = open_ledger(ingest_ledger)
    downloaded = ledger.query(states=[SliceState.DOWNLOADED])
    ledger.close()
    assert {e.report_type for e in downloaded} == {
        "spCampaigns", "spAdvertisedProduct", "sbCampaigns", "GET_VENDOR_SALES_REPORT",
        "GET_VENDOR_TRAFFIC_REPORT"}

    # Two independent copies of what the ingestion left: ledger and raw zone.
    sides = {}
    for side in ("embedded", "glue"):
        folder = tmp_path / side
        shutil.copytree(tmp_path / "raw", folder / "raw")
        sides[side] = (folder, _copy_ledger(ingest_ledger, tmp_path / f"{side}.sqlite"))

    # Lake A: the embedded transform, two worker processes.
    folder, ledger_path = sides["embedded"]
    ledger = open_ledger(ledger_path)
    embedded = Transformer(ledger=ledger, store=open_store(folder / "raw"),
                           raw_location=str(folder / "raw"), lake_dir=folder / "lake",
                           notifiers=[JsonLinesNotifier(folder / "events.jsonl")], workers=2,
                           now=emu.state.clock.now).run()
    ledger.close()

    # Lake B: the Glue job's entry point, configured the way the stack passes it (JSON).
    folder, ledger_path = sides["glue"]
    job_config = {"storage": {"lake": str(folder / "lake"), "raw": str(folder / "raw"),
                              "ledger": str(ledger_path)},
                  "notify": {"log": False, "jsonl": str(folder / "events.jsonl")}}
    argv = ["--config_json", json.dumps(job_config)]
    capsys.readouterr()
    summary = main(argv, now=emu.state.clock.now, environ={})
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == summary

    # The job spread one slice per partition, then committed each table once, however many
    # slices it took (no executors racing commits on one table).
    assert summary["tasks"] == summary["partitions"] == len(downloaded)
    assert summary["table_commits"] == len(summary["tables"])
    catalog_b = open_catalog(folder / "lake")
    for name in summary["tables"]:
        assert len(catalog_b.load_table(("amzlake", name)).metadata.snapshots) == 1, name
    per_table = {c.table: 0 for c in embedded.commits}
    for c in embedded.commits:
        per_table[c.table] += 1
    # Four vendor slices per vendor table, two Ads profiles' slices per Ads table: 14 slices,
    # 7 commits.
    assert max(per_table.values()) >= 4 and summary["table_commits"] < summary["tasks"]
    assert summary["errors"] == [] and summary["still_pending"] == 0
    assert [q["raw_key"] for q in summary["quarantined"]] == [bad_key]
    assert summary["slices_curated"] == len(downloaded) - 1
    assert summary["rows_committed"] == sum(c.rows_added for c in embedded.commits) > 0
    assert summary["tables"] == sorted({c.table for c in embedded.commits})

    # The same tables with the same rows (lineage columns included).
    lake_a, lake_b = _tables(tmp_path / "embedded" / "lake"), _tables(tmp_path / "glue" / "lake")
    assert set(lake_b) == set(lake_a) and len(lake_b) >= 5
    for name in lake_a:
        assert len(lake_b[name]) == len(lake_a[name]) > 0, name
        assert lake_b[name] == lake_a[name], name

    # The same ledger: every slice curated with its row count, the broken one quarantined.
    view_a, view_b = _ledger_view(sides["embedded"][1]), _ledger_view(sides["glue"][1])
    assert view_b == view_a
    assert view_b[victim][:2] == (SliceState.FAILED, FailureClass.RETRYABLE)
    assert view_b[victim][2].startswith("quarantined: ")
    assert all(v[0] is SliceState.CURATED and v[3] for k, v in view_b.items() if k != victim)

    # The same notifications, and one quarantine record beside each raw zone.
    assert _events(tmp_path / "glue" / "events.jsonl") == _events(
        tmp_path / "embedded" / "events.jsonl")
    for side in ("embedded", "glue"):
        records = list(open_store(tmp_path / side / "raw").list(f"{QUARANTINE_PREFIX}/"))
        assert len(records) == 1, side

    # Run again: nothing pending, nothing committed, the same tables.
    again = main(argv, now=emu.state.clock.now, environ={})
    assert again["tasks"] == 0 and again["rows_committed"] == 0
    assert _tables(tmp_path / "glue" / "lake") == lake_b


def test_job_arguments_locally_and_the_glue_catalog_they_name() -> None:
    args = parse_args(["--config", "s3://cfg/amzlake.toml", "--warehouse", "s3://curated/wh",
                       "--catalog_properties", '{"glue.id": "123456789012"}', "--partitions", "8"],
                      on_glue=False)
    assert args == JobArgs(config="s3://cfg/amzlake.toml", warehouse="s3://curated/wh",
                           catalog_properties='{"glue.id": "123456789012"}', partitions=8)
    assert dict(catalog_overrides(args)) == {"type": "glue", "warehouse": "s3://curated/wh",
                                             "glue.id": "123456789012"}
    assert catalog_overrides(JobArgs()) == ()  # no warehouse: the config's own lake
    with pytest.raises(ConfigError, match="--warehouse 'curated/wh': must be s3://"):
        catalog_overrides(JobArgs(warehouse="curated/wh"))
    with pytest.raises(ConfigError, match="--partitions must be 0"):
        parse_args(["--partitions", "-1"], on_glue=False)
