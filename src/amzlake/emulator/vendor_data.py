"""SP-API vendor report documents, generated from the daily facts in `vendor_facts`.

`vendor_document` is the one entry point: it returns a `DocumentPlan` that streams the JSON of any
vendor report type in chunks of rows (per period, per batch), never the whole document as Python
objects, with its `Truth` (row counts and exact sums per `array.field`). `has_data` tells whether a
request finds anything (Amazon CANCELLED otherwise) and `fatal_document` is the small
`{"errorDetails": ...}` document of a FATAL report.

Every document validates against its JSON schema in shared/reference/spapi/schemas/reports/.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from amzlake.catalog.periods import ReportPeriod, days, full_hours, period_bounds, split_periods
from amzlake.catalog.vendor import (
    DateRule,
    VendorReportType,
    reporting_today,
    vendor_report_type,
)
from amzlake.emulator.documents import DocumentPlan, Truth
from amzlake.emulator.vendor_facts import (
    RESTATEMENT_DAYS,
    VendorCatalogue,
    glance_views_day,
    hourly_split,
    inventory_day,
    sales_day,
    season,
    stock_day,
    vendor_catalogue,
)
from amzlake.emulator.vendor_json import RATE_PLACES, Col, RowWriter, plan, string_column
from amzlake.emulator.world import VendorAccount, World, stable_int

DateLike = datetime | date | None
Producer = Callable[[], Iterator[list[str]]]
_RATE = 10**RATE_PLACES
# Keep per-period ASIN arrays between the aggregate pass and the by-ASIN pass up to this many
# cells; beyond it they are recomputed (deterministic), so memory stays bounded.
_CACHE_CELLS = 400_000
FORECAST_WEEKS = 27  # the schema's example forecasts 27 weeks from the generation date [M]


def _as_day(value: DateLike, default: date) -> date:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value.date()  # Amazon ignores the time component for these reports [M]
    return value


def _as_utc(value: DateLike, default: datetime) -> datetime:
    if value is None:
        return default
    if isinstance(value, datetime):
        return value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
    return datetime.combine(value, time(0), UTC)


def iso_z(moment: datetime) -> str:
    """A UTC date-time as Amazon prints it: 2022-04-20T20:00:00Z."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ratio(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """round(num / den, 4) as ten-thousandths, 0 where den is 0."""
    num = np.asarray(num, dtype=np.float64)
    den = np.asarray(den, dtype=np.float64)
    out = np.zeros(np.broadcast(num, den).shape)
    np.divide(num, den, out=out, where=den != 0)
    return np.rint(out * _RATE).astype(np.int64)


@dataclass(frozen=True)
class Request:
    """The resolved inputs of one document."""

    world: World
    account: VendorAccount
    rt: VendorReportType
    options: Mapping[str, str]
    start: date
    end: date
    start_time: datetime
    end_time: datetime
    as_of: datetime

    @property
    def cat(self) -> VendorCatalogue:
        """The account's catalogue."""
        return vendor_catalogue(self.world, self.account)

    @property
    def as_of_day(self) -> date:
        """The reporting date of the document's creation."""
        return reporting_today(self.as_of)

    @property
    def period(self) -> ReportPeriod:
        """The requested reportPeriod."""
        return ReportPeriod(self.options["reportPeriod"])

    def periods(self) -> list[tuple[date, date]]:
        """The requested periods that have any data (periods before the vendor's start have none)."""
        first = self.cat.history_start
        return [p for p in split_periods(self.period, self.start, self.end) if p[1] >= first]

    def base_spec(self, *, last_updated: bool = True, dates: bool = True) -> dict[str, Any]:
        """reportSpecification as Amazon echoes it."""
        spec: dict[str, Any] = {"reportType": self.rt.report_type}
        if self.rt.options:
            spec["reportOptions"] = dict(self.options)
        if last_updated:
            # The data in range was last revised on the last day still restating, or today.
            spec["lastUpdatedDate"] = min(
                self.as_of_day, self.end + timedelta(days=RESTATEMENT_DAYS)
            ).isoformat()
        if dates:
            spec["dataStartTime"] = self.start.isoformat()
            spec["dataEndTime"] = self.end.isoformat()
        spec["marketplaceIds"] = [self.account.marketplace.marketplace_id]
        return spec


class _PeriodValues:
    """Per-period arrays from `compute`, cached when small, recomputed when large."""

    def __init__(
        self, periods: list[tuple[date, date]], size: int,
        compute: Callable[[date, date], dict[str, np.ndarray]],
    ) -> None:
        self.periods = periods
        self.compute = compute
        self.keep = len(periods) * size <= _CACHE_CELLS
        self.cache: dict[tuple[date, date], dict[str, np.ndarray]] = {}

    def get(self, p: tuple[date, date]) -> dict[str, np.ndarray]:
        """The arrays of period `p`."""
        if p in self.cache:
            return self.cache[p]
        values = self.compute(*p)
        if self.keep:
            self.cache[p] = values
        return values


def _sum_days(fn: Callable[[date], Any], fields: tuple[str, ...], start: date, end: date,
              size: int) -> dict[str, np.ndarray]:
    totals = {f: np.zeros(size, dtype=np.int64) for f in fields}
    for day in days(start, end):
        values = fn(day)
        for f in fields:
            totals[f] += getattr(values, f)
    return totals


def _period_head(p: tuple[date, date]) -> list[tuple[str, str]]:
    return [("startDate", f'"{p[0].isoformat()}"'), ("endDate", f'"{p[1].isoformat()}"')]


def _two_arrays(
    req: Request, values: _PeriodValues, agg: RowWriter, by_asin: RowWriter,
    agg_row: Callable[[dict[str, np.ndarray], np.ndarray], list[np.ndarray]],
    asin_row: Callable[[dict[str, np.ndarray]], list[np.ndarray]],
    active: Callable[[tuple[date, date]], np.ndarray],
) -> list[tuple[str, Producer]]:
    """The aggregate and by-ASIN arrays of a retail analytics report, period by period."""
    asins = np.array(req.cat.asins, dtype=object)

    def aggregate() -> Iterator[list[str]]:
        for p in values.periods:
            v = values.get(p)
            mask = active(p)
            row = [np.array([x]) for x in agg_row(v, mask)]
            yield agg.rows_for(_period_head(p), row)

    def asin_rows() -> Iterator[list[str]]:
        for p in values.periods:
            v = values.get(p)
            mask = active(p)
            cols = [c[mask] for c in asin_row(v)]
            yield by_asin.rows_for(
                _period_head(p), cols, [string_column("asin", asins[mask].tolist())]
            )

    assert req.rt.aggregate_array and req.rt.by_asin_array
    return [(req.rt.aggregate_array, aggregate), (req.rt.by_asin_array, asin_rows)]


# ---- GET_VENDOR_SALES_REPORT --------------------------------------------------------------------

_SALES_FIELDS = (
    "ordered_units", "ordered_revenue", "shipped_units", "shipped_revenue", "shipped_cogs",
    "customer_returns",
)


def _sales_document(req: Request, truth: Truth) -> DocumentPlan:
    cat, view, program = req.cat, req.options["distributorView"], req.options["sellingProgram"]
    as_of = req.as_of_day
    # customerReturns only for RETAIL/BUSINESS, ordered* only for MANUFACTURING [M descriptions].
    spec_cols: list[tuple[Col, str]] = []
    if program in ("RETAIL", "BUSINESS"):
        spec_cols.append((Col("customerReturns"), "customer_returns"))
    if view == "MANUFACTURING":
        spec_cols.append((Col("orderedRevenue", "amount", cat.decimals), "ordered_revenue"))
        spec_cols.append((Col("orderedUnits"), "ordered_units"))
    spec_cols += [
        (Col("shippedCogs", "amount", cat.decimals), "shipped_cogs"),
        (Col("shippedRevenue", "amount", cat.decimals), "shipped_revenue"),
        (Col("shippedUnits"), "shipped_units"),
    ]
    cols = [c for c, _ in spec_cols]
    names = [f for _, f in spec_cols]
    values = _PeriodValues(
        req.periods(), cat.size,
        lambda s, e: _sum_days(
            lambda d: sales_day(cat, d, view, program, as_of), _SALES_FIELDS, s, e, cat.size
        ),
    )
    agg = RowWriter("salesAggregate", cols, cat.currency, truth)
    by = RowWriter("salesByAsin", cols, cat.currency, truth)
    arrays = _two_arrays(
        req, values, agg, by,
        lambda v, mask: [int(v[f][mask].sum()) for f in names],
        lambda v: [v[f] for f in names],
        lambda p: cat.active(p[1], program),
    )
    return plan(req.base_spec(), arrays, truth)


# ---- GET_VENDOR_TRAFFIC_REPORT ------------------------------------------------------------------


def _traffic_document(req: Request, truth: Truth) -> DocumentPlan:
    cat, as_of = req.cat, req.as_of_day

    @dataclass
    class _Day:
        glance_views: np.ndarray

    values = _PeriodValues(
        req.periods(), cat.size,
        lambda s, e: _sum_days(
            lambda d: _Day(glance_views_day(cat, d, as_of)), ("glance_views",), s, e, cat.size
        ),
    )
    cols = [Col("glanceViews")]
    arrays = _two_arrays(
        req, values,
        RowWriter("trafficAggregate", cols, cat.currency, truth),
        RowWriter("trafficByAsin", cols, cat.currency, truth),
        lambda v, mask: [int(v["glance_views"][mask].sum())],
        lambda v: [v["glance_views"]],
        lambda p: cat.active(p[1]),
    )
    return plan(req.base_spec(), arrays, truth)


# ---- GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT --------------------------------------------------


def _nppm_document(req: Request, truth: Truth) -> DocumentPlan:
    cat, as_of = req.cat, req.as_of_day

    def compute(s: date, e: date) -> dict[str, np.ndarray]:
        v = _sum_days(
            lambda d: sales_day(cat, d, "MANUFACTURING", "RETAIL", as_of),
            ("shipped_revenue", "shipped_cogs"), s, e, cat.size,
        )
        # (Product revenue - COGS - vendor-funded co-op) / product revenue [M description].
        v["coop"] = np.rint(v["shipped_revenue"] * cat.coop_rate).astype(np.int64)
        return v

    def margin(v: dict[str, np.ndarray], mask: np.ndarray | None = None) -> np.ndarray:
        rev, cogs, coop = v["shipped_revenue"], v["shipped_cogs"], v["coop"]
        if mask is not None:
            rev, cogs, coop = (np.array([x[mask].sum()]) for x in (rev, cogs, coop))
        return _ratio(rev - cogs - coop, rev)

    values = _PeriodValues(req.periods(), cat.size, compute)
    cols = [Col("netPureProductMargin", "fixed", RATE_PLACES)]
    arrays = _two_arrays(
        req, values,
        RowWriter("netPureProductMarginAggregate", cols, cat.currency, truth),
        RowWriter("netPureProductMarginByAsin", cols, cat.currency, truth),
        lambda v, mask: [int(margin(v, mask)[0])],
        lambda v: [margin(v)],
        lambda p: cat.active(p[1]),
    )
    return plan(req.base_spec(), arrays, truth)


# ---- GET_VENDOR_INVENTORY_REPORT ----------------------------------------------------------------

_INV_FLOWS = (
    "net_received", "received", "requested", "confirmed", "lead_weighted", "shipped", "returns",
    "glance_views", "oos_glance_views", "in_stock",
)
_INV_SNAPSHOTS = ("sellable", "open_po", "unfilled", "unsellable", "aged90", "unhealthy")


def _inventory_document(req: Request, truth: Truth) -> DocumentPlan:
    cat, as_of = req.cat, req.as_of_day
    view, program = req.options["distributorView"], req.options["sellingProgram"]
    daily = req.period is not ReportPeriod.DAY

    def compute(s: date, e: date) -> dict[str, np.ndarray]:
        v = _sum_days(
            lambda d: inventory_day(cat, d, view, program, as_of), _INV_FLOWS, s, e, cat.size
        )
        last = inventory_day(cat, e, view, program, as_of)
        for f in _INV_SNAPSHOTS:
            v[f] = getattr(last, f)
        before = stock_day(cat, s - timedelta(days=1), program)
        if view == "SOURCING":
            before = np.floor(before * cat.sourcing_share).astype(np.int64)
        v["begin"] = np.maximum(before, 0)
        v["days_active"] = np.zeros(cat.size, dtype=np.int64)
        for d in days(s, e):
            v["days_active"] += cat.active(d, program)
        return v

    def money(units: np.ndarray) -> np.ndarray:
        return units * cat.cost

    def common(v: dict[str, np.ndarray]) -> list[np.ndarray]:
        out = [
            _ratio(v["confirmed"], v["requested"]),
            money(v["net_received"]),
            v["net_received"],
            v["open_po"],
            # averageVendorLeadTimeDays with one decimal: received-weighted lead time.
            np.rint(_ratio(v["lead_weighted"], v["received"]) / _RATE).astype(np.int64),
            _ratio(v["shipped"] - v["returns"], v["begin"] + v["received"]),
            v["unfilled"],
            money(v["sellable"]),
            v["sellable"],
            money(v["unsellable"]),
            v["unsellable"],
            money(v["aged90"]),
            v["aged90"],
        ]
        if daily:
            # Unhealthy inventory is not available at daily granularity (Amazon,
            # selling-partner-api-models#4809), so DAY rows leave it out.
            out += [money(v["unhealthy"]), v["unhealthy"]]
        return out

    cols = [
        Col("vendorConfirmationRate", "fixed", RATE_PLACES),
        Col("netReceivedInventoryCost", "amount", cat.decimals),
        Col("netReceivedInventoryUnits"),
        Col("openPurchaseOrderUnits"),
        Col("averageVendorLeadTimeDays", "fixed", 1),
        Col("sellThroughRate", "fixed", RATE_PLACES),
        Col("unfilledCustomerOrderedUnits"),
        Col("sellableOnHandInventoryCost", "amount", cat.decimals),
        Col("sellableOnHandInventoryUnits"),
        Col("unsellableOnHandInventoryCost", "amount", cat.decimals),
        Col("unsellableOnHandInventoryUnits"),
        Col("aged90PlusDaysSellableInventoryCost", "amount", cat.decimals),
        Col("aged90PlusDaysSellableInventoryUnits"),
    ]
    if daily:
        cols += [Col("unhealthyInventoryCost", "amount", cat.decimals), Col("unhealthyInventoryUnits")]
    agg_cols = [
        *cols,
        Col("procurableProductOutOfStockRate", "fixed", RATE_PLACES),
        Col("uft", "fixed", RATE_PLACES),
        Col("receiveFillRate", "fixed", RATE_PLACES),
    ]

    def agg_row(v: dict[str, np.ndarray], mask: np.ndarray) -> list[np.ndarray]:
        total = {k: np.array([a[mask].sum()]) for k, a in v.items()}
        row = common(total)
        # Money of the aggregate is the sum of the ASIN rows' money, not units x one cost.
        money_fields = {1: "net_received", 7: "sellable", 9: "unsellable", 11: "aged90"}
        if daily:
            money_fields[13] = "unhealthy"
        for i, f in money_fields.items():
            row[i] = np.array([money(v[f])[mask].sum()])
        row += [
            _ratio(total["oos_glance_views"], total["glance_views"]),
            _ratio(total["in_stock"], total["days_active"]),
            _ratio(total["received"], total["confirmed"]),
        ]
        return [int(x[0]) for x in row]

    values = _PeriodValues(req.periods(), cat.size, compute)
    arrays = _two_arrays(
        req, values,
        RowWriter("inventoryAggregate", agg_cols, cat.currency, truth),
        RowWriter("inventoryByAsin", cols, cat.currency, truth),
        agg_row,
        common,
        lambda p: cat.active(p[1], program),
    )
    return plan(req.base_spec(), arrays, truth)


# ---- GET_VENDOR_FORECASTING_REPORT --------------------------------------------------------------


def forecast_generation_date(as_of: datetime) -> date:
    """The Sunday the forecast in force on `as_of` was generated (forecasts are weekly)."""
    return period_bounds(ReportPeriod.WEEK, reporting_today(as_of))[0]


def _forecast_document(req: Request, truth: Truth) -> DocumentPlan:
    cat, program = req.cat, req.options["sellingProgram"]
    gen = forecast_generation_date(req.as_of)
    mask = cat.active(gen, program)
    asins = [a for a, m in zip(cat.asins, mask, strict=True) if m]
    base = cat.demand[mask] * {"RETAIL": 1.0, "FRESH": 0.8}[program]
    rng = np.random.default_rng(
        stable_int(cat.seed, cat.account_key, "forecast", program, gen.toordinal())
    )
    level = base * rng.uniform(0.85, 1.15, len(asins))
    writer = RowWriter(
        "forecastByAsin",
        [Col(f"{k}ForecastUnits", "fixed", 1) for k in ("mean", "p70", "p80", "p90")],
        cat.currency,
        truth,
    )

    def rows() -> Iterator[list[str]]:
        for week in range(FORECAST_WEEKS):
            start = gen + timedelta(weeks=week)
            mean = level * 7 * np.mean([season(start + timedelta(days=i)) for i in range(7)])
            # Uncertainty grows with the horizon; normal quantiles z70/z80/z90.
            sigma = np.sqrt(mean) * 1.2 + mean * 0.1 * (1 + week / 13)
            qs = [mean, mean + 0.5244 * sigma, mean + 0.8416 * sigma, mean + 1.2816 * sigma]
            # Rounding is monotone, so mean <= p70 <= p80 <= p90 survives it.
            cols = [np.rint(q * 10).astype(np.int64) for q in qs]
            head = [
                ("forecastGenerationDate", f'"{gen.isoformat()}"'),
                ("startDate", f'"{start.isoformat()}"'),
                ("endDate", f'"{(start + timedelta(days=6)).isoformat()}"'),
            ]
            # Amazon lists asin after forecastGenerationDate; JSON key order carries no meaning.
            yield writer.rows_for(head, cols, [string_column("asin", asins)])

    spec = req.base_spec(dates=False)
    spec["lastUpdatedDate"] = req.as_of_day.isoformat()
    truth.details["forecastGenerationDate"] = gen.isoformat()
    return plan(spec, [("forecastByAsin", rows)], truth)


# ---- Real-time (hourly) reports -----------------------------------------------------------------


def _local_days(hours: list[datetime], tz: ZoneInfo) -> dict[date, list[datetime]]:
    out: dict[date, list[datetime]] = {}
    for h in hours:
        out.setdefault(h.astimezone(tz).date(), []).append(h)
    return out


def local_day_hours(local_day: date, tz: ZoneInfo) -> list[datetime]:
    """The UTC hour starts of one local day (23, 24 or 25 of them)."""
    start = datetime.combine(local_day, time(0), tz).astimezone(UTC)
    end = datetime.combine(local_day + timedelta(days=1), time(0), tz).astimezone(UTC)
    return full_hours(start, end)


def hourly_ordered_units(cat: VendorCatalogue, local_day: date) -> tuple[list[datetime], np.ndarray]:
    """The local day's UTC hours and each ASIN's ordered units per hour (asins x hours); the
    hours add up to the day's RETAIL/MANUFACTURING orderedUnits, cancellations may go negative."""
    tz = ZoneInfo(cat.timezone)
    hours = local_day_hours(local_day, tz)
    totals = sales_day(cat, local_day, "MANUFACTURING", "RETAIL", local_day).ordered_units
    split = hourly_split(cat, local_day, totals, len(hours), "sales")
    rng = np.random.default_rng(
        stable_int(cat.seed, cat.account_key, "cancellations", local_day.toordinal())
    )
    # A few orders are cancelled in a later hour: one unit moves, the day's total stays.
    idx = np.flatnonzero((totals > 0) & (rng.random(cat.size) < 0.05))
    if len(idx):
        np.subtract.at(split, (idx, rng.integers(0, len(hours), len(idx))), 1)
        np.add.at(split, (idx, rng.integers(0, len(hours), len(idx))), 1)
    return hours, split


def hourly_glance_views(cat: VendorCatalogue, local_day: date) -> tuple[list[datetime], np.ndarray]:
    """The local day's UTC hours and each ASIN's final glance views per hour."""
    hours = local_day_hours(local_day, ZoneInfo(cat.timezone))
    final = local_day + timedelta(days=RESTATEMENT_DAYS)
    totals = glance_views_day(cat, local_day, final)
    return hours, hourly_split(cat, local_day, totals, len(hours), "traffic")


def hourly_inventory(cat: VendorCatalogue, local_day: date) -> tuple[list[datetime], np.ndarray]:
    """The local day's UTC hours and highly available units per ASIN and hour, moving from the
    previous day's closing stock to this day's."""
    hours = local_day_hours(local_day, ZoneInfo(cat.timezone))
    end = np.maximum(stock_day(cat, local_day, "RETAIL"), 0)
    begin = np.maximum(stock_day(cat, local_day - timedelta(days=1), "RETAIL"), 0)
    steps = (np.arange(1, len(hours) + 1) / len(hours))[None, :]
    values = np.rint(begin[:, None] + (end - begin)[:, None] * steps).astype(np.int64)
    active = cat.active(local_day)[:, None]
    return hours, np.maximum(values, 0) * active


def _real_time_document(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    tz = ZoneInfo(cat.timezone)
    kind = req.rt.report_type
    hours = full_hours(req.start_time, req.end_time)
    asins = np.array(cat.asins, dtype=object)
    if kind == "GET_VENDOR_REAL_TIME_SALES_REPORT":
        cols = [Col("orderedUnits"), Col("orderedRevenue", "fixed", cat.decimals)]
        source = hourly_ordered_units
    elif kind == "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT":
        cols = [Col("glanceViews")]
        source = hourly_glance_views
    else:
        cols = [Col("highlyAvailableInventory")]
        source = hourly_inventory
    writer = RowWriter("reportData", cols, cat.currency, truth)

    def rows() -> Iterator[list[str]]:
        for local_day, wanted in _local_days(hours, tz).items():
            day_hours, grid = source(cat, local_day)
            for h in wanted:
                column = grid[:, day_hours.index(h)]
                # Sales and traffic list the ASINs with activity; inventory lists every ASIN on sale.
                if kind == "GET_VENDOR_REAL_TIME_INVENTORY_REPORT":
                    mask = cat.active(local_day)
                else:
                    mask = column != 0
                values = [column[mask]]
                if kind == "GET_VENDOR_REAL_TIME_SALES_REPORT":
                    values.append(column[mask] * cat.price[mask])
                head = [
                    ("startTime", f'"{iso_z(h)}"'),
                    ("endTime", f'"{iso_z(h + timedelta(hours=1))}"'),
                ]
                yield writer.rows_for(head, values, [string_column("asin", asins[mask].tolist())])

    spec: dict[str, Any] = {
        "reportType": kind,
        "dataStartTime": iso_z(req.start_time),
        "dataEndTime": iso_z(req.end_time),
        "marketplaceIds": [req.account.marketplace.marketplace_id],
    }
    if kind == "GET_VENDOR_REAL_TIME_SALES_REPORT":
        # The currency of orderedRevenue travels in the echoed reportOptions [M].
        spec["reportOptions"] = {"currencyCode": cat.currency}
    return plan(spec, [("reportData", rows)], truth)


# ---- Entry points -------------------------------------------------------------------------------


def _request(
    world: World, account: VendorAccount, report_type: str, options: Mapping[str, str] | None,
    data_start: DateLike, data_end: DateLike, as_of: datetime,
) -> Request:
    rt = vendor_report_type(report_type)
    if rt is None:
        raise ValueError(f"not a vendor report type: {report_type}")
    as_of = as_of.astimezone(UTC) if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    start_time, end_time = _as_utc(data_start, as_of), _as_utc(data_end, as_of)
    return Request(
        world, account, rt, dict(options or {}),
        _as_day(data_start, as_of.date()), _as_day(data_end, as_of.date()),
        start_time, end_time, as_of,
    )


def vendor_document(
    world: World,
    account: VendorAccount,
    report_type: str,
    options: Mapping[str, str] | None,
    data_start: DateLike,
    data_end: DateLike,
    as_of: datetime,
) -> DocumentPlan:
    """The streamed document of a valid vendor report request created at `as_of`, with its Truth."""
    req = _request(world, account, report_type, options, data_start, data_end, as_of)
    truth = Truth()
    truth.details.update(
        {"reportType": report_type, "asOf": iso_z(req.as_of), "currency": req.cat.currency}
    )
    builders: dict[str, Callable[[Request, Truth], DocumentPlan]] = {
        "GET_VENDOR_SALES_REPORT": _sales_document,
        "GET_VENDOR_TRAFFIC_REPORT": _traffic_document,
        "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT": _nppm_document,
        "GET_VENDOR_INVENTORY_REPORT": _inventory_document,
        "GET_VENDOR_FORECASTING_REPORT": _forecast_document,
        "GET_VENDOR_REAL_TIME_SALES_REPORT": _real_time_document,
        "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT": _real_time_document,
        "GET_VENDOR_REAL_TIME_INVENTORY_REPORT": _real_time_document,
    }
    if report_type in builders:
        return builders[report_type](req, truth)
    from amzlake.emulator import brand_analytics_data, vendor_promo_data

    if req.rt.brand_analytics:
        return brand_analytics_data.document(req, truth)
    return vendor_promo_data.document(req, truth)


def has_data(
    world: World,
    account: VendorAccount,
    report_type: str,
    options: Mapping[str, str] | None,
    data_start: DateLike,
    data_end: DateLike,
    as_of: datetime,
) -> bool:
    """Whether a valid request finds any data; Amazon CANCELLEDs a report that has none."""
    req = _request(world, account, report_type, options, data_start, data_end, as_of)
    cat, rt = req.cat, req.rt
    program = req.options.get("sellingProgram", "RETAIL")
    if not cat.sells_program(program):
        return False
    if rt.date_rule is DateRule.PERIODS:
        if not req.periods():
            return False
        if rt.brand_analytics:
            from amzlake.emulator import brand_analytics_data

            return brand_analytics_data.has_data(req)
        return True
    if rt.date_rule is DateRule.HOURS:
        return bool(full_hours(req.start_time, req.end_time))
    if rt.date_rule is DateRule.NONE:
        return bool(cat.active(forecast_generation_date(req.as_of), program).any())
    from amzlake.emulator import vendor_promo_data

    return vendor_promo_data.has_data(req)


def fatal_document(text: str) -> DocumentPlan:
    """The error document of a FATAL report: {"errorDetails": text}."""
    truth = Truth(details={"errorDetails": text})
    body = orjson.dumps({"errorDetails": text}, option=orjson.OPT_INDENT_2)
    return DocumentPlan(iter([body]), truth)
