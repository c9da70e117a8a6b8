"""The emulator's shared state and the request guard every API handler goes through."""

from __future__ import annotations

import asyncio
import secrets
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from amzlake.catalog.limits import RateLimit
from amzlake.clock import ScaledClock
from amzlake.emulator.faults import Fault, FaultKind, FaultPlan, Outcome, ReportFault, Scenario
from amzlake.emulator.jobs import JobStatus, JobStore, ReportJob
from amzlake.emulator.world import VendorAccount, World, build_world
from amzlake.ratelimit import BucketSet

__all__ = [
    "ApiError", "AuthFailure", "EmulatorState", "Grant", "JobStatus", "Outcome", "ReportFault",
    "ReportJob", "TokenExpired", "TokenInvalid", "render_error", "request_region",
]


class ApiError(Exception):
    """An error response; each API renders it in its own body shape (see `render_error`)."""

    def __init__(self, status: int, code: str, message: str, *, details: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.headers = headers or {}


def render_error(api: str, error: ApiError) -> Response:
    """`error` as Ads ({code, detail}) or SP-API ({errors: [{code, message, details}]}) renders it."""
    if api == "ads":
        body: dict[str, Any] = {"code": error.code, "detail": error.message}
    else:
        item = {"code": error.code, "message": error.message}
        if error.details is not None:
            item["details"] = error.details
        body = {"errors": [item]}
    return JSONResponse(body, status_code=error.status, headers=error.headers)


class AuthFailure(Exception):
    """An access token the emulator does not accept."""


class TokenInvalid(AuthFailure):
    """The access token was never issued."""


class TokenExpired(AuthFailure):
    """The access token was issued but has expired."""


@dataclass(frozen=True)
class Grant:
    """What an access token stands for: the Ads login (vendor None) or one vendor account."""

    refresh_token: str
    client_id: str
    vendor: VendorAccount | None
    expires_at: datetime


class LwaRejected(Exception):
    """An LWA token request refused with `error` (invalid_client, invalid_grant, ...)."""

    def __init__(self, error: str, description: str) -> None:
        super().__init__(description)
        self.error = error
        self.description = description


class TokenStore:
    """Access tokens issued by the emulated LWA, checked on every API call."""

    def __init__(self, world: World, clock: ScaledClock, faults: FaultPlan, lifetime: float) -> None:
        self._world = world
        self._clock = clock
        self._faults = faults
        self._lifetime = lifetime
        self._grants: dict[str, Grant] = {}
        self._lock = threading.Lock()

    def issue(self, client_id: str, client_secret: str, refresh_token: str) -> tuple[str, int]:
        """An access token and its lifetime in seconds, for a valid app and refresh token."""
        app = self._world.lwa_app
        if client_id != app.client_id or not secrets.compare_digest(client_secret, app.client_secret):
            raise LwaRejected("invalid_client", "Client authentication failed")
        vendor = self._world.vendor_by_refresh_token(refresh_token)
        if vendor is None and refresh_token != self._world.ads_refresh_token:
            raise LwaRejected("invalid_grant", "The request has an invalid grant parameter : refresh_token")
        lifetime = self._faults.token_lifetime(self._lifetime)
        token = "Atza|" + secrets.token_urlsafe(96)
        grant = Grant(refresh_token, client_id, vendor,
                      self._clock.now() + timedelta(seconds=lifetime))
        with self._lock:
            self._grants[token] = grant
        return token, max(1, round(lifetime))

    def resolve(self, access_token: str) -> Grant:
        """The grant behind `access_token`; raises TokenInvalid or TokenExpired."""
        grant = self._grants.get(access_token)
        if grant is None:
            raise TokenInvalid("access token not recognised")
        if self._clock.now() >= grant.expires_at:
            raise TokenExpired("access token expired")
        return grant


class CallLog:
    """Counts calls per operation and creates per distinct request."""

    def __init__(self) -> None:
        self._calls: Counter[str] = Counter()
        self._creates: dict[tuple[str, str], dict[str, Any]] = {}
        self._lock = threading.Lock()

    def record(self, operation: str) -> None:
        """Count one call of `operation`."""
        with self._lock:
            self._calls[operation] += 1

    def record_create(self, api: str, dedupe_key: str, summary: dict[str, Any]) -> None:
        """Count one accepted create of the request identified by `dedupe_key`."""
        with self._lock:
            entry = self._creates.setdefault((api, dedupe_key), {"count": 0, "request": summary})
            entry["count"] += 1

    def reset(self) -> None:
        """Forget every count."""
        with self._lock:
            self._calls.clear()
            self._creates.clear()

    def snapshot(self) -> dict[str, Any]:
        """Counts as served by GET /_emulator/calls."""
        with self._lock:
            creates = [
                {"api": api, "key": key, **entry} for (api, key), entry in self._creates.items()
            ]
            return {
                "calls": dict(sorted(self._calls.items())),
                "creates": creates,
                "distinct_requests": len(creates),
                "duplicate_creates": sum(c["count"] - 1 for c in creates),
            }


_THROTTLE = {
    "ads": ("429", "Too Many Requests"),
    "spapi": ("QuotaExceeded", "You exceeded your quota for the requested resource."),
}
_SERVER = {
    500: ("InternalFailure", "We encountered an internal error. Please try again."),
    502: ("BadGateway", "Bad gateway."),
    503: ("ServiceUnavailable", "Service temporarily unavailable. Please try again."),
    504: ("GatewayTimeout", "The request timed out."),
}


def throttled(api: str) -> ApiError:
    """The 429 each API answers when a caller is over its quota."""
    code, message = _THROTTLE[api]
    headers = {"x-amzn-ErrorType": "ThrottlingException"}
    if api == "ads":
        headers["amazon-advertising-api-throttled"] = "true"
    return ApiError(429, code, message, details="" if api == "spapi" else None, headers=headers)


def server_error(api: str, status: int) -> ApiError:
    """A 5xx in the API's shape."""
    code, message = _SERVER[status]
    return ApiError(status, str(status) if api == "ads" else code, message)


@dataclass
class EmulatorState:
    """Everything a running emulator holds; one per server, no globals."""

    scenario: Scenario
    world: World
    clock: ScaledClock
    faults: FaultPlan
    tokens: TokenStore
    calls: CallLog
    jobs: JobStore
    limiter: BucketSet
    _hangs: set[asyncio.Task[Any]] = field(default_factory=set)

    @classmethod
    def from_scenario(cls, scenario: Scenario, spool_dir: Path | None = None) -> EmulatorState:
        """Build the state a scenario describes."""
        clock = ScaledClock(scenario.time_scale, scenario.now)
        world = build_world(scenario.seed, scenario.size, profiles=scenario.profiles)
        faults = FaultPlan(scenario.faults, scenario.seed)
        return cls(
            scenario=scenario,
            world=world,
            clock=clock,
            faults=faults,
            tokens=TokenStore(world, clock, faults, scenario.token_lifetime),
            calls=CallLog(),
            jobs=JobStore(clock.now, scenario.seed, scenario.delays, spool_dir),
            limiter=BucketSet(clock.elapsed),
        )

    @property
    def seed(self) -> int:
        return self.scenario.seed

    def close(self) -> None:
        """Release worker threads and the document spool."""
        self.jobs.close()

    async def apply_call_fault(self, api: str, fault: Fault | None) -> None:
        """Act out a throttle, 5xx, slow or hang fault (raising ApiError where it answers)."""
        if fault is None:
            return
        if fault.kind == FaultKind.THROTTLE:
            raise throttled(api)
        if fault.kind == FaultKind.SERVER_ERROR:
            raise server_error(api, fault.status)
        if fault.kind == FaultKind.SLOW:
            await asyncio.sleep(fault.seconds or 5.0)
        elif fault.kind == FaultKind.HANG:
            await asyncio.sleep(fault.seconds or 3600.0)
            raise server_error(api, 504)

    async def guard(self, request: Request, operation: str, *, api: str,
                    limit: RateLimit | None, limit_key: str,
                    report_type: str | None = None) -> RateLimit | None:
        """Count the call, inject any fault for it and charge its rate limit; raises ApiError."""
        self.calls.record(operation)
        await self.apply_call_fault(api, self.faults.call_fault(operation, report_type))
        if limit is not None and not self.limiter.try_take((api, limit_key, operation), limit):
            raise throttled(api)
        return limit

    def document_url(self, request: Request, job: ReportJob, ttl_seconds: float,
                     content_encoding: bool = False) -> tuple[str, datetime]:
        """An unauthenticated download URL for `job`'s document, and when it expires."""
        return self.jobs.document_url(request, job, ttl_seconds, content_encoding)


def request_region(request: Request) -> str | None:
    """The region whose host a request reached (`NA`, `EU`, `FE`), or None at the all-regions root."""
    root = request.scope.get("root_path", "").rstrip("/")
    tail = root.rsplit("/", 1)[-1].upper()
    return tail if tail in ("NA", "EU", "FE") else None
