"""The emulator's shared machinery over real HTTP: LWA, downloads and their faults, inspection, CLI."""

from __future__ import annotations

import gzip
import json
import os
import signal
import subprocess
import sys
import zlib
from collections.abc import Callable
from functools import partial

import httpx
import orjson
import pytest

from amzlake.emulator.documents import DocumentPlan, Truth, json_array
from amzlake.emulator.jobs import JobStatus, ReportJob
from tests.conftest import RunningEmulator

EmulatorFactory = Callable[..., RunningEmulator]


def _token_request(emu: RunningEmulator, **override: str) -> httpx.Response:
    lwa = emu.credentials["lwa"]
    data = {"grant_type": "refresh_token", "refresh_token": emu.credentials["ads"]["refresh_token"],
            "client_id": lwa["client_id"], "client_secret": lwa["client_secret"], **override}
    return emu.client.post("/auth/o2/token", data={k: v for k, v in data.items() if v != "<omit>"})


def test_lwa_issues_tokens_for_form_and_json_bodies(emulator: RunningEmulator) -> None:
    r = _token_request(emulator)
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer" and body["expires_in"] == 3600
    assert body["access_token"].startswith("Atza|")
    lwa = emulator.credentials["lwa"]
    r = emulator.client.post("/auth/o2/token", json={
        "grant_type": "refresh_token", "refresh_token": emulator.credentials["vendor"][0]["refresh_token"],
        "client_id": lwa["client_id"], "client_secret": lwa["client_secret"],
    })
    assert r.status_code == 200
    grant = emulator.state.tokens.resolve(r.json()["access_token"])
    assert grant.vendor is not None
    assert grant.vendor.selling_partner_id == emulator.credentials["vendor"][0]["selling_partner_id"]


@pytest.mark.parametrize(
    ("override", "error"),
    [
        ({"client_id": "amzn1.application-oa2-client.nope"}, "invalid_client"),
        ({"client_secret": "wrong"}, "invalid_client"),
        ({"refresh_token": "Atzr|unknown"}, "invalid_grant"),
        ({"refresh_token": "<omit>"}, "invalid_request"),
        ({"grant_type": "authorization_code"}, "unsupported_grant_type"),
    ],
)
def test_lwa_rejections(emulator: RunningEmulator, override: dict[str, str], error: str) -> None:
    r = _token_request(emulator, **override)
    assert r.status_code == 400
    assert r.json()["error"] == error
    assert emulator.credentials["lwa"]["client_secret"] not in r.text


def test_access_tokens_expire_on_the_virtual_clock(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(time_scale=1.0, faults=[{"kind": "token_expiry", "seconds": 120}])
    r = _token_request(emu)
    assert r.json()["expires_in"] == 120
    token = r.json()["access_token"]
    emu.state.tokens.resolve(token)
    emu.client.post("/_emulator/clock/advance", params={"seconds": 121})
    from amzlake.emulator.state import TokenExpired

    with pytest.raises(TokenExpired):
        emu.state.tokens.resolve(token)


def numbers_plan(rows: int) -> DocumentPlan:
    """A document of `rows` small objects; module-level so the worker process can unpickle it."""
    truth = Truth()

    def chunks():
        for i in range(rows):
            truth.rows += 1
            truth.add("n", i)
            yield orjson.dumps({"n": i, "pad": "x" * (i % 50)})

    return DocumentPlan(json_array(chunks()), truth)


def _small_job(emu: RunningEmulator, rows: int = 20_000) -> ReportJob:
    plan = partial(numbers_plan, rows)
    job = emu.state.jobs.create(api="spapi", owner="test", report_type="TEST", request={},
                                dedupe_key="k", plan=plan, delays=(0.0, 0.0))
    assert job.wait_ready(30)
    return job


def _url(emu: RunningEmulator, job: ReportJob, ttl: float = 10**7) -> str:
    token, _ = emu.state.jobs.link(job, ttl)
    return f"{emu.base_url}/_emulator/documents/{token}/report.json.gz"


def test_download_serves_the_spooled_gzip_without_auth(emulator: RunningEmulator) -> None:
    job = _small_job(emulator)
    r = httpx.get(_url(emulator, job))
    assert r.status_code == 200
    assert int(r.headers["content-length"]) == job.document.size
    assert "content-encoding" not in r.headers  # clients must gunzip themselves
    rows = json.loads(gzip.decompress(r.content))
    assert len(rows) == 20_000 and sum(x["n"] for x in rows) == job.truth.sums["n"]
    assert job.status(emulator.state.clock.now()) == JobStatus.DONE


def test_download_url_expires(emulator: RunningEmulator) -> None:
    job = _small_job(emulator, rows=10)
    url = _url(emulator, job, ttl=300)
    emulator.client.post("/_emulator/clock/advance", params={"seconds": 301})
    r = httpx.get(url)
    assert r.status_code == 403 and "<Code>AccessDenied</Code>" in r.text
    assert httpx.get(f"{emulator.base_url}/_emulator/documents/nope/x.json.gz").status_code == 404


def test_truncated_download_is_a_broken_gzip(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "truncate", "fraction": 0.4, "times": 1}])
    job = _small_job(emu)
    r = httpx.get(_url(emu, job))
    assert r.status_code == 200 and len(r.content) == int(job.document.size * 0.4)
    with pytest.raises(EOFError):
        gzip.decompress(r.content)
    assert len(httpx.get(_url(emu, job)).content) == job.document.size  # fired once only


def test_corrupt_download_fails_its_check(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "corrupt"}])
    job = _small_job(emu)
    r = httpx.get(_url(emu, job))
    assert len(r.content) == job.document.size
    with pytest.raises((zlib.error, gzip.BadGzipFile, OSError)):
        gzip.decompress(r.content)


def test_dropped_download_breaks_the_connection(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "drop_download", "fraction": 0.5}])
    job = _small_job(emu, rows=200_000)
    with pytest.raises(httpx.HTTPError):
        httpx.get(_url(emu, job))


def test_expire_url_and_server_error_faults(make_emulator: EmulatorFactory) -> None:
    emu = make_emulator(faults=[{"kind": "expire_url", "times": 1},
                                {"kind": "server_error", "operation": "*.download", "times": 1}])
    job = _small_job(emu, rows=10)
    url = _url(emu, job)
    assert httpx.get(url).status_code == 403
    assert httpx.get(url).status_code == 503
    assert httpx.get(url).status_code == 200
    calls = emu.client.get("/_emulator/calls").json()["calls"]
    assert calls["spapi.download"] == 3


def test_inspection_endpoints(emulator: RunningEmulator) -> None:
    job = _small_job(emulator, rows=5)
    truth = emulator.client.get(f"/_emulator/truth/spapi/{job.report_id}").json()
    assert truth["truth"] == {"rows": 5, "sums": {"n": 10}, "details": {}}
    assert truth["document"]["sha256"] == job.document.sha256
    assert emulator.client.get("/_emulator/truth/spapi/nope").status_code == 404
    before = emulator.client.get("/_emulator/clock").json()["now"]
    after = emulator.client.post("/_emulator/clock/advance", params={"seconds": 86400}).json()["now"]
    assert after > before
    assert emulator.client.post("/_emulator/clock/advance", params={"seconds": "x"}).status_code == 400
    r = emulator.client.get("/_emulator/credentials")
    assert r.headers["x-amzn-requestid"]
    assert {p["country_code"] for p in r.json()["ads"]["profiles"]} == {"US", "DE", "JP"}


def test_cli_starts_prints_credentials_and_stops() -> None:
    proc = subprocess.Popen(
        [sys.executable, "-m", "amzlake", "emulator", "--json", "--seed", "3", "--time-scale", "60"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert info["base_url"].startswith("http://127.0.0.1:")
        served = httpx.get(info["base_url"] + "/_emulator/credentials").json()
        assert served == info["credentials"]
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(timeout=15)


def test_cli_rejects_a_bad_fault_flag_in_one_line() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "amzlake", "emulator", "--fault", "throttle:times=zero"],
        capture_output=True, text=True, timeout=60, env={**os.environ, "COLUMNS": "200"},
    )
    assert r.returncode == 2
    assert r.stderr.strip().splitlines() == [
        "amzlake: error: --fault 'throttle:times=zero': times: Input should be a valid integer, "
        "unable to parse string as an integer (got 'zero')"
    ]
