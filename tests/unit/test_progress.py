"""Run progress: slices by state, calls, 429s and waits; live on a terminal, log lines otherwise."""

from __future__ import annotations

import dataclasses
import io
import logging
from datetime import UTC, date, datetime

import pytest
from rich.console import Console

from amzlake.ingest.states import SliceState
from amzlake.progress import RunProgress, describe_stats
from amzlake.slices import Account, Slice, Source, VendorReportSpec
from amzlake.storage.ledger import LedgerEntry, planned_entry

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)
ACCOUNT = Account(Source.VENDOR, "A1VENDOR", "NA", "ATVPDKIKX0DER", "US", "USD", "America/Los_Angeles")
STATS = {"calls": 120.0, "retries": 3.0, "throttled": 2.0, "server_errors": 1.0,
         "rate_wait": 95.4, "backoff_wait": 4.0}


def _entries(n: int) -> list[LedgerEntry]:
    spec = VendorReportSpec.of("GET_VENDOR_SALES_REPORT", {"reportPeriod": "DAY"})
    return [planned_entry(Slice(ACCOUNT, spec, date(2026, 11, d), date(2026, 11, d)), NOW)
            for d in range(1, n + 1)]


def test_stats_read_as_counts_and_seconds() -> None:
    assert describe_stats(STATS) == ("calls 120, retries 3, 429s 2, 5xx 1, "
                                     "rate-limit wait 95 s, backoff 4 s")
    assert describe_stats({}) == ""


def test_plain_mode_logs_final_states_and_a_summary_now_and_then(
        caplog: pytest.LogCaptureFixture) -> None:
    clock = [0.0]
    progress = RunProgress(stats=lambda: STATS, live=False, summary_every=30.0,
                           monotonic=lambda: clock[0])
    entries = _entries(3)
    with caplog.at_level(logging.INFO, logger="amzlake.run"):
        progress.start(entries)
        progress(dataclasses.replace(entries[0], state=SliceState.REQUESTED))  # not final: quiet
        clock[0] = 31.0
        progress(dataclasses.replace(entries[0], state=SliceState.DOWNLOADED))
        clock[0] = 40.0  # within 30 s of the last summary: no second one
        progress(dataclasses.replace(entries[1], state=SliceState.FAILED, error="HTTP 503"))
        progress.stop()
    lines = [r.getMessage() for r in caplog.records]
    assert lines[0] == "run: 3 slices to work"
    assert lines[1].startswith("downloaded vendor GET_VENDOR_SALES_REPORT 2026-11-01..2026-11-01")
    assert lines[2] == ("run: 3 slices: planned 2, downloaded 1; calls 120, retries 3, 429s 2, "
                        "5xx 1, rate-limit wait 95 s, backoff 4 s")
    assert lines[3].endswith(": HTTP 503") and lines[3].startswith("failed ")
    assert lines[4].startswith("run: 3 slices: planned 1, downloaded 1, failed 1;")
    assert len(lines) == 5


def test_the_live_table_shows_states_and_current_waits() -> None:
    out = io.StringIO()
    stats = dict(STATS)
    progress = RunProgress(stats=lambda: stats, live=True,
                           console=Console(file=out, force_terminal=True, width=120))
    entries = _entries(2)
    progress.start(entries)
    progress(dataclasses.replace(entries[0], state=SliceState.PROCESSING))
    stats["throttled"] = 7.0  # a 429 storm while no slice moves
    progress.stop()
    text = out.getvalue()
    assert "amzlake run: 2 slices" in text and "processing" in text
    assert "429s 7" in text and "rate-limit wait 95 s" in text
