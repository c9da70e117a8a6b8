"""Selling Partner API client: Reports API 2021-06-30 for vendor (1P) reports.

Operations, fields and statuses from Amazon's model (shared/reference/spapi/models/
reports-api-model/reports_2021-06-30.json); headers, limits and date rules from spapi-facts.md
§1-5 and catalog/vendor.py.
"""

from __future__ import annotations

import platform
import random
import sys
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from typing import Any

import httpx

from amzlake import __version__
from amzlake.catalog.limits import SPAPI_REPORTS_LIMITS, RateLimit
from amzlake.catalog.vendor import DateRule, vendor_report_type
from amzlake.errors import UnexpectedResponse
from amzlake.ratelimit import SharedBudget
from amzlake.slices import VendorReportSpec
from amzlake.sources.answers import parse_status, parse_timestamp
from amzlake.sources.http import (
    ApiClient,
    ApiHttp,
    RetryPolicy,
    Timeouts,
    Timer,
    TokenAuth,
    TokenSource,
    spapi_error,
)

BASE_PATH = "/reports/2021-06-30"
PAGE_SIZE = 100  # the model's maximum for getReports


def user_agent() -> str:
    """The user-agent SP-API wants: `amzlake/<version> (Language=Python/<x.y>; Platform=<os>)`."""
    # Format from Amazon's "Include a User-Agent header in all requests" (spapi-facts §1):
    # AppName/AppVersion (Language=<lang>/<ver>; Key=Value), special characters escaped.
    language = f"Python/{sys.version_info.major}.{sys.version_info.minor}"
    system = _escape(platform.system() or "unknown")
    return f"amzlake/{_escape(__version__)} (Language={language}; Platform={system})"


def _escape(value: str) -> str:
    for ch in "\\/()=;":
        value = value.replace(ch, "\\" + ch)
    return value


class ProcessingStatus(StrEnum):
    """Report.processingStatus in the model."""

    IN_QUEUE = "IN_QUEUE"
    IN_PROGRESS = "IN_PROGRESS"
    DONE = "DONE"
    CANCELLED = "CANCELLED"
    FATAL = "FATAL"

    @property
    def terminal(self) -> bool:
        """Whether the report will not change any more."""
        return self in (ProcessingStatus.DONE, ProcessingStatus.CANCELLED, ProcessingStatus.FATAL)






@dataclass(frozen=True)
class SpApiReport:
    """A Report of the Reports API (getReport, items of getReports)."""

    report_id: str
    report_type: str
    processing_status: ProcessingStatus
    created_time: datetime | None
    marketplace_ids: tuple[str, ...] = ()
    data_start_time: datetime | None = None
    data_end_time: datetime | None = None
    processing_start_time: datetime | None = None
    processing_end_time: datetime | None = None
    report_document_id: str | None = None
    report_schedule_id: str | None = None

    @classmethod
    def from_json(cls, body: Any, operation: str) -> SpApiReport:
        """Parse a Report; an unknown processingStatus raises UnexpectedResponse naming it."""
        if not isinstance(body, dict) or not body.get("reportId"):
            raise UnexpectedResponse(f"{operation}: the answer is not a Report",
                                     operation=operation)
        return cls(
            report_id=str(body["reportId"]),
            report_type=str(body.get("reportType", "")),
            processing_status=parse_status(ProcessingStatus, body.get("processingStatus"), operation,
                                           "processingStatus"),
            created_time=parse_timestamp(body.get("createdTime")),
            marketplace_ids=tuple(body.get("marketplaceIds") or ()),
            data_start_time=parse_timestamp(body.get("dataStartTime")),
            data_end_time=parse_timestamp(body.get("dataEndTime")),
            processing_start_time=parse_timestamp(body.get("processingStartTime")),
            processing_end_time=parse_timestamp(body.get("processingEndTime")),
            report_document_id=body.get("reportDocumentId"),
            report_schedule_id=body.get("reportScheduleId"),
        )


@dataclass(frozen=True)
class ReportDocument:
    """Where a report's document is: a URL (valid about five minutes) and its compression."""

    document_id: str
    url: str
    compression: str | None  # "GZIP", or None: the bytes are the document as is

    def __repr__(self) -> str:
        # The presigned query string is a credential: keep it out of logs and tracebacks.
        return (f"ReportDocument(document_id={self.document_id!r}, "
                f"url={self.url.split('?', 1)[0]!r}, compression={self.compression!r})")


def _utc(value: datetime, what: str) -> str:
    if value.tzinfo is None:
        raise ValueError(f"{what} must be timezone-aware, got {value!r}")
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def data_times(spec: VendorReportSpec, start: date | datetime | None,
               end: date | datetime | None) -> dict[str, str]:
    """dataStartTime/dataEndTime for a createReport body, by the report type's date rule.

    Period reports read only the date part, so days go as T00:00:00Z and T23:59:59Z; real-time
    reports take hour-aligned UTC date-times; forecasting and the coupon/promotion reports take no
    dates (their window is in reportOptions). Unknown report types: dates as days, date-times as is.
    """
    rt = vendor_report_type(spec.report_type)
    rule = rt.date_rule if rt is not None else None
    if rule in (DateRule.NONE, DateRule.START_DATE_OPTIONS):
        if start is not None or end is not None:
            raise ValueError(f"{spec.report_type} takes no dataStartTime/dataEndTime")
        return {}
    if start is None or end is None:
        if rule is None and start is None and end is None:
            return {}
        raise ValueError(f"{spec.report_type} needs a start and an end")
    if rule is DateRule.HOURS:
        for value, what in ((start, "start"), (end, "end")):
            if not isinstance(value, datetime):
                raise ValueError(f"{spec.report_type}: the {what} must be a UTC date-time")
            if (value.minute, value.second, value.microsecond) != (0, 0, 0):
                raise ValueError(f"{spec.report_type}: the {what} {value} is not on the hour")
        assert isinstance(start, datetime) and isinstance(end, datetime)
        return {"dataStartTime": _utc(start, "start"), "dataEndTime": _utc(end, "end")}
    if rule is DateRule.PERIODS:
        first = start.date() if isinstance(start, datetime) else start
        last = end.date() if isinstance(end, datetime) else end
        return {
            "dataStartTime": _utc(datetime.combine(first, time(0, 0, 0), UTC), "start"),
            "dataEndTime": _utc(datetime.combine(last, time(23, 59, 59), UTC), "end"),
        }
    out = {}
    for key, value, clock in (("dataStartTime", start, time(0, 0, 0)),
                              ("dataEndTime", end, time(23, 59, 59))):
        moment = value if isinstance(value, datetime) else datetime.combine(value, clock, UTC)
        out[key] = _utc(moment, key)
    return out


class SpApiClient(ApiClient):
    """The Reports API for one selling partner (one refresh token) in one region."""

    def __init__(
        self,
        base_url: str,
        tokens: TokenSource,
        *,
        account: str = "default",
        limits: dict[str, RateLimit] | None = None,
        retry: RetryPolicy | None = None,
        timeouts: Timeouts | None = None,
        timer: Timer | None = None,
        rng: random.Random | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
        shared: SharedBudget | None = None,
        agent: str | None = None,
    ) -> None:
        self.account = account  # the rate-limit key: limits apply per selling partner + app
        self.http = ApiHttp(
            "spapi", base_url=base_url.rstrip("/"),
            limits=SPAPI_REPORTS_LIMITS if limits is None else limits,
            error_parser=spapi_error, expired_statuses=(403,), retry=retry, timeouts=timeouts,
            timer=timer, rng=rng, transport=transport, shared=shared,
            headers={"user-agent": agent or user_agent(), "Accept": "application/json"},
        )
        self._auth = TokenAuth(tokens, "x-amz-access-token")

    async def _call(self, operation: str, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return await self.http.call(operation, method, BASE_PATH + path, account=self.account,
                                    auth=self._auth, **kwargs)

    async def create_report(self, marketplace_id: str, spec: VendorReportSpec,
                            start: date | datetime | None = None,
                            end: date | datetime | None = None) -> str:
        """The new report's id (createReport, HTTP 202).

        Raises OutcomeUnknown when the answer was lost after sending: the report may exist, so
        look for it with get_reports before asking again.
        """
        body: dict[str, Any] = {"reportType": spec.report_type, "marketplaceIds": [marketplace_id]}
        if spec.options:
            body["reportOptions"] = spec.options_dict()
        body.update(data_times(spec, start, end))
        response = await self._call("createReport", "POST", "/reports", json=body, ok=(202, 200),
                                    idempotent=False)
        report_id = _body(response, "spapi.createReport").get("reportId")
        if not report_id:
            raise UnexpectedResponse("spapi.createReport: the answer holds no reportId",
                                     operation="spapi.createReport")
        return str(report_id)

    async def get_report(self, report_id: str) -> SpApiReport:
        """The report's current state (getReport)."""
        response = await self._call("getReport", "GET", f"/reports/{report_id}")
        return SpApiReport.from_json(_body(response, "spapi.getReport"), "spapi.getReport")

    async def get_reports(
        self,
        report_types: Iterable[str],
        processing_statuses: Iterable[ProcessingStatus | str] = (),
        marketplace_ids: Iterable[str] = (),
        created_since: datetime | None = None,
        page_size: int = PAGE_SIZE,
    ) -> AsyncIterator[SpApiReport]:
        """Every matching report, following nextToken (which is sent alone, as the model says)."""
        params: dict[str, str] = {"reportTypes": ",".join(report_types),
                                  "pageSize": str(page_size)}
        statuses = [ProcessingStatus(s).value for s in processing_statuses]
        if statuses:
            params["processingStatuses"] = ",".join(statuses)
        marketplaces = list(marketplace_ids)
        if marketplaces:
            params["marketplaceIds"] = ",".join(marketplaces)
        if created_since is not None:
            params["createdSince"] = _utc(created_since, "created_since")
        while True:
            response = await self._call("getReports", "GET", "/reports", params=params)
            body = _body(response, "spapi.getReports")
            for item in body.get("reports") or []:
                yield SpApiReport.from_json(item, "spapi.getReports")
            token = body.get("nextToken")
            if not token:
                return
            params = {"nextToken": str(token)}

    async def cancel_report(self, report_id: str) -> None:
        """Cancel a report still IN_QUEUE (cancelReport)."""
        await self._call("cancelReport", "DELETE", f"/reports/{report_id}")

    async def get_report_document(self, document_id: str) -> ReportDocument:
        """The document's download URL and compression (getReportDocument)."""
        response = await self._call("getReportDocument", "GET", f"/documents/{document_id}")
        body = _body(response, "spapi.getReportDocument")
        if not body.get("url"):
            raise UnexpectedResponse("spapi.getReportDocument: the answer holds no url",
                                     operation="spapi.getReportDocument")
        compression = body.get("compressionAlgorithm")
        return ReportDocument(str(body.get("reportDocumentId") or document_id), str(body["url"]),
                              None if compression is None else str(compression))



def _body(response: httpx.Response, operation: str) -> dict[str, Any]:
    try:
        body = response.json()
    except ValueError:
        body = None
    if not isinstance(body, dict):
        raise UnexpectedResponse(f"{operation}: the answer is not a JSON object",
                                 operation=operation, status=response.status_code)
    return body
