"""How each Ads report column is computed from the summed cell measures of a row.

Counts and money are sums of cell measures (so every report type adds up the same way); rates are
computed from a row's sums, rounded half up at a fixed scale, and null where the denominator is
zero for the ratios Amazon leaves empty (acos/roas: a sample report has `"acosClicks14d": null`).
Attributes (ids, names, statuses) come from the row's entity. Every value is an integer at a
known decimal scale, so the document and its Truth agree to the last digit.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from amzlake.emulator.ads_metrics import lag_buckets


@dataclass(frozen=True)
class Sum:
    """The sum of some measures; `money` puts it at the currency's scale."""

    measures: tuple[str, ...]
    money: bool = False
    whole_units: bool = False  # money typed Integer by Amazon: rounded to whole currency units


@dataclass(frozen=True)
class Ratio:
    """num / den * factor, at `scale` decimals (or the currency's when `money`)."""

    num: tuple[str, ...]
    den: tuple[str, ...]
    factor: int = 1
    scale: int = 4
    money: bool = False  # the result is money (cost per something)
    null_if_empty: bool = False  # null (not 0) when the denominator is 0


@dataclass(frozen=True)
class Zero:
    """A column the emulated brand has no activity for (Kindle pages, borrows, lists)."""

    money: bool = False


@dataclass(frozen=True)
class Attr:
    """A property of the row's entity, named for ads_data's attribute table."""

    name: str


@dataclass(frozen=True)
class Null:
    """Always null (budget rules the emulated campaigns do not use)."""


Spec = Sum | Ratio | Zero | Attr | Null


def _w(prefix: str, kinds: str, window: int) -> tuple[str, ...]:
    return tuple(f"{prefix}_{k}{lag}" for lag in lag_buckets(window) for k in kinds)


CLICK14_P = _w("p", "so", 14)
CLICK14_U = _w("u", "so", 14)
CLICK14_S = _w("s", "so", 14)
SAME14_P = _w("p", "s", 14)
SAME14_S = _w("s", "s", 14)


def _sp_windowed() -> dict[str, Spec]:
    out: dict[str, Spec] = {}
    for w in (1, 7, 14, 30):
        out[f"purchases{w}d"] = Sum(_w("p", "so", w))
        out[f"purchasesSameSku{w}d"] = Sum(_w("p", "s", w))
        out[f"purchasesOtherSku{w}d"] = Sum(_w("p", "o", w))
        out[f"unitsSoldClicks{w}d"] = Sum(_w("u", "so", w))
        out[f"unitsSoldSameSku{w}d"] = Sum(_w("u", "s", w))
        out[f"unitsSoldOtherSku{w}d"] = Sum(_w("u", "o", w))
        out[f"sales{w}d"] = Sum(_w("s", "so", w), money=True)
        out[f"attributedSalesSameSku{w}d"] = Sum(_w("s", "s", w), money=True)
        out[f"salesOtherSku{w}d"] = Sum(_w("s", "o", w), money=True)
    for w in (7, 14):
        sales = _w("s", "so", w)
        out[f"acosClicks{w}d"] = Ratio(("cost",), sales, scale=4, null_if_empty=True)
        out[f"roasClicks{w}d"] = Ratio(sales, ("cost",), scale=2, null_if_empty=True)
    return out


_PV = ("pv",)
_TRAFFIC: dict[str, Spec] = {
    "impressions": Sum(("impressions",)),
    "clicks": Sum(("clicks",)),
    "cost": Sum(("cost",), money=True),
    "spend": Sum(("cost",), money=True),
    "costPerClick": Ratio(("cost",), ("clicks",), money=True),
    "clickThroughRate": Ratio(("clicks",), ("impressions",), scale=4),
    "topOfSearchImpressionShare": Ratio(
        ("tos_impressions",), ("tos_impressions", "tos_missed"), scale=4, null_if_empty=True
    ),
    "grossImpressions": Sum(("gross_impressions",)),
    "grossClickThroughs": Sum(("gross_clicks",)),
    "invalidImpressions": Sum(("gross_impressions", "-impressions")),
    "invalidClickThroughs": Sum(("gross_clicks", "-clicks")),
    "invalidImpressionRate": Ratio(
        ("gross_impressions", "-impressions"), ("gross_impressions",), factor=100, scale=2
    ),
    "invalidClickThroughRate": Ratio(("gross_clicks", "-clicks"), ("gross_clicks",), factor=100, scale=2),
}

_SB_SD: dict[str, Spec] = {
    "purchasesClicks": Sum(CLICK14_P),
    "purchases": Sum(CLICK14_P + _PV),
    "purchasesPromoted": Sum(SAME14_P + _PV),
    "purchasesPromotedClicks": Sum(SAME14_P),
    "unitsSoldClicks": Sum(CLICK14_U),
    "unitsSold": Sum((*CLICK14_U, "uv")),
    "salesClicks": Sum(CLICK14_S, money=True),
    "sales": Sum((*CLICK14_S, "sv"), money=True),
    "salesPromoted": Sum((*SAME14_S, "sv"), money=True),
    "salesPromotedClicks": Sum(SAME14_S, money=True),
    "newToBrandPurchases": Sum(("ntb_pc", "ntb_pv")),
    "newToBrandPurchasesClicks": Sum(("ntb_pc",)),
    "newToBrandUnitsSold": Sum(("ntb_uc", "ntb_uv")),
    "newToBrandUnitsSoldClicks": Sum(("ntb_uc",)),
    "newToBrandSales": Sum(("ntb_sc", "ntb_sv"), money=True),
    "newToBrandSalesClicks": Sum(("ntb_sc",), money=True),
    "newToBrandPurchasesPercentage": Ratio(
        ("ntb_pc", "ntb_pv"), CLICK14_P + _PV, factor=100, scale=2, null_if_empty=True
    ),
    "newToBrandSalesPercentage": Ratio(
        ("ntb_sc", "ntb_sv"), (*CLICK14_S, "sv"), factor=100, scale=2, null_if_empty=True
    ),
    "newToBrandUnitsSoldPercentage": Ratio(
        ("ntb_uc", "ntb_uv"), (*CLICK14_U, "uv"), factor=100, scale=2, null_if_empty=True
    ),
    "newToBrandPurchasesRate": Ratio(("ntb_pc", "ntb_pv"), ("clicks",), factor=100, scale=2),
    "detailPageViews": Sum(("dpv_c", "dpv_v")),
    "detailPageViewsClicks": Sum(("dpv_c",)),
    "newToBrandDetailPageViews": Sum(("ntb_dpv_c", "ntb_dpv_v")),
    "newToBrandDetailPageViewsClicks": Sum(("ntb_dpv_c",)),
    "newToBrandDetailPageViewClicks": Sum(("ntb_dpv_c",)),
    "newToBrandDetailPageViewViews": Sum(("ntb_dpv_v",)),
    "newToBrandDetailPageViewRate": Ratio(("ntb_dpv_c", "ntb_dpv_v"), ("impressions",), factor=100, scale=4),
    "newToBrandECPDetailPageView": Ratio(
        ("cost",), ("ntb_dpv_c", "ntb_dpv_v"), money=True, null_if_empty=True
    ),
    "addToCart": Sum(("atc_c", "atc_v")),
    "addToCartClicks": Sum(("atc_c",)),
    "addToCartViews": Sum(("atc_v",)),
    "addToCartRate": Ratio(("atc_c", "atc_v"), ("impressions",), factor=100, scale=4),
    "eCPAddToCart": Ratio(("cost",), ("atc_c", "atc_v"), money=True, null_if_empty=True),
    "brandedSearches": Sum(("bs_c", "bs_v")),
    "brandedSearchesClicks": Sum(("bs_c",)),
    "brandedSearchesViews": Sum(("bs_v",)),
    "brandedSearchRate": Ratio(("bs_c", "bs_v"), ("impressions",), factor=100, scale=4),
    "eCPBrandSearch": Ratio(("cost",), ("bs_c", "bs_v"), money=True, null_if_empty=True),
    "viewableImpressions": Sum(("viewable",)),
    "impressionsViews": Sum(("viewable",)),
    "viewabilityRate": Ratio(("viewable",), ("impressions",), factor=100, scale=2),
    "viewClickThroughRate": Ratio(("clicks",), ("viewable",), factor=100, scale=2, null_if_empty=True),
    "videoFirstQuartileViews": Sum(("video_q1",)),
    "videoMidpointViews": Sum(("video_mid",)),
    "videoThirdQuartileViews": Sum(("video_q3",)),
    "videoCompleteViews": Sum(("video_complete",)),
    "video5SecondViews": Sum(("video_5s",)),
    "videoUnmutes": Sum(("video_unmutes",)),
    "video5SecondViewRate": Ratio(("video_5s",), ("impressions",), factor=100, scale=2),
    "cumulativeReach": Sum(("reach",)),
    "impressionsFrequencyAverage": Ratio(("impressions",), ("reach",), scale=2, null_if_empty=True),
    "longTermSales": Sum(("lts",), money=True),
    "longTermROAS": Ratio(("lts",), ("cost",), scale=2, null_if_empty=True),
}

_ZERO: dict[str, Spec] = {
    c: Zero()
    for c in [
        "addToList",
        "addToListFromClicks",
        "addToListFromViews",
        "qualifiedBorrows",
        "qualifiedBorrowsFromClicks",
        "qualifiedBorrowsFromViews",
        "royaltyQualifiedBorrows",
        "royaltyQualifiedBorrowsFromClicks",
        "royaltyQualifiedBorrowsFromViews",
        "kindleEditionNormalizedPagesRead14d",
    ]
} | {"kindleEditionNormalizedPagesRoyalties14d": Zero(money=True)}

_ATTRS = [
    "date",
    "startDate",
    "endDate",
    "campaignId",
    "campaignName",
    "campaignStatus",
    "campaignBudgetAmount",
    "campaignBudgetType",
    "campaignBudgetCurrencyCode",
    "campaignBiddingStrategy",
    "portfolioId",
    "costType",
    "campaignPriceTypeCode",
    "adGroupId",
    "adGroupName",
    "adStatus",
    "adId",
    "advertisedAsin",
    "advertisedSku",
    "promotedAsin",
    "promotedSku",
    "keywordId",
    "keyword",
    "keywordText",
    "keywordType",
    "matchType",
    "targeting",
    "targetingId",
    "targetingExpression",
    "targetingText",
    "targetingType",
    "adKeywordStatus",
    "keywordBid",
    "searchTerm",
    "placementClassification",
    "matchedTargetAsin",
    "purchasedAsin",
    "attributionType",
    "productName",
    "productCategory",
    "asinBrandHalo",
    "bidOptimization",
]

_NULLS = [
    "campaignRuleBasedBudgetAmount",
    "campaignApplicableBudgetRuleId",
    "campaignApplicableBudgetRuleName",
]

DEFAULT_SPECS: Mapping[str, Spec] = {
    **_TRAFFIC,
    **_sp_windowed(),
    **_SB_SD,
    **_ZERO,
    **{a: Attr(a) for a in _ATTRS},
    **{n: Null() for n in _NULLS},
}

# Purchased-product reports count the purchases of *other* products than the advertised one;
# their rows come from "pp_*" measures that ads_data builds per report (see its sources).
PURCHASED_PRODUCT_SPECS: Mapping[str, Mapping[str, Spec]] = {
    "spPurchasedProduct": {
        **{f"purchases{w}d": Sum(_w("p", "o", w)) for w in (1, 7, 14, 30)},
        **{f"unitsSoldClicks{w}d": Sum(_w("u", "o", w)) for w in (1, 7, 14, 30)},
        **{f"sales{w}d": Sum(_w("s", "o", w), money=True) for w in (1, 7, 14, 30)},
    },
    "sbPurchasedProduct": {
        "orders14d": Sum(("pp_p", "pp_pv")),
        "ordersClicks14d": Sum(("pp_p",)),
        "unitsSold14d": Sum(("pp_u", "pp_uv")),
        "unitsSoldClicks14d": Sum(("pp_u",)),
        "sales14d": Sum(("pp_s", "pp_sv"), money=True),
        "salesClicks14d": Sum(("pp_s",), money=True),
        "newToBrandPurchases14d": Sum(("pp_ntb_p",)),
        "newToBrandUnitsSold14d": Sum(("pp_ntb_u",)),
        "newToBrandSales14d": Sum(("pp_ntb_s",), money=True),
        "newToBrandPurchasesPercentage14d": Ratio(
            ("pp_ntb_p",), ("pp_p", "pp_pv"), factor=100, scale=2, null_if_empty=True
        ),
        "newToBrandUnitsSoldPercentage14d": Ratio(
            ("pp_ntb_u",), ("pp_u", "pp_uv"), factor=100, scale=2, null_if_empty=True
        ),
        "newToBrandSalesPercentage14d": Ratio(
            ("pp_ntb_s",), ("pp_s", "pp_sv"), factor=100, scale=2, null_if_empty=True
        ),
    },
    "sdPurchasedProduct": {
        "conversionsBrandHalo": Sum(_w("p", "o", 14)),
        "conversionsBrandHaloClicks": Sum(_w("p", "o", 14)),
        "unitsSoldBrandHalo": Sum(_w("u", "o", 14)),
        "unitsSoldBrandHaloClicks": Sum(_w("u", "o", 14)),
        "salesBrandHalo": Sum(_w("s", "o", 14), money=True, whole_units=True),
        "salesBrandHaloClicks": Sum(_w("s", "o", 14), money=True, whole_units=True),
    },
}


def spec_for(report_type_id: str, column: str) -> Spec:
    """How `column` of `report_type_id` is computed."""
    special = PURCHASED_PRODUCT_SPECS.get(report_type_id, {})
    return special.get(column) or DEFAULT_SPECS[column]


def measures_of(spec: Spec) -> tuple[str, ...]:
    """The cell measures a column needs (a leading '-' means subtract)."""
    if isinstance(spec, Sum):
        return tuple(m.lstrip("-") for m in spec.measures)
    if isinstance(spec, Ratio):
        return tuple(m.lstrip("-") for m in spec.num + spec.den)
    return ()
