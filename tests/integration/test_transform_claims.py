"""Two transformers on one lake (`amzlake run` beside `amzlake transform --watch`): each slice
is curated once and notified once."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

from amzlake.ingest.states import SliceState
from amzlake.lake.catalog import open_catalog
from amzlake.notify import JsonLinesNotifier
from amzlake.storage.ledger import open_ledger
from amzlake.storage.objects import open_store
from amzlake.transform.curate import Transformer, TransformResult
from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import emulator_config, run_once

REPORTS = {
    "ads": {"reports": [{"report_type": "spCampaigns"}, {"report_type": "sbCampaigns"}]},
    "vendor": {"reports": [{"report_type": "GET_VENDOR_SALES_REPORT"}]},
}


def test_two_transformers_at_once_curate_and_notify_each_slice_once(
        make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator(token_lifetime=10**7)
    ledger_path = tmp_path / "ledger.sqlite"
    config, env = emulator_config(emu, tmp_path, storage={"raw": str(tmp_path / "raw"),
                                                          "ledger": str(ledger_path)}, **REPORTS)
    result, ingestion, _ = run_once(emu, config, env)
    ingestion.ledger.close()
    assert not result.failed
    ledger = open_ledger(ledger_path)
    downloaded = {e.slice_key for e in ledger.query(states=[SliceState.DOWNLOADED])}
    ledger.close()
    assert len(downloaded) >= 4

    events = tmp_path / "events.jsonl"
    results: list[TransformResult] = []
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def transform() -> None:
        own = open_ledger(ledger_path)  # each process has its own connection
        try:
            t = Transformer(ledger=own, store=open_store(tmp_path / "raw"),
                            raw_location=str(tmp_path / "raw"), lake_dir=tmp_path / "lake",
                            notifiers=[JsonLinesNotifier(events)], workers=1,
                            now=emu.state.clock.now)
            start.wait()
            results.append(t.run())
        except BaseException as e:  # reported by the assertion below
            errors.append(e)
        finally:
            own.close()

    threads = [threading.Thread(target=transform) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=600)
    assert not errors, errors

    curated = Counter(o.slice_key for r in results for o in r.outcomes)
    assert set(curated) == downloaded and set(curated.values()) == {1}
    sent = Counter((e["slice_key"], e["table"]) for e in map(json.loads,
                                                             events.read_text().splitlines()))
    assert set(sent.values()) == {1} and {k for k, _ in sent} == downloaded
    ledger = open_ledger(ledger_path)
    assert {e.slice_key for e in ledger.query(states=[SliceState.CURATED])} == downloaded
    assert all(e.lease_owner is None for e in ledger.query())
    ledger.close()
    # Every row once: the tables hold what the commits say they added.
    catalog = open_catalog(tmp_path / "lake")
    added = Counter()
    for r in results:
        for c in r.commits:
            added[c.table] += c.rows_added
    for table, rows in added.items():
        assert catalog.load_table(("amzlake", table)).scan().to_arrow().num_rows == rows, table
