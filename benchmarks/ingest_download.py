"""Download: a 1,000,000-row document into the raw zone, against a plain streamed copy.

    ./uvw run python benchmarks/ingest_download.py [--size 300] [--rounds 3]

Starts `amzlake emulator` as a child process with a large account, asks for a DAILY
spAdvertisedProduct report over 31 days (about 1.04 million rows at --size 300) and waits for it.
Then, alternating in this one process, round after round with a fresh URL each time:

(a) plain: an httpx streamed GET of the document URL, each chunk written to a file, closed;
(b) raw zone: the runner's download path exactly as src/amzlake/ingest/runner.py takes it:
    AdsClient.download(url) streamed into FileStore.put_stream(key, ..., verify=GzipVerifier())
    (SHA-256, gzip inflated and checked chunk by chunk, fsync, atomic link under its key).

Printed: MB/s of gzip for each round and the median ratio (b)/(a). Target: >= 0.8.
Memory of (b), measured in this process: the peak RSS while (b) runs (the kernel's high-water
mark, reset before each round through /proc/self/clear_refs) and its rise over the RSS before the
round; and, in one extra untimed (b) round under tracemalloc, the peak of memory allocated through
Python's allocators (including zlib's and hashlib's buffers, which go through PyMem; not
interpreter code or shared libraries). Target: peak under 150 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import statistics
import sys
import tempfile
import time
import tracemalloc
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from _emulator_process import MILLION_ROW_COLUMNS as COLUMNS
from _emulator_process import EmulatorProcess  # benchmarks/ is on sys.path when run as a script
from _ingest_config import emulator_config
from amzlake.ingest.pipeline import ClientPool
from amzlake.secrets import CredentialChain
from amzlake.sources.ads import AdsClient
from amzlake.storage.file_store import FileStore
from amzlake.storage.objects import GzipVerifier

NOW = "2026-11-20T15:00:00Z"
MB = 1_000_000


def rss() -> tuple[float, float]:
    """(current RSS, peak RSS since the last reset) of this process in MB (10^6 bytes)."""
    fields = {}
    for line in Path("/proc/self/status").read_text().splitlines():
        key, _, value = line.partition(":")
        fields[key] = value.strip()
    return (int(fields["VmRSS"].split()[0]) * 1024 / MB,
            int(fields["VmHWM"].split()[0]) * 1024 / MB)


def reset_peak_rss() -> bool:
    """Reset the kernel's RSS high-water mark of this process; False where that is not allowed."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return True


class Ads:
    """The report, created and polled over plain HTTP (a fresh access token per call)."""

    def __init__(self, http: httpx.Client, creds: dict[str, Any]) -> None:
        self.http = http
        self.creds = creds
        self.profile = next(p for p in creds["ads"]["profiles"] if p["country_code"] == "US")
        self.report_id = ""

    def headers(self) -> dict[str, str]:
        lwa = self.creds["lwa"]
        token = self.http.post("/auth/o2/token", data={
            "grant_type": "refresh_token", "refresh_token": self.creds["ads"]["refresh_token"],
            "client_id": lwa["client_id"], "client_secret": lwa["client_secret"],
        }).json()["access_token"]
        return {"Authorization": f"Bearer {token}",
                "Amazon-Advertising-API-ClientId": lwa["client_id"],
                "Amazon-Advertising-API-Scope": str(self.profile["profile_id"]),
                "Content-Type": "application/vnd.createasyncreportrequest.v3+json"}

    def create(self, days: int) -> None:
        end = date(2026, 11, 19)
        start = end - timedelta(days=days - 1)
        r = self.http.post("/reporting/reports", headers=self.headers(), json={
            "startDate": start.isoformat(), "endDate": end.isoformat(),
            "configuration": {"adProduct": "SPONSORED_PRODUCTS",
                              "reportTypeId": "spAdvertisedProduct", "groupBy": ["advertiser"],
                              "columns": COLUMNS, "timeUnit": "DAILY", "format": "GZIP_JSON"},
        })
        r.raise_for_status()
        self.report_id = r.json()["reportId"]

    def url(self) -> str:
        """A fresh document URL, waiting for the report first."""
        while True:
            report = self.http.get(f"/reporting/reports/{self.report_id}",
                                   headers=self.headers()).json()
            if report.get("status") == "COMPLETED":
                return str(report["url"])
            if report.get("status") not in ("PENDING", "PROCESSING"):
                sys.exit(f"unexpected answer: {report}")
            time.sleep(0.5)


async def plain_copy(url: str, path: Path) -> int:
    """(a): stream `url` into `path` with httpx, as served; returns the bytes written."""
    written = 0
    async with httpx.AsyncClient(timeout=60) as client, client.stream("GET", url) as response:
        response.raise_for_status()
        with path.open("wb") as out:
            async for chunk in response.aiter_raw():
                out.write(chunk)
                written += len(chunk)
    return written


async def raw_zone(client: AdsClient, store: FileStore, url: str, key: str) -> tuple[int, int]:
    """(b): the runner's path; returns (bytes stored, bytes of JSON the verifier inflated)."""
    verifier = GzipVerifier()
    info = await store.put_stream(key, client.download(url), verify=verifier)
    return info.size, verifier.uncompressed_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="emulator --size")
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a) then (b)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="amzlake-download-"))

    # Time scale 60: the document's one-hour URL lasts a real minute, plenty for a round.
    with EmulatorProcess("--size", str(args.size), "--time-scale", "60", "--now", NOW,
                         "--seed", "1") as emu, \
            httpx.Client(base_url=emu.base_url, timeout=600) as http:
        ads = Ads(http, emu.credentials)
        t0 = time.perf_counter()
        ads.create(args.days)
        ads.url()
        waited = time.perf_counter() - t0
        info = http.get(f"/_emulator/truth/ads/{ads.report_id}").json()
        rows, doc = info["truth"]["rows"], info["document"]
        print(f"document: {rows:,} rows, {doc['size'] / MB:,.1f} MB gzip, "
              f"{doc['uncompressed_size'] / MB:,.1f} MB JSON (ready after {waited:.0f} s)")

        config, env = emulator_config(emu.base_url, emu.credentials, folder)
        store = FileStore(folder / "raw")

        async def go() -> None:
            from amzlake.clock import ScaledClock

            pool = ClientPool(config, CredentialChain.default(environ=env), ScaledClock())
            client = pool.ads_for(config.ads.lwa_app, "NA")
            plain_rates, raw_rates, peaks, rises = [], [], [], []
            can_reset = reset_peak_rss()
            try:
                for i in range(args.rounds):
                    target = folder / f"plain-{i}.json.gz"
                    url = ads.url()
                    t = time.perf_counter()
                    n = await plain_copy(url, target)
                    a_s = time.perf_counter() - t
                    assert n == doc["size"], f"plain copy got {n} bytes of {doc['size']}"
                    target.unlink()

                    url = ads.url()
                    before, _ = rss()
                    reset_peak_rss()
                    t = time.perf_counter()
                    size, inflated = await raw_zone(client, store, url, f"round-{i}.json.gz")
                    b_s = time.perf_counter() - t
                    _, peak = rss()
                    assert size == doc["size"] and inflated == doc["uncompressed_size"]
                    store.delete(f"round-{i}.json.gz")
                    plain_rates.append(n / MB / a_s)
                    raw_rates.append(size / MB / b_s)
                    peaks.append(peak)
                    rises.append(peak - before)
                    print(f"round {i + 1}: (a) plain {n / MB / a_s:6.1f} MB/s ({a_s:5.2f} s)   "
                          f"(b) raw zone {size / MB / b_s:6.1f} MB/s ({b_s:5.2f} s)   "
                          f"ratio {a_s / b_s:.2f}   (b) peak RSS {peak:,.0f} MB "
                          f"(+{peak - before:,.0f} over the {before:,.0f} before)")
                # Untimed: what Python allocates while (b) runs (tracemalloc slows it down).
                url = ads.url()
                tracemalloc.start()
                await raw_zone(client, store, url, "traced.json.gz")
                _, traced_peak = tracemalloc.get_traced_memory()
                tracemalloc.stop()
            finally:
                await pool.aclose()
            ratios = [b / a for a, b in zip(plain_rates, raw_rates, strict=True)]
            print(f"median: (a) {statistics.median(plain_rates):.1f} MB/s, (b) "
                  f"{statistics.median(raw_rates):.1f} MB/s, ratio (b)/(a) "
                  f"{statistics.median(ratios):.2f} (rounds: "
                  f"{', '.join(f'{r:.2f}' for r in ratios)})")
            note = "" if can_reset else " (clear_refs refused: peak is since process start)"
            print(f"(b) memory: peak RSS of this process {max(peaks):,.0f} MB{note}, at most "
                  f"{max(rises):,.0f} MB over the RSS before the round; tracemalloc peak "
                  f"{traced_peak / MB:,.1f} MB")
            ok_rate = statistics.median(ratios) >= 0.8
            ok_mem = max(peaks) < 150
            print(f"targets: (b) >= 0.8x plain: {'met' if ok_rate else 'NOT met'}; "
                  f"peak < 150 MB: {'met' if ok_mem else 'NOT met'}; >= 1,000,000 rows: "
                  f"{'yes' if rows >= 1_000_000 else 'NO'}")

        asyncio.run(go())
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
