"""Crash and resume: `amzlake run` killed with SIGKILL at random points, then run to the end.

The invariants: never a second report for a slice that has a live one (the emulator's create
counters); the raw zone ends up exactly as one uninterrupted run leaves it: one verified document
per slice, byte-identical to what the emulator served, and nothing else; and the curated tables hold
each slice's rows exactly once.
"""

from __future__ import annotations

import hashlib
import os
import random
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest

from amzlake.ingest.states import SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.storage.ledger import open_ledger
from amzlake.storage.objects import open_store
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import write_config_files

LONG_TOKENS = 10**7  # see test_ingest_run.py


def _run(config: Path, folder: Path) -> subprocess.Popen[bytes]:
    log = (folder / "runs.log").open("ab")
    return subprocess.Popen([sys.executable, "-m", "amzlake", "run", "--config", str(config)],
                            cwd=folder, stdout=log, stderr=log, env={**os.environ, "COLUMNS": "120"})


@pytest.mark.parametrize("seed", [11, 12])
def test_kill_9_anywhere_then_resume(make_emulator, tmp_path: Path, seed: int) -> None:
    emu: RunningEmulator = make_emulator(
        token_lifetime=LONG_TOKENS,
        # Reports stay live through every kill and the lease lapse (hours of processing, as
        # Amazon's sometimes take): Ads re-attaches through its 425 answer, which names only a
        # report still being made.
        delays={"ads_queue": 60, "ads_processing": 6 * 3600, "spapi_queue": 60,
                "spapi_processing": 6 * 3600, "sigma": 0.2},
    )
    config = write_config_files(emu, tmp_path)
    rng = random.Random(seed)
    for _ in range(6):
        proc = _run(config, tmp_path)
        time.sleep(rng.uniform(0.3, 2.0))
        proc.kill()
        proc.wait()
    # A killed run's leases lapse after 15 virtual minutes.
    emu.client.post("/_emulator/clock/advance", params={"seconds": 16 * 60})
    final = _run(config, tmp_path)
    assert final.wait(timeout=300) == 0, (tmp_path / "runs.log").read_text()[-3000:]

    calls = emu.client.get("/_emulator/calls").json()
    assert calls["duplicate_creates"] == 0, [c["key"] for c in calls["creates"] if c["count"] > 1]
    ledger = open_ledger(tmp_path / "lake" / "ledger.sqlite")
    store = open_store(tmp_path / "lake" / "raw")
    try:
        entries = ledger.query()
        assert entries and {e.state for e in entries} <= {SliceState.CURATED, SliceState.EMPTY}
        assert calls["distinct_requests"] == len(entries)
        recorded = {r.key for e in entries for r in e.raw_objects}
        stored = {info.key for info in store.list()}
        assert stored == recorded  # no orphan, no partial file, nothing missing
        for e in entries:
            (raw,) = e.raw_objects
            job = emu.state.jobs.find("ads" if e.source == "ads" else "spapi", e.remote_report_id)
            with store.open_read(raw.key) as f:
                assert hashlib.sha256(f.read()).hexdigest() == raw.sha256 == job.document.sha256
        # The lake too: every slice's rows exactly once, whatever the kills interrupted.
        catalog = open_catalog(tmp_path / "lake")
        in_lake: Counter[str] = Counter()
        for ident in catalog.list_tables("amzlake"):
            keys = catalog.load_table(ident).scan(selected_fields=("slice_key",)).to_arrow()
            in_lake.update(keys.column("slice_key").to_pylist())
        assert in_lake == Counter({e.slice_key: e.row_count for e in entries if e.row_count})
    finally:
        ledger.close()
