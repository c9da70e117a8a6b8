"""Scheduling: how close `amzlake run` gets to the schedule the rate limits allow, and its calls.

    ./uvw run python benchmarks/ingest_schedule.py [--only vendor|ads] [--seed 1 | --seeds 1-8]

For each source, starts `amzlake emulator` as a child process with realistic processing delays
(lognormal, minutes) on a scaled clock, then runs ingestion in this process on the emulator's
clock (as `amzlake backfill` does): N slices across several accounts, report types and ranges.

Printed per source:
- makespan (virtual seconds, run start to the last document stored) against the lower bound the
  rate limits set, computed from the delays the emulator actually drew: the k-th create of an
  account (0-based) cannot go before max(0, k - burst + 1) / rate, and its report is ready
  queue + processing seconds later, so no schedule ends before max over reports of (that slot +
  its delays). Downloads (kilobytes here) are left out, which only lowers the bound.
  Target: makespan within 1.15x of the bound.
- API calls per slice: creates, document requests, status polls; from the client's own counting,
  the HTTP layer's counters (ClientPool.stats) and the emulator's call log (GET /_emulator/calls).
  Polls per slice next to log2(report time / poll_initial): the target is logarithmic growth.
- how late the runner noticed each finished report (the poll overshoot), the critical report's
  create lag behind its slot, and 429s seen: the parts of makespan above the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import math
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from _emulator_process import EmulatorProcess  # benchmarks/ is on sys.path when run as a script
from amzlake.catalog.limits import ADS_REPORTING_LIMITS, SPAPI_REPORTS_LIMITS, RateLimit
from amzlake.emulator.client_config import emulator_config
from amzlake.ingest.pipeline import Ingestion, clock_for
from amzlake.ingest.runner import RunSettings
from amzlake.secrets import CredentialChain
from amzlake.sources.ads import AdsClient, AdsReportStatus
from amzlake.sources.spapi import SpApiClient

NOW = "2026-11-20T15:00:00Z"
# Realistic report times (virtual seconds, lognormal medians): a minute in the queue and a few
# minutes of processing, with a long tail (sigma 0.6: 5% of reports take over 2.7x the median).
DELAYS = {"ads_queue": 60.0, "ads_processing": 240.0, "spapi_queue": 60.0,
          "spapi_processing": 240.0, "sigma": 0.6}


@dataclass(frozen=True)
class Case:
    """One source's benchmark: what to pull, how fast the clock runs, which limit binds."""

    source: str  # "vendor" | "ads"
    time_scale: float
    backfill: tuple[date, date]
    sections: dict[str, Any]
    api: str  # the emulator's api name of the jobs
    create_limit: RateLimit


CASES = {
    # Two vendor accounts x three DAY reports x ~16 slices of 15 days each (about 96 slices):
    # per account about 48 creates against createReport's 0.0167/s, burst 15.
    "vendor": Case(
        "vendor", 40.0, (date(2026, 4, 1), date(2026, 11, 15)),
        {"ads": {"enabled": False},
         "vendor": {"reports": [
             {"report_type": "GET_VENDOR_SALES_REPORT", "options": {"reportPeriod": "DAY"}},
             {"report_type": "GET_VENDOR_TRAFFIC_REPORT", "options": {"reportPeriod": "DAY"}},
             {"report_type": "GET_VENDOR_INVENTORY_REPORT", "options": {"reportPeriod": "DAY"}},
         ]}},
        "spapi", SPAPI_REPORTS_LIMITS["createReport"]),
    # Three Ads profiles x the 20 default report types x one 31-day slice (60 slices).
    "ads": Case(
        "ads", 20.0, (date(2026, 10, 19), date(2026, 11, 18)),
        {"vendor": {"enabled": False}},
        "ads", ADS_REPORTING_LIMITS["createAsyncReport"]),
}


@dataclass
class PollLog:
    """Status polls per remote report id, and when each was first seen finished (virtual s)."""

    elapsed: Callable[[], float]
    polls: Counter[str] = field(default_factory=Counter)
    seen_done: dict[str, float] = field(default_factory=dict)

    def saw(self, report_id: str, terminal: bool) -> None:
        self.polls[report_id] += 1
        if terminal:
            self.seen_done.setdefault(report_id, self.elapsed())


def count_polls(log: PollLog) -> Callable[[], None]:
    """Wrap both clients' get_report to count polls per report; returns the undo."""
    spapi_get, ads_get = SpApiClient.get_report, AdsClient.get_report

    async def spapi(self: SpApiClient, report_id: str) -> Any:
        report = await spapi_get(self, report_id)
        log.saw(report_id, report.processing_status.terminal)
        return report

    async def ads(self: AdsClient, profile_id: int | str, report_id: str) -> Any:
        report = await ads_get(self, profile_id, report_id)
        log.saw(report_id, report.status in (AdsReportStatus.COMPLETED, AdsReportStatus.FAILED))
        return report

    SpApiClient.get_report = spapi  # type: ignore[method-assign]
    AdsClient.get_report = ads  # type: ignore[method-assign]

    def undo() -> None:
        SpApiClient.get_report = spapi_get  # type: ignore[method-assign]
        AdsClient.get_report = ads_get  # type: ignore[method-assign]

    return undo


def lower_bound(jobs: list[dict[str, Any]], limit: RateLimit, t0: datetime
                ) -> tuple[float, dict[str, Any], dict[str, float]]:
    """(bound in seconds after t0, the critical job, each job's earliest possible ready time)."""
    by_owner: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for j in jobs:
        by_owner[j["owner"]].append(j)
    ready: dict[str, float] = {}
    slot: dict[str, float] = {}
    for owned in by_owner.values():
        owned.sort(key=lambda j: j["created_at"])
        for k, j in enumerate(owned):
            slot[j["report_id"]] = max(0, k - limit.burst + 1) / limit.rate
            ready[j["report_id"]] = (slot[j["report_id"]] + j["queue_seconds"]
                                     + j["processing_seconds"])
    critical = max(jobs, key=lambda j: ready[j["report_id"]])
    return ready[critical["report_id"]], {**critical, "slot": slot[critical["report_id"]]}, ready


def seconds_after(t0: datetime, iso: str) -> float:
    return (datetime.fromisoformat(iso) - t0).total_seconds()


def run_case(case: Case, seed: int, run: dict[str, Any]) -> dict[str, Any]:
    """Run one source's benchmark; returns its figures."""
    folder = Path(tempfile.mkdtemp(prefix=f"amzlake-sched-{case.source}-"))
    scenario = folder / "scenario.json"
    scenario.write_text(json.dumps({"seed": seed, "time_scale": case.time_scale, "now": NOW,
                                    "delays": DELAYS}))
    with EmulatorProcess("--scenario", str(scenario)) as emu, \
            httpx.Client(base_url=emu.base_url, timeout=60) as http:
        config, env = emulator_config(emu.base_url, emu.credentials, folder, **case.sections,
                                      run=run)
        clock = clock_for(config)  # the emulator's virtual clock, as `amzlake run` uses it
        log = PollLog(clock.elapsed)
        undo = count_polls(log)

        async def go() -> tuple[Any, Any, dict[str, int], float, float, datetime]:
            async with Ingestion.open(config, clock, CredentialChain.default(environ=env)) as ing:
                t0 = clock.now()
                real0 = time.perf_counter()
                result, planned = await ing.run(backfill=case.backfill)
                makespan = (clock.now() - t0).total_seconds()
                return (result, planned, ing.pool.operation_stats(), makespan,
                        time.perf_counter() - real0, t0)

        try:
            result, planned, stats, makespan, real_s, t0 = asyncio.run(go())
        finally:
            undo()
        calls = http.get("/_emulator/calls").json()
        jobs = [j for j in http.get("/_emulator/reports").json()["reports"] if j["api"] == case.api]

    counts = result.counts()
    n = len(planned)
    bound, critical, _ = lower_bound(jobs, case.create_limit, t0)
    simple = max(
        max(0, sum(1 for j in jobs if j["owner"] == owner) - case.create_limit.burst)
        / case.create_limit.rate for owner in {j["owner"] for j in jobs}
    ) + (critical["queue_seconds"] + critical["processing_seconds"])
    # How late the runner saw each report finished, and how late it created the critical one.
    overshoot = []
    for j in jobs:
        done_at = seconds_after(t0, j["created_at"]) + j["queue_seconds"] + j["processing_seconds"]
        if j["report_id"] in log.seen_done:
            overshoot.append(log.seen_done[j["report_id"]] - done_at)
    crit_created = seconds_after(t0, critical["created_at"])
    crit_id = critical["report_id"]
    crit_done = crit_created + critical["queue_seconds"] + critical["processing_seconds"]
    gen = [j["generation_seconds"] or 0.0 for j in jobs]
    return {
        "source": case.source, "n": n, "accounts": len({j["owner"] for j in jobs}),
        "counts": counts, "scale": case.time_scale, "real_s": real_s, "makespan": makespan,
        "bound": bound, "simple_bound": simple, "calls": calls["calls"],
        "distinct": calls["distinct_requests"], "duplicates": calls["duplicate_creates"],
        "stats": stats, "jobs": jobs, "polls": log.polls, "overshoot": overshoot,
        "critical": {"slot": critical["slot"], "created": crit_created,
                     "delay": critical["queue_seconds"] + critical["processing_seconds"],
                     "ready": crit_done, "seen": log.seen_done.get(crit_id),
                     "polls": log.polls.get(crit_id, 0)},
        "generation_max": max(gen, default=0.0), "poll_initial": config.run.poll_initial,
        "poll_factor": config.run.poll_factor, "poll_max": config.run.poll_max,
        "tail_slices": RunSettings.tail_slices, "tail_share": RunSettings.tail_poll_share,
    }


def poll_table(f: dict[str, Any]) -> list[str]:
    """Polls per slice against log2(report time / poll_initial), binned by report time."""
    p0 = f["poll_initial"].total_seconds()
    rows = []
    for j in f["jobs"]:
        t = j["queue_seconds"] + j["processing_seconds"]
        rows.append((t, f["polls"].get(j["report_id"], 0)))
    rows.sort()
    edges = [0, 120, 240, 480, 960, 1920, 3840, math.inf]
    out = [f"  {'report time (s)':>17} {'slices':>6} {'polls mean':>10} {'max':>4} "
           f"{'log2(T/p0)':>10} {'polls-log2':>10}"]
    for lo, hi in itertools.pairwise(edges):
        sel = [(t, p) for t, p in rows if lo <= t < hi]
        if not sel:
            continue
        t_med = statistics.median(t for t, _ in sel)
        mean = statistics.fmean(p for _, p in sel)
        lg = math.log2(max(t_med, 1e-9) / p0)
        label = f"{lo:.0f}-{hi:.0f}" if hi != math.inf else f">={lo:.0f}"
        out.append(f"  {label:>17} {len(sel):>6} {mean:>10.1f} {max(p for _, p in sel):>4} "
                   f"{lg:>10.2f} {mean - lg:>10.2f}")
    # Least-squares slope of polls against log2(T/p0): growth per doubling of the report time.
    xs = [math.log2(t / p0) for t, _ in rows if t > 0]
    ys = [p for t, p in rows if t > 0]
    if len(xs) > 2 and statistics.pvariance(xs) > 0:
        slope = statistics.covariance(xs, ys) / statistics.variance(xs)
        out.append(f"  fit: polls ~ {statistics.fmean(ys) - slope * statistics.fmean(xs):.2f} + "
                   f"{slope:.2f} * log2(T/p0)  (polls added per doubling of report time)")
    return out


def report(f: dict[str, Any]) -> None:
    """Print one source's figures."""
    n, calls, stats = f["n"], f["calls"], f["stats"]
    prefix = "spapi" if f["source"] == "vendor" else "ads"
    create = calls.get(f"{prefix}.createReport" if prefix == "spapi" else "ads.createAsyncReport", 0)
    poll = calls.get(f"{prefix}.getReport" if prefix == "spapi" else "ads.getAsyncReport", 0)
    docs = calls.get("spapi.getReportDocument", 0)
    print(f"== {f['source']}: {n} slices over {f['accounts']} accounts; clock x{f['scale']:g} "
          f"({f['real_s']:.0f} s real); end states {f['counts']}")
    print(f"makespan {f['makespan']:,.0f} s; lower bound {f['bound']:,.0f} s "
          f"(simple form max(0, N-burst)/rate + the critical report's time: "
          f"{f['simple_bound']:,.0f} s); ratio {f['makespan'] / f['bound']:.3f} "
          f"(target <= 1.15: {'met' if f['makespan'] <= 1.15 * f['bound'] else 'NOT met'})")
    c = f["critical"]
    seen = "never" if c["seen"] is None else (
        f"{c['seen']:,.0f} s ({c['seen'] - c['ready']:,.0f} s late, "
        f"{(c['seen'] - c['ready']) / c['delay']:.1%} of its time)")
    print(f"critical report: slot {c['slot']:,.0f} s, created {c['created']:,.0f} s "
          f"(lag {c['created'] - c['slot']:,.1f}), ready {c['ready']:,.0f} s "
          f"(time {c['delay']:,.0f} s), seen done {seen} after {c['polls']} polls")
    ov = sorted(f["overshoot"])
    if ov:
        print(f"poll overshoot (finished -> seen): median {statistics.median(ov):,.0f} s, "
              f"p90 {ov[int(0.9 * (len(ov) - 1))]:,.0f} s, max {ov[-1]:,.0f} s")
    per = f"per slice: creates {create / n:.2f} (distinct {f['distinct']}, duplicates " \
          f"{f['duplicates']}), status polls {poll / n:.2f}"
    if prefix == "spapi":
        per += f", document requests {docs / n:.2f}"
    print(per + f"; all calls seen by the emulator {sum(calls.values()) / n:.2f}")
    print(f"emulator call log: {calls}")
    print("client counters per operation (calls / retries / 429s / limiter wait in s):")
    for op, st in stats.items():
        print(f"  {op:<26} {st['calls']:>5.0f} {st['retries']:>4.0f} {st['throttled']:>4.0f} "
              f"{st['rate_wait']:>10,.0f}")
    print(f"polls per slice vs report time T (queue + processing), p0 = poll_initial "
          f"{f['poll_initial'].total_seconds():g} s, factor {f['poll_factor']:g}, cap "
          f"{f['poll_max'].total_seconds():g} s; a run's last {f['tail_slices']} slices every "
          f"{f['tail_share']:.0%} of their age:")
    for line in poll_table(f):
        print(line)
    print(f"slowest document generation in the emulator: {f['generation_max']:.2f} s real")


def seed_list(text: str) -> list[int]:
    """`3`, `1-8` or `1,4,7` as a list of seeds."""
    out: list[int] = []
    for part in text.split(","):
        low, _, high = part.partition("-")
        out.extend(range(int(low), int(high or low) + 1))
    return out


def summary(rows: list[dict[str, Any]]) -> None:
    """One line per run, then the worst ratio: how the figures spread across seeds."""
    print("== across seeds: source seed ratio creates/slice polls/slice critical-late")
    for f in rows:
        c, calls, n = f["critical"], f["calls"], f["n"]
        creates = calls.get("spapi.createReport", 0) + calls.get("ads.createAsyncReport", 0)
        polls = calls.get("spapi.getReport", 0) + calls.get("ads.getAsyncReport", 0)
        late = "never seen" if c["seen"] is None else f"{(c['seen'] - c['ready']) / c['delay']:.1%}"
        print(f"   {f['source']:<6} {f['seed']:>4} {f['makespan'] / f['bound']:.3f} "
              f"{creates / n:>6.2f} {polls / n:>6.2f} {late:>8}")
    for source in sorted({f["source"] for f in rows}):
        worst = max(f["makespan"] / f["bound"] for f in rows if f["source"] == source)
        print(f"   {source}: worst ratio {worst:.3f} (target <= 1.15: "
              f"{'met' if worst <= 1.15 else 'NOT met'})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", choices=sorted(CASES), help="run one source only")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seeds", type=seed_list, help="several runs: e.g. 1-8 (then a summary)")
    parser.add_argument("--poll-factor", type=float, help="[run] poll_factor (default: config's)")
    args = parser.parse_args()
    run = {} if args.poll_factor is None else {"poll_factor": args.poll_factor}
    rows = []
    for seed in args.seeds or [args.seed]:
        for name in [args.only] if args.only else ["vendor", "ads"]:
            figures = run_case(CASES[name], seed, run)
            report(figures)
            rows.append({**figures, "seed": seed})
            sys.stdout.flush()
    if len(rows) > 1:
        summary(rows)


if __name__ == "__main__":
    main()
