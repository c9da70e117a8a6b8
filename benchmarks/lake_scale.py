"""The curated lake at a real account's scale and age (not a test): prints its figures.

Usage: ./uvw run python benchmarks/lake_scale.py [--profiles 50] [--history-days 400]
       [--daily-runs 30] [--repeat 7] [--dir PATH]

The scenario, on the emulator's virtual clock (the emulator runs in this process; every amzlake
step is the real command in a child process, `amzlake run`, `backfill`, `transform`, `maintain`,
`query`, reading the emulator's clock):
1. age:   --profiles Ads profiles (NA, EU, FE) and 2 vendor accounts. Vendor history by
          `amzlake backfill` over --history-days. Ads keeps 60 to 95 days, so older Ads days are
          fed to the transform as the daily runs would have left them: the emulator's documents
          for those days, in the raw zone with their ledger rows, then `amzlake transform`; the
          days Amazon still keeps come through `amzlake backfill`.
2. daily: --daily-runs runs of `amzlake run`, each one virtual day later (06:00 UTC), with the
          planner's restatements (each day re-pulled 1, 2, 3, 7, 14, ... days after it); each
          run ends with its once-a-day maintenance.
3. maintain: `amzlake maintain`.
After each phase it prints, per table, the live data files and bytes, the most files any
(account, month) holds, the snapshots, and the files and bytes on disk. Then it times, each in a
fresh process, median of --repeat: (a) `amzlake query "select 1"` beside a bare DuckDB `select 1`
in Python, (b) a 30-day v_ads_daily query, (c) a 30-day per-ASIN query (v_tacos_daily_asin), on
this lake (full history) and on a second lake holding only the last 30 days (`amzlake backfill`
of 30 days), side by side.

Ads reports: the day-one views' sources (SP, SB, SD campaigns; SP and SD advertised products),
so that a run of 50 profiles stays minutes, not hours; vendor: the default set.

Issue 10's targets, checked at the end: the 30-day queries at full history within 1.5x of the
same at 30 days of history; `select 1` within 1.2x of DuckDB's own; storage on disk at most 1.5x
the live data's bytes after maintenance.
"""

from __future__ import annotations

import argparse
import asyncio
import gzip
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from amzlake.catalog.ads import validate_create_request
from amzlake.emulator.ads_data import ads_document
from amzlake.emulator.faults import Scenario
from amzlake.emulator.server import EmulatorServer
from amzlake.ingest import states
from amzlake.lake.catalog import open_catalog
from amzlake.lake.datafiles import partition_of
from amzlake.lake.query import curated_tables
from amzlake.slices import Account, Slice, Source, raw_key, spec_from_normalised
from amzlake.sources.ads import report_request
from amzlake.storage.ledger import RawObject, open_ledger
from amzlake.storage.objects import open_store

ADS_REPORTS = ("spCampaigns", "sbCampaigns", "sdCampaigns", "spAdvertisedProduct",
               "sdAdvertisedProduct")
START = datetime(2026, 6, 1, 6, 0, tzinfo=UTC)  # the virtual day the daily runs start
SLICE_DAYS = 31  # Ads' widest slice


def write_config(folder: Path, base_url: str, creds: dict[str, Any]) -> tuple[Path, dict[str, str]]:
    """amzlake.toml for the emulator (secrets as env references) and the environment for them."""
    folder.mkdir(parents=True, exist_ok=True)
    env = {"LWA_SECRET": creds["lwa"]["client_secret"], "ADS_TOKEN": creds["ads"]["refresh_token"]}
    vendors = []
    for i, v in enumerate(creds["vendor"]):
        env[f"VENDOR_{i}"] = v["refresh_token"]
        vendors.append(f"""
[[vendor.accounts]]
selling_partner_id = "{v["selling_partner_id"]}"
region = "{v["region"]}"
marketplace_id = "{v["marketplace_id"]}"
refresh_token = "env:VENDOR_{i}"
""")
    reports = "\n".join(f'[[ads.reports]]\nreport_type = "{r}"\n' for r in ADS_REPORTS)
    path = folder / "amzlake.toml"
    path.write_text(f"""\
[lwa.default]
client_id = "{creds["lwa"]["client_id"]}"
client_secret = "env:LWA_SECRET"

[ads]
refresh_token = "env:ADS_TOKEN"

{reports}
[vendor]
enabled = true
{"".join(vendors)}
[storage]
lake = "lake"

[run]
poll_initial = "5s"
poll_max = "1m"
concurrency = 64

[transform]
workers = 2
quiet_period = "10m"

[notify]
log = false

[endpoints]
base_url = "{base_url}"
""")
    return path, env


class Lake:
    """One lake folder and the amzlake commands run on it."""

    def __init__(self, folder: Path, config: Path, env: dict[str, str]) -> None:
        self.folder = folder
        self.config = config
        self.env = {**os.environ, **env, "COLUMNS": "200"}

    def amzlake(self, *args: str, check: bool = True) -> tuple[float, str]:
        """Run `amzlake ARGS` in a child process: (wall seconds, stdout)."""
        t0 = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "amzlake", *args, "--config",
                               str(self.config)], cwd=self.folder, env=self.env,
                              capture_output=True, text=True)
        took = time.perf_counter() - t0
        if check and done.returncode not in (0, 1):
            raise RuntimeError(f"amzlake {' '.join(args)} exited {done.returncode}: "
                               f"{done.stderr[-2000:]}")
        return took, done.stdout

    def query_seconds(self, sql: str, repeat: int) -> float:
        """Median wall time of `amzlake query SQL --format csv` in fresh processes."""
        return statistics.median(
            self.amzlake("query", sql, "--format", "csv")[0] for _ in range(repeat))


def bare_duckdb_seconds(repeat: int) -> float:
    """Median wall time of `select 1` in a fresh Python process with DuckDB alone."""
    code = "import duckdb; duckdb.sql('select 1').fetchall()"
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


# ---- Aging Ads beyond Amazon's retention ---------------------------------------------------------


def synthesize_ads_history(lake: Lake, server: EmulatorServer, first: date, last: date) -> int:
    """Ads documents for `first`..`last` in the raw zone with downloaded ledger rows, as the daily
    runs would have left them (one per profile, report and 31-day window); their count."""
    ledger = open_ledger(lake.folder / "lake" / "ledger.sqlite")
    store = open_store(lake.folder / "lake" / "raw")
    world = server.state.world
    now = server.state.clock.now()
    seen: set[tuple[str, str]] = set()
    templates = []
    for e in ledger.query(source="ads"):
        if (e.account_id, e.report_type) not in seen:
            seen.add((e.account_id, e.report_type))
            templates.append(e)
    written = 0
    for e in templates:
        account = Account(Source.ADS, e.account_id, e.account["region"], e.account["marketplace_id"],
                          e.account["country_code"], e.account["currency_code"],
                          e.account["timezone"])
        spec = spec_from_normalised("ads", e.spec)
        profile = world.profile(int(e.account_id))
        start = first
        while start <= last:
            end = min(last, start + timedelta(days=SLICE_DAYS - 1))
            s = Slice(account, spec, start, end)
            # Validated as on the day after the window: Amazon no longer keeps these days, the
            # generator still makes them (as settled, at `now`).
            request = validate_create_request(report_request(spec, start, end),
                                              end + timedelta(days=1))
            plan = ads_document(world, profile, request, as_of=now)
            body = gzip.compress(b"".join(plan.chunks), 1)
            key = raw_key(s, now)

            async def put(data: bytes = body, where: str = key) -> None:
                async def chunks():  # type: ignore[no-untyped-def]
                    yield data

                await store.put_stream(where, chunks())

            asyncio.run(put())
            (entry,) = ledger.plan([s], now)
            entry = ledger.update(entry, states.mark_requested(entry, f"history-{s.key}", now))
            entry = ledger.update(entry, states.mark_processing(entry, now))
            raw = RawObject(key, hashlib.sha256(body).hexdigest(), len(body), now)
            ledger.update(entry, states.mark_downloaded(entry, raw, None, now))
            written += 1
            start = end + timedelta(days=1)
    ledger.close()
    return written


# ---- What the lake looks like ---------------------------------------------------------------------


def lake_figures(lake: Lake) -> dict[str, Any]:
    """Per table: live files, live bytes, most files in one (account, month), snapshots; and the
    warehouse's files and bytes on disk."""
    catalog = open_catalog(lake.folder / "lake")
    tables = {}
    for name in curated_tables(catalog):
        table = catalog.load_table(("amzlake", name))
        files = [t.file for t in table.scan().plan_files()] if table.current_snapshot() else []
        per_partition: dict[object, int] = defaultdict(int)
        for f in files:
            per_partition[partition_of(table, f)] += 1
        tables[name] = {"files": len(files),
                        "bytes": sum(f.file_size_in_bytes for f in files),
                        "rows": sum(f.record_count for f in files),
                        "max_per_partition": max(per_partition.values(), default=0),
                        "partitions": len(per_partition),
                        "snapshots": len(table.metadata.snapshots)}
    disk_files = disk_bytes = 0
    for root, _, names in os.walk(lake.folder / "lake" / "warehouse"):
        for n in names:
            disk_files += 1
            disk_bytes += os.path.getsize(os.path.join(root, n))
    return {"tables": tables, "disk_files": disk_files, "disk_bytes": disk_bytes,
            "live_files": sum(t["files"] for t in tables.values()),
            "live_bytes": sum(t["bytes"] for t in tables.values())}


def print_figures(phase: str, fig: dict[str, Any]) -> None:
    print(f"\n== {phase}")
    print(f"  {'table':42} {'files':>6} {'MB':>8} {'rows':>10} {'max/part':>8} {'snaps':>6}")
    for name, t in sorted(fig["tables"].items()):
        print(f"  {name:42} {t['files']:6} {t['bytes'] / 1e6:8.2f} {t['rows']:10} "
              f"{t['max_per_partition']:8} {t['snapshots']:6}")
    ratio = fig["disk_bytes"] / max(1, fig["live_bytes"])
    print(f"  live: {fig['live_files']} files, {fig['live_bytes'] / 1e6:.1f} MB; on disk: "
          f"{fig['disk_files']} files, {fig['disk_bytes'] / 1e6:.1f} MB ({ratio:.2f}x live)")


def queries(today: date) -> dict[str, str]:
    """The timed queries, over the 30 days before `today`."""
    since = (today - timedelta(days=30)).isoformat()
    return {
        "select 1": "select 1",
        "v_ads_daily, 30 days": (
            "select report_date, currency, sum(impressions) impressions, sum(clicks) clicks, "
            f"sum(cost) cost, sum(sales) sales from v_ads_daily where report_date >= DATE '{since}' "
            "group by all order by 1, 2"),
        "per ASIN, 30 days": (
            "select asin, currency, sum(ad_spend) ad_spend, sum(shipped_revenue) revenue "
            f"from v_tacos_daily_asin where report_date >= DATE '{since}' group by all "
            "order by ad_spend desc"),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--profiles", type=int, default=50)
    p.add_argument("--history-days", type=int, default=400)
    p.add_argument("--daily-runs", type=int, default=30)
    p.add_argument("--repeat", type=int, default=7)
    p.add_argument("--dir", type=Path, default=None, help="keep the lakes here (default: a temp dir)")
    args = p.parse_args()
    base = args.dir or Path(tempfile.mkdtemp(prefix="amzlake-lake-scale-"))
    history_start = (START - timedelta(days=args.history_days)).date()
    scenario = Scenario(seed=5, profiles=args.profiles, time_scale=300.0, now=START,
                        token_lifetime=10**7,
                        delays={"ads_queue": 2, "ads_processing": 5, "spapi_queue": 2,
                                "spapi_processing": 5, "sigma": 0.3})
    print(f"lake_scale: {args.profiles} Ads profiles, 2 vendor accounts, {args.history_days} days "
          f"of history, {args.daily_runs} daily runs; folders under {base}")
    t_all = time.perf_counter()
    with EmulatorServer(scenario) as server:
        creds = server.state.world.credentials()
        config, env = write_config(base / "full", server.base_url, creds)
        full = Lake(base / "full", config, env)
        clock = server.state.clock

        # 1. Age the lake.
        t0 = time.perf_counter()
        yesterday = (clock.now() - timedelta(days=1)).date()
        took, out = full.amzlake("backfill", "--from", history_start.isoformat(), "--to",
                                 yesterday.isoformat(), "--json")
        planned = json.loads(out)["planned"]
        print(f"backfill {history_start}..{yesterday}: {planned} slices in {took:.0f} s")
        ledger = open_ledger(full.folder / "lake" / "ledger.sqlite")
        kept_from = min(e.start for e in ledger.query(source="ads"))
        ledger.close()
        fed = synthesize_ads_history(full, server, history_start,
                                     kept_from - timedelta(days=1))
        took, _ = full.amzlake("transform", "--json")
        print(f"Ads history {history_start}..{kept_from - timedelta(days=1)}: {fed} documents "
              f"fed to `amzlake transform` in {took:.0f} s; aging took "
              f"{time.perf_counter() - t0:.0f} s")
        aged = lake_figures(full)
        print_figures(f"aged: {args.history_days} days of history", aged)

        # 2. Daily runs, one virtual day apart, each with its restatements and maintenance.
        run_times = []
        for i in range(args.daily_runs):
            now = clock.now()
            target = datetime.combine(now.date() + timedelta(days=1), START.timetz())
            clock.advance((target - now).total_seconds())
            took, out = full.amzlake("run", "--json")
            outcome = json.loads(out)
            run_times.append(took)
            maint = outcome.get("maintenance") or []
            print(f"  day {i + 1:2} ({target.date()}): {outcome['planned']} slices "
                  f"{dict(outcome['reasons'])}, exit {outcome['exit_code']}, {took:.0f} s; "
                  f"maintained {len(maint)} tables")
        daily = lake_figures(full)
        print_figures(f"after {args.daily_runs} daily runs (each with its maintenance)", daily)

        # 3. Maintenance.
        took, out = full.amzlake("maintain", "--json")
        maintained = lake_figures(full)
        print_figures(f"after `amzlake maintain` ({took:.0f} s)", maintained)

        # A lake of the same profiles holding only the last 30 days, for the query comparison.
        config30, _ = write_config(base / "recent", server.base_url, creds)
        recent = Lake(base / "recent", config30, env)
        today = clock.now().date()
        recent.amzlake("backfill", "--from", (today - timedelta(days=30)).isoformat(),
                       "--to", (today - timedelta(days=1)).isoformat(), "--json")
        recent_fig = lake_figures(recent)

    # Query times, in fresh processes, side by side.
    print(f"\n== queries (median of {args.repeat} fresh processes)")
    bare = bare_duckdb_seconds(args.repeat)
    print(f"  bare DuckDB select 1 (python -c): {bare:.3f} s")
    print(f"  {'query':24} {'30 days of history':>20} {'full history':>14} {'ratio':>7}")
    ratios = {}
    for name, sql in queries(today).items():
        a = recent.query_seconds(sql, args.repeat)
        b = full.query_seconds(sql, args.repeat)
        ratios[name] = b / a
        print(f"  {name:24} {a:18.3f} s {b:12.3f} s {b / a:7.2f}")
    select1 = full.query_seconds("select 1", args.repeat)
    print(f"  history: {recent_fig['live_files']} live files (30 days) vs "
          f"{maintained['live_files']} (full)")

    storage = maintained["disk_bytes"] / max(1, maintained["live_bytes"])
    worst_partition = max(t["max_per_partition"] for t in maintained["tables"].values())
    print("\n== targets")
    print(f"  30-day queries at full history vs 30 days: "
          f"{ratios['v_ads_daily, 30 days']:.2f}x, {ratios['per ASIN, 30 days']:.2f}x "
          f"(target <= 1.5x)")
    print(f"  select 1 vs bare DuckDB: {select1 / bare:.2f}x (target <= 1.2x)")
    print(f"  storage after maintenance: {storage:.2f}x live bytes (target <= 1.5x)")
    print(f"  most live files in one (table, account, month): {worst_partition} (target <= 2)")
    print(f"  daily run: median {statistics.median(run_times):.0f} s, max {max(run_times):.0f} s; "
          f"whole benchmark {time.perf_counter() - t_all:.0f} s")


if __name__ == "__main__":
    main()
