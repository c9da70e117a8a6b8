"""Amazon Ads API client: profiles (v2) and asynchronous reporting v3.

Shapes, content types and status values are those of Amazon's OpenAPI specs in
shared/reference/ads/ (OfflineReport_prod_3p.json, Profiles_prod_3p.yaml); behaviour not in the
spec (the 425 duplicate's detail text, URLs fetched without auth) from ads-facts.md §4-5.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum
from typing import Any

import httpx
import orjson

from amzlake.catalog.limits import ADS_REPORTING_LIMITS, RateLimit
from amzlake.errors import ApiRequestError, UnexpectedResponse
from amzlake.ratelimit import SharedBudget
from amzlake.slices import AdsReportSpec
from amzlake.sources.answers import parse_status, parse_timestamp
from amzlake.sources.http import (
    ApiClient,
    ApiHttp,
    RetryPolicy,
    Timeouts,
    Timer,
    TokenAuth,
    TokenSource,
    ads_error,
)

# Content types of the reporting v3 operations, exactly as the OpenAPI spec names them.
CREATE_REQUEST_TYPE = "application/vnd.createasyncreportrequest.v3+json"
CREATE_RESPONSE_TYPE = "application/vnd.createasyncreportresponse.v3+json"
GET_RESPONSE_TYPE = "application/vnd.getasyncreportresponse.v3+json"
DELETE_RESPONSE_TYPE = "application/vnd.deleteasyncreportresponse.v3+json"

# "The Request is a duplicate of : <reportId>" (ads-facts §5; Airbyte's DuplicateReport handling).
_DUPLICATE = re.compile(r"duplicate of\s*:?\s*([0-9A-Za-z][0-9A-Za-z_-]*)", re.IGNORECASE)


class AdsReportStatus(StrEnum):
    """AsyncReport.status in the spec."""

    PENDING = "PENDING"
    PROCESSING = "PROCESSING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


@dataclass(frozen=True)
class Profile:
    """An Ads profile as GET /v2/profiles describes it."""

    profile_id: int
    country_code: str
    currency_code: str
    timezone: str
    marketplace_id: str | None
    account_type: str | None
    account_name: str | None
    account_id: str | None

    @classmethod
    def from_json(cls, item: Any) -> Profile:
        """The profile in one item of the listProfiles answer."""
        if not isinstance(item, dict) or "profileId" not in item:
            raise UnexpectedResponse(f"ads.listProfiles: not a profile: {str(item)[:200]}",
                                     operation="ads.listProfiles")
        info = item.get("accountInfo") or {}
        return cls(
            profile_id=int(item["profileId"]),
            country_code=str(item.get("countryCode", "")),
            currency_code=str(item.get("currencyCode", "")),
            timezone=str(item.get("timezone", "")),
            marketplace_id=info.get("marketplaceStringId"),
            account_type=info.get("type"),
            account_name=info.get("name"),
            account_id=None if info.get("id") is None else str(info["id"]),
        )






@dataclass(frozen=True)
class AdsReport:
    """An AsyncReport: the answer of createAsyncReport and getAsyncReport."""

    report_id: str
    status: AdsReportStatus
    start_date: str
    end_date: str
    configuration: dict[str, Any]
    name: str | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    generated_at: datetime | None = None
    url: str | None = None
    url_expires_at: datetime | None = None
    file_size: int | None = None
    failure_reason: str | None = None

    @property
    def done(self) -> bool:
        """Whether the report reached a final status (COMPLETED or FAILED)."""
        return self.status in (AdsReportStatus.COMPLETED, AdsReportStatus.FAILED)

    @classmethod
    def from_json(cls, body: Any, operation: str) -> AdsReport:
        """Parse an AsyncReport; an unknown status raises UnexpectedResponse with the raw value."""
        if not isinstance(body, dict) or not body.get("reportId"):
            raise UnexpectedResponse(f"{operation}: the answer is not an AsyncReport",
                                     operation=operation)
        size = body.get("fileSize")
        return cls(
            report_id=str(body["reportId"]),
            status=parse_status(AdsReportStatus, body.get("status"), operation, "report status"),
            start_date=str(body.get("startDate", "")),
            end_date=str(body.get("endDate", "")),
            configuration=dict(body.get("configuration") or {}),
            name=body.get("name"),
            created_at=parse_timestamp(body.get("createdAt")),
            updated_at=parse_timestamp(body.get("updatedAt")),
            generated_at=parse_timestamp(body.get("generatedAt")),
            url=body.get("url"),
            url_expires_at=parse_timestamp(body.get("urlExpiresAt")),
            file_size=None if size is None else int(size),
            failure_reason=body.get("failureReason"),
        )


@dataclass(frozen=True)
class AdsCreated:
    """What a create gave: a new report, or (HTTP 425) the live report it duplicates.

    On a duplicate, `report` is None: poll `report_id` with get_report to re-attach.
    """

    report_id: str
    duplicate: bool
    report: AdsReport | None


def report_request(spec: AdsReportSpec, start: date, end: date, name: str | None = None
                   ) -> dict[str, Any]:
    """The CreateAsyncReportRequest body for `spec` over the profile-local days start..end."""
    configuration: dict[str, Any] = {
        "adProduct": spec.ad_product,
        "reportTypeId": spec.report_type_id,
        "groupBy": list(spec.group_by),
        "columns": list(spec.columns),
        "timeUnit": spec.time_unit,
        "format": spec.format,
    }
    if spec.filters:
        configuration["filters"] = [{"field": f, "values": list(v)} for f, v in spec.filters]
    body: dict[str, Any] = {
        "startDate": start.isoformat(),
        "endDate": end.isoformat(),
        "configuration": configuration,
    }
    if name is not None:
        body["name"] = name
    return body


def duplicate_report_id(detail: str | None) -> str | None:
    """The report id named in a 425 answer's detail, if it names one."""
    match = _DUPLICATE.search(detail or "")
    return match.group(1) if match else None


class AdsClient(ApiClient):
    """Ads reporting v3 and profiles for one LWA app in one region."""

    def __init__(
        self,
        base_url: str,
        client_id: str,
        tokens: TokenSource,
        *,
        limits: dict[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        timer: Timer | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: SharedBudget | None = None,
    ) -> None:
        self.client_id = client_id
        self.http = ApiHttp(
            "ads", base_url=base_url.rstrip("/"),
            limits=ADS_REPORTING_LIMITS if limits is None else limits,
            error_parser=ads_error, expired_statuses=(401,), retry=retry, timeouts=timeouts,
            timer=timer, rng=rng, transport=transport, shared=shared,
        )
        self._auth = TokenAuth(tokens, "Authorization", "Bearer ")

    def _headers(self, profile_id: int | str | None, accept: str,
                 content_type: str | None = None) -> dict[str, str]:
        headers = {"Amazon-Advertising-API-ClientId": self.client_id, "Accept": accept}
        if content_type is not None:
            headers["Content-Type"] = content_type
        if profile_id is not None:
            headers["Amazon-Advertising-API-Scope"] = str(profile_id)
        return headers

    async def list_profiles(self) -> list[Profile]:
        """Every profile of the login in this region (GET /v2/profiles)."""
        response = await self.http.call(
            "listProfiles", "GET", "/v2/profiles", account=self.client_id, auth=self._auth,
            headers=self._headers(None, "application/json"),
        )
        body = response.json()
        if not isinstance(body, list):
            raise UnexpectedResponse("ads.listProfiles: the answer is not a list",
                                     operation="ads.listProfiles")
        return [Profile.from_json(item) for item in body]

    async def get_profile(self, profile_id: int) -> Profile:
        """One profile (GET /v2/profiles/{profileId})."""
        response = await self.http.call(
            "getProfile", "GET", f"/v2/profiles/{profile_id}", account=self.client_id,
            auth=self._auth, headers=self._headers(None, "application/json"),
        )
        return Profile.from_json(response.json())

    async def create_report(self, profile_id: int | str, spec: AdsReportSpec, start: date,
                            end: date, name: str | None = None) -> AdsCreated:
        """The new report's id (and AsyncReport), or, when Amazon answers 425, the id of the live
        report with the same request, to re-attach to."""
        operation = "ads.createAsyncReport"
        response = await self.http.call(
            "createAsyncReport", "POST", "/reporting/reports", account=str(profile_id),
            auth=self._auth, ok=(200, 425),
            headers=self._headers(profile_id, CREATE_RESPONSE_TYPE, CREATE_REQUEST_TYPE),
            content=orjson.dumps(report_request(spec, start, end, name)),
            # A lost answer is safe to repeat: Amazon answers the repeat with 425 and the id.
        )
        if response.status_code == 425:
            code, detail = ads_error(response)
            report_id = duplicate_report_id(detail)
            if report_id is None:
                raise ApiRequestError(
                    f"{operation}: HTTP 425 without a report id: {detail}", operation=operation,
                    status=425, code=code, amazon_message=detail,
                )
            return AdsCreated(report_id, True, None)
        report = AdsReport.from_json(response.json(), operation)
        return AdsCreated(report.report_id, False, report)

    async def get_report(self, profile_id: int | str, report_id: str) -> AdsReport:
        """The report's current state (GET /reporting/reports/{reportId})."""
        response = await self.http.call(
            "getAsyncReport", "GET", f"/reporting/reports/{report_id}", account=str(profile_id),
            auth=self._auth, headers=self._headers(profile_id, GET_RESPONSE_TYPE),
        )
        return AdsReport.from_json(response.json(), "ads.getAsyncReport")

    async def delete_report(self, profile_id: int | str, report_id: str) -> None:
        """Cancel a PENDING report (DELETE /reporting/reports/{reportId})."""
        await self.http.call(
            "deleteAsyncReport", "DELETE", f"/reporting/reports/{report_id}",
            account=str(profile_id), auth=self._auth,
            headers=self._headers(profile_id, DELETE_RESPONSE_TYPE),
        )
