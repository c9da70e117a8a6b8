"""Documented request rate limits of the Amazon APIs amzlake calls.

SP-API: the Reports API 2021-06-30 default usage plans (requests per second, burst), from the
operation descriptions in Amazon's model `reports_2021-06-30.json`; they apply per selling partner
and application, per operation, as token buckets. A selling partner may get more: the response
header `x-amzn-RateLimit-Limit` tells the rate actually applied.

Ads: Amazon documents no fixed numbers for reporting v3; its limits are dynamic, per region and tied
to the size of the reporting queue. The values below are the emulator's stand-ins and the client's
starting point before it adapts to 429s.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class RateLimit:
    """A token bucket: `rate` requests per second sustained, `burst` at most at once."""

    rate: float
    burst: int

    def header_value(self) -> str:
        """The rate as SP-API prints it in `x-amzn-RateLimit-Limit` (e.g. `0.0167`)."""
        return f"{self.rate:g}"


SPAPI_REPORTS_LIMITS: dict[str, RateLimit] = {
    "getReports": RateLimit(0.0222, 10),
    "createReport": RateLimit(0.0167, 15),
    "getReport": RateLimit(2.0, 15),
    "cancelReport": RateLimit(0.0222, 10),
    "getReportSchedules": RateLimit(0.0222, 10),
    "createReportSchedule": RateLimit(0.0222, 10),
    "getReportSchedule": RateLimit(0.0222, 10),
    "cancelReportSchedule": RateLimit(0.0222, 10),
    "getReportDocument": RateLimit(0.0167, 15),
}

# Not documented by Amazon (see module docstring): conservative per-profile stand-ins.
ADS_REPORTING_LIMITS: dict[str, RateLimit] = {
    "createAsyncReport": RateLimit(1.0, 10),
    "getAsyncReport": RateLimit(5.0, 20),
    "deleteAsyncReport": RateLimit(1.0, 10),
    "listProfiles": RateLimit(1.0, 5),
    "getProfile": RateLimit(1.0, 5),
}
