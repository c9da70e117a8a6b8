"""A no-data answer's clear task: what it removes, and a clear error where it cannot."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path

from amzlake.transform.curate import CurateTask, curate
from amzlake.transform.model import SliceContext
from amzlake.transform.parse import cleared_tables

NOW = datetime(2026, 11, 20, 15, tzinfo=UTC)


def _context(source: str, report_type: str, spec: dict) -> SliceContext:
    return SliceContext(source=source, account_id="A1", report_type=report_type, spec=spec,
                        start=date(2026, 11, 1), end=date(2026, 11, 3), slice_key="k",
                        remote_report_id=None, raw_key="", fetched_at=NOW,
                        marketplace_id="ATVPDKIKX0DER")


def test_a_clear_covers_every_table_of_the_slice_over_its_days() -> None:
    rows = cleared_tables(_context("vendor", "GET_VENDOR_SALES_REPORT", {"reportPeriod": "DAY"}))
    assert {r.table for r in rows} >= {"vendor_sales_by_asin"} and len(rows) >= 2
    assert {(r.footprint.first_day, r.footprint.last_day) for r in rows} == {
        (date(2026, 11, 1), date(2026, 11, 3))}
    assert all(list(r.batches) == [] for r in rows)
    ads = cleared_tables(_context("ads", "spCampaigns", {"reportTypeId": "spCampaigns",
                                                         "timeUnit": "DAILY"}))
    assert [r.table for r in ads] == ["ads_sp_campaigns_daily"]


def test_a_clear_for_an_unknown_report_type_is_quarantined_not_raised(tmp_path: Path) -> None:
    task = CurateTask(_context("vendor", "GET_NOPE", {}), str(tmp_path / "raw"),
                      str(tmp_path / "lake"), clear=True)
    outcome = curate(task)
    assert outcome.commits == ()
    assert outcome.quarantined is not None and "unknown vendor report type 'GET_NOPE'" in outcome.quarantined
