"""The SP-API vendor (1P) report types amzlake knows: options, periods, date rules and limits.

A declarative registry used by the emulator, the ingestion planner and the transform alike: one
`VendorReportType` entry per report type, plus a pure `validate_create` that tells apart what Amazon
rejects at once with HTTP 400 and what it accepts and then ends FATAL with an `errorDetails` text.

Sources are tagged next to every number:
- [M] Amazon's own JSON schemas and Reports API model (shared/reference/spapi/).
- [I] GitHub issues of amzn/selling-partner-api-models and -docs, answered by Amazon staff.
- [3P] third-party connector documentation (Fivetran, Airbyte); evidence, not contract.
- [E] the emulator's own conservative choice where nothing could be found.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from enum import StrEnum
from zoneinfo import ZoneInfo

from amzlake.catalog.periods import (
    ReportPeriod,
    count_periods,
    is_period_end,
    is_period_start,
    period_bounds,
    periods_between,
)
from amzlake.errors import AmzlakeError

D, W, M, Q, Y = (
    ReportPeriod.DAY,
    ReportPeriod.WEEK,
    ReportPeriod.MONTH,
    ReportPeriod.QUARTER,
    ReportPeriod.YEAR,
)


class DateRule(StrEnum):
    """How a report type reads its dates."""

    PERIODS = "periods"  # dataStart/EndTime are dates aligned to reportPeriod boundaries
    HOURS = "hours"  # dataStart/EndTime are UTC date-times; output has every full hour inside
    NONE = "none"  # no dates at all (forecasting)
    START_DATE_OPTIONS = "start_date_options"  # a window on campaign/promotion start, in options


@dataclass(frozen=True)
class OptionSpec:
    """One `reportOptions` key: allowed values (None = free text), required or not."""

    name: str
    values: tuple[str, ...] | None = None
    required: bool = True
    max_length: int | None = None
    date_time: bool = False  # the value must parse as an ISO-8601 date-time


@dataclass(frozen=True)
class PeriodRule:
    """Limits for one reportPeriod: span and lookback counted in periods, availability lag."""

    max_span: int  # most periods one request may cover
    lookback: int  # the start's period may be at most this many periods before today's
    lag: timedelta  # data for a period appears this long after the period closes
    source: str = ""


@dataclass(frozen=True)
class HourRule:
    """Limits of the hourly real-time reports, relative to the request time."""

    lookback: timedelta  # the start may be at most this long before the request
    max_span: timedelta  # end minus start at most this long
    min_end_age: timedelta = timedelta(0)  # the end must be at least this long before the request
    source: str = ""


@dataclass(frozen=True)
class StartWindowRule:
    """Coupon/promotion reports: a window on start date-times given as two reportOptions."""

    option_from: str
    option_to: str
    lookback: timedelta
    max_span: timedelta
    source: str = ""


@dataclass(frozen=True)
class VendorReportType:
    """Everything amzlake knows about one vendor-available report type."""

    report_type: str
    title: str
    schema_file: str  # in shared/reference/spapi/schemas/reports/
    arrays: tuple[str, ...]  # top-level arrays of the document, in document order
    date_rule: DateRule
    options: tuple[OptionSpec, ...] = ()
    periods: Mapping[ReportPeriod, PeriodRule] = field(default_factory=dict)
    spans_multiple_periods: bool = True
    hour_rule: HourRule | None = None
    start_window: StartWindowRule | None = None
    aggregate_array: str | None = None
    by_asin_array: str | None = None
    # How long after a day its figures can still change (restatement), for re-pull planning [E].
    restatement_days: int = 0
    brand_analytics: bool = False

    def option(self, name: str) -> OptionSpec | None:
        """The option spec called `name`, if this report type takes it."""
        return next((o for o in self.options if o.name == name), None)

    @property
    def required_options(self) -> tuple[str, ...]:
        """Names of the options a request must carry, in Amazon's order."""
        return tuple(o.name for o in self.options if o.required)


# ---- Limits -------------------------------------------------------------------------------------

# Data-availability lag. Amazon (Solutions Architect, selling-partner-api-docs#3107, 2023-05): "The SLA
# for weekly reporting periods (i.e. Saturday datasets) is EOD Monday, 48 hours after close of period.
# The SLA for non-Saturday daily reporting periods is 72 hours after close of period. All the
# timezones are in PST." Airbyte (PR #38210) and Openbridge also use 72 h. For MONTH, QUARTER and
# YEAR nothing is published: [E] 72 h, the longer of the two.
_LAG_DAY = timedelta(hours=72)
_LAG_WEEK = timedelta(hours=48)
_LAG_LONG = timedelta(hours=72)

# Span and lookback of the retail analytics reports. DAY: "Maximum lookback windows: DAY: 1,460 days"
# and "Maximum reporting periods: DAY: 15 days" (Amazon, selling-partner-api-models#508, for
# GET_VENDOR_SALES_REPORT). WEEK/MONTH/QUARTER/YEAR figures exist on Amazon's "Report Type Values -
# Analytics" page but could not be retrieved: [E] the same four years of lookback (208 weeks,
# 48 months, 16 quarters, 4 years) and conservative spans (7 weeks, 3 months, 2 quarters, 1 year)
# so a planner that respects them is never refused by the real API for asking too much at once.
_RETAIL_RULES: dict[ReportPeriod, PeriodRule] = {
    D: PeriodRule(15, 1460, _LAG_DAY, "[I] models#508; lag [I] docs#3107"),
    W: PeriodRule(7, 208, _LAG_WEEK, "[E] span/lookback; lag [I] docs#3107"),
    M: PeriodRule(3, 48, _LAG_LONG, "[E]"),
    Q: PeriodRule(2, 16, _LAG_LONG, "[E]"),
    Y: PeriodRule(1, 4, _LAG_LONG, "[E]"),
}

# Net Pure Product Margin: Fivetran's report table lists lookbacks DAY 1,460 days, MONTH 36 months,
# QUARTER 8 quarters and a DAY latency of 4 days [3P fivetran.com/docs/connectors/applications/
# amazon-selling-partner/reports]; the rest as for the other retail reports.
_NPPM_RULES: dict[ReportPeriod, PeriodRule] = {
    **_RETAIL_RULES,
    D: PeriodRule(15, 1460, timedelta(days=4), "[I] models#508 span; [3P] Fivetran lookback/lag"),
    M: PeriodRule(3, 36, _LAG_LONG, "[3P] Fivetran lookback 36 months; [E] span"),
    Q: PeriodRule(2, 8, _LAG_LONG, "[3P] Fivetran lookback 8 quarters; [E] span"),
}

# Brand Analytics. Market Basket: Fivetran lists DAY lookback 1 year with 2 days latency, MONTH and
# QUARTER 3 years [3P]. Repeat Purchase MONTH 3 years [3P]. Amazon's schemas: Search Terms, Search
# Catalog Performance and Search Query Performance "cannot span multiple periods"; Market Basket and
# Repeat Purchase can. A Market Basket DAY request must be one day: "dataStartTime must be the same
# day as dataEndTime when reportPeriod=DAY" (Amazon, selling-partner-api-docs#3413). Other
# Brand Analytics lookbacks/lags: [E] by analogy (1 year for DAY, 3 years otherwise, 48-72 h lag).
_BA_LAG_DAY = timedelta(days=2)
_BA_DAY = PeriodRule(1, 365, _BA_LAG_DAY, "[3P] Fivetran market basket DAY; span [I] docs#3413")
_BA_WEEK = PeriodRule(13, 156, _LAG_WEEK, "[E] 3 years by analogy with [3P] Fivetran")
_BA_MONTH = PeriodRule(3, 36, _LAG_LONG, "[3P] Fivetran 3 years; [E] span")
_BA_QUARTER = PeriodRule(2, 12, _LAG_LONG, "[3P] Fivetran 3 years; [E] span")


def _single(rule: PeriodRule) -> PeriodRule:
    return PeriodRule(1, rule.lookback, rule.lag, rule.source + "; one period per request [M]")


# ---- Options ------------------------------------------------------------------------------------

_PERIOD_ALL = OptionSpec("reportPeriod", ("DAY", "WEEK", "MONTH", "QUARTER", "YEAR"))
_VIEW = OptionSpec("distributorView", ("MANUFACTURING", "SOURCING"))


def _period_option(periods: Mapping[ReportPeriod, PeriodRule]) -> OptionSpec:
    return OptionSpec("reportPeriod", tuple(p.value for p in periods))


# ---- The registry -------------------------------------------------------------------------------

_TYPES: tuple[VendorReportType, ...] = (
    VendorReportType(
        "GET_VENDOR_SALES_REPORT",
        "Vendor sales",
        "vendorSalesReport.json",
        ("salesAggregate", "salesByAsin"),
        DateRule.PERIODS,
        # Amazon's FATAL text lists them in this order (saleweaver/python-amazon-sp-api#624).
        (_PERIOD_ALL, _VIEW, OptionSpec("sellingProgram", ("RETAIL", "BUSINESS", "FRESH"))),
        _RETAIL_RULES,
        aggregate_array="salesAggregate",
        by_asin_array="salesByAsin",
        restatement_days=30,
    ),
    VendorReportType(
        "GET_VENDOR_INVENTORY_REPORT",
        "Vendor inventory",
        "vendorInventoryReport.json",
        ("inventoryAggregate", "inventoryByAsin"),
        DateRule.PERIODS,
        # BUSINESS is not a valid sellingProgram for inventory [M].
        (_PERIOD_ALL, _VIEW, OptionSpec("sellingProgram", ("RETAIL", "FRESH"))),
        _RETAIL_RULES,
        aggregate_array="inventoryAggregate",
        by_asin_array="inventoryByAsin",
        restatement_days=30,
    ),
    VendorReportType(
        "GET_VENDOR_TRAFFIC_REPORT",
        "Vendor traffic",
        "vendorTrafficReport.json",
        ("trafficAggregate", "trafficByAsin"),
        DateRule.PERIODS,
        # Only reportPeriod; sales-style options FATAL it [3P user code, see spapi-facts §6.3].
        (_PERIOD_ALL,),
        _RETAIL_RULES,
        aggregate_array="trafficAggregate",
        by_asin_array="trafficByAsin",
        restatement_days=30,
    ),
    VendorReportType(
        "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT",
        "Net pure product margin",
        "vendorNetPureProductMarginReport.json",
        ("netPureProductMarginAggregate", "netPureProductMarginByAsin"),
        DateRule.PERIODS,
        (_PERIOD_ALL,),
        _NPPM_RULES,
        aggregate_array="netPureProductMarginAggregate",
        by_asin_array="netPureProductMarginByAsin",
        restatement_days=30,
    ),
    VendorReportType(
        "GET_VENDOR_FORECASTING_REPORT",
        "Vendor forecasting",
        "vendorForecastingReport.json",
        ("forecastByAsin",),
        DateRule.NONE,
        (OptionSpec("sellingProgram", ("RETAIL", "FRESH")),),
        by_asin_array="forecastByAsin",
    ),
    VendorReportType(
        "GET_VENDOR_REAL_TIME_SALES_REPORT",
        "Real-time sales (hourly)",
        "vendorRealTimeSalesReport.json",
        ("reportData",),
        DateRule.HOURS,
        # Lookback 30 days [3P Fivetran]; no published span, [E] 7 days.
        hour_rule=HourRule(timedelta(days=30), timedelta(days=7), source="[3P]/[E]"),
    ),
    VendorReportType(
        "GET_VENDOR_REAL_TIME_INVENTORY_REPORT",
        "Real-time inventory (hourly)",
        "vendorRealTimeInventoryReport.json",
        ("reportData",),
        DateRule.HOURS,
        # "Start time can be up to 168 hours before the time of the request", "End time should not
        # be more than 24 hours from the start time" [M].
        hour_rule=HourRule(timedelta(hours=168), timedelta(hours=24), source="[M]"),
    ),
    VendorReportType(
        "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT",
        "Real-time traffic (hourly)",
        "vendorRealTimeTrafficReport.json",
        ("reportData",),
        DateRule.HOURS,
        # "End time should be at least 60 minutes earlier than the time of the request" [M];
        # lookback 30 days [3P Fivetran]; span [E] 7 days.
        hour_rule=HourRule(
            timedelta(days=30), timedelta(days=7), timedelta(minutes=60), "[M]/[3P]/[E]"
        ),
    ),
    VendorReportType(
        "GET_COUPON_PERFORMANCE_REPORT",
        "Coupon performance (vendor)",
        "vendorCouponReport.json",
        ("campaigns",),
        DateRule.START_DATE_OPTIONS,
        (
            OptionSpec("campaignStartDateFrom", date_time=True),
            OptionSpec("campaignStartDateTo", date_time=True),
        ),
        # "This report supports start dates up to two years before the current date" [M];
        # no published window width: [E] 31 days.
        start_window=StartWindowRule(
            "campaignStartDateFrom", "campaignStartDateTo", timedelta(days=730),
            timedelta(days=31), "[M] 2 years; [E] 31-day window",
        ),
        restatement_days=30,
    ),
    VendorReportType(
        "GET_PROMOTION_PERFORMANCE_REPORT",
        "Promotion performance (vendor)",
        "promotionReport.json",
        ("promotions",),
        DateRule.START_DATE_OPTIONS,
        (
            OptionSpec("promotionStartDateFrom", date_time=True),
            OptionSpec("promotionStartDateTo", date_time=True),
        ),
        start_window=StartWindowRule(
            "promotionStartDateFrom", "promotionStartDateTo", timedelta(days=730),
            timedelta(days=31), "[M] 2 years; [E] 31-day window",
        ),
        restatement_days=30,
    ),
    VendorReportType(
        "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT",
        "Amazon search terms",
        "sellingPartnerSearchTermsReport.json",
        ("dataByDepartmentAndSearchTerm",),
        DateRule.PERIODS,
        (OptionSpec("reportPeriod", ("DAY", "WEEK", "MONTH", "QUARTER")),),
        {D: _BA_DAY, W: _single(_BA_WEEK), M: _single(_BA_MONTH), Q: _single(_BA_QUARTER)},
        spans_multiple_periods=False,
        brand_analytics=True,
    ),
    VendorReportType(
        "GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT",
        "Market basket analysis",
        "sellingPartnerMarketBasketAnalysisReport.json",
        ("dataByAsin",),
        DateRule.PERIODS,
        (OptionSpec("reportPeriod", ("DAY", "WEEK", "MONTH", "QUARTER")),),
        {D: _BA_DAY, W: _BA_WEEK, M: _BA_MONTH, Q: _BA_QUARTER},
        by_asin_array="dataByAsin",
        brand_analytics=True,
    ),
    VendorReportType(
        "GET_BRAND_ANALYTICS_REPEAT_PURCHASE_REPORT",
        "Repeat purchase",
        "sellingPartnerRepeatPurchaseReport.json",
        ("dataByAsin",),
        DateRule.PERIODS,
        (OptionSpec("reportPeriod", ("WEEK", "MONTH", "QUARTER")),),
        {W: _BA_WEEK, M: _BA_MONTH, Q: _BA_QUARTER},
        by_asin_array="dataByAsin",
        brand_analytics=True,
    ),
    VendorReportType(
        "GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT",
        "Search catalog performance",
        "sellingPartnerSearchCatalogPerformanceReport.json",
        ("dataByAsin",),
        DateRule.PERIODS,
        (
            OptionSpec("reportPeriod", ("WEEK", "MONTH", "QUARTER")),
            # "A space-separated list of ASINs ... There is a 200-character limit" [M].
            OptionSpec("asins", required=False, max_length=200),
        ),
        {W: _single(_BA_WEEK), M: _single(_BA_MONTH), Q: _single(_BA_QUARTER)},
        spans_multiple_periods=False,
        by_asin_array="dataByAsin",
        brand_analytics=True,
    ),
    VendorReportType(
        "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT",
        "Search query performance",
        "sellingPartnerSearchQueryPerformanceReport.json",
        ("dataByAsin",),
        DateRule.PERIODS,
        (
            OptionSpec("reportPeriod", ("WEEK", "MONTH", "QUARTER")),
            OptionSpec("asin", max_length=200),
        ),
        {W: _single(_BA_WEEK), M: _single(_BA_MONTH), Q: _single(_BA_QUARTER)},
        spans_multiple_periods=False,
        by_asin_array="dataByAsin",
        brand_analytics=True,
    ),
)

VENDOR_REPORT_TYPES: dict[str, VendorReportType] = {t.report_type: t for t in _TYPES}

# Amazon counts vendor report days in Pacific time ("All the timezones are in PST", docs#3107).
REPORTING_TIMEZONE = ZoneInfo("America/Los_Angeles")


def vendor_report_type(report_type: str) -> VendorReportType | None:
    """The registry entry for `report_type`, if amzlake knows it."""
    return VENDOR_REPORT_TYPES.get(report_type)


def option_combinations(rt: VendorReportType) -> list[dict[str, str]]:
    """Every combination of the enumerated options of `rt` (free-text options left out)."""
    combos: list[dict[str, str]] = [{}]
    for spec in rt.options:
        if spec.values is None:
            continue
        combos = [{**c, spec.name: v} for c in combos for v in spec.values]
    return combos


# ---- Validation of a create request -------------------------------------------------------------

# Amazon's texts, verbatim from FATAL error documents quoted in public issues.
MISSING_OPTIONS_TEXT = (
    "This report type requires the {names} reportOption to be specified. Please review the "
    "document for this report type on GitHub, provide a value for this reportOption in your "
    "request, and try again."
)  # saleweaver/python-amazon-sp-api#624
CLIENT_ERROR_TEXT = (
    "A client error occurred. Please double check that your parameters are valid and fulfill "
    "the requirements of the report type."
)  # selling-partner-api-docs#3047, selling-partner-api-models#5042 and #5065
DAY_SAME_DAY_TEXT = "dataStartTime must be the same day as dataEndTime when reportPeriod=DAY"
# ^ selling-partner-api-docs#3413 (Market Basket, DAY spanning several days)


class VendorRequestRejected(AmzlakeError):
    """A createReport body Amazon refuses at once with HTTP 400 InvalidInput."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class FatalRule(StrEnum):
    """Why an accepted request ends FATAL (Amazon only says it in `errorDetails`)."""

    MISSING_OPTIONS = "missing_options"
    UNKNOWN_OPTION = "unknown_option"
    INVALID_OPTION = "invalid_option"
    MARKETPLACE = "marketplace"
    RANGE_ORDER = "range_order"
    MISALIGNED = "misaligned"
    SPAN = "span"
    LOOKBACK = "lookback"
    NOT_AVAILABLE = "not_available"
    HOUR_WINDOW = "hour_window"


@dataclass(frozen=True)
class FatalReason:
    """An accepted request that will end FATAL, with the `errorDetails` text of its document."""

    rule: FatalRule
    text: str


@dataclass(frozen=True)
class CreateRequest:
    """A createReport request that passed the 400 checks, normalised."""

    report_type: VendorReportType
    marketplace_ids: tuple[str, ...]
    report_options: dict[str, str]
    data_start: datetime  # UTC; defaults to now, as Amazon does
    data_end: datetime
    period: ReportPeriod | None = None
    start_day: date | None = None  # dataStartTime's date (time ignored) for period reports
    end_day: date | None = None

    def dedupe_key(self) -> str:
        """A stable string naming this request (what makes two creates "the same request")."""
        opts = ",".join(f"{k}={v}" for k, v in sorted(self.report_options.items()))
        if self.report_type.date_rule is DateRule.PERIODS:
            dates = f"{self.start_day}..{self.end_day}"
        elif self.report_type.date_rule is DateRule.HOURS:
            dates = f"{self.data_start.isoformat()}..{self.data_end.isoformat()}"
        else:
            dates = ""
        return "|".join(
            [self.report_type.report_type, ",".join(self.marketplace_ids), opts, dates]
        )


@dataclass(frozen=True)
class CreateDecision:
    """What Amazon makes of an accepted request: a report that runs, or one that ends FATAL."""

    request: CreateRequest
    fatal: FatalReason | None = None


def parse_datetime(value: object, field_name: str) -> datetime:
    """An ISO-8601 date-time (or date) as aware UTC; raises VendorRequestRejected when unparsable."""
    if not isinstance(value, str) or not value:
        raise VendorRequestRejected(f"Invalid {field_name}: expected an ISO 8601 date-time.")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise VendorRequestRejected(
            f"Invalid {field_name}: {value!r} is not an ISO 8601 date-time."
        ) from None
    if parsed.tzinfo is None:
        # Amazon reads a date-time without an offset as UTC.
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def reporting_today(now: datetime) -> date:
    """Today's date in Amazon's vendor reporting time zone (Pacific)."""
    return now.astimezone(REPORTING_TIMEZONE).date()


def available_at(rule: PeriodRule, period_end: date) -> datetime:
    """When data for a period ending on `period_end` becomes available (Pacific close + lag)."""
    close = datetime.combine(period_end + timedelta(days=1), time(0), REPORTING_TIMEZONE)
    return (close + rule.lag).astimezone(UTC)


def _check_body(body: object, now: datetime) -> CreateRequest:
    """The 400 checks of the Reports API model; returns the normalised request."""
    if not isinstance(body, Mapping):
        raise VendorRequestRejected("The request body must be a JSON object.")
    report_type = body.get("reportType")
    if not isinstance(report_type, str) or not report_type:
        raise VendorRequestRejected("Missing required field reportType.")
    rt = vendor_report_type(report_type)
    if rt is None:
        # The Reports API sandbox answers an unknown reportType with 400 "Invalid input" [M].
        raise VendorRequestRejected(f"Invalid reportType: {report_type}.")
    mps = body.get("marketplaceIds")
    if not isinstance(mps, list) or not mps:
        raise VendorRequestRejected("Missing required field marketplaceIds.")
    if len(mps) > 25 or not all(isinstance(m, str) and m for m in mps):
        # CreateReportSpecification.marketplaceIds: minItems 1, maxItems 25, strings [M].
        raise VendorRequestRejected("marketplaceIds must hold 1 to 25 marketplace identifiers.")
    options: dict[str, str] = {}
    raw_options = body.get("reportOptions")
    if isinstance(raw_options, Mapping):
        for k, v in raw_options.items():
            if not isinstance(v, str):
                # ReportOptions is `additionalProperties: {type: string}` [M].
                raise VendorRequestRejected(f"Invalid reportOptions: value of {k} must be a string.")
            options[str(k)] = v
    elif isinstance(raw_options, list):
        # A list is accepted and the report ends FATAL for missing options, as Amazon did in
        # saleweaver/python-amazon-sp-api#624 (options sent as a list of one object).
        options = {}
    elif raw_options is not None:
        raise VendorRequestRejected("Invalid reportOptions: expected an object of strings.")
    start = (
        parse_datetime(body["dataStartTime"], "dataStartTime")
        if body.get("dataStartTime") is not None
        else now
    )
    end = (
        parse_datetime(body["dataEndTime"], "dataEndTime")
        if body.get("dataEndTime") is not None
        else now
    )
    # "The value must be prior to or equal to the current date and time" [M].
    if start > now:
        raise VendorRequestRejected("dataStartTime must be prior to or equal to the current time.")
    if end > now:
        raise VendorRequestRejected("dataEndTime must be prior to or equal to the current time.")
    period = None
    raw_period = options.get("reportPeriod")
    if raw_period in ReportPeriod.__members__:
        period = ReportPeriod(raw_period)
    return CreateRequest(
        rt,
        tuple(mps),
        options,
        start,
        end,
        period,
        start.date() if rt.date_rule is DateRule.PERIODS else None,
        end.date() if rt.date_rule is DateRule.PERIODS else None,
    )


def _fatal(rule: FatalRule, text: str = CLIENT_ERROR_TEXT) -> FatalReason:
    return FatalReason(rule, text)


def _check_options(rt: VendorReportType, options: Mapping[str, str]) -> FatalReason | None:
    missing = [name for name in rt.required_options if not options.get(name)]
    if missing:
        return _fatal(FatalRule.MISSING_OPTIONS, MISSING_OPTIONS_TEXT.format(names=", ".join(missing)))
    for name, value in options.items():
        spec = rt.option(name)
        if spec is None:
            return _fatal(FatalRule.UNKNOWN_OPTION)
        if spec.values is not None and value not in spec.values:
            return _fatal(FatalRule.INVALID_OPTION)
        if spec.max_length is not None and len(value) > spec.max_length:
            return _fatal(FatalRule.INVALID_OPTION)
        if spec.date_time:
            try:
                parse_datetime(value, name)
            except VendorRequestRejected:
                return _fatal(FatalRule.INVALID_OPTION)
    return None


def _check_periods(req: CreateRequest, now: datetime) -> FatalReason | None:
    rt, period = req.report_type, req.period
    assert period is not None and req.start_day is not None and req.end_day is not None
    rule = rt.periods.get(period)
    if rule is None:
        return _fatal(FatalRule.INVALID_OPTION)
    start, end = req.start_day, req.end_day
    if start > end:
        return _fatal(FatalRule.RANGE_ORDER)
    if rt.brand_analytics and period is ReportPeriod.DAY and start != end:
        return _fatal(FatalRule.SPAN, DAY_SAME_DAY_TEXT)
    if not (is_period_start(period, start) and is_period_end(period, end)):
        return _fatal(FatalRule.MISALIGNED)
    if count_periods(period, start, end) > rule.max_span:
        return _fatal(FatalRule.SPAN)
    if periods_between(period, start, reporting_today(now)) > rule.lookback:
        return _fatal(FatalRule.LOOKBACK)
    if now < available_at(rule, period_bounds(period, end)[1]):
        return _fatal(FatalRule.NOT_AVAILABLE)
    return None


def _check_hours(req: CreateRequest, now: datetime) -> FatalReason | None:
    rule = req.report_type.hour_rule
    assert rule is not None
    if req.data_start > req.data_end:
        return _fatal(FatalRule.RANGE_ORDER)
    if req.data_start < now - rule.lookback:
        return _fatal(FatalRule.LOOKBACK)
    if req.data_end - req.data_start > rule.max_span:
        return _fatal(FatalRule.SPAN)
    if req.data_end > now - rule.min_end_age:
        return _fatal(FatalRule.HOUR_WINDOW)
    return None


def _check_start_window(req: CreateRequest, now: datetime) -> FatalReason | None:
    rule = req.report_type.start_window
    assert rule is not None
    lo = parse_datetime(req.report_options[rule.option_from], rule.option_from)
    hi = parse_datetime(req.report_options[rule.option_to], rule.option_to)
    if lo > hi:
        return _fatal(FatalRule.RANGE_ORDER)
    if lo < now - rule.lookback:
        return _fatal(FatalRule.LOOKBACK)
    if hi - lo > rule.max_span:
        return _fatal(FatalRule.SPAN)
    return None


def validate_create(body: object, *, now: datetime, account_marketplace_id: str) -> CreateDecision:
    """Judge a createReport body for a vendor account: raises VendorRequestRejected (HTTP 400),
    else returns the normalised request and, when Amazon would end it FATAL, the reason."""
    req = _check_body(body, now)
    rt = req.report_type
    fatal = _check_options(rt, req.report_options)
    if fatal is None and req.marketplace_ids != (account_marketplace_id,):
        # "This report type supports only one marketplaceId per report. Specifying multiple
        # marketplaces will result in a fatal error" and it "must match the marketplaceId of the
        # selling partner account" [M, Brand Analytics and vendor schemas].
        fatal = _fatal(FatalRule.MARKETPLACE)
    if fatal is None:
        if rt.date_rule is DateRule.PERIODS:
            fatal = _check_periods(req, now)
        elif rt.date_rule is DateRule.HOURS:
            fatal = _check_hours(req, now)
        elif rt.date_rule is DateRule.START_DATE_OPTIONS:
            fatal = _check_start_window(req, now)
    return CreateDecision(req, fatal)
