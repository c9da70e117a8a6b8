"""`amzlake run` / `status` / `backfill` as a user meets them: one line per error, exit codes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.conftest import RunningEmulator
from tests.integration.ingest_helpers import write_config_files


def amzlake(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "amzlake", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env={**os.environ, "COLUMNS": "200", **(env or {})})


def test_no_config_is_exit_2_in_one_line(tmp_path: Path) -> None:
    r = amzlake("run", cwd=tmp_path, env={"AMZLAKE_CONFIG": ""})
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("amzlake: error:") and "amzlake.toml" in line


def test_bad_config_names_the_field(tmp_path: Path) -> None:
    (tmp_path / "amzlake.toml").write_text('[run]\nconcurrency = "many"\n')
    r = amzlake("status", cwd=tmp_path)
    assert r.returncode == 2
    (line,) = r.stderr.strip().splitlines()
    assert "run.concurrency" in line and "many" in line


def test_readable_credentials_file_is_refused(make_emulator, tmp_path: Path) -> None:
    emu: RunningEmulator = make_emulator()
    write_config_files(emu, tmp_path)
    (tmp_path / "secrets.toml").chmod(0o644)
    r = amzlake("run", cwd=tmp_path)
    assert r.returncode == 3
    assert "chmod 600" in r.stderr
    secrets = (tmp_path / "secrets.toml").read_text()
    for line in secrets.splitlines():
        assert line.split('"')[1] not in r.stderr + r.stdout


def test_run_then_status_then_backfill(make_emulator, tmp_path: Path) -> None:
    # A slower clock than the tests' default: five commands in a row (and the run's maintenance)
    # on a loaded machine must not carry the virtual clock across a day, or the backfill would
    # also plan that day's restatements.
    emu: RunningEmulator = make_emulator(token_lifetime=10**7, time_scale=60.0)
    write_config_files(emu, tmp_path)
    r = amzlake("run", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    outcome = json.loads(r.stdout)
    assert outcome["exit_code"] == 0 and outcome["counts"] == {"downloaded": outcome["planned"]}
    assert outcome["transform"]["slices_curated"] == outcome["planned"]
    assert "ads_sp_campaigns_daily" in outcome["transform"]["tables"]
    r = amzlake("query", "select count(*) as n from ads_sp_campaigns_daily", "--format", "json",
                cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)[0]["n"] > 0
    r = amzlake("transform", "--json", cwd=tmp_path)  # nothing left to curate
    assert r.returncode == 0 and json.loads(r.stdout)["slices_curated"] == 0
    status = json.loads(amzlake("status", "--json", cwd=tmp_path).stdout)
    assert {s["report_type"] for s in status} == {
        "spCampaigns", "spAdvertisedProduct", "GET_VENDOR_SALES_REPORT", "GET_VENDOR_TRAFFIC_REPORT"}
    assert all(s["pending"] == 0 and not s["failures"] for s in status)
    r = amzlake("backfill", "--from", "2026-09-01", "--to", "2026-09-30", "--json", cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-2000:]
    backfilled = json.loads(r.stdout)
    assert backfilled["reasons"] == {"backfill": backfilled["planned"]} and backfilled["planned"] > 0
    r = amzlake("backfill", "--from", "2026-09-30", "--to", "2026-09-01", cwd=tmp_path)
    assert r.returncode == 2 and "before --from" in r.stderr
