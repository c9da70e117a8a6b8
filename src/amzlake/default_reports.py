"""The report set amzlake pulls when the config names none, built from the catalogues, not by hand.

Ads: every Sponsored Products / Brands / Display report type of catalog/ads.py, at DAILY, grouped by
the report's own level (its first groupBy in the registry: the one in the guide's title, e.g.
spCampaigns by campaign, sdTargeting by targeting) and with *every* column that groupBy allows at
DAILY (so `date`, never startDate/endDate). A new report type or column in the registry is pulled
without touching this file.

Vendor: sales, inventory, traffic, net pure product margin (reportPeriod DAY: the finest grain,
which rolls up to any week or month), forecasting, and the three real-time reports; Brand
Analytics (WEEK, the period its reports are read at; DAY Search Terms is millions of rows a day)
only when enabled. Search Query Performance needs an `asin` option that no default can pick, so
it is never in the default set. Enumerated options a report requires (distributorView,
sellingProgram) expand to every value the account has that the report type accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from itertools import product

from amzlake.catalog.ads import (
    ADS_REPORT_TYPES,
    TIME_UNIT_COLUMNS,
    AdProduct,
    AdsReportType,
    TimeUnit,
)
from amzlake.catalog.vendor import VENDOR_REPORT_TYPES, VendorReportType
from amzlake.slices import AdsReportSpec, VendorReportSpec

DEFAULT_AD_PRODUCTS: tuple[AdProduct, ...] = (
    AdProduct.SPONSORED_PRODUCTS,
    AdProduct.SPONSORED_BRANDS,
    AdProduct.SPONSORED_DISPLAY,
)

# Report type -> reportOptions beyond the account-dependent ones (None: the type takes no dates).
DEFAULT_VENDOR_REPORTS: Mapping[str, Mapping[str, str]] = {
    "GET_VENDOR_SALES_REPORT": {"reportPeriod": "DAY"},
    "GET_VENDOR_INVENTORY_REPORT": {"reportPeriod": "DAY"},
    "GET_VENDOR_TRAFFIC_REPORT": {"reportPeriod": "DAY"},
    "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT": {"reportPeriod": "DAY"},
    "GET_VENDOR_FORECASTING_REPORT": {},
    "GET_VENDOR_REAL_TIME_SALES_REPORT": {},
    "GET_VENDOR_REAL_TIME_INVENTORY_REPORT": {},
    "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT": {},
}

DEFAULT_BRAND_ANALYTICS_REPORTS: Mapping[str, Mapping[str, str]] = {
    "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT": {"reportPeriod": "WEEK"},
    "GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT": {"reportPeriod": "WEEK"},
    "GET_BRAND_ANALYTICS_REPEAT_PURCHASE_REPORT": {"reportPeriod": "WEEK"},
    "GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT": {"reportPeriod": "WEEK"},
}

# Options an account decides (its selling programs and distributor views), not the report entry.
ACCOUNT_OPTIONS: tuple[str, ...] = ("distributorView", "sellingProgram")


def default_group_by(rt: AdsReportType) -> tuple[str, ...]:
    """The groupBy a report type is pulled with by default: its own level (the registry's first)."""
    return (next(iter(rt.group_bys)),)


def all_columns(rt: AdsReportType, group_by: Iterable[str], time_unit: TimeUnit) -> tuple[str, ...]:
    """Every column `rt` allows for `group_by` at `time_unit`, sorted (other units' dates out)."""
    other_unit = set().union(
        *(cols for unit, cols in TIME_UNIT_COLUMNS.items() if unit != time_unit)
    )
    return tuple(sorted(rt.columns_for(group_by) - other_unit))


def ads_spec(
    report_type_id: str,
    group_by: Iterable[str] | None = None,
    columns: Iterable[str] | None = None,
    time_unit: TimeUnit = TimeUnit.DAILY,
    filters: Mapping[str, Iterable[str]] | None = None,
    format: str = "GZIP_JSON",
) -> AdsReportSpec:
    """An Ads report spec with the defaults filled in (groupBy: the report's own; columns: all)."""
    rt = ADS_REPORT_TYPES[report_type_id]
    gb = tuple(group_by) if group_by else default_group_by(rt)
    cols = tuple(columns) if columns else all_columns(rt, gb, time_unit)
    return AdsReportSpec(
        report_type_id=rt.report_type_id,
        ad_product=str(rt.ad_product),
        group_by=gb,
        columns=cols,
        time_unit=str(time_unit),
        filters=tuple(sorted((f, tuple(sorted(v))) for f, v in (filters or {}).items())),
        format=format,
    )


def default_ads_reports() -> tuple[AdsReportSpec, ...]:
    """One DAILY spec per SP/SB/SD report type in the registry, in registry order."""
    return tuple(
        ads_spec(rt.report_type_id)
        for rt in ADS_REPORT_TYPES.values()
        if rt.ad_product in DEFAULT_AD_PRODUCTS
    )


def default_vendor_report_options(brand_analytics: bool) -> dict[str, dict[str, str]]:
    """The default vendor report types with their fixed options (Brand Analytics when enabled)."""
    chosen = dict(DEFAULT_VENDOR_REPORTS)
    if brand_analytics:
        chosen.update(DEFAULT_BRAND_ANALYTICS_REPORTS)
    return {k: dict(v) for k, v in chosen.items()}


def vendor_specs(
    rt: VendorReportType,
    options: Mapping[str, str],
    selling_programs: Iterable[str],
    distributor_views: Iterable[str],
) -> tuple[VendorReportSpec, ...]:
    """The specs one report entry gives for an account: its options expanded over what `rt` takes.

    Empty when the account has none of the values the type accepts (e.g. inventory for a
    BUSINESS-only vendor: inventory has no BUSINESS program).
    """
    account_values = {
        "sellingProgram": tuple(dict.fromkeys(selling_programs)),
        "distributorView": tuple(dict.fromkeys(distributor_views)),
    }
    axes: list[list[tuple[str, str]]] = []
    for name in ACCOUNT_OPTIONS:
        spec = rt.option(name)
        if spec is None or name in options:
            continue
        allowed = spec.values or ()
        values = [v for v in account_values[name] if v in allowed]
        axes.append([(name, v) for v in values])
    return tuple(
        VendorReportSpec.of(rt.report_type, {**options, **dict(combo)}) for combo in product(*axes)
    )


def default_vendor_reports(
    selling_programs: Iterable[str],
    distributor_views: Iterable[str],
    brand_analytics: bool = False,
) -> tuple[VendorReportSpec, ...]:
    """Every default vendor spec for an account with these selling programs and views."""
    programs, views = tuple(selling_programs), tuple(distributor_views)
    return tuple(
        spec
        for name, opts in default_vendor_report_options(brand_analytics).items()
        for spec in vendor_specs(VENDOR_REPORT_TYPES[name], opts, programs, views)
    )
