"""How fast the emulator generates and serves a 1,000,000-row Ads document, and its peak memory.

    ./uvw run python benchmarks/emulator_serve.py [--size N] [--days 31]

Starts `amzlake emulator` as a child process with a large account, asks for a DAILY
spAdvertisedProduct report over 31 days (over a million rows), waits for it and downloads it.
Printed side by side: generation time and rate; serving throughput in MB/s of gzip next to a plain
read of the same bytes from disk; the peak RSS (VmHWM) over the whole run of the server process
and of the worker process that generated and gzipped the document (the emulator's descendants:
fork server -> workers), each against the target, and their sum. A forked worker's RSS counts the
pages it shares with the fork server (Python, numpy), so the sum over-counts them.
Targets (issue 2): >= 50 MB/s of gzip served, peak memory under 200 MB.
"""

from __future__ import annotations

import argparse
import sys
import threading
import time
import zlib
from datetime import date, timedelta
from pathlib import Path

import httpx

from _emulator_process import MILLION_ROW_COLUMNS as COLUMNS
from _emulator_process import EmulatorProcess, Helper  # benchmarks/ is on sys.path as a script

NOW = "2026-11-20T15:00:00Z"
MB = 1_000_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="emulator --size (entities multiplier)")
    parser.add_argument("--days", type=int, default=31, help="days in the report")
    args = parser.parse_args()

    with EmulatorProcess("--size", str(args.size), "--time-scale", "1000", "--now", NOW,
                         "--seed", "1") as emu, httpx.Client(base_url=emu.base_url, timeout=600) as client:
        creds = emu.credentials
        lwa = creds["lwa"]

        def headers() -> dict[str, str]:
            # A fresh token per call: on the fast virtual clock an access token lives moments.
            token = client.post("/auth/o2/token", data={
                "grant_type": "refresh_token", "refresh_token": creds["ads"]["refresh_token"],
                "client_id": lwa["client_id"], "client_secret": lwa["client_secret"],
            }).json()["access_token"]
            return {"Authorization": f"Bearer {token}",
                    "Amazon-Advertising-API-ClientId": lwa["client_id"],
                    "Amazon-Advertising-API-Scope": str(profile["profile_id"]),
                    "Content-Type": "application/vnd.createasyncreportrequest.v3+json"}

        profile = next(p for p in creds["ads"]["profiles"] if p["country_code"] == "US")
        # The whole emulator tree's memory, sampled through generation and serving.
        pss_peak = [0.0]
        sampling = threading.Event()

        def sample() -> None:
            while not sampling.is_set():
                pss_peak[0] = max(pss_peak[0], emu.tree_pss_mb())
                time.sleep(0.05)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        end = date(2026, 11, 19)
        start = end - timedelta(days=args.days - 1)
        created = time.perf_counter()
        r = client.post("/reporting/reports", headers=headers(), json={
            "startDate": start.isoformat(), "endDate": end.isoformat(),
            "configuration": {"adProduct": "SPONSORED_PRODUCTS", "reportTypeId": "spAdvertisedProduct",
                              "groupBy": ["advertiser"], "columns": COLUMNS, "timeUnit": "DAILY",
                              "format": "GZIP_JSON"},
        })
        r.raise_for_status()
        report_id = r.json()["reportId"]
        while True:
            report = client.get(f"/reporting/reports/{report_id}", headers=headers()).json()
            if "status" not in report:
                sys.exit(f"unexpected answer: {report}")
            if report["status"] in ("COMPLETED", "FAILED"):
                break
            time.sleep(0.2)
        waited = time.perf_counter() - created
        if report["status"] != "COMPLETED":
            sys.exit(f"report failed: {report.get('failureReason')}")
        info = client.get(f"/_emulator/truth/ads/{report_id}").json()
        rows = info["truth"]["rows"]
        gen_s = info["generation_seconds"]
        doc = info["document"]
        _, peak_after_generation = emu.memory_mb()
        helpers_after_generation = emu.helpers()

        # Serve: stream the presigned URL, counting bytes; sample the server's RSS meanwhile.
        served = 0
        rss_max = 0.0
        t0 = time.perf_counter()
        with client.stream("GET", report["url"]) as resp:
            resp.raise_for_status()
            for i, chunk in enumerate(resp.iter_raw(1 << 20)):
                served += len(chunk)
                if i % 16 == 0:
                    rss_max = max(rss_max, emu.memory_mb()[0])
        serve_s = time.perf_counter() - t0
        sampling.set()
        sampler.join()
        _, peak = emu.memory_mb()
        helpers = _merge_peaks(helpers_after_generation, emu.helpers())

        # Baseline: the same bytes read straight from the spool file on this disk.
        t0 = time.perf_counter()
        with Path(doc["path"]).open("rb") as f:
            while f.read(1 << 20):
                pass
        disk_s = time.perf_counter() - t0

        # Untimed check: the served bytes are a complete gzip of the promised JSON.
        inflate = zlib.decompressobj(31)
        inflated = 0
        with client.stream("GET", report["url"]) as resp:
            for chunk in resp.iter_raw(1 << 20):
                inflated += len(inflate.decompress(chunk))
        assert inflate.eof and inflated == doc["uncompressed_size"], "served gzip is incomplete"

    assert served == doc["size"], f"served {served} bytes, document has {doc['size']}"
    print(f"document: {rows:,} rows, {doc['uncompressed_size'] / MB:,.1f} MB JSON, "
          f"{doc['size'] / MB:,.1f} MB gzip ({doc['uncompressed_size'] / doc['size']:.1f}x)")
    print(f"generation: {gen_s:.1f} s = {rows / gen_s:,.0f} rows/s, "
          f"{doc['uncompressed_size'] / MB / gen_s:,.1f} MB/s JSON "
          f"(create -> COMPLETED {waited:.1f} s)")
    rate = served / MB / serve_s
    line = f"serving: {served / MB:,.1f} MB gzip in {serve_s:.2f} s = {rate:,.1f} MB/s"
    line += f"; plain read of the same file from disk {served / MB / disk_s:,.0f} MB/s"
    print(line)
    print(f"server process: peak RSS {peak:,.0f} MB over the run (after generation "
          f"{peak_after_generation:,.0f} MB; max sampled while serving {rss_max:,.0f} MB)")
    workers = [h for h in helpers if h.role == "worker"]
    for h in helpers:
        print(f"  descendant {h.role} pid {h.pid}: peak RSS {h.peak_mb:,.0f} MB")
    # The busiest worker built the document (the others, if any, stayed idle).
    worker_peak = max((h.peak_mb for h in workers), default=0.0)
    if not workers:
        print("  no worker process found: was the document built in the server process?")
    print(f"document worker: peak RSS {worker_peak:,.0f} MB; server + worker peaks "
          f"{peak + worker_peak:,.0f} MB (RSS counts the libraries both map twice)")
    print(f"whole emulator tree: peak sampled PSS {pss_peak[0]:,.0f} MB (server, fork server and "
          "workers together, each shared page counted once)")
    print(f"targets: >= 50 MB/s served: {'met' if rate >= 50 else 'NOT met'}; "
          f"server peak < 200 MB: {_met(peak < 200)}; worker peak < 200 MB: "
          f"{_met(worker_peak < 200)}; whole tree (PSS) < 200 MB: "
          f"{_met(pss_peak[0] < 200)}; >= 1,000,000 rows: "
          f"{'yes' if rows >= 1_000_000 else 'NO'}")


def _met(ok: bool) -> str:
    return "met" if ok else "NOT met"


def _merge_peaks(before: list[Helper], after: list[Helper]) -> list[Helper]:
    """Each descendant seen at either time, with the later (higher) reading when seen twice."""
    seen = {h.pid: h for h in before}
    seen.update({h.pid: h for h in after})
    return sorted(seen.values(), key=lambda h: h.pid)


if __name__ == "__main__":
    main()
