"""SP-API Reports 2021-06-30 for vendor accounts, as described by Amazon's model
`reports_2021-06-30.json`: createReport, getReports, getReport, cancelReport, getReportDocument.

Thin HTTP shells: authentication, the shared guard (call log, faults, rate limits), then the pure
decisions of `amzlake.catalog.vendor` and the documents of `vendor_data`.
"""

from __future__ import annotations

import base64
import binascii
import itertools
import uuid
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Route

from amzlake.catalog.limits import SPAPI_REPORTS_LIMITS, RateLimit
from amzlake.catalog.vendor import (
    CreateDecision,
    VendorRequestRejected,
    parse_datetime,
    validate_create,
)
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
from amzlake.emulator.vendor_data import fatal_document, has_data, vendor_document
from amzlake.emulator.world import VendorAccount, stable_int

BASE = "/reports/2021-06-30"
DOCUMENT_URL_TTL = 300  # "This URL expires after 5 minutes" [M ReportDocument.url]
RETENTION = timedelta(days=90)  # "Reports are retained for a maximum of 90 days" [M]
MAX_USER_AGENT = 500  # a user-agent over 500 characters is rejected [D, spapi-facts §1]
# Amazon's processing of a request that fails validation takes seconds, not minutes
# (processingStart/End a few seconds apart, selling-partner-api-models#2461).
VALIDATION_FATAL_DELAYS = (5.0, 3.0)
INJECTED_FATAL_TEXT = "Report generation failed due to an internal error. Please retry"

_STATUS = {
    JobStatus.QUEUED: "IN_QUEUE",
    JobStatus.PROCESSING: "IN_PROGRESS",
    JobStatus.DONE: "DONE",
    JobStatus.FAILED: "FATAL",
    JobStatus.CANCELLED: "CANCELLED",
}
_STATUS_VALUES = frozenset(_STATUS.values())
_DENIED = "Access to requested resource is denied."


def _invalid(message: str, details: str | None = None) -> ApiError:
    return ApiError(400, "InvalidInput", message, details=details)


def _unauthorized(details: str) -> ApiError:
    # Body as Amazon sends it: {"message": "Access to requested resource is denied.",
    # "code": "Unauthorized", "details": "Access token is missing in the request header."}
    # (selling-partner-api-models#945). The model documents expired/invalid tokens as 403 too.
    return ApiError(403, "Unauthorized", _DENIED, details=details)


def iso(moment: datetime) -> str:
    """A date-time as the Reports API prints it (UTC, e.g. 2024-03-10T13:47:20+00:00)."""
    return moment.astimezone(UTC).replace(microsecond=0).isoformat()


def report_json(job: ReportJob, now: datetime) -> dict[str, Any]:
    """The `Report` object of the model for `job` at `now`."""
    status = job.status(now)
    body: dict[str, Any] = {
        "reportId": job.report_id,
        "reportType": job.report_type,
        "dataStartTime": job.request["dataStartTime"],
        "dataEndTime": job.request["dataEndTime"],
        "marketplaceIds": job.request["marketplaceIds"],
        "createdTime": iso(job.created_at),
        "processingStatus": _STATUS[status],
    }
    started = job.processing_started(now)
    if started is not None:
        body["processingStartTime"] = iso(started)
    ended = job.processing_ended(now)
    if ended is not None:
        body["processingEndTime"] = iso(ended)
    if status in (JobStatus.DONE, JobStatus.FAILED) and job.document is not None:
        body["reportDocumentId"] = job.document_id
    return body


def _order(job: ReportJob) -> tuple[float, int]:
    """Newest-first sort key of getReports (creation time, then id)."""
    return job.created_at.timestamp(), int(job.report_id)


def _encode_token(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(payload)).decode()


def _decode_token(token: str) -> dict[str, Any]:
    try:
        payload = orjson.loads(base64.urlsafe_b64decode(token.encode()))
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise _invalid("Invalid nextToken.") from None
    if not isinstance(payload, dict):
        raise _invalid("Invalid nextToken.")
    return payload


def _csv(value: str | None, name: str, *, max_items: int | None = None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items or (max_items is not None and len(items) > max_items):
        raise _invalid(f"Invalid {name}.", details=f"{name} must hold 1 to {max_items} values.")
    return items


def spapi_routes(state: EmulatorState) -> list[BaseRoute]:
    """The Reports API routes over `state`."""
    document_numbers = itertools.count(1)

    def authenticate(request: Request) -> VendorAccount:
        agent = request.headers.get("user-agent")
        # Amazon asks for a user-agent on every call but serves requests without one (maintainer
        # of amz-tools/amazon-sp-api, issue #92: "it works fine without a User-Agent"); an
        # over-long one is refused [D].
        if agent is not None and len(agent) > MAX_USER_AGENT:
            raise _invalid("Invalid user-agent header.", details="The header exceeds 500 characters.")
        token = request.headers.get("x-amz-access-token")
        if not token:
            raise _unauthorized("Access token is missing in the request header.")
        try:
            grant = state.tokens.resolve(token)
        except TokenExpired:
            raise _unauthorized("The access token you provided has expired.") from None  # [E] text
        except AuthFailure:
            raise _unauthorized("The access token you provided is revoked, malformed or invalid.") from None
        if grant.vendor is None:
            # An Ads login token grants nothing on SP-API.
            raise _unauthorized("The access token you provided is revoked, malformed or invalid.")
        region = request_region(request)
        if region is not None and region != grant.vendor.region:
            # A selling partner is only reachable on its region's host.
            raise _unauthorized("The access token is not valid in this region.")
        return grant.vendor

    def endpoint(
        operation: str,
        handler: Callable[[Request, VendorAccount, RateLimit | None], Awaitable[Response]],
        report_type_of: Callable[[Request], Awaitable[str | None]] | None = None,
    ) -> Callable[[Request], Awaitable[Response]]:
        limit = SPAPI_REPORTS_LIMITS[operation]

        async def run(request: Request) -> Response:
            applied: RateLimit | None = None
            try:
                account = authenticate(request)
                report_type = await report_type_of(request) if report_type_of else None
                applied = await state.guard(
                    request, f"spapi.{operation}", api="spapi", limit=limit,
                    limit_key=account.selling_partner_id, report_type=report_type,
                )
                response = await handler(request, account, applied)
            except ApiError as error:
                response = render_error("spapi", error)
                # The model declares x-amzn-RateLimit-Limit on 400 and 404, not on 403/429/5xx.
                if applied is not None and error.status in (400, 404):
                    response.headers["x-amzn-RateLimit-Limit"] = applied.header_value()
                return response
            if applied is not None:
                response.headers["x-amzn-RateLimit-Limit"] = applied.header_value()
            return response

        return run

    async def body_report_type(request: Request) -> str | None:
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            return None
        value = body.get("reportType") if isinstance(body, dict) else None
        return value if isinstance(value, str) else None

    def new_document_id(account: VendorAccount) -> str:
        n = next(document_numbers)
        tail = uuid.UUID(int=stable_int(state.seed, "spdoc", account.selling_partner_id, n, bits=128))
        return f"amzn1.spdoc.1.4.{account.region.lower()}.{tail}"

    async def create_report(
        request: Request, account: VendorAccount, applied: RateLimit | None
    ) -> Response:
        content_type = request.headers.get("content-type", "application/json")
        if "json" not in content_type:
            raise ApiError(415, "UnsupportedMediaType", "The request's Content-Type header is invalid.")
        try:
            body = orjson.loads(await request.body())
        except orjson.JSONDecodeError:
            raise _invalid("Invalid input", details="The request body is not valid JSON.") from None
        now = state.clock.now()
        try:
            decision = validate_create(
                body, now=now, account_marketplace_id=account.marketplace.marketplace_id
            )
        except VendorRequestRejected as e:
            raise _invalid(e.message) from None
        job = _start_job(account, decision, now)
        return JSONResponse({"reportId": job.report_id}, status_code=202)

    def _start_job(account: VendorAccount, decision: CreateDecision, now: datetime) -> ReportJob:
        req = decision.request
        rt = req.report_type
        report_type = rt.report_type
        echo = {
            "reportType": report_type,
            "marketplaceIds": list(req.marketplace_ids),
            "reportOptions": dict(req.report_options),
            "dataStartTime": iso(req.data_start),
            "dataEndTime": iso(req.data_end),
        }
        dedupe_key = f"{account.selling_partner_id}|{req.dedupe_key()}"
        state.calls.record_create("spapi", dedupe_key, dict(echo))
        fault = state.faults.report_fault("spapi", report_type)
        world = state.world
        plan: Callable[[], Any] | None = None
        outcome, reason, delays = Outcome.DONE, None, None
        if fault is not None and not fault.plain:
            outcome, reason = fault.outcome, fault.reason
            if outcome == Outcome.FAILED:
                text = reason or INJECTED_FATAL_TEXT
                reason = text
                plan = partial(fatal_document, text)
        elif decision.fatal is not None:
            outcome, reason = Outcome.FAILED, decision.fatal.text
            fatal = decision.fatal
            plan = partial(fatal_document, fatal.text)
            delays = VALIDATION_FATAL_DELAYS
        else:
            args = (world, account, report_type, dict(req.report_options),
                    req.data_start, req.data_end, now)
            if has_data(*args):
                plan = partial(vendor_document, *args)
            else:
                # "an automatic cancellation if there is no data to return" [M].
                outcome = Outcome.CANCELLED
        job = state.jobs.create(
            api="spapi", owner=account.selling_partner_id, report_type=report_type, request=echo,
            dedupe_key=dedupe_key, plan=plan, outcome=outcome, failure_reason=reason,
            document_id=new_document_id(account) if plan is not None else None, delays=delays,
        )
        if decision.fatal is not None and (fault is None or fault.plain):
            job.request["fatalRule"] = decision.fatal.rule.value
        job.plain_document = fault is not None and fault.plain
        return job

    async def get_reports(
        request: Request, account: VendorAccount, applied: RateLimit | None
    ) -> Response:
        params = request.query_params
        now = state.clock.now()
        token = params.get("nextToken")
        if token is not None:
            if len(params) > 1:
                # "Specifying nextToken with any other parameters will cause the request to fail" [M].
                raise _invalid("Invalid input", details="nextToken must be the only parameter.")
            query = _decode_token(token)
            if query.get("owner") != account.selling_partner_id:
                raise _invalid("Invalid nextToken.")
        else:
            if params.get("reportTypes") is None:
                raise _invalid("Invalid input", details="Either reportTypes or nextToken is required.")
            query = {"owner": account.selling_partner_id}
            query["types"] = _csv(params.get("reportTypes"), "reportTypes", max_items=10)
            statuses = _csv(params.get("processingStatuses"), "processingStatuses")
            if statuses and not set(statuses) <= _STATUS_VALUES:
                raise _invalid("Invalid input", details="Invalid input in processing status")
            query["statuses"] = statuses
            query["marketplaces"] = _csv(params.get("marketplaceIds"), "marketplaceIds", max_items=10)
            try:
                size = int(params.get("pageSize", "10"))
            except ValueError:
                raise _invalid("Invalid input", details="pageSize must be an integer.") from None
            if not 1 <= size <= 100:
                raise _invalid("Invalid input", details="pageSize must be between 1 and 100.")
            query["size"] = size
            try:
                since = (parse_datetime(params["createdSince"], "createdSince")
                         if "createdSince" in params else now - RETENTION)
                until = (parse_datetime(params["createdUntil"], "createdUntil")
                         if "createdUntil" in params else now)
            except VendorRequestRejected as e:
                raise _invalid("Invalid input", details=e.message) from None
            # Full precision in the (opaque) token: whole seconds would drop a report made in
            # the same second as the listing, which at a fast test clock is a real case.
            query["since"], query["until"] = since.isoformat(), until.isoformat()
            query["after"] = None
        since = parse_datetime(query["since"], "createdSince")
        until = parse_datetime(query["until"], "createdUntil")
        oldest = now - RETENTION
        matches: list[ReportJob] = []
        for job in sorted(state.jobs.list("spapi", account.selling_partner_id),
                          key=_order, reverse=True):
            if job.created_at < max(since, oldest) or job.created_at > until:
                continue
            if query["types"] and job.report_type not in query["types"]:
                continue
            if query["statuses"] and _STATUS[job.status(now)] not in query["statuses"]:
                continue
            if query["marketplaces"] and not set(job.request["marketplaceIds"]) & set(
                query["marketplaces"]
            ):
                continue
            # Pages follow a cursor (not an offset) so reports created meanwhile shift nothing.
            if query["after"] is not None and _order(job) >= tuple(query["after"]):
                continue
            matches.append(job)
            if len(matches) > query["size"]:
                break
        page = matches[: query["size"]]
        body: dict[str, Any] = {"reports": [report_json(j, now) for j in page]}
        if len(matches) > query["size"]:
            last = page[-1]
            body["nextToken"] = _encode_token(
                {**query, "after": list(_order(last))}
            )
        return JSONResponse(body)

    def own_job(account: VendorAccount, report_id: str) -> ReportJob:
        if not report_id.isdigit():
            raise _invalid("Invalid input", details=f"Invalid reportId: {report_id}")
        job = state.jobs.get("spapi", account.selling_partner_id, report_id)
        if job is None:
            raise ApiError(404, "NotFound", "The requested report was not found.")
        return job

    async def get_report(
        request: Request, account: VendorAccount, applied: RateLimit | None
    ) -> Response:
        job = own_job(account, request.path_params["reportId"])
        return JSONResponse(report_json(job, state.clock.now()))

    async def cancel_report(
        request: Request, account: VendorAccount, applied: RateLimit | None
    ) -> Response:
        job = own_job(account, request.path_params["reportId"])
        now = state.clock.now()
        status = job.status(now)
        if status is not JobStatus.QUEUED:
            # "Only reports with processingStatus=IN_QUEUE can be cancelled" [M].
            raise _invalid(
                "Invalid input",
                details=f"The report is {_STATUS[status]}; only IN_QUEUE reports can be cancelled.",
            )
        state.jobs.cancel(job, now)
        return Response(status_code=200)

    async def get_report_document(
        request: Request, account: VendorAccount, applied: RateLimit | None
    ) -> Response:
        document_id = request.path_params["reportDocumentId"]
        job = state.jobs.by_document_id(document_id)
        now = state.clock.now()
        if (
            job is None
            or job.api != "spapi"
            or job.owner != account.selling_partner_id
            or job.document is None
            or job.status(now) not in (JobStatus.DONE, JobStatus.FAILED)
        ):
            raise ApiError(404, "NotFound", "The requested report document was not found.")
        encoded = request.query_params.get("enableContentEncodingUrlHeader", "").lower() == "true"
        url, _ = state.document_url(request, job, DOCUMENT_URL_TTL, content_encoding=encoded)
        body = {"reportDocumentId": document_id, "url": url}
        if not job.plain_document:
            body["compressionAlgorithm"] = "GZIP"
        return JSONResponse(body)

    async def reports(request: Request) -> Response:
        if request.method == "POST":
            return await create_endpoint(request)
        return await list_endpoint(request)

    async def report(request: Request) -> Response:
        if request.method == "DELETE":
            return await cancel_endpoint(request)
        return await get_endpoint(request)

    create_endpoint = endpoint("createReport", create_report, body_report_type)
    list_endpoint = endpoint("getReports", get_reports)
    get_endpoint = endpoint("getReport", get_report)
    cancel_endpoint = endpoint("cancelReport", cancel_report)
    return [
        Route(f"{BASE}/reports", reports, methods=["GET", "POST"]),
        Route(f"{BASE}/reports/{{reportId}}", report, methods=["GET", "DELETE"]),
        Route(f"{BASE}/documents/{{reportDocumentId}}",
              endpoint("getReportDocument", get_report_document), methods=["GET"]),
    ]
