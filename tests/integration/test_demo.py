"""`amzlake demo`: the whole pipeline on embedded defaults; run twice, the same tables."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from rich.console import Console

from amzlake.config import load_config
from amzlake.demo import run_demo
from amzlake.lake.query import open_config_duckdb

# Mid-morning in Europe, night in the Americas: two runs an hour of virtual time apart stay on the
# same day in every demo time zone.
START = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def _tables(folder: Path) -> dict[str, tuple[int, object]]:
    con = open_config_duckdb(load_config(folder / "amzlake.toml"))
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW'").fetchall()]
    out = {}
    for name in names:
        if name.startswith("v_"):
            continue
        rows, days = con.execute(
            f'SELECT count(*), list(DISTINCT report_date ORDER BY report_date) FROM "{name}"'
        ).fetchone()
        out[name] = (rows, days)
    return out


def test_demo_runs_the_whole_pipeline_and_a_second_run_keeps_the_tables(tmp_path: Path) -> None:
    folder = tmp_path / "amzlake-demo"
    quiet = Console(quiet=True)
    first = run_demo(folder, console=quiet, live=False, now=START)
    assert not first.result.failed and first.job.quarantined == 0
    assert {t.table for t in first.tables} >= {"ads_sp_campaigns_daily", "vendor_sales_by_asin"}
    assert len(first.tables) >= 30 and all(t.rows > 0 for t in first.tables)
    assert len(first.tacos) == 7 and all(0 < row[-1] < 1 for row in first.tacos)
    assert (folder / "secrets.toml").stat().st_mode & 0o077 == 0
    before = _tables(folder)

    second = run_demo(folder, console=quiet, live=False, now=START)
    assert not second.result.failed
    after = _tables(folder)
    # Real-time reports are refreshed within the day; every other table is just as it was.
    steady = {t for t in before if not t.startswith("vendor_real_time")}
    assert {t: after[t] for t in steady} == {t: before[t] for t in steady}
    assert second.tacos == first.tacos
