"""Scenarios and fault injection: what the emulator does wrong, when, and how often.

A scenario (TOML or JSON file, or `--fault` flags) lists faults. Each fault matches calls by
operation (a glob over names such as `spapi.createReport`, `ads.download`, `lwa.token`) and
optionally by report type, skips the first `after` matches, fires at most `times` times, each
time with `probability` (drawn from the seed, so runs repeat exactly).
"""

from __future__ import annotations

import fnmatch
import json
import random
import threading
import tomllib
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from amzlake.errors import ScenarioError


class Outcome(StrEnum):
    """How a report ends: its data, a failure, no data, or never."""

    DONE = "DONE"
    FAILED = "FAILED"  # Ads FAILED, SP-API FATAL
    CANCELLED = "CANCELLED"  # SP-API: no data
    STUCK = "STUCK"  # never leaves the queue


@dataclass(frozen=True)
class ReportFault:
    """An injected fate for a new report; `reason` is the failure text, if any."""

    outcome: Outcome
    reason: str | None = None
    plain: bool = False  # SP-API: the document is served uncompressed
    no_rows: bool = False  # Ads: the report completes with an empty document (`[]`)


class FaultKind(StrEnum):
    """Every fault the emulator can inject."""

    # On any API call (matched by operation).
    THROTTLE = "throttle"  # 429 in the API's own shape
    SERVER_ERROR = "server_error"  # 500/502/503/504
    SLOW = "slow"  # the response waits `seconds` (real time) first
    HANG = "hang"  # the response never comes within `seconds` (real time; default an hour)
    # On a document download (operations ads.download / spapi.download).
    DROP_DOWNLOAD = "drop_download"  # connection closed after `fraction` of the bytes
    TRUNCATE = "truncate"  # a complete response holding only `fraction` of the gzip
    CORRUPT = "corrupt"  # full length, some bytes flipped: the gzip CRC fails
    EXPIRE_URL = "expire_url"  # the URL is refused as expired
    # On a report create (operations ads.createAsyncReport / spapi.createReport).
    FATAL = "fatal"  # Ads FAILED / SP-API FATAL with `reason`
    CANCELLED = "cancelled"  # SP-API CANCELLED (no data)
    STUCK = "stuck"  # the report never leaves the queue
    # SP-API: the document comes without compressionAlgorithm, its bytes plain JSON, as the spec
    # allows ("compressionAlgorithm" is optional; absent, the bytes are the document as is).
    UNCOMPRESSED = "uncompressed"
    # Ads: the report completes and its document holds no rows, `[]` (a day without traffic).
    NO_ROWS = "no_rows"
    # On an LWA token grant (operation lwa.token).
    TOKEN_EXPIRY = "token_expiry"  # access tokens issued expire after `seconds` of virtual time


CALL_FAULTS = {FaultKind.THROTTLE, FaultKind.SERVER_ERROR, FaultKind.SLOW, FaultKind.HANG}
DOWNLOAD_FAULTS = {
    FaultKind.DROP_DOWNLOAD, FaultKind.TRUNCATE, FaultKind.CORRUPT, FaultKind.EXPIRE_URL,
    FaultKind.SLOW, FaultKind.SERVER_ERROR,
}
REPORT_FAULTS = {FaultKind.FATAL, FaultKind.CANCELLED, FaultKind.STUCK, FaultKind.UNCOMPRESSED,
                 FaultKind.NO_ROWS}
TOKEN_FAULTS = {FaultKind.TOKEN_EXPIRY}

_DEFAULT_OPERATION = {
    FaultKind.DROP_DOWNLOAD: "*.download",
    FaultKind.TRUNCATE: "*.download",
    FaultKind.CORRUPT: "*.download",
    FaultKind.EXPIRE_URL: "*.download",
    FaultKind.FATAL: "*.create*Report",
    FaultKind.CANCELLED: "spapi.createReport",
    FaultKind.STUCK: "*.create*Report",
    FaultKind.UNCOMPRESSED: "spapi.createReport",
    FaultKind.NO_ROWS: "ads.createAsyncReport",
    FaultKind.TOKEN_EXPIRY: "lwa.token",
}


class Fault(BaseModel):
    """One fault rule."""

    model_config = ConfigDict(extra="forbid")

    kind: FaultKind
    operation: str | None = Field(
        None, description="glob over operation names; default depends on the kind"
    )
    report_type: str | None = Field(None, description="glob over report types (reportTypeId)")
    after: int = Field(0, ge=0, description="let this many matching calls through first")
    times: int | None = Field(None, ge=1, description="fire at most this many times (default: always)")
    probability: float = Field(1.0, ge=0.0, le=1.0)
    status: int = Field(503, description="HTTP status for server_error")
    # slow/hang: the delay in real seconds; token_expiry: the token lifetime in virtual seconds.
    seconds: float | None = Field(None, gt=0)
    fraction: float = Field(0.5, gt=0.0, lt=1.0, description="share of the document served")
    reason: str | None = Field(None, description="failure text for fatal")

    @field_validator("status")
    @classmethod
    def _server_status(cls, v: int) -> int:
        if v not in (500, 502, 503, 504):
            raise ValueError("status must be one of 500, 502, 503, 504")
        return v

    @model_validator(mode="after")
    def _operation_fits_kind(self) -> Fault:
        if self.operation is None:
            self.operation = _DEFAULT_OPERATION.get(self.kind, "*")
        if self.kind == FaultKind.TOKEN_EXPIRY and self.seconds is None:
            raise ValueError("token_expiry needs seconds (the access-token lifetime)")
        return self

    def matches(self, operation: str, report_type: str | None) -> bool:
        """Whether this rule applies to a call of `operation` (for `report_type`)."""
        if not fnmatch.fnmatchcase(operation, self.operation or "*"):
            return False
        if self.report_type is None:
            return True
        return report_type is not None and fnmatch.fnmatchcase(report_type, self.report_type)


class Delays(BaseModel):
    """How long reports wait in the queue and process, in virtual seconds (lognormal medians)."""

    model_config = ConfigDict(extra="forbid")

    ads_queue: float = Field(30.0, ge=0)
    ads_processing: float = Field(150.0, ge=0)
    spapi_queue: float = Field(20.0, ge=0)
    spapi_processing: float = Field(90.0, ge=0)
    # Spread of the lognormal; 0 makes every delay exactly its median.
    sigma: float = Field(0.6, ge=0, le=3)


class Scenario(BaseModel):
    """Everything that shapes one emulator run; a scenario file holds any subset of it."""

    model_config = ConfigDict(extra="forbid")

    seed: int = 1
    time_scale: float = Field(1.0, gt=0, description="virtual seconds per real second")
    now: datetime | None = Field(None, description="virtual start time (default: the real now)")
    size: int = Field(1, ge=1, le=100_000, description="multiplies every account's entity counts")
    profiles: int = Field(3, ge=1, le=1000, description="how many Ads profiles the login has")
    token_lifetime: float = Field(3600.0, gt=0, description="access-token lifetime, virtual seconds")
    delays: Delays = Field(default_factory=Delays)
    faults: list[Fault] = Field(default_factory=list)

    @field_validator("now")
    @classmethod
    def _aware(cls, v: datetime | None) -> datetime | None:
        if v is not None and v.tzinfo is None:
            raise ValueError("now must carry a time zone, e.g. 2026-11-27T08:00:00Z")
        return v


def _describe(error: ValidationError, source: str) -> str:
    first = error.errors()[0]
    where = ".".join(str(p) for p in first["loc"]) or "(top level)"
    got = first.get("input")
    got_text = "" if isinstance(got, dict) else f" (got {got!r})"
    more = len(error.errors()) - 1
    tail = f"; and {more} more problem(s)" if more else ""
    return f"{source}: {where}: {first['msg']}{got_text}{tail}"


def scenario_from_dict(data: dict[str, Any], source: str = "scenario") -> Scenario:
    """Validate a scenario mapping; a problem raises ScenarioError naming the field and value."""
    try:
        return Scenario.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_describe(e, source)) from None


def load_scenario(path: Path) -> Scenario:
    """Read a scenario from a TOML or JSON file."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as e:
        raise ScenarioError(f"cannot read scenario file {path}: {e.strerror}") from None
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        kind = "JSON" if path.suffix.lower() == ".json" else "TOML"
        raise ScenarioError(f"{path}: not valid {kind}: {e}") from None
    if not isinstance(data, dict):
        raise ScenarioError(f"{path}: the top level must be a table/object")
    return scenario_from_dict(data, str(path))


def parse_fault_flag(text: str) -> Fault:
    """Parse `KIND[:key=value,...]`, e.g. `throttle:operation=spapi.createReport,times=3`."""
    kind, _, rest = text.partition(":")
    data: dict[str, Any] = {"kind": kind.strip()}
    for item in filter(None, (p.strip() for p in rest.split(","))):
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise ScenarioError(f"--fault {text!r}: expected key=value, got {item!r}")
        data[key.strip()] = value.strip()
    try:
        return Fault.model_validate(data)
    except ValidationError as e:
        raise ScenarioError(_describe(e, f"--fault {text!r}")) from None


class FaultPlan:
    """Decides, call by call, which fault (if any) fires; thread-safe and seeded."""

    def __init__(self, faults: list[Fault], seed: int) -> None:
        self._rules = list(faults)
        self._seen = [0] * len(self._rules)
        self._fired = [0] * len(self._rules)
        self._rng = random.Random(seed)
        self._lock = threading.Lock()

    def _pick(self, kinds: set[FaultKind], operation: str, report_type: str | None) -> Fault | None:
        with self._lock:
            for i, rule in enumerate(self._rules):
                if rule.kind not in kinds or not rule.matches(operation, report_type):
                    continue
                self._seen[i] += 1
                if self._seen[i] <= rule.after:
                    continue
                if rule.times is not None and self._fired[i] >= rule.times:
                    continue
                if rule.probability < 1.0 and self._rng.random() >= rule.probability:
                    continue
                self._fired[i] += 1
                return rule
        return None

    def call_fault(self, operation: str, report_type: str | None = None) -> Fault | None:
        """The fault for an API call: throttle, server_error, slow or hang."""
        return self._pick(CALL_FAULTS, operation, report_type)

    def download_fault(self, operation: str, report_type: str | None = None) -> Fault | None:
        """The fault for a document download."""
        return self._pick(DOWNLOAD_FAULTS, operation, report_type)

    def report_fault(self, api: str, report_type: str | None = None) -> ReportFault | None:
        """The fate injected into a new report of `api` ("ads" | "spapi"), if any."""
        operation = "ads.createAsyncReport" if api == "ads" else "spapi.createReport"
        rule = self._pick(REPORT_FAULTS, operation, report_type)
        if rule is None:
            return None
        if rule.kind == FaultKind.UNCOMPRESSED:
            return ReportFault(Outcome.DONE, plain=True)
        if rule.kind == FaultKind.NO_ROWS:
            return ReportFault(Outcome.DONE, no_rows=True)
        outcome = {
            FaultKind.FATAL: Outcome.FAILED,
            FaultKind.CANCELLED: Outcome.CANCELLED,
            FaultKind.STUCK: Outcome.STUCK,
        }[rule.kind]
        return ReportFault(outcome, rule.reason)

    def token_lifetime(self, default: float) -> float:
        """The lifetime (virtual seconds) of the access token being issued."""
        rule = self._pick(TOKEN_FAULTS, "lwa.token", None)
        return rule.seconds if rule is not None and rule.seconds else default

    def summary(self) -> list[dict[str, Any]]:
        """Each rule with how often it matched and fired."""
        with self._lock:
            return [
                {**r.model_dump(mode="json", exclude_none=True), "matched": s, "fired": f}
                for r, s, f in zip(self._rules, self._seen, self._fired, strict=True)
            ]
