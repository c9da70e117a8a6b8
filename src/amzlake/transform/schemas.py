"""Explicit Arrow schemas of the curated tables, from the report catalogues and Amazon's schemas.

Ads: one table per report type and time unit, holding every column the report type offers under
any groupBy (a config that asks for fewer columns leaves the rest null), typed from
`catalog.ads.ADS_COLUMN_TYPES`: Integer -> int64 (ids exceed 2^53), Decimal money ->
decimal(18,4), Decimal rates and ratios -> float64, dates -> date; plus `currency` (the profile's,
since Ads money carries none).

Vendor: the tables of each report type with their fields transcribed from the official JSON
schemas (shared/reference/spapi/schemas/reports/*.json): integer -> int64, Amount objects
{amount, currencyCode} -> `<name>_amount` decimal(18,4) + `<name>_currency`, plain-number money
(real-time revenue, coupon budgets, promotion spend) -> decimal(18,4), other numbers (rates,
shares, forecast units, lead-time days) -> float64, date -> date, date-time -> timestamp(us, UTC).

Every table starts with `model.LINEAGE_FIELDS`. Fields Amazon adds later are not here: the parsers
append them as nullable columns (schema evolution).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

import pyarrow as pa

from amzlake.catalog.ads import (
    ADS_COLUMN_TYPES,
    ADS_REPORT_TYPES,
    TIME_UNIT_COLUMNS,
    ColumnType,
    TimeUnit,
)
from amzlake.transform.model import LINEAGE_FIELDS
from amzlake.transform.names import ads_table, path_column, snake

MONEY = pa.decimal128(18, 4)
MONEY_SCALE = 4
TIMESTAMP = pa.timestamp("us", tz="UTC")

# ---- Ads ----------------------------------------------------------------------------------------

# Decimal columns that are rates or ratios, not money (columns.md types both "Decimal"): rates
# (clickThroughRate, viewabilityRate...), percentages, shares, ACOS/ROAS and the frequency average.
_RATE = re.compile(r"(Rate|Percentage|Share|FrequencyAverage|ROAS)(\d+d)?$|^(acos|roas)")


def is_ads_rate(column: str) -> bool:
    """Whether an Ads Decimal column is a rate or ratio (float64) rather than money."""
    return bool(_RATE.search(column))


def ads_arrow_type(column: str) -> pa.DataType | None:
    """The Arrow type of a known Ads column, or None when the catalogue does not know it."""
    kind = ADS_COLUMN_TYPES.get(column)
    if kind is None:
        return None
    if kind is ColumnType.INTEGER:
        return pa.int64()
    if kind is ColumnType.DECIMAL:
        return pa.float64() if is_ads_rate(column) else MONEY
    if kind is ColumnType.DATE:
        return pa.date32()
    return pa.string()


def ads_columns(report_type_id: str, time_unit: str) -> tuple[str, ...]:
    """Every column (Amazon's names) a report type offers at `time_unit`, under any groupBy."""
    rt = ADS_REPORT_TYPES[report_type_id]
    unit = TimeUnit(time_unit)
    other = set().union(*(c for u, c in TIME_UNIT_COLUMNS.items() if u is not unit))
    cols = list(rt.base_columns)
    for g in rt.group_bys.values():
        cols.extend(g.columns)
    return tuple(c for c in dict.fromkeys(cols) if c not in other)


def ads_schema(report_type_id: str, time_unit: str) -> pa.Schema:
    """The declared schema of an Ads table: lineage, `currency`, then the report's columns."""
    fields = [*LINEAGE_FIELDS, pa.field("currency", pa.string())]
    for c in ads_columns(report_type_id, time_unit):
        t = ads_arrow_type(c)
        fields.append(pa.field(snake(c), t if t is not None else pa.string()))
    return pa.schema(fields)


def ads_table_name(report_type_id: str, time_unit: str) -> str:
    """The table an Ads report type and time unit go to."""
    return ads_table(report_type_id, time_unit)


# ---- Vendor -------------------------------------------------------------------------------------

# Field kinds of the vendor table specs below.
KINDS: Mapping[str, pa.DataType] = MappingProxyType({
    "i": pa.int64(),  # JSON integer
    "n": pa.float64(),  # JSON number that is not money
    "m": MONEY,  # JSON number that is money
    "d": pa.date32(),  # "YYYY-MM-DD"
    "t": TIMESTAMP,  # ISO-8601 date-time
    "s": pa.string(),
    "b": pa.bool_(),
})
AMOUNT = "A"  # an Amount object -> <name>_amount (MONEY) + <name>_currency (string)


class DateFrom:
    """Where a vendor row's `report_date` comes from."""

    START_DATE = "startDate"  # the row's startDate (period reports)
    START_TIME = "startTime"  # the UTC day of the row's startTime (hourly reports)
    START_DATE_TIME = "startDateTime"  # the UTC day of the row's startDateTime (promotions)
    COUPON_START = "couponStart"  # the earliest startDateTime of the campaign's coupons
    SPEC = "spec"  # reportSpecification.dataStartTime (rows without dates: search terms)
    SLICE = "slice"  # the slice's first day (forecasting: a snapshot per fetch day)


@dataclass(frozen=True)
class VendorTable:
    """One curated table fed by one (possibly nested) array of a vendor document."""

    name: str
    array: tuple[str, ...]  # array path from the document root, e.g. ("campaigns", "coupons")
    fields: tuple[tuple[str, str], ...]  # (dotted field path in the row, kind)
    date_from: str
    # Columns copied from the enclosing rows onto this one: (parent column, column here).
    parent_keys: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class VendorDocument:
    """What a vendor report type's document feeds: its tables and the options kept as columns."""

    report_type: str
    tables: tuple[VendorTable, ...]
    options: tuple[str, ...] = ()  # reportOptions keys copied onto every row (snake_cased)


def _f(spec: str) -> tuple[tuple[str, str], ...]:
    return tuple((p.rsplit(":", 1)[0], p.rsplit(":", 1)[1]) for p in spec.split())


_PERIOD = "startDate:d endDate:d"
_SALES = (
    "customerReturns:i orderedRevenue:A orderedUnits:i shippedCogs:A shippedRevenue:A "
    "shippedUnits:i"
)
_INVENTORY = (
    "vendorConfirmationRate:n netReceivedInventoryCost:A netReceivedInventoryUnits:i "
    "openPurchaseOrderUnits:i averageVendorLeadTimeDays:n sellThroughRate:n "
    "unfilledCustomerOrderedUnits:i sellableOnHandInventoryCost:A sellableOnHandInventoryUnits:i "
    "unsellableOnHandInventoryCost:A unsellableOnHandInventoryUnits:i "
    "aged90PlusDaysSellableInventoryCost:A aged90PlusDaysSellableInventoryUnits:i "
    "unhealthyInventoryCost:A unhealthyInventoryUnits:i"
)
_INVENTORY_AGG_ONLY = "procurableProductOutOfStockRate:n uft:n receiveFillRate:n"
_HOUR = "startTime:t endTime:t asin:s"
_CATALOG = (
    "impressionData.impressionCount:i impressionData.impressionMedianPrice:A "
    "impressionData.sameDayShippingImpressionCount:i "
    "impressionData.oneDayShippingImpressionCount:i "
    "impressionData.twoDayShippingImpressionCount:i clickData.clickCount:i clickData.clickRate:n "
    "clickData.clickedMedianPrice:A clickData.sameDayShippingClickCount:i "
    "clickData.oneDayShippingClickCount:i clickData.twoDayShippingClickCount:i "
    "cartAddData.cartAddCount:i cartAddData.cartAddedMedianPrice:A "
    "cartAddData.sameDayShippingCartAddCount:i cartAddData.oneDayShippingCartAddCount:i "
    "cartAddData.twoDayShippingCartAddCount:i purchaseData.purchaseCount:i "
    "purchaseData.searchTrafficSales:A purchaseData.conversionRate:n "
    "purchaseData.purchaseMedianPrice:A purchaseData.sameDayShippingPurchaseCount:i "
    "purchaseData.oneDayShippingPurchaseCount:i purchaseData.twoDayShippingPurchaseCount:i"
)
_QUERY = (
    "searchQueryData.searchQuery:s searchQueryData.searchQueryScore:i "
    "searchQueryData.searchQueryVolume:i impressionData.totalQueryImpressionCount:i "
    "impressionData.asinImpressionCount:i impressionData.asinImpressionShare:n "
    "clickData.totalClickCount:i clickData.totalClickRate:n clickData.asinClickCount:i "
    "clickData.asinClickShare:n clickData.totalMedianClickPrice:A clickData.asinMedianClickPrice:A "
    "clickData.totalSameDayShippingClickCount:i clickData.totalOneDayShippingClickCount:i "
    "clickData.totalTwoDayShippingClickCount:i cartAddData.totalCartAddCount:i "
    "cartAddData.totalCartAddRate:n cartAddData.asinCartAddCount:i cartAddData.asinCartAddShare:n "
    "cartAddData.totalMedianCartAddPrice:A cartAddData.asinMedianCartAddPrice:A "
    "cartAddData.totalSameDayShippingCartAddCount:i cartAddData.totalOneDayShippingCartAddCount:i "
    "cartAddData.totalTwoDayShippingCartAddCount:i purchaseData.totalPurchaseCount:i "
    "purchaseData.totalPurchaseRate:n purchaseData.asinPurchaseCount:i "
    "purchaseData.asinPurchaseShare:n purchaseData.totalMedianPurchasePrice:A "
    "purchaseData.asinMedianPurchasePrice:A purchaseData.totalSameDayShippingPurchaseCount:i "
    "purchaseData.totalOneDayShippingPurchaseCount:i "
    "purchaseData.totalTwoDayShippingPurchaseCount:i"
)
_RETAIL_OPTIONS = ("reportPeriod", "distributorView", "sellingProgram")
_S = DateFrom


def _pair(report_type: str, stem: str, agg: str, by_asin: str, aggregate: str, rows: str,
          options: tuple[str, ...]) -> VendorDocument:
    return VendorDocument(report_type, (
        VendorTable(f"vendor_{stem}_aggregate", (agg,), _f(f"{_PERIOD} {aggregate}"),
                    _S.START_DATE),
        VendorTable(f"vendor_{stem}_by_asin", (by_asin,), _f(f"{_PERIOD} asin:s {rows}"),
                    _S.START_DATE),
    ), options)


_DOCUMENTS: tuple[VendorDocument, ...] = (
    _pair("GET_VENDOR_SALES_REPORT", "sales", "salesAggregate", "salesByAsin", _SALES, _SALES,
          _RETAIL_OPTIONS),
    _pair("GET_VENDOR_INVENTORY_REPORT", "inventory", "inventoryAggregate", "inventoryByAsin",
          f"{_INVENTORY_AGG_ONLY} {_INVENTORY}", _INVENTORY, _RETAIL_OPTIONS),
    _pair("GET_VENDOR_TRAFFIC_REPORT", "traffic", "trafficAggregate", "trafficByAsin",
          "glanceViews:i", "glanceViews:i", ("reportPeriod",)),
    _pair("GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT", "net_pure_product_margin",
          "netPureProductMarginAggregate", "netPureProductMarginByAsin", "netPureProductMargin:n",
          "netPureProductMargin:n", ("reportPeriod",)),
    VendorDocument("GET_VENDOR_FORECASTING_REPORT", (
        VendorTable("vendor_forecasting_by_asin", ("forecastByAsin",), _f(
            "forecastGenerationDate:d asin:s startDate:d endDate:d meanForecastUnits:n "
            "p70ForecastUnits:n p80ForecastUnits:n p90ForecastUnits:n"), _S.SLICE),
    ), ("sellingProgram",)),
    VendorDocument("GET_VENDOR_REAL_TIME_SALES_REPORT", (
        VendorTable("vendor_real_time_sales", ("reportData",),
                    _f(f"{_HOUR} orderedUnits:i orderedRevenue:m"), _S.START_TIME),
    ), ("currencyCode",)),
    VendorDocument("GET_VENDOR_REAL_TIME_INVENTORY_REPORT", (
        VendorTable("vendor_real_time_inventory", ("reportData",),
                    _f(f"{_HOUR} highlyAvailableInventory:i"), _S.START_TIME),
    )),
    VendorDocument("GET_VENDOR_REAL_TIME_TRAFFIC_REPORT", (
        VendorTable("vendor_real_time_traffic", ("reportData",),
                    _f(f"{_HOUR} glanceViews:i"), _S.START_TIME),
    )),
    VendorDocument("GET_COUPON_PERFORMANCE_REPORT", (
        VendorTable("vendor_coupon_campaigns", ("campaigns",), _f(
            "campaignId:s campaignName:s vendorCode:s marketplaceId:s creationDateTime:t "
            "lastUpdatedDateTime:t isSubscribeAndSave:b budgetType:s totalClips:i "
            "totalRedemptions:i currencyCode:s totalBudget:m totalBudgetSpent:m "
            "totalBudgetRemaining:m"), _S.COUPON_START),
        VendorTable("vendor_coupons", ("campaigns", "coupons"), _f(
            "couponId:s name:s websiteMessage:s startDateTime:t endDateTime:t isOncePerCustomer:b "
            "customerSegment:s clips:i redemptions:i budget:m totalDiscount:m budgetSpent:m "
            "budgetRemaining:m budgetPercentageUsed:n"), _S.COUPON_START,
            (("campaign_id", "campaign_id"), ("currency_code", "currency_code"))),
        VendorTable("vendor_coupon_asins", ("campaigns", "coupons", "asins"), _f(
            "asin:s discountType:s discountAmount:n"), _S.COUPON_START,
            (("campaign_id", "campaign_id"), ("coupon_id", "coupon_id"))),
    )),
    VendorDocument("GET_PROMOTION_PERFORMANCE_REPORT", (
        VendorTable("vendor_promotions", ("promotions",), _f(
            "promotionId:s promotionName:s vendorCode:s merchantId:s unitsSold:i amountSpent:m "
            "amountSpentCurrencyCode:s revenue:m revenueCurrencyCode:s startDateTime:t "
            "endDateTime:t type:s status:s creationChannel:s marketplaceId:s "
            "fundingAgreementId:s glanceViews:i createdDateTime:t lastUpdatedDateTime:t"),
            _S.START_DATE_TIME),
        VendorTable("vendor_promotion_products", ("promotions", "includedProducts"), _f(
            "asin:s productName:s productGlanceViews:i productUnitsSold:i productAmountSpent:m "
            "productAmountSpentCurrencyCode:s productRevenue:m productRevenueCurrencyCode:s"),
            _S.START_DATE_TIME, (("promotion_id", "promotion_id"),)),
    )),
    VendorDocument("GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT", (
        VendorTable("vendor_ba_search_terms", ("dataByDepartmentAndSearchTerm",), _f(
            "departmentName:s searchTerm:s searchFrequencyRank:i clickedAsin:s clickShareRank:i "
            "clickShare:n conversionShare:n"), _S.SPEC),
    ), ("reportPeriod",)),
    VendorDocument("GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT", (
        VendorTable("vendor_ba_market_basket_by_asin", ("dataByAsin",), _f(
            f"{_PERIOD} asin:s purchasedWithAsin:s purchasedWithRank:i combinationPct:n"),
            _S.START_DATE),
    ), ("reportPeriod",)),
    VendorDocument("GET_BRAND_ANALYTICS_REPEAT_PURCHASE_REPORT", (
        VendorTable("vendor_ba_repeat_purchase_by_asin", ("dataByAsin",), _f(
            f"{_PERIOD} asin:s orders:i uniqueCustomers:i repeatCustomersPctTotal:n "
            "repeatPurchaseRevenue:A repeatPurchaseRevenuePctTotal:n"), _S.START_DATE),
    ), ("reportPeriod",)),
    VendorDocument("GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT", (
        VendorTable("vendor_ba_search_catalog_performance_by_asin", ("dataByAsin",),
                    _f(f"{_PERIOD} asin:s {_CATALOG}"), _S.START_DATE),
    ), ("reportPeriod", "asins")),
    VendorDocument("GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT", (
        VendorTable("vendor_ba_search_query_performance_by_asin", ("dataByAsin",),
                    _f(f"{_PERIOD} asin:s {_QUERY}"), _S.START_DATE),
    ), ("reportPeriod", "asin")),
)

VENDOR_DOCUMENTS: Mapping[str, VendorDocument] = MappingProxyType(
    {d.report_type: d for d in _DOCUMENTS}
)


def option_column(option: str) -> str:
    """The column of a reportOptions key (`reportPeriod` -> `report_period`); free-text options
    that name a field of the rows (`asin`) get an `option_` prefix so the two never collide."""
    return "option_" + snake(option) if option in ("asin", "asins") else snake(option)


def vendor_field_columns(path: str, kind: str) -> list[pa.Field]:
    """The columns a vendor field becomes (two for an Amount object)."""
    col = path_column(path.split("."))
    if kind == AMOUNT:
        return [pa.field(f"{col}_amount", MONEY), pa.field(f"{col}_currency", pa.string())]
    return [pa.field(col, KINDS[kind])]


def vendor_schema(doc: VendorDocument, table: VendorTable) -> pa.Schema:
    """The declared schema of a vendor table: lineage, `last_updated_date`, the options kept as
    columns, the enclosing rows' keys, then the table's own fields."""
    fields: list[pa.Field] = [*LINEAGE_FIELDS, pa.field("last_updated_date", pa.date32())]
    fields += [pa.field(option_column(o), pa.string()) for o in doc.options]
    own = [f for path, kind in table.fields for f in vendor_field_columns(path, kind)]
    own_names = {f.name for f in own}
    fields += [pa.field(child, pa.string())
               for _, child in table.parent_keys if child not in own_names]
    return pa.schema(fields + own)


def vendor_tables() -> dict[str, pa.Schema]:
    """Every vendor table's declared schema, by table name."""
    return {t.name: vendor_schema(d, t) for d in _DOCUMENTS for t in d.tables}
