"""The rate-limited retrying HTTP layer, on a fake clock with scripted answers (MockTransport)."""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from amzlake.catalog.limits import RateLimit
from amzlake.errors import (
    ApiRequestError,
    AuthError,
    NotFoundError,
    OutcomeUnknown,
    RemoteError,
    RequestTimeout,
    ThrottledError,
    UrlExpired,
)
from amzlake.sources.http import (
    ApiHttp,
    Lane,
    RetryPolicy,
    Take,
    TokenAuth,
    ads_error,
    retry_after_seconds,
    spapi_error,
)

SECRET_TOKEN = "Atza|access-token-that-must-never-be-printed"
NEW_TOKEN = "Atza|the-refreshed-access-token"


class FakeTimer:
    """A clock that only moves when something sleeps."""

    def __init__(self) -> None:
        self.t = 0.0
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self.t

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.t += max(0.0, seconds)
        await asyncio.sleep(0)


class FixedDraw(random.Random):
    """Every uniform draw returns `value`."""

    def __init__(self, value: float) -> None:
        super().__init__(0)
        self.value = value

    def random(self) -> float:
        return self.value


class FakeTokens:
    """A token source that counts refreshes."""

    def __init__(self) -> None:
        self.current = SecretStr(SECRET_TOKEN)
        self.refreshes = 0

    async def token(self) -> SecretStr:
        return self.current

    async def refresh(self, stale: SecretStr | None = None) -> SecretStr:
        self.refreshes += 1
        self.current = SecretStr(NEW_TOKEN)
        return self.current


Answer = httpx.Response | Exception


def scripted(answers: Iterable[Answer], seen: list[httpx.Request] | None = None
             ) -> httpx.MockTransport:
    """A transport answering from `answers` in order (the last one repeats)."""
    queue = list(answers)

    def handler(request: httpx.Request) -> httpx.Response:
        if seen is not None:
            seen.append(request)
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, Exception):
            raise answer
        return answer

    return httpx.MockTransport(handler)


def make_http(answers: Iterable[Answer], *, timer: FakeTimer, api: str = "spapi",
              limits: dict[str, RateLimit] | None = None, retry: RetryPolicy | None = None,
              draw: float | None = 0.5, seen: list[httpx.Request] | None = None) -> ApiHttp:
    return ApiHttp(
        api, base_url="https://api.test", limits=limits or {},
        error_parser=spapi_error if api == "spapi" else ads_error,
        expired_statuses=(403,) if api == "spapi" else (401,),
        retry=retry or RetryPolicy(max_attempts=5, base=1.0, cap=8.0, max_elapsed=1000.0),
        timer=timer, rng=FixedDraw(draw) if draw is not None else random.Random(3),
        transport=scripted(answers, seen),
    )


def run(factory: Callable[[], Any]) -> Any:
    return asyncio.run(factory())


def quota() -> httpx.Response:
    return httpx.Response(429, json={"errors": [{
        "code": "QuotaExceeded", "message": "You exceeded your quota for the requested resource.",
        "details": ""}]})


def ok(**headers: str) -> httpx.Response:
    return httpx.Response(200, json={"ok": True}, headers=headers)


def test_full_jitter_backoff_grows_to_the_cap_and_gives_up_after_max_attempts() -> None:
    timer = FakeTimer()
    http = make_http([httpx.Response(503, json={"errors": [{"code": "ServiceUnavailable",
                                                             "message": "try later"}]})],
                     timer=timer, draw=0.999)

    async def go() -> None:
        await http.call("getReport", "GET", "/r/1")

    with pytest.raises(RemoteError) as info:
        run(go)
    # Draw 0.999 of min(cap=8, 1 * 2**n): 1, 2, 4, 8 then no sleep (fifth failure gives up).
    assert timer.sleeps == pytest.approx([0.999, 1.998, 3.996, 7.992])
    assert http.stats()["spapi.getReport"].calls == 5
    assert http.stats()["spapi.getReport"].retries == 4
    assert "spapi.getReport: HTTP 503 ServiceUnavailable: try later" in str(info.value)
    assert "gave up after 5 attempts" in str(info.value)


def test_backoff_sleeps_are_jittered_within_their_bounds() -> None:
    timer = FakeTimer()
    retry = RetryPolicy(max_attempts=9, base=0.5, cap=4.0, max_elapsed=1e9)
    http = make_http([httpx.Response(500)], timer=timer, draw=None, retry=retry)

    async def go() -> None:
        await http.call("getReport", "GET", "/r/1")

    with pytest.raises(RemoteError):
        run(go)
    bounds = [min(4.0, 0.5 * 2**n) for n in range(8)]
    assert len(timer.sleeps) == 8
    assert all(0.0 <= s < b for s, b in zip(timer.sleeps, bounds, strict=True))
    # Full jitter, not a fixed schedule: the draws differ from the upper bounds.
    assert len({round(s / b, 6) for s, b in zip(timer.sleeps, bounds, strict=True)}) > 1


def test_retry_after_is_honoured_instead_of_the_backoff() -> None:
    timer = FakeTimer()
    throttled = httpx.Response(429, headers={"Retry-After": "7"}, json={"code": "429",
                                                                       "detail": "Too Many"})
    http = make_http([throttled, ok()], timer=timer, api="ads")

    async def go() -> httpx.Response:
        return await http.call("getAsyncReport", "GET", "/reporting/reports/1")

    assert run(go).status_code == 200
    assert timer.sleeps == [7.0]
    stats = http.stats()["ads.getAsyncReport"]
    assert (stats.calls, stats.throttled, stats.retries) == (2, 1, 1)


def test_retry_after_beyond_the_budget_gives_up_at_once() -> None:
    timer = FakeTimer()
    throttled = httpx.Response(429, headers={"Retry-After": "5000"})
    http = make_http([throttled], timer=timer,
                     retry=RetryPolicy(max_attempts=5, max_elapsed=600.0))

    async def go() -> None:
        await http.call("createReport", "POST", "/reports", json={})

    with pytest.raises(ThrottledError) as info:
        run(go)
    assert timer.sleeps == []
    assert "600s retry budget" in str(info.value)


def test_retry_after_dates_and_seconds_parse() -> None:
    from datetime import UTC, datetime

    now = datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
    assert retry_after_seconds("12") == 12.0
    assert retry_after_seconds("Fri, 20 Nov 2026 12:00:30 GMT", now=now) == 30.0
    assert retry_after_seconds(None) is None
    assert retry_after_seconds("soon") is None


def test_throttle_storm_exhausted_raises_throttled_error_with_amazons_words() -> None:
    timer = FakeTimer()
    http = make_http([quota()], timer=timer)

    async def go() -> None:
        await http.call("createReport", "POST", "/reports", json={})

    with pytest.raises(ThrottledError) as info:
        run(go)
    error = info.value
    assert error.status == 429 and error.code == "QuotaExceeded"
    assert error.operation == "spapi.createReport"
    assert str(error).startswith(
        "spapi.createReport: HTTP 429 QuotaExceeded: You exceeded your quota for the requested "
        "resource.")
    assert http.stats()["spapi.createReport"].throttled == 5


@pytest.mark.parametrize(
    ("status", "exception"),
    [(400, ApiRequestError), (404, NotFoundError), (422, ApiRequestError)],
)
def test_client_errors_are_not_retried(status: int, exception: type[Exception]) -> None:
    timer = FakeTimer()
    body = {"errors": [{"code": "InvalidInput", "message": "Invalid reportType: X.",
                        "details": "reportType"}]}
    http = make_http([httpx.Response(status, json=body)], timer=timer)

    async def go() -> None:
        await http.call("createReport", "POST", "/reports", json={})

    with pytest.raises(exception) as info:
        run(go)
    assert str(info.value) == (
        f"spapi.createReport: HTTP {status} InvalidInput: Invalid reportType: X. (reportType)")
    assert http.stats()["spapi.createReport"].calls == 1
    assert timer.sleeps == []


def test_calls_wait_for_the_bucket_when_it_is_empty() -> None:
    timer = FakeTimer()
    http = make_http([ok()], timer=timer, limits={"getReport": RateLimit(1.0, 2)})

    async def go() -> None:
        for _ in range(5):
            await http.call("getReport", "GET", "/r/1", account="A1")

    run(go)
    # Burst 2 goes at once; the next three wait one second each.
    assert sum(timer.sleeps) == pytest.approx(3.0)
    assert http.stats()["spapi.getReport"].rate_wait == pytest.approx(3.0)
    assert http.stats()["spapi.getReport"].calls == 5


def test_buckets_are_per_account_and_operation() -> None:
    timer = FakeTimer()
    http = make_http([ok()], timer=timer, limits={"getReport": RateLimit(1.0, 1),
                                                  "getReports": RateLimit(1.0, 1)})

    async def go() -> None:
        await http.call("getReport", "GET", "/r/1", account="A1")
        await http.call("getReport", "GET", "/r/1", account="A2")
        await http.call("getReports", "GET", "/r", account="A1")

    run(go)
    assert timer.sleeps == []


class RecordingBudget:
    """A shared budget that never waits long: records what it is asked, waits `wait` per take."""

    def __init__(self, wait: float = 0.0) -> None:
        self.wait = wait
        self.taken: list[tuple[str, RateLimit]] = []
        self.drained: list[str] = []

    async def take(self, key: str, limit: RateLimit) -> float:
        self.taken.append((key, limit))
        return self.wait

    async def drain(self, key: str) -> None:
        self.drained.append(key)


def test_every_call_also_takes_from_the_shared_budget_which_a_429_drains() -> None:
    timer, budget = FakeTimer(), RecordingBudget(wait=0.25)
    http = ApiHttp("spapi", base_url="https://api.test", limits={"getReport": RateLimit(2.0, 15)},
                   error_parser=spapi_error, timer=timer, rng=FixedDraw(0.5),
                   retry=RetryPolicy(max_attempts=5, base=1.0, cap=8.0, max_elapsed=1000.0),
                   transport=scripted([quota(), ok()]), shared=budget)
    run(lambda: http.call("getReport", "GET", "/r/1", account="A1"))
    # Two attempts (a 429, then the answer): two tokens of the shared bucket of (account,
    # operation), at the lane's rate, which the 429 halved for the second; one drain.
    assert [key for key, _ in budget.taken] == ["spapi|A1|getReport"] * 2
    assert [limit.rate for _, limit in budget.taken] == [2.0, 1.0]
    assert budget.drained == ["spapi|A1|getReport"]
    # Waits count both: 0.25 shared per take, and 0.5 locally (the emptied bucket refills at
    # 1/s, and the 0.5 s backoff already gave it half a token).
    assert http.stats()["spapi.getReport"].rate_wait == pytest.approx(0.25 + 0.5 + 0.25)
    # Operations without a documented limit have no lane, locally or shared.
    run(lambda: http.call("other", "GET", "/x", account="A1"))
    assert len(budget.taken) == 2


def test_concurrent_callers_share_one_bucket_in_order() -> None:
    timer = FakeTimer()
    http = make_http([ok()], timer=timer, limits={"createReport": RateLimit(0.5, 1)})

    async def go() -> None:
        await asyncio.gather(*(http.call("createReport", "POST", "/reports", account="A",
                                         json={}) for _ in range(4)))

    run(go)
    # One at once, then one every 2 s: the clock ends at 6 s whatever the interleaving.
    assert timer.t == pytest.approx(6.0)
    assert http.stats()["spapi.createReport"].calls == 4


def test_rate_adapts_to_the_rate_limit_header() -> None:
    timer = FakeTimer()
    http = make_http([ok(**{"x-amzn-RateLimit-Limit": "0.5"})], timer=timer,
                     limits={"getReport": RateLimit(2.0, 1)})

    async def go() -> None:
        for _ in range(4):
            await http.call("getReport", "GET", "/r/1", account="A")

    run(go)
    # First call free (burst 1); then Amazon's 0.5/s applies: 2 s per call, not 0.5 s.
    assert sum(timer.sleeps) == pytest.approx(6.0)
    lane = http.lane("A", "getReport")
    assert lane is not None and lane.rate == 0.5 and lane.ceiling == 0.5


def test_a_429_slows_the_bucket_down_then_it_recovers() -> None:
    timer = FakeTimer()
    http = make_http([quota(), ok(), ok(), ok(), ok(), ok()], timer=timer, draw=0.0,
                     limits={"createReport": RateLimit(1.0, 5)})
    lane = http.lane("A", "createReport")
    assert lane is not None

    async def first() -> None:
        await http.call("createReport", "POST", "/reports", account="A", json={})

    run(first)
    # The 429 halved the rate and emptied the bucket: the retry waited 1 / 0.5 = 2 s, though
    # the burst of 5 had 4 tokens left before it; the success then lifted the rate by a quarter.
    assert timer.sleeps == [0.0, pytest.approx(2.0)]
    assert lane.rate == pytest.approx(0.75)

    async def more(calls: int) -> None:
        for _ in range(calls):
            await http.call("createReport", "POST", "/reports", account="A", json={})

    # Fast back to 90% of the refused rate, then 1% of the ceiling per success: going straight
    # back to where Amazon refused would earn the next 429 a few calls later.
    run(lambda: more(1))
    assert lane.rate == pytest.approx(0.9)
    run(lambda: more(2))
    assert lane.rate == pytest.approx(0.92)
    run(lambda: more(8))
    assert lane.rate == pytest.approx(1.0) and lane.target == pytest.approx(1.0)
    run(lambda: more(2))
    assert lane.rate == pytest.approx(1.0)  # never past the ceiling


def test_429s_of_calls_in_flight_together_slow_the_lane_once() -> None:
    timer = FakeTimer()
    lane = Lane(RateLimit(1.0, 10), timer)

    async def go() -> list[Take]:
        return [await lane.take() for _ in range(8)]

    takes = run(go)
    timer.t = 0.2  # the eight answers come back together, all 429
    for take in takes:
        lane.throttled(take)
    # One slowdown for the one congestion event, not 1/2**8 (floored at 1/16).
    assert lane.rate == pytest.approx(0.5)
    assert lane.bucket.wait_time() == pytest.approx(2.0)
    # A call sent after the slowdown that is refused again halves once more.
    retry = run(lane.take)
    lane.throttled(retry)
    assert lane.rate == pytest.approx(0.25)


def test_a_lone_429_at_a_rate_amazon_confirmed_keeps_the_rate() -> None:
    timer = FakeTimer()
    http = make_http([ok(**{"x-amzn-RateLimit-Limit": "0.5"}), quota(), ok(), quota(), quota(),
                      ok()], timer=timer, draw=0.0, limits={"createReport": RateLimit(0.5, 2)})
    lane = http.lane("A", "createReport")
    assert lane is not None

    async def call() -> None:
        await http.call("createReport", "POST", "/reports", account="A", json={})

    run(call)
    assert lane.confirmed and lane.rate == 0.5
    run(call)  # one 429 (our bucket ran ahead of Amazon's): wait a whole token, same rate
    assert lane.rate == 0.5
    assert timer.t == pytest.approx(2.0)
    run(call)  # two 429s in a row: the second is a real slowdown
    assert lane.rate == pytest.approx(0.25 + 0.5 / 4)  # halved, then one success's recovery


def test_a_burst_refills_from_the_answer_of_its_first_call() -> None:
    timer = FakeTimer()
    lane = Lane(RateLimit(1.0, 2), timer)
    first = run(lane.take)
    assert first.from_full
    second = run(lane.take)
    assert not second.from_full
    timer.t = 0.5  # the first answer takes half a second: Amazon's bucket may have left full then
    lane.answered(first)
    lane.answered(second)
    assert lane.bucket.wait_time() == pytest.approx(1.0)  # at 1.5 s, not at 1.0 s


def test_transport_errors_are_retried() -> None:
    timer = FakeTimer()
    http = make_http([httpx.ConnectError("connection refused"), ok()], timer=timer)

    async def go() -> httpx.Response:
        return await http.call("getReport", "GET", "/r/1")

    assert run(go).status_code == 200
    assert http.stats()["spapi.getReport"].transport_errors == 1


def test_timeouts_exhausted_raise_request_timeout() -> None:
    timer = FakeTimer()
    http = make_http([httpx.ReadTimeout("timed out")], timer=timer)

    async def go() -> None:
        await http.call("getReports", "GET", "/r")

    with pytest.raises(RequestTimeout) as info:
        run(go)
    assert "spapi.getReports: timed out" in str(info.value)
    assert http.stats()["spapi.getReports"].calls == 5


def test_a_lost_answer_to_a_create_is_not_repeated_blindly() -> None:
    timer = FakeTimer()
    http = make_http([httpx.ReadTimeout("timed out"), ok()], timer=timer)

    async def go() -> None:
        await http.call("createReport", "POST", "/reports", json={}, idempotent=False)

    with pytest.raises(OutcomeUnknown) as info:
        run(go)
    assert "may have been applied" in str(info.value)
    assert http.stats()["spapi.createReport"].calls == 1
    # A refused connection never reached Amazon: that one is retried even for a create.
    http2 = make_http([httpx.ConnectError("refused"), ok()], timer=timer)

    async def go2() -> httpx.Response:
        return await http2.call("createReport", "POST", "/reports", json={}, idempotent=False)

    assert run(go2).status_code == 200


def test_expired_token_answer_refreshes_once_and_repeats_the_call() -> None:
    timer = FakeTimer()
    tokens = FakeTokens()
    seen: list[httpx.Request] = []
    expired = httpx.Response(401, json={"code": "401", "detail": "The access token has expired"})
    http = make_http([expired, ok()], timer=timer, api="ads", seen=seen)
    auth = TokenAuth(tokens, "Authorization", "Bearer ")

    async def go() -> httpx.Response:
        return await http.call("listProfiles", "GET", "/v2/profiles", auth=auth)

    assert run(go).status_code == 200
    assert tokens.refreshes == 1
    assert [r.headers["Authorization"] for r in seen] == [f"Bearer {SECRET_TOKEN}",
                                                         f"Bearer {NEW_TOKEN}"]
    assert timer.sleeps == []  # no backoff for a refresh


def test_refused_twice_is_an_auth_error_after_one_refresh() -> None:
    timer = FakeTimer()
    tokens = FakeTokens()
    denied = httpx.Response(403, json={"errors": [{
        "code": "Unauthorized", "message": "Access to requested resource is denied.",
        "details": "The access token you provided has expired."}]})
    http = make_http([denied], timer=timer)
    auth = TokenAuth(tokens, "x-amz-access-token")

    async def go() -> None:
        await http.call("getReports", "GET", "/r", auth=auth)

    with pytest.raises(AuthError) as info:
        run(go)
    assert tokens.refreshes == 1
    assert http.stats()["spapi.getReports"].calls == 2
    assert "spapi.getReports: HTTP 403 Unauthorized: Access to requested resource is denied." in (
        str(info.value))


def test_no_token_in_errors_or_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    timer = FakeTimer()
    tokens = FakeTokens()
    answers: list[Answer] = [httpx.Response(503), httpx.ReadTimeout("timed out"), quota(),
                             httpx.Response(403, json={"errors": [{"code": "Unauthorized",
                                                                   "message": "denied"}]})]
    http = make_http(answers, timer=timer)
    auth = TokenAuth(tokens, "x-amz-access-token")

    async def go() -> None:
        await http.call("getReports", "GET", "/r", auth=auth)

    with pytest.raises(AuthError) as info:
        run(go)
    texts = [str(info.value), repr(info.value), *(r.getMessage() for r in caplog.records)]
    assert any("spapi.getReports" in t for t in texts[2:])  # the retries were logged
    for text in texts:
        assert SECRET_TOKEN not in text and NEW_TOKEN not in text
        assert "access-token-that" not in text


# ---- downloads -----------------------------------------------------------------------------------

URL = "https://bucket.s3.test/doc.json.gz?X-Amz-Signature=deadbeefsecret&X-Amz-Expires=300"


class Chunks(httpx.AsyncByteStream):
    """A response body that arrives as a stream, like one from the network."""

    def __init__(self, data: bytes) -> None:
        self.data = data

    async def __aiter__(self):  # type: ignore[override]
        for i in range(0, len(self.data), 4):
            yield self.data[i:i + 4]


def streamed(status: int, data: bytes, **headers: str) -> httpx.Response:
    return httpx.Response(status, stream=Chunks(data), headers=headers)


def _collect(http: ApiHttp, url: str = URL) -> bytes:
    async def go() -> bytes:
        return b"".join([chunk async for chunk in http.stream("download", url)])

    return run(go)


def test_download_yields_the_raw_bytes_without_decompressing_or_auth() -> None:
    import gzip

    payload = gzip.compress(b'[{"a": 1}]')
    seen: list[httpx.Request] = []
    served = streamed(200, payload, **{"Content-Encoding": "gzip"})
    http = make_http([served], timer=FakeTimer(), seen=seen)
    assert _collect(http) == payload
    assert "authorization" not in seen[0].headers and "x-amz-access-token" not in seen[0].headers


def test_download_retries_server_errors_before_the_first_byte() -> None:
    timer = FakeTimer()
    http = make_http([httpx.Response(503, text="<Error><Code>SlowDown</Code></Error>"),
                      streamed(200, b"abcdefghij")], timer=timer)
    assert _collect(http) == b"abcdefghij"
    assert http.stats()["spapi.download"].calls == 2


def test_expired_download_url_is_its_own_error_and_hides_the_signature() -> None:
    expired = httpx.Response(403, text='<?xml version="1.0"?><Error><Code>AccessDenied</Code>'
                                       "<Message>Request has expired</Message></Error>")
    http = make_http([expired], timer=FakeTimer())
    with pytest.raises(UrlExpired) as info:
        _collect(http)
    assert "AccessDenied" in str(info.value) and "Request has expired" in str(info.value)
    assert "deadbeefsecret" not in str(info.value)
    assert "https://bucket.s3.test/doc.json.gz" in str(info.value)


class Broken(Chunks):
    """A body that breaks off after its data."""

    async def __aiter__(self):  # type: ignore[override]
        yield self.data
        raise httpx.RemoteProtocolError("peer closed connection without sending complete body")


def test_a_download_that_breaks_off_is_an_error_not_a_short_document() -> None:
    http = make_http([httpx.Response(200, stream=Broken(b"half"))], timer=FakeTimer())
    received: list[bytes] = []

    async def go() -> None:
        async for chunk in http.stream("download", URL):
            received.append(chunk)

    with pytest.raises(RemoteError) as info:
        run(go)
    assert b"".join(received) != b"half"  # never handed on as if it were the whole body
    assert "broke off after 4 bytes" in str(info.value)
    assert http.stats()["spapi.download"].calls == 1  # not silently restarted mid-document


# ---- hosts ---------------------------------------------------------------------------------------


def test_hosts_per_region_and_for_a_stand_in() -> None:
    from amzlake.sources.hosts import amazon_hosts, emulator_hosts, region_of

    eu = amazon_hosts("eu")
    assert eu.ads == "https://advertising-api-eu.amazon.com"
    assert eu.spapi == "https://sellingpartnerapi-eu.amazon.com"
    assert eu.ads_lwa == "https://api.amazon.co.uk/auth/o2/token"
    assert eu.spapi_lwa == "https://api.amazon.com/auth/o2/token"
    assert amazon_hosts("NA", sandbox=True).spapi == "https://sandbox.sellingpartnerapi-na.amazon.com"
    fe = emulator_hosts("http://127.0.0.1:8000/", "FE")
    assert (fe.ads, fe.spapi_lwa) == ("http://127.0.0.1:8000/fe",
                                      "http://127.0.0.1:8000/auth/o2/token")
    with pytest.raises(ValueError, match="unknown region 'XX'; allowed: NA, EU, FE"):
        region_of("XX")
