"""`amzlake demo`: the whole pipeline on embedded defaults, against the bundled emulator.

Everything it makes stays under one folder (`./amzlake-demo` by default): the config it writes,
an owner-only credentials file, the ledger, the raw zone and the Iceberg lake. Commands run from that folder
(`amzlake status`, ...) find its config. A realistic small company: two Ads profiles in different
time zones (US, Germany) and one US vendor account; the last 30 days of every default report.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from amzlake.config import AmzlakeConfig, load_config
from amzlake.emulator.faults import Scenario
from amzlake.emulator.server import EmulatorServer
from amzlake.ingest.pipeline import Ingestion
from amzlake.ingest.runner import RunResult
from amzlake.job import JobResult, run_job
from amzlake.lake.query import open_config_duckdb
from amzlake.progress import RunProgress
from amzlake.storage.ledger import LedgerSummary

DEMO_SEED = 42
# Fast enough that a report's minutes of processing pass in a blink, slow enough that the
# emulator's five-minute document links outlive a busy machine's pauses.
DEMO_TIME_SCALE = 300.0
LOOKBACK_DAYS = 30


@dataclass(frozen=True)
class TableCoverage:
    """One curated table: its rows and the days they cover."""

    table: str
    rows: int
    first_day: str | None
    last_day: str | None


@dataclass
class DemoOutcome:
    """What the demo did: the run, the lake it left, and where everything is."""

    folder: Path
    job: JobResult
    summaries: list[LedgerSummary]
    raw_objects: int
    raw_bytes: int
    tables: list[TableCoverage]
    tacos: list[tuple[Any, ...]]  # per day of the last week: day, ad spend, shipped revenue, TACoS

    @property
    def result(self) -> RunResult:
        return self.job.ingestion


def _last_ledger_time(folder: Path) -> datetime | None:
    """The newest time the demo's ledger records, if there is a ledger."""
    path = folder / "lake" / "ledger.sqlite"
    if not path.exists():
        return None
    from amzlake.storage.ledger import open_ledger

    ledger = open_ledger(path)
    try:
        return max((e.updated_at for e in ledger.query()), default=None)
    finally:
        ledger.close()


def write_demo_config(folder: Path, base_url: str, credentials: dict[str, Any]) -> Path:
    """amzlake.toml and secrets.toml (mode 600) for the emulator at `base_url`."""
    folder.mkdir(parents=True, exist_ok=True)
    vendor = next(v for v in credentials["vendor"] if v["country_code"] == "US")
    secrets = folder / "secrets.toml"
    secrets.touch(mode=0o600)
    secrets.chmod(0o600)
    secrets.write_text(
        "# Demo credentials of the bundled emulator (not Amazon's).\n"
        f'lwa_client_secret = "{credentials["lwa"]["client_secret"]}"\n'
        f'ads_refresh_token = "{credentials["ads"]["refresh_token"]}"\n'
        f'vendor_refresh_token = "{vendor["refresh_token"]}"\n'
    )
    config = folder / "amzlake.toml"
    config.write_text(f"""\
# Written by `amzlake demo`: the bundled emulator stands in for Amazon (see [endpoints]).
[lwa.default]
client_id = "{credentials["lwa"]["client_id"]}"
client_secret = "file:secrets.toml#lwa_client_secret"

[ads]
refresh_token = "file:secrets.toml#ads_refresh_token"
countries = ["US", "DE"]
lookback_days = {LOOKBACK_DAYS}

[vendor]
enabled = true
lookback_days = {LOOKBACK_DAYS}

[[vendor.accounts]]
selling_partner_id = "{vendor["selling_partner_id"]}"
region = "{vendor["region"]}"
marketplace_id = "{vendor["marketplace_id"]}"
refresh_token = "file:secrets.toml#vendor_refresh_token"

[storage]
lake = "lake"

[run]
poll_initial = "20s"

[endpoints]
base_url = "{base_url}"
""")
    return config


def run_demo(folder: Path, console: Console | None = None, live: bool | None = None,
             now: datetime | None = None) -> DemoOutcome:
    """Start the emulator, write the demo config, run the pipeline, and return what happened.

    `now` (default: the real time) is where the emulator's clock starts on a first run.
    """
    console = console or Console(stderr=True, highlight=False)
    now = now or datetime.now(UTC)
    # The emulator's clock runs fast: start it where the last demo run's clock stopped (or now),
    # so the demo's ledger never holds times from the emulator's future.
    start = max(now, _last_ledger_time(folder) or now)
    scenario = Scenario(seed=DEMO_SEED, time_scale=DEMO_TIME_SCALE, token_lifetime=10**7,
                        now=start)
    with EmulatorServer(scenario) as server:
        config_path = write_demo_config(folder, server.base_url, server.state.world.credentials())
        config = load_config(config_path)
        console.print(f"emulator at {server.base_url}; demo folder {folder}")

        async def go() -> JobResult:
            ingestion = Ingestion.open(config, server.state.clock)
            progress = RunProgress(stats=ingestion.pool.stats, console=console, live=live)
            try:
                with progress:
                    return await run_job(config, server.state.clock, listener=progress,
                                         on_start=progress.start, ingestion=ingestion)
            finally:
                await ingestion.aclose()

        job = asyncio.run(go())
    from amzlake.storage.ledger import open_ledger
    from amzlake.storage.objects import open_store

    ledger = open_ledger(config.storage.ledger_location)
    try:
        summaries = ledger.summary()
    finally:
        ledger.close()
    store = open_store(config.storage.raw_location)
    sizes = [info.size for info in store.list() if not info.key.startswith("quarantine/")]
    tables, tacos = _lake_summary(config)
    return DemoOutcome(folder, job, summaries, len(sizes), sum(sizes), tables, tacos)


def _lake_summary(config: AmzlakeConfig) -> tuple[list[TableCoverage], list[tuple[Any, ...]]]:
    """Rows and days per curated table, and TACoS per day over the last week."""
    con = open_config_duckdb(config)
    names = [r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_type = 'VIEW' "
        "AND table_name NOT LIKE 'v\\_%' ESCAPE '\\' ORDER BY 1").fetchall()]
    tables = []
    for name in names:
        rows, first, last = con.execute(
            f'SELECT count(*), min(report_date), max(report_date) FROM "{name}"').fetchone()
        tables.append(TableCoverage(name, rows, first and str(first), last and str(last)))
    tacos = con.execute("""
        WITH days AS (
            SELECT report_date, sum(ad_spend) AS ad_spend, sum(shipped_revenue) AS revenue,
                   any_value(currency) AS currency
            FROM v_tacos_daily_asin GROUP BY report_date
            HAVING sum(shipped_revenue) > 0)
        SELECT report_date, ad_spend, revenue, currency, round(ad_spend / revenue, 4) AS tacos
        FROM days ORDER BY report_date DESC LIMIT 7""").fetchall()
    return tables, sorted(tacos)


def print_demo(console: Console, outcome: DemoOutcome) -> None:
    """The demo's summary: the curated tables, this run, failures, and TACoS for the last week."""
    table = Table(title="amzlake demo: curated tables")
    for col in ("table", "rows", "first day", "last day"):
        table.add_column(col, justify="right" if col == "rows" else "left")
    for t in outcome.tables:
        table.add_row(t.table, f"{t.rows:,}", t.first_day or "-", t.last_day or "-")
    console.print(table)
    counts = ", ".join(f"{k} {v}" for k, v in outcome.result.counts().items())
    console.print(f"slices this run: {counts or 'nothing new (already up to date)'}; rows "
                  f"committed {outcome.job.rows_committed:,}; raw zone: {outcome.raw_objects} "
                  f"documents, {outcome.raw_bytes / 1e6:.1f} MB gzip", markup=False)
    for r in outcome.result.failed:
        console.print(f"  failed {r.report_type} {r.account_id}: {r.error}", markup=False)
    for t in outcome.job.transforms:
        for q in t.quarantined:
            console.print(f"  quarantined {q.raw_key}: {q.quarantined}", markup=False)
    tacos = Table(title="TACoS (ad spend / shipped revenue), last week, v_tacos_daily_asin")
    for col in ("day", "ad spend", "shipped revenue", "TACoS"):
        tacos.add_column(col, justify="left" if col == "day" else "right")
    for day, spend, revenue, currency, ratio in outcome.tacos:
        tacos.add_row(str(day), f"{spend:,.2f} {currency}", f"{revenue:,.2f} {currency}",
                      f"{ratio:.1%}")
    console.print(tacos)
    console.print(f"everything is under {outcome.folder}; from there try `amzlake status` or "
                  "`amzlake query \"select * from v_ads_daily limit 10\"`", markup=False)


def demo_json(outcome: DemoOutcome) -> str:
    """The demo's outcome as JSON."""
    return json.dumps({
        "folder": str(outcome.folder),
        "counts": outcome.result.counts(),
        "raw_objects": outcome.raw_objects,
        "raw_bytes": outcome.raw_bytes,
        "report_types": sorted({s.report_type for s in outcome.summaries}),
        "failed": [{"report_type": r.report_type, "error": r.error} for r in outcome.result.failed],
        "rows_committed": outcome.job.rows_committed,
        "quarantined": outcome.job.quarantined,
        "tables": [{"table": t.table, "rows": t.rows, "first_day": t.first_day,
                    "last_day": t.last_day} for t in outcome.tables],
        "tacos_last_week": [{"day": str(d), "ad_spend": float(s), "shipped_revenue": float(r),
                             "currency": c, "tacos": float(x)} for d, s, r, c, x in outcome.tacos],
    })
