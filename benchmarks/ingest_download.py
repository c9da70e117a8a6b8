"""Download: a 1,000,000-row document into the raw zone, against a plain streamed copy.

    ./uvw run python benchmarks/ingest_download.py [--size 300] [--rounds 3] [--links 50,100,150]

Starts `amzlake emulator` as a child process with a large account, asks for a DAILY
spAdvertisedProduct report over 31 days (about 1.04 million rows at --size 300) and waits for it.
Then, alternating in this one process, round after round with a fresh URL each time:

(a) plain: an httpx streamed GET of the document URL, each chunk written to a file, closed;
(b) raw zone: the runner's download path exactly as src/amzlake/ingest/runner.py takes it:
    AdsClient.download(url) streamed into FileStore.put_stream(key, ..., verify=GzipVerifier())
    (size and SHA-256 as chunks arrive, gzip inflated and checked on a thread of its own, fsync,
    atomic link under its key).

Printed: MB/s of gzip for each round and the median ratio (b)/(a). Target: >= 0.8.
The ceiling: how fast this machine checks the gzip at all (GzipVerifier over the document in
memory, on one core, nothing else running). Inflating is sequential, so no verified download can
beat that rate; when the loopback copy is faster, the ceiling on the ratio is below 1.
Links: the same rounds against an emulator that serves the document at a paced rate (its `slow`
download fault, --links MB/s), as a real link to Amazon's S3 would: at which rates does checking
keep up?
Memory of (b), measured in this process: the peak RSS while (b) runs (the kernel's high-water
mark, reset before each round through /proc/self/clear_refs) and its rise over the RSS before the
round; and, in one extra untimed (b) round under tracemalloc, the peak of memory allocated through
Python's allocators (including the queued chunks and the inflate pieces; not interpreter code or
shared libraries). Target: peak under 150 MB.
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
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx

from _emulator_process import MILLION_ROW_COLUMNS as COLUMNS
from _emulator_process import EmulatorProcess  # benchmarks/ is on sys.path when run as a script
from amzlake.emulator.client_config import emulator_config
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


@dataclass
class Round:
    plain_s: float
    raw_s: float
    peak_mb: float
    rise_mb: float


def check_alone(path: Path) -> float:
    """Seconds GzipVerifier takes over the document at `path`, read into memory first."""
    data = path.read_bytes()
    verifier = GzipVerifier()
    t = time.perf_counter()
    for i in range(0, len(data), 1 << 20):
        verifier.update(data[i:i + (1 << 20)])
    verifier.finish()
    return time.perf_counter() - t


async def rounds(ads: Ads, client: AdsClient, store: FileStore, folder: Path, doc: dict[str, Any],
                 count: int, label: str) -> tuple[list[Round], float]:
    """`count` rounds of (a) then (b), each printed; and the time to check the gzip alone."""
    out: list[Round] = []
    alone = 0.0
    for i in range(count):
        target = folder / f"plain-{i}.json.gz"
        url = ads.url()
        t = time.perf_counter()
        n = await plain_copy(url, target)
        a_s = time.perf_counter() - t
        assert n == doc["size"], f"plain copy got {n} bytes of {doc['size']}"
        if i == 0:
            alone = check_alone(target)
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
        out.append(Round(a_s, b_s, peak, peak - before))
        print(f"{label} round {i + 1}: (a) plain {n / MB / a_s:6.1f} MB/s ({a_s:5.2f} s)   "
              f"(b) raw zone {size / MB / b_s:6.1f} MB/s ({b_s:5.2f} s)   ratio {a_s / b_s:.2f}   "
              f"(b) peak RSS {peak:,.0f} MB (+{peak - before:,.0f} over the {before:,.0f} before)")
    return out, alone


def ratio(rs: list[Round]) -> float:
    return statistics.median(r.plain_s / r.raw_s for r in rs)


def start(args: argparse.Namespace, *extra: str) -> EmulatorProcess:
    # Time scale 60: the document's one-hour URL lasts a real minute, plenty for a round.
    return EmulatorProcess("--size", str(args.size), "--time-scale", "60", "--now", NOW,
                           "--seed", "1", *extra)


def prepare(emu: EmulatorProcess, http: httpx.Client, days: int) -> tuple[Ads, dict[str, Any]]:
    """The report created and ready; and its document's truth (rows, sizes)."""
    ads = Ads(http, emu.credentials)
    ads.create(days)
    ads.url()
    info = http.get(f"/_emulator/truth/ads/{ads.report_id}").json()
    return ads, {"rows": info["truth"]["rows"], **info["document"]}


async def session(emu: EmulatorProcess, ads: Ads, folder: Path, doc: dict[str, Any], count: int,
                  label: str, traced: bool = False) -> tuple[list[Round], float, float]:
    """Rounds against `emu` through the runner's client; with `traced`, the tracemalloc peak of
    one more, untimed (b) round (else 0)."""
    from amzlake.clock import ScaledClock

    config, env = emulator_config(emu.base_url, emu.credentials, folder)
    store = FileStore(folder / "raw")
    pool = ClientPool(config, CredentialChain.default(environ=env), ScaledClock())
    try:
        client = pool.ads_for(config.ads.lwa_app, "NA")
        out, alone = await rounds(ads, client, store, folder, doc, count, label)
        traced_peak = 0.0
        if traced:  # untimed: tracemalloc slows the round down
            url = ads.url()
            tracemalloc.start()
            await raw_zone(client, store, url, "traced.json.gz")
            traced_peak = tracemalloc.get_traced_memory()[1] / MB
            tracemalloc.stop()
            store.delete("traced.json.gz")
    finally:
        await pool.aclose()
    return out, alone, traced_peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=300, help="emulator --size")
    parser.add_argument("--days", type=int, default=31)
    parser.add_argument("--rounds", type=int, default=3, help="rounds of (a) then (b)")
    parser.add_argument("--links", default="50,100,150,200",
                        help="paced link rates to try, MB/s, comma-separated ('' for none)")
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="amzlake-download-"))
    can_reset = reset_peak_rss()

    with start(args) as emu, httpx.Client(base_url=emu.base_url, timeout=600) as http:
        t0 = time.perf_counter()
        ads, doc = prepare(emu, http, args.days)
        print(f"document: {doc['rows']:,} rows, {doc['size'] / MB:,.1f} MB gzip, "
              f"{doc['uncompressed_size'] / MB:,.1f} MB JSON (ready after "
              f"{time.perf_counter() - t0:.0f} s)")
        loop, alone, traced_peak = asyncio.run(
            session(emu, ads, folder, doc, args.rounds, "loopback", traced=True))

    plain_rate = statistics.median(doc["size"] / MB / r.plain_s for r in loop)
    raw_rate = statistics.median(doc["size"] / MB / r.raw_s for r in loop)
    check_rate = doc["size"] / MB / alone
    ceiling = min(1.0, check_rate / plain_rate)
    print(f"loopback median: (a) {plain_rate:.1f} MB/s, (b) {raw_rate:.1f} MB/s, ratio (b)/(a) "
          f"{ratio(loop):.2f} (rounds: {', '.join(f'{r.plain_s / r.raw_s:.2f}' for r in loop)})")
    print(f"ceiling: checking the gzip alone, on one core from memory, takes {alone:.2f} s "
          f"({check_rate:.0f} MB/s of gzip, {doc['uncompressed_size'] / MB / alone:,.0f} MB/s of "
          f"JSON); against the loopback copy no verified download can pass {ceiling:.2f}")

    links = [float(x) for x in args.links.split(",") if x.strip()]
    paced: list[tuple[float, list[Round]]] = []
    for rate in links:
        seconds = doc["size"] / MB / rate
        with start(args, "--fault", f"slow:operation=ads.download,seconds={seconds:.3f}") as emu, \
                httpx.Client(base_url=emu.base_url, timeout=600) as http:
            ads, _ = prepare(emu, http, args.days)
            out, _, _ = asyncio.run(session(emu, ads, folder, doc, 2, f"link {rate:.0f} MB/s"))
            paced.append((rate, out))
    for rate, out in paced:
        print(f"link {rate:.0f} MB/s: ratio (b)/(a) {ratio(out):.2f}")

    note = "" if can_reset else " (clear_refs refused: peak is since process start)"
    rounds_all = loop + [r for _, out in paced for r in out]
    peak = max(r.peak_mb for r in rounds_all)
    print(f"(b) memory: peak RSS of this process {peak:,.0f} MB{note}, at most "
          f"{max(r.rise_mb for r in rounds_all):,.0f} MB over the RSS before the round; "
          f"tracemalloc peak {traced_peak:,.1f} MB")
    kept_up = [rate for rate, out in paced if ratio(out) >= 0.8]
    print(f"targets: (b) >= 0.8x plain on loopback: {'met' if ratio(loop) >= 0.8 else 'NOT met'} "
          f"(ceiling here {ceiling:.2f}); on paced links: "
          + (f"met up to {max(kept_up):.0f} MB/s" if kept_up else "not met at any rate tried")
          + f"; peak < 150 MB: {'met' if peak < 150 else 'NOT met'}; >= 1,000,000 rows: "
          f"{'yes' if doc['rows'] >= 1_000_000 else 'NO'}")
    shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
