"""The HTTP layer both API clients use: rate-limited, retrying, timed-out, counted calls.

- Rate limits: one token bucket per (account, operation), started from the documented limits
  (catalog/limits.py), adapted to `x-amzn-RateLimit-Limit` when a response carries it, halved and
  drained after a 429 and recovering on successes. The caller *waits* for a token before the call.
  A bucket that was full starts refilling when the answer comes, not when the call left: Amazon's
  own bucket starts when the call arrives, and running ahead of it by a network latency earns a
  429 on the first call after a burst. A lone 429 at a rate Amazon's header confirmed is such a
  phase error, not a lower limit: it empties the bucket but keeps the rate. Where several
  processes call for the same account (Lambda invocations), each call also takes a token from a
  bucket they share (ratelimit.SharedBudget), and a 429 drains that one too.
- Retries: 429, 5xx and transport errors, with exponential backoff and full jitter
  (sleep = uniform(0, min(cap, base * 2**n)), the AWS Architecture Blog's "Exponential Backoff And
  Jitter"), honouring `Retry-After`; a bounded number of attempts and a bounded time per call.
  A non-idempotent call whose answer was lost (read timeout after sending) is not retried: it
  raises OutcomeUnknown so the caller can look for the report before asking again.
- Expired tokens: an API's "expired token" answer (Ads 401, SP-API 403) refreshes the token once
  and repeats the call once.
- Clock, sleep and random numbers are injected, so tests run instantly and repeat exactly.
"""

from __future__ import annotations

import asyncio
import logging
import random
import re
import time
from collections.abc import AsyncIterator, Callable, Collection, Mapping
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, Protocol, Self

import httpx
from pydantic import SecretStr

from amzlake.catalog.limits import RateLimit
from amzlake.errors import (
    ApiCallError,
    ApiRequestError,
    AuthError,
    NotFoundError,
    OutcomeUnknown,
    RemoteError,
    RequestTimeout,
    ThrottledError,
    UrlExpired,
)
from amzlake.ratelimit import SharedBudget, TokenBucket

log = logging.getLogger(__name__)

RATE_LIMIT_HEADER = "x-amzn-RateLimit-Limit"
# Document bytes are handed on in pieces of this size (not as each socket read comes, ~64 KiB):
# every piece is checked in a worker thread (storage/objects.checked), and fewer, larger pieces
# spend less on thread hand-offs while keeping memory bounded.
DOWNLOAD_CHUNK = 1 << 20


# ---- Time ---------------------------------------------------------------------------------------


class Timer(Protocol):
    """A monotonic clock in seconds and a matching async sleep."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...


class SystemTimer:
    """Real time: time.monotonic and asyncio.sleep."""

    def now(self) -> float:
        """Seconds on the monotonic clock."""
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of real time."""
        await asyncio.sleep(max(0.0, seconds))


@dataclass(frozen=True)
class ScaledTimer:
    """Virtual time running `scale` times faster than real time (to match a scaled emulator)."""

    scale: float

    def now(self) -> float:
        """Virtual seconds on the monotonic clock."""
        return time.monotonic() * self.scale

    async def sleep(self, seconds: float) -> None:
        """Sleep `seconds` of virtual time."""
        await asyncio.sleep(max(0.0, seconds) / self.scale)


# ---- Policies -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how long one call is retried (times in Timer seconds)."""

    max_attempts: int = 8
    base: float = 1.0
    cap: float = 120.0
    # Backoff sleeps of one call stop once they would take it past this; waits for the rate
    # limiter do not count (they are the budget working, not a failure).
    max_elapsed: float = 900.0

    def backoff(self, retry: int, draw: float) -> float:
        """Full jitter: `draw` (uniform in [0, 1)) times min(cap, base * 2**retry)."""
        return draw * min(self.cap, self.base * 2.0 ** retry)


@dataclass(frozen=True)
class Timeouts:
    """Per-request timeouts in real seconds (read/write: between two chunks)."""

    connect: float = 10.0
    read: float = 120.0
    write: float = 60.0
    pool: float = 60.0

    def to_httpx(self) -> httpx.Timeout:
        """The same as an httpx.Timeout."""
        return httpx.Timeout(connect=self.connect, read=self.read, write=self.write, pool=self.pool)


# ---- Auth ---------------------------------------------------------------------------------------


class TokenSource(Protocol):
    """Gives access tokens (see sources/lwa.py)."""

    async def token(self) -> SecretStr: ...

    async def refresh(self, stale: SecretStr | None = None) -> SecretStr: ...


@dataclass(frozen=True)
class TokenAuth:
    """How an API carries the token: Ads `Authorization: Bearer`, SP-API `x-amz-access-token`."""

    source: TokenSource
    header: str
    prefix: str = ""

    def headers(self, token: SecretStr) -> dict[str, str]:
        """The auth header for `token`."""
        return {self.header: self.prefix + token.get_secret_value()}


# ---- Error bodies -------------------------------------------------------------------------------

ErrorParser = Callable[[httpx.Response], tuple[str | None, str | None]]


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        return None


def plain_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an error body whose shape is unknown: the start of its text."""
    text = response.text.strip()
    return None, (text[:200] or None)


def ads_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an Ads error body `{"code": ..., "detail": ...}`."""
    body = _json_body(response)
    if isinstance(body, dict):
        code = body.get("code")
        message = body.get("detail") or body.get("message") or body.get("details")
        return (None if code is None else str(code)), (None if message is None else str(message))
    return plain_error(response)


def spapi_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an SP-API ErrorList `{"errors": [{code, message, details}]}`."""
    body = _json_body(response)
    if isinstance(body, dict) and isinstance(body.get("errors"), list) and body["errors"]:
        first = body["errors"][0]
        if isinstance(first, dict):
            message = str(first.get("message") or "")
            if first.get("details"):
                message = f"{message} ({first['details']})"
            code = first.get("code")
            return (None if code is None else str(code)), (message or None)
    return plain_error(response)


def lwa_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an LWA OAuth error `{"error": ..., "error_description": ...}`."""
    body = _json_body(response)
    if isinstance(body, dict) and "error" in body:
        return str(body["error"]), (str(body.get("error_description") or "") or None)
    return plain_error(response)


_XML_CODE = re.compile(r"<Code>([^<]*)</Code>")
_XML_MESSAGE = re.compile(r"<Message>([^<]*)</Message>")


def s3_error(response: httpx.Response) -> tuple[str | None, str | None]:
    """(code, message) of an S3 XML error, as presigned download URLs answer."""
    text = response.text
    code, message = _XML_CODE.search(text), _XML_MESSAGE.search(text)
    if code is None and message is None:
        return plain_error(response)
    return (code.group(1) if code else None), (message.group(1) if message else None)


def redact_url(url: str | httpx.URL) -> str:
    """`url` without its query string (a presigned URL's query is a credential)."""
    return str(url).split("?", 1)[0]


# ---- Rate limiting ------------------------------------------------------------------------------


# After a 429 slowed a lane, it recovers fast to this share of the rate that was refused, then
# probes upward by PROBE_STEP of the ceiling per successful call.
TARGET_BELOW_REFUSED = 0.9
PROBE_STEP = 0.01


class Lane:
    """The token bucket of one (account, operation): waits for a token, adapts its rate."""

    def __init__(self, limit: RateLimit, timer: Timer, *, shared: SharedBudget | None = None,
                 shared_key: str = "") -> None:
        self.ceiling = limit.rate  # documented, or the last `x-amzn-RateLimit-Limit` seen
        self.confirmed = False  # whether Amazon's header named the ceiling
        self.bucket = TokenBucket(limit, timer.now)
        self._timer = timer
        # Other processes calling the same (account, operation), if any: every call also takes a
        # token from their common bucket, at the rate this lane has learnt.
        self._shared = shared
        self._shared_key = shared_key
        self._lock = asyncio.Lock()
        self._strikes = 0  # 429s since the last success
        # Where recovery after a slowdown heads: just below the rate Amazon refused, then
        # slowly up again (its limits can rise back). Going straight back to the refused rate
        # would only earn the next 429 a few calls later.
        self.target = limit.rate
        self._reacted_at: float | None = None  # when the last 429 emptied the bucket

    @property
    def rate(self) -> float:
        """The rate currently paced at (calls per Timer second)."""
        return self.bucket.limit.rate

    async def acquire(self) -> float:
        """Wait until a call may go; returns the seconds waited. Waiters go in arrival order."""
        return (await self.take()).waited

    async def take(self) -> Take:
        """Wait for a token and take it (waiters in arrival order); hand it back to `answered`."""
        waited = 0.0
        async with self._lock:
            while True:
                full = self.bucket.wait_time() == 0.0 and self.bucket.tokens >= self.bucket.limit.burst
                if self.bucket.try_take():
                    break
                delay = self.bucket.wait_time()
                waited += delay
                await self._timer.sleep(delay)
            if self._shared is not None:
                waited += await self._shared.take(self._shared_key, self.bucket.limit)
        return Take(waited, self._timer.now(), full)

    async def share_throttle(self) -> None:
        """Tell the other processes of this lane that Amazon answered 429 (see `throttled`)."""
        if self._shared is not None:
            await self._shared.drain(self._shared_key)

    def answered(self, take: Take) -> None:
        """The call of `take` has its answer: a take from a full bucket refills from now on."""
        if not take.from_full:
            return
        # Amazon's bucket left "full" somewhere between our send and its answer; refilling from
        # the send would run ahead of it by up to the round trip.
        self.bucket.wait_time()  # refill up to now
        self.bucket.tokens -= self.rate * max(0.0, self._timer.now() - take.at)

    def _set_rate(self, rate: float) -> None:
        self.bucket.wait_time()  # refill up to now at the old rate before the change
        self.bucket.limit = RateLimit(rate, self.bucket.limit.burst)

    def observe(self, header_value: str | None) -> None:
        """Take the rate Amazon says it applies (`x-amzn-RateLimit-Limit`) as the new ceiling."""
        if not header_value:
            return
        try:
            rate = float(header_value)
        except ValueError:
            return
        if rate <= 0:
            return
        self.confirmed = True
        if rate == self.ceiling:
            return
        recovered = self.rate >= self.ceiling
        self.ceiling = rate
        self.target = rate  # Amazon's own figure supersedes what 429s taught us
        # Follow Amazon's figure, unless we are still slowed down by a 429 below it.
        if recovered or self.rate > rate:
            self._set_rate(rate)

    def succeeded(self) -> None:
        """Recover after a throttle: a quarter of the ceiling per successful call up to the
        target (just below the refused rate), then 1% of the ceiling per call up to it."""
        self._strikes = 0
        if self.rate < self.target:
            self._set_rate(min(self.target, self.rate + self.ceiling / 4))
        elif self.target < self.ceiling:
            self.target = min(self.ceiling, self.target + self.ceiling * PROBE_STEP)
            self._set_rate(self.target)
        elif self.rate > self.ceiling:
            self._set_rate(self.ceiling)

    def throttled(self, take: Take | None = None) -> None:
        """Slow down after a 429: empty the bucket and half the rate (at least 1/16 of the ceiling).

        Once per congestion event, like TCP: the 429s of calls sent before the last slowdown
        (in flight together) are answered by it already, and halving for each would drop a lane
        with ten calls in flight to its floor. A lone 429 at the rate Amazon confirmed only
        empties the bucket (ours ran ahead of Amazon's; a whole token's wait puts it in step).
        """
        if take is not None and self._reacted_at is not None and take.at < self._reacted_at:
            return
        self._strikes += 1
        if not (self.confirmed and self._strikes == 1 and self.rate >= self.ceiling):
            floor = self.ceiling / 16
            self.target = max(floor, self.rate * TARGET_BELOW_REFUSED)
            self._set_rate(max(floor, self.rate / 2))
        self.bucket.wait_time()  # refill up to now, so the emptying below dates from now
        self.bucket.tokens = 0.0
        self._reacted_at = self._timer.now()


@dataclass(frozen=True)
class Take:
    """A token taken from a lane: seconds waited, when, and whether it left a full bucket."""

    waited: float
    at: float
    from_full: bool


# ---- Counters -----------------------------------------------------------------------------------


@dataclass
class CallStats:
    """What happened to the calls of one operation (for progress display and benchmarks)."""

    calls: int = 0  # HTTP requests sent
    retries: int = 0
    throttled: int = 0  # 429 answers
    server_errors: int = 0  # 5xx answers
    transport_errors: int = 0  # timeouts, refused or dropped connections
    refreshes: int = 0  # token refreshes after an expired-token answer
    rate_wait: float = 0.0  # Timer seconds spent waiting for the rate limiter
    backoff_wait: float = 0.0  # Timer seconds spent in backoff sleeps

    def as_dict(self) -> dict[str, float]:
        """The counters as a plain dict."""
        return asdict(self)


# Transport failures after which the request may have reached the server (and been applied).
_AMBIGUOUS = (httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.WriteError,
              httpx.RemoteProtocolError)


def retry_after_seconds(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date), None if absent."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass
class _Failure:
    error: ApiCallError
    delay: float | None  # Retry-After when the server gave one


class ApiHttp:
    """Rate-limited, retrying calls to one API (`api` is "ads", "spapi" or "lwa")."""

    def __init__(
        self,
        api: str,
        *,
        base_url: str = "",
        limits: Mapping[str, RateLimit] | None = None,
        error_parser: ErrorParser = plain_error,
        expired_statuses: Collection[int] = (),
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        timer: Timer | None = None,
        rng: random.Random | None = None,
        headers: Mapping[str, str] | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: SharedBudget | None = None,
    ) -> None:
        self.api = api
        self.shared = shared
        self.limits = dict(limits or {})
        self.retry = retry or RetryPolicy()
        self.timeouts = timeouts or Timeouts()
        self.timer: Timer = timer or SystemTimer()
        self._rng = rng or random.Random()
        self._parse_error = error_parser
        self._expired = frozenset(expired_statuses)
        self._lanes: dict[tuple[str, str], Lane] = {}
        self._stats: dict[str, CallStats] = {}
        self.client = httpx.AsyncClient(
            base_url=base_url, timeout=self.timeouts.to_httpx(), headers=dict(headers or {}),
            transport=transport, follow_redirects=False,
        )

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

    # -- bookkeeping

    def stats(self) -> dict[str, CallStats]:
        """Counters per operation (`api.operation`), as of now."""
        return {k: replace(v) for k, v in self._stats.items()}

    def _stat(self, name: str) -> CallStats:
        return self._stats.setdefault(name, CallStats())

    def lane(self, account: str, operation: str) -> Lane | None:
        """The rate-limit lane of (account, operation); None when the operation has no limit."""
        limit = self.limits.get(operation)
        if limit is None:
            return None
        key = (account, operation)
        if key not in self._lanes:
            self._lanes[key] = Lane(limit, self.timer, shared=self.shared,
                                    shared_key=f"{self.api}|{account}|{operation}")
        return self._lanes[key]

    # -- errors

    def _describe(self, name: str, response: httpx.Response) -> tuple[str, str | None, str | None]:
        code, message = self._parse_error(response)
        parts = [f"{name}: HTTP {response.status_code}"]
        if code and code != str(response.status_code):
            parts.append(code)
        text = " ".join(parts)
        if message:
            text += f": {message}"
        return text, code, message

    def error_for(self, name: str, response: httpx.Response) -> ApiCallError:
        """The exception for an error answer (status, Amazon's code and message; no secret)."""
        text, code, message = self._describe(name, response)
        status = response.status_code
        kwargs: dict[str, Any] = {"operation": name, "status": status, "code": code,
                                  "amazon_message": message}
        if status == 429:
            return ThrottledError(text, **kwargs)
        if status >= 500:
            return RemoteError(text, **kwargs)
        if status in (401, 403):
            return AuthError(text)
        if status == 404:
            return NotFoundError(text, **kwargs)
        return ApiRequestError(text, **kwargs)

    def _transport_error(self, name: str, exc: httpx.TransportError, *, idempotent: bool
                         ) -> tuple[ApiCallError, bool]:
        """(exception, retryable) for a transport failure."""
        what = f"{type(exc).__name__}" + (f": {exc}" if str(exc) else "")
        if not idempotent and isinstance(exc, _AMBIGUOUS):
            return OutcomeUnknown(
                f"{name}: the answer was lost ({what}); the request may have been applied",
                operation=name,
            ), False
        if isinstance(exc, httpx.TimeoutException):
            return RequestTimeout(f"{name}: timed out ({what})", operation=name), True
        return RemoteError(f"{name}: {what}", operation=name), True

    # -- the call

    async def call(
        self,
        operation: str,
        method: str,
        url: str,
        *,
        account: str = "",
        auth: TokenAuth | None = None,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        json: Any = None,
        data: Mapping[str, str] | None = None,
        content: bytes | None = None,
        ok: Collection[int] = (200,),
        idempotent: bool = True,
    ) -> httpx.Response:
        """The successful response of one API call, after rate limiting and retries; raises an
        ApiCallError (or AuthError) subclass saying what failed."""
        name = f"{self.api}.{operation}"
        stat = self._stat(name)
        lane = self.lane(account, operation)
        started, limiter_wait, failures, refreshed = self.timer.now(), 0.0, 0, False
        while True:
            take = None
            if lane is not None:
                take = await lane.take()
                limiter_wait += take.waited
                stat.rate_wait += take.waited
            request_headers = dict(headers or {})
            token: SecretStr | None = None
            if auth is not None:
                token = await auth.source.token()
                request_headers.update(auth.headers(token))
            stat.calls += 1
            try:
                response = await self.client.request(
                    method, url, headers=request_headers, params=params, json=json, data=data,
                    content=content,
                )
            except httpx.TransportError as exc:
                if lane is not None and take is not None:
                    lane.answered(take)
                stat.transport_errors += 1
                error, retryable = self._transport_error(name, exc, idempotent=idempotent)
                if not retryable:
                    raise error from None
                failure = _Failure(error, None)
            else:
                status = response.status_code
                if lane is not None and take is not None:
                    lane.answered(take)
                    lane.observe(response.headers.get(RATE_LIMIT_HEADER))
                if status in ok:
                    if lane is not None:
                        lane.succeeded()
                    return response
                if status in self._expired and auth is not None and not refreshed:
                    # The token expired under us (or was revoked): refresh once, call once more.
                    refreshed = True
                    stat.refreshes += 1
                    log.info("%s: HTTP %d, refreshing the access token once", name, status)
                    await auth.source.refresh(token)
                    continue
                if status == 429:
                    stat.throttled += 1
                    if lane is not None:
                        lane.throttled(take)
                        await lane.share_throttle()
                elif status >= 500:
                    stat.server_errors += 1
                else:
                    raise self.error_for(name, response)
                failure = _Failure(self.error_for(name, response),
                                   retry_after_seconds(response.headers.get("Retry-After")))
            failures += 1
            delay = await self._backoff(name, stat, failure, failures, started, limiter_wait)
            log.info("%s: %s; retry %d of %d in %.3gs", name, failure.error, failures,
                     self.retry.max_attempts - 1, delay)

    async def _backoff(self, name: str, stat: CallStats, failure: _Failure, failures: int,
                       started: float, limiter_wait: float) -> float:
        """Sleep before the next attempt; raises the failure when the budget is spent."""
        error = failure.error
        if failures >= self.retry.max_attempts:
            raise type(error)(f"{error} (gave up after {failures} attempts)", **_fields(error))
        delay = failure.delay
        if delay is None:
            delay = self.retry.backoff(failures - 1, self._rng.random())
        elapsed = self.timer.now() - started - limiter_wait
        if elapsed + delay > self.retry.max_elapsed:
            raise type(error)(
                f"{error} (gave up after {failures} attempts: the next wait of {delay:.3g}s would "
                f"pass the {self.retry.max_elapsed:g}s retry budget)", **_fields(error),
            )
        stat.retries += 1
        stat.backoff_wait += delay
        await self.timer.sleep(delay)
        return delay

    # -- downloads

    async def stream(self, operation: str, url: str, *, chunk_size: int | None = None
                     ) -> AsyncIterator[bytes]:
        """The raw bytes at `url`, as served (no auth headers, no decompression), chunk by chunk.

        The request is retried (5xx, 429, transport errors) until the first byte arrives; a
        stream that breaks off later raises RemoteError and the caller starts again.
        """
        name = f"{self.api}.{operation}"
        stat = self._stat(name)
        where = redact_url(url)
        started, failures = self.timer.now(), 0
        while True:
            stat.calls += 1
            received = 0
            try:
                async with self.client.stream("GET", url) as response:
                    if response.status_code == 200:
                        piece = chunk_size or DOWNLOAD_CHUNK
                        buffer = bytearray()
                        try:
                            async for chunk in response.aiter_raw():
                                received += len(chunk)
                                buffer += chunk
                                if len(buffer) >= piece:
                                    yield bytes(buffer)
                                    buffer.clear()
                            if buffer:
                                yield bytes(buffer)
                        except httpx.TransportError as exc:
                            stat.transport_errors += 1
                            raise RemoteError(
                                f"{name}: download from {where} broke off after {received} bytes "
                                f"({type(exc).__name__}: {exc})", operation=name,
                            ) from None
                        return
                    await response.aread()
                    failure = self._download_failure(name, where, response, stat)
            except httpx.TransportError as exc:
                stat.transport_errors += 1
                error, _ = self._transport_error(name, exc, idempotent=True)
                failure = _Failure(error, None)
            failures += 1
            await self._backoff(name, stat, failure, failures, started, 0.0)

    def _download_failure(self, name: str, where: str, response: httpx.Response,
                          stat: CallStats) -> _Failure:
        status = response.status_code
        code, message = s3_error(response)
        text = f"{name}: HTTP {status} {code or ''}".rstrip() + f" from {where}" + (
            f": {message}" if message else "")
        kwargs: dict[str, Any] = {"operation": name, "status": status, "code": code,
                                  "amazon_message": message}
        if status == 429 or status >= 500:
            if status == 429:
                stat.throttled += 1
            else:
                stat.server_errors += 1
            error_type = ThrottledError if status == 429 else RemoteError
            return _Failure(error_type(text, **kwargs),
                            retry_after_seconds(response.headers.get("Retry-After")))
        if status == 403:
            # S3 answers an expired presigned URL with 403 AccessDenied "Request has expired".
            raise UrlExpired(text, **kwargs)
        if status == 404:
            raise NotFoundError(text, **kwargs)
        raise ApiRequestError(text, **kwargs)


def _fields(error: ApiCallError) -> dict[str, Any]:
    return {"operation": error.operation, "status": error.status, "code": error.code,
            "amazon_message": error.amazon_message}


class ApiClient:
    """What the Ads and SP-API clients share: their ApiHttp, closing it, document downloads."""

    http: ApiHttp

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close connections."""
        await self.http.aclose()

    def download(self, url: str, *, chunk_size: int | None = None) -> AsyncIterator[bytes]:
        """A report document's raw bytes, as served at its presigned URL (gzip as stored, no
        decompression, no auth headers: the URL's signature is the credential)."""
        return self.http.stream("download", url, chunk_size=chunk_size)
