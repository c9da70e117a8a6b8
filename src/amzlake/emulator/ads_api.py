"""Amazon Ads API: profiles (Profiles_prod_3p.yaml) and reporting v3 (OfflineReport_prod_3p.json).

GET /v2/profiles, GET /v2/profiles/{profileId}; POST /reporting/reports (createAsyncReport),
GET /reporting/reports/{reportId} (getAsyncReport), DELETE /reporting/reports/{reportId}
(deleteAsyncReport). Thin HTTP shells: authentication and scope, the shared guard (call log,
faults, rate limits), then the pure rules of `amzlake.catalog.ads` and the documents of `ads_data`.
Error bodies are the spec's AsyncReportingError: {"code": "<status>", "detail": "<text>"}.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amzlake.catalog.ads import AdsReportRequest, AdsRequestInvalid, validate_create_request
from amzlake.catalog.limits import ADS_REPORTING_LIMITS
from amzlake.emulator.ads_data import ads_document
from amzlake.emulator.documents import no_rows_document
from amzlake.emulator.state import (
    ApiError,
    AuthFailure,
    EmulatorState,
    JobStatus,
    Outcome,
    ReportJob,
    TokenExpired,
    render_error,
    request_region,
)
from amzlake.emulator.world import AdsProfile

# Content types of the spec. createAsyncReport declares only the vendor type for its body; the
# emulator also takes plain application/json (any JSON media type), because the spec's type is a
# JSON document and rejecting JSON would test nothing a client relies on. Anything else is 415.
CREATE_REQUEST_TYPE = "application/vnd.createasyncreportrequest.v3+json"
CREATE_RESPONSE_TYPE = "application/vnd.createasyncreportresponse.v3+json"
GET_RESPONSE_TYPE = "application/vnd.getasyncreportresponse.v3+json"
DELETE_RESPONSE_TYPE = "application/vnd.deleteasyncreportresponse.v3+json"
# "urlExpiresAt ... defaults to 3600 seconds but may vary" (spec, AsyncReport.urlExpiresAt).
URL_TTL_SECONDS = 3600
# The failure text Amazon gives for an internal error (ads-facts.md §4).
INJECTED_FAILURE = "Report generation failed due to an internal error. Please retry"
# Spec example of a 400 on getAsyncReport/deleteAsyncReport.
BAD_SCOPE = "Invalid Advertiser or Marketplace ID."

_STATUS = {
    JobStatus.QUEUED: "PENDING",
    JobStatus.PROCESSING: "PROCESSING",
    JobStatus.DONE: "COMPLETED",
    JobStatus.FAILED: "FAILED",
    # Ads has no CANCELLED: an injected "cancelled" outcome ends as FAILED (deleted reports are
    # answered 404 before this mapping is used).
    JobStatus.CANCELLED: "FAILED",
}


def _error(status: int, detail: str, headers: dict[str, str] | None = None) -> ApiError:
    return ApiError(status, str(status), detail, headers=headers)


def iso_ms(moment: datetime) -> str:
    """A date-time as Ads v3 prints it: UTC, milliseconds, `Z` (e.g. 2022-07-19T14:03:00.853Z)."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"


def profile_json(profile: AdsProfile) -> dict[str, Any]:
    """The spec's Profile object for `profile`."""
    return {
        "profileId": profile.profile_id,
        "countryCode": profile.country_code,
        "currencyCode": profile.currency_code,
        "dailyBudget": profile.daily_budget,
        "timezone": profile.timezone,
        "accountInfo": {
            "marketplaceStringId": profile.marketplace.marketplace_id,
            "id": profile.account_id,
            "type": profile.account_type,
            "name": profile.name,
            "validPaymentMethod": True,
        },
    }


def profile_today(profile: AdsProfile, now: datetime) -> datetime:
    """`now` in the profile's time zone (report dates are profile-local)."""
    return now.astimezone(ZoneInfo(profile.timezone))


def dedupe_key(profile: AdsProfile, request: AdsReportRequest) -> str:
    """What makes two creates "identical" for the 425: same profile and normalised request."""
    return f"{profile.profile_id}|" + orjson.dumps(list(request.fingerprint())).decode()


@dataclass
class _Link:
    url: str
    expires_at: datetime


def ads_routes(state: EmulatorState) -> list[BaseRoute]:
    """The Ads profiles and reporting v3 routes over `state`."""
    links: dict[str, _Link] = {}  # the current download URL of each completed report

    def authenticate(request: Request) -> None:
        header = request.headers.get("authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            raise _error(401, "Missing or invalid Authorization header")
        try:
            grant = state.tokens.resolve(token.strip())
        except TokenExpired:
            raise _error(401, "The access token has expired") from None
        except AuthFailure:
            raise _error(401, "The access token is invalid") from None
        if grant.vendor is not None:
            # A vendor (SP-API) authorisation grants nothing on the Ads API.
            raise _error(401, "Not authorized to access the Advertising API")
        client_id = request.headers.get("amazon-advertising-api-clientid")
        if not client_id:
            raise _error(400, "Missing required header: Amazon-Advertising-API-ClientId")
        if client_id != grant.client_id:
            raise _error(401, "Amazon-Advertising-API-ClientId does not match the access token")

    def region_profiles(request: Request) -> list[AdsProfile]:
        # A regional host serves only its region's profiles ("returns only profiles of the
        # host's region", ads-facts.md §1); the root serves every region.
        region = request_region(request)
        return [p for p in state.world.ads_profiles if region is None or p.region == region]

    def scoped_profile(request: Request) -> AdsProfile:
        scope = request.headers.get("amazon-advertising-api-scope")
        if not scope or not scope.strip().isdigit():
            raise _error(400, BAD_SCOPE)
        profile = state.world.profile(int(scope))
        if profile is None:
            raise _error(401, f"Not authorized to access scope {scope.strip()}")
        region = request_region(request)
        if region is not None and profile.region != region:
            # A profile used on another region's host (ads-facts.md §1: 4xx Unauthorized).
            raise _error(401, f"Not authorized to access scope {scope.strip()} in region {region}")
        return profile

    def endpoint(
        operation: str,
        handler: Callable[[Request, AdsProfile | None], Awaitable[Response]],
        *,
        scoped: bool = True,
        report_type_of: Callable[[Request], Awaitable[str | None]] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        limit = ADS_REPORTING_LIMITS[operation]

        async def run(request: Request) -> Response:
            try:
                authenticate(request)
                profile = scoped_profile(request) if scoped else None
                report_type = await report_type_of(request) if report_type_of else None
                await state.guard(
                    request,
                    f"ads.{operation}",
                    api="ads",
                    limit=limit,
                    limit_key=str(profile.profile_id) if profile else "profiles",
                    report_type=report_type,
                )
                return await handler(request, profile)
            except ApiError as error:
                return render_error("ads", error)

        return run

    async def list_profiles(request: Request, _: AdsProfile | None) -> Response:
        profiles = region_profiles(request)
        types = request.query_params.get("profileTypeFilter")
        if types:
            wanted = {t.strip() for t in types.split(",")}
            profiles = [p for p in profiles if p.account_type in wanted]
        if request.query_params.get("validPaymentMethodFilter") == "false":
            profiles = []  # every emulated profile has a valid payment method
        return JSONResponse([profile_json(p) for p in profiles])

    async def get_profile(request: Request, _: AdsProfile | None) -> Response:
        raw = request.path_params["profileId"]
        profile = state.world.profile(int(raw)) if raw.isdigit() else None
        if profile is None or profile not in region_profiles(request):
            raise _error(404, "Not Found")
        return JSONResponse(profile_json(profile))

    async def body_report_type(request: Request) -> str | None:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        config = body.get("configuration") if isinstance(body, dict) else None
        value = config.get("reportTypeId") if isinstance(config, dict) else None
        return value if isinstance(value, str) else None

    def report_json(job: ReportJob, request: Request, at: datetime | None = None) -> dict[str, Any]:
        now = at or state.clock.now()
        status = job.status(now)
        started, ended = job.processing_started(now), job.processing_ended(now)
        echo = job.request
        body: dict[str, Any] = {
            "configuration": echo["configuration"],
            "createdAt": iso_ms(job.created_at),
            "endDate": echo["endDate"],
            "failureReason": None,
            "fileSize": None,
            "generatedAt": None,
            "name": echo.get("name"),
            "reportId": job.report_id,
            "startDate": echo["startDate"],
            "status": _STATUS[status],
            "updatedAt": iso_ms(ended or started or job.created_at),
            "url": None,
            "urlExpiresAt": None,
        }
        if status == JobStatus.DONE and job.document is not None:
            link = links.get(job.report_id)
            if link is None or now >= link.expires_at:
                # An expired URL is replaced by a fresh one on the next GET (ads-facts.md §4).
                url, expires = state.document_url(request, job, URL_TTL_SECONDS)
                link = links[job.report_id] = _Link(url, expires)
            body.update(
                url=link.url,
                urlExpiresAt=iso_ms(link.expires_at),
                fileSize=job.document.size,
                generatedAt=iso_ms(ended or now),
            )
        elif status in (JobStatus.FAILED, JobStatus.CANCELLED):
            body["failureReason"] = job.failure_reason or INJECTED_FAILURE
        return body

    async def create_report(request: Request, profile: AdsProfile | None) -> Response:
        assert profile is not None
        content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
        if content_type != "application/json" and not content_type.endswith("+json"):
            raise _error(415, f"Unsupported Content-Type; use {CREATE_REQUEST_TYPE}")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _error(400, "Malformed request body: not valid JSON") from None
        now = state.clock.now()
        try:
            parsed = validate_create_request(body, profile_today(profile, now).date())
        except AdsRequestInvalid as e:
            raise _error(400, e.message) from None
        key = dedupe_key(profile, parsed)
        owner = str(profile.profile_id)
        live = state.jobs.find_live("ads", owner, key, now)
        if live is not None:
            # Body observed from Amazon (ads-facts.md §5).
            raise _error(425, f"The Request is a duplicate of : {live.report_id}")
        echo = {
            "name": parsed.name,
            "startDate": parsed.start_date.isoformat(),
            "endDate": parsed.end_date.isoformat(),
            "configuration": parsed.configuration_json(),
            "profileId": profile.profile_id,
        }
        rt_id = parsed.report_type.report_type_id
        state.calls.record_create("ads", key, dict(echo))
        fault = state.faults.report_fault("ads", rt_id)
        outcome, reason = Outcome.DONE, None
        plan: Callable[[], Any] | None = None
        if fault is not None:
            outcome = fault.outcome
            if outcome in (Outcome.FAILED, Outcome.CANCELLED):
                reason = fault.reason or INJECTED_FAILURE
        if outcome == Outcome.DONE and fault is not None and fault.no_rows:
            plan = no_rows_document
        elif outcome == Outcome.DONE:
            # Picklable for the worker process: the validated request holds mapping proxies, so
            # the worker validates the same body again, against the same profile-local today.
            plan = partial(ads_document, state.world, profile, body, now)
        job = state.jobs.create(
            api="ads",
            owner=owner,
            report_type=rt_id,
            request=echo,
            dedupe_key=key,
            plan=plan,
            outcome=outcome,
            failure_reason=reason,
            document_id=None,
        )
        # The create answer describes the report as created: PENDING (spec example, guides).
        body = report_json(job, request, at=job.created_at)
        return JSONResponse(body, media_type=CREATE_RESPONSE_TYPE)

    def find_job(request: Request, profile: AdsProfile | None) -> ReportJob:
        assert profile is not None
        job = state.jobs.get("ads", str(profile.profile_id), request.path_params["reportId"])
        if job is None or job.cancelled_at is not None:
            # Spec example: {"code": 404, "detail": "Not Found"}; a deleted report is gone.
            raise _error(404, "Not Found")
        return job

    async def get_report(request: Request, profile: AdsProfile | None) -> Response:
        job = find_job(request, profile)
        return JSONResponse(report_json(job, request), media_type=GET_RESPONSE_TYPE)

    async def delete_report(request: Request, profile: AdsProfile | None) -> Response:
        job = find_job(request, profile)
        now = state.clock.now()
        if job.status(now) != JobStatus.QUEUED:
            # "Use this operation to cancel a report in a PENDING status" (spec).
            raise _error(
                400,
                f"Report {job.report_id} is {_STATUS[job.status(now)]}; only PENDING reports can be deleted",
            )
        state.jobs.cancel(job, now)
        return JSONResponse(
            {"code": "200", "detail": "Report deleted", "reportId": job.report_id},
            media_type=DELETE_RESPONSE_TYPE,
        )

    async def report_id_type(request: Request) -> str | None:
        scope = request.headers.get("amazon-advertising-api-scope", "")
        job = state.jobs.get("ads", scope.strip(), request.path_params["reportId"])
        return job.report_type if job is not None else None

    return [
        Route("/v2/profiles", endpoint("listProfiles", list_profiles, scoped=False)),
        Route("/v2/profiles/{profileId}", endpoint("getProfile", get_profile, scoped=False)),
        Route(
            "/reporting/reports",
            endpoint("createAsyncReport", create_report, report_type_of=body_report_type),
            methods=["POST"],
        ),
        Route(
            "/reporting/reports/{reportId}",
            endpoint("getAsyncReport", get_report, report_type_of=report_id_type),
            methods=["GET"],
        ),
        Route(
            "/reporting/reports/{reportId}",
            endpoint("deleteAsyncReport", delete_report, report_type_of=report_id_type),
            methods=["DELETE"],
        ),
    ]
