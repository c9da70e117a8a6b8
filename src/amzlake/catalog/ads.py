"""Amazon Ads reporting v3: the registry of report types, their columns and the request rules.

One declarative entry per report type (SP, SB, SD), transcribed from Amazon's v3 reporting guides
(`guides/reporting/v3/report-types/*.md` and `columns.md`, as summarised in
shared/reference/ads-report-catalogue.md) and the OpenAPI spec `OfflineReport_prod_3p.json`.
The emulator, the ingestion client and the transform all read this module; it holds no I/O.

`validate_create_request` checks a `POST /reporting/reports` body against the registry and returns
the parsed request, or raises `AdsRequestInvalid` with the text Amazon sends in its 400 body.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from enum import StrEnum
from types import MappingProxyType
from typing import Any

from amzlake.errors import AmzlakeError


class AdProduct(StrEnum):
    """The `configuration.adProduct` values of the spec's AsyncReportAdProduct enum."""

    SPONSORED_PRODUCTS = "SPONSORED_PRODUCTS"
    SPONSORED_BRANDS = "SPONSORED_BRANDS"
    SPONSORED_DISPLAY = "SPONSORED_DISPLAY"
    SPONSORED_TELEVISION = "SPONSORED_TELEVISION"
    DEMAND_SIDE_PLATFORM = "DEMAND_SIDE_PLATFORM"
    ALL = "ALL"


class TimeUnit(StrEnum):
    """`configuration.timeUnit`: one row per entity per day, or one per entity for the range."""

    DAILY = "DAILY"
    SUMMARY = "SUMMARY"


class ColumnType(StrEnum):
    """How a report column's values are typed in the downloaded JSON."""

    INTEGER = "integer"  # JSON integer; ids among them can exceed 2^53
    DECIMAL = "decimal"  # JSON number with a fraction (money, rates)
    STRING = "string"
    DATE = "date"  # "YYYY-MM-DD" string: date, startDate, endDate


# The time columns, and which timeUnit each belongs to. The get-started guide: "If you set
# timeUnit to DAILY, you should include date ... If you set timeUnit to SUMMARY you can include
# startDate and endDate"; the emulator rejects the other pairings (see validate_create_request).
DATE_COLUMNS: frozenset[str] = frozenset({"date", "startDate", "endDate"})
TIME_UNIT_COLUMNS: Mapping[TimeUnit, frozenset[str]] = MappingProxyType(
    {TimeUnit.DAILY: frozenset({"date"}), TimeUnit.SUMMARY: frozenset({"startDate", "endDate"})}
)

# Formats: the spec's enum has only GZIP_JSON; the gross-and-invalid-traffic guide adds CSV.
FORMAT_GZIP_JSON = "GZIP_JSON"
FORMAT_CSV = "CSV"


class AdsRequestInvalid(AmzlakeError, ValueError):
    """A create-report request Amazon would refuse with HTTP 400; `message` is the `detail` text."""

    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class AdsGroupBy:
    """One `groupBy` value of a report type: the columns it adds and the filters it accepts."""

    name: str
    columns: tuple[str, ...]
    # filter field -> allowed values
    filters: Mapping[str, frozenset[str]]


@dataclass(frozen=True)
class AdsReportType:
    """One v3 report type (`reportTypeId`) with its columns, groupBys and date limits."""

    report_type_id: str
    ad_product: AdProduct
    family: str  # the guide page: campaign, targeting, search-term, purchased-product, ...
    base_columns: tuple[str, ...]
    group_bys: Mapping[str, AdsGroupBy]
    formats: tuple[str, ...]
    max_span_days: int  # longest startDate..endDate range, both ends inclusive
    retention_days: int  # how far back startDate may go
    time_units: tuple[TimeUnit, ...] = (TimeUnit.SUMMARY, TimeUnit.DAILY)
    # Several groupBy values in one request; the guides show it only for spCampaigns
    # (["campaign", "adGroup"] in get-started.md).
    combinable_group_bys: bool = False

    def columns_for(self, group_bys: Iterable[str]) -> frozenset[str]:
        """The columns a request with these groupBy values may ask for."""
        cols = set(self.base_columns)
        for g in group_bys:
            cols.update(self.group_bys[g].columns)
        return frozenset(cols)

    def filters_for(self, group_bys: Iterable[str]) -> dict[str, frozenset[str]]:
        """The filters accepted by every one of these groupBy values (field -> allowed values)."""
        out: dict[str, frozenset[str]] | None = None
        for g in group_bys:
            mine = dict(self.group_bys[g].filters)
            out = mine if out is None else {k: v & mine[k] for k, v in out.items() if k in mine}
        return out or {}

    def retention_start(self, today: date) -> date:
        """The earliest startDate accepted on `today` (in the profile's time zone)."""
        return today - timedelta(days=self.retention_days)


def _words(text: str) -> tuple[str, ...]:
    return tuple(text.split())


def _group_by(name: str, *, columns: str | tuple[()], filters: dict[str, tuple[str, ...]]) -> AdsGroupBy:
    return AdsGroupBy(
        name=name,
        columns=_words(columns) if isinstance(columns, str) else (),
        filters=MappingProxyType({k: frozenset(v) for k, v in filters.items()}),
    )


def _report(
    report_type_id: str,
    ad_product: str,
    family: str,
    *,
    max_span_days: int,
    retention_days: int,
    formats: tuple[str, ...],
    base: str,
    group_bys: tuple[AdsGroupBy, ...],
) -> AdsReportType:
    return AdsReportType(
        report_type_id=report_type_id,
        ad_product=AdProduct(ad_product),
        family=family,
        base_columns=_words(base),
        group_bys=MappingProxyType({g.name: g for g in group_bys}),
        formats=formats,
        max_span_days=max_span_days,
        retention_days=retention_days,
        combinable_group_bys=report_type_id == "spCampaigns",
    )


# Every SP / SB / SD report type of the v3 guides. Where a guide's configuration table and its
# "Group by" sections disagree (sbAdGroup lists only adGroup but documents a campaign section;
# sbCampaignPlacement lists only campaign but documents campaignPlacement, and its own sample call
# uses groupBy ["campaignPlacement"]), every documented section is an accepted groupBy.
_REPORTS: tuple[AdsReportType, ...] = (
    _report(
        "spCampaigns",
        "SPONSORED_PRODUCTS",
        "campaign",
        max_span_days=31,
        retention_days=95,
        formats=("GZIP_JSON",),
        base=(
            "impressions addToList qualifiedBorrows royaltyQualifiedBorrows clicks cost "
            "purchases1d purchases7d purchases14d purchases30d purchasesSameSku1d "
            "purchasesSameSku7d purchasesSameSku14d purchasesSameSku30d unitsSoldClicks1d "
            "unitsSoldClicks7d unitsSoldClicks14d unitsSoldClicks30d sales1d sales7d sales14d "
            "sales30d attributedSalesSameSku1d attributedSalesSameSku7d "
            "attributedSalesSameSku14d attributedSalesSameSku30d unitsSoldSameSku1d "
            "unitsSoldSameSku7d unitsSoldSameSku14d unitsSoldSameSku30d "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d date "
            "startDate endDate campaignBiddingStrategy costPerClick clickThroughRate spend"
        ),
        group_bys=(
            _group_by(
                "campaign",
                columns=(
                    "campaignName campaignId campaignStatus campaignBudgetAmount "
                    "campaignBudgetType campaignRuleBasedBudgetAmount "
                    "campaignApplicableBudgetRuleId campaignApplicableBudgetRuleName "
                    "campaignBudgetCurrencyCode topOfSearchImpressionShare"
                ),
                filters={"campaignStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
            _group_by(
                "adGroup",
                columns=("adGroupName adGroupId adStatus"),
                filters={"adStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
            _group_by(
                "campaignPlacement",
                columns=(
                    "placementClassification campaignName campaignId campaignStatus "
                    "campaignBudgetAmount campaignBudgetType campaignRuleBasedBudgetAmount "
                    "campaignApplicableBudgetRuleId campaignApplicableBudgetRuleName "
                    "campaignBudgetCurrencyCode topOfSearchImpressionShare"
                ),
                filters={"campaignSite": ("AmazonBusiness",)},
            ),
        ),
    ),
    _report(
        "sbCampaigns",
        "SPONSORED_BRANDS",
        "campaign",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToList addToListFromClicks "
            "qualifiedBorrows qualifiedBorrowsFromClicks royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks brandedSearches brandedSearchesClicks "
            "campaignBudgetAmount campaignBudgetCurrencyCode campaignBudgetType campaignId "
            "campaignName campaignStatus clicks cost costType date detailPageViews "
            "detailPageViewsClicks eCPAddToCart endDate impressions "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "newToBrandDetailPageViewRate newToBrandDetailPageViews "
            "newToBrandDetailPageViewsClicks newToBrandECPDetailPageView newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandPurchasesPercentage newToBrandPurchasesRate "
            "newToBrandSales newToBrandSalesClicks newToBrandSalesPercentage "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks newToBrandUnitsSoldPercentage "
            "purchases purchasesClicks purchasesPromoted sales salesClicks salesPromoted "
            "startDate topOfSearchImpressionShare unitsSold unitsSoldClicks "
            "video5SecondViewRate video5SecondViews videoCompleteViews videoFirstQuartileViews "
            "videoMidpointViews videoThirdQuartileViews videoUnmutes viewabilityRate "
            "viewableImpressions viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "campaign",
                columns=(
                    "campaignBudgetAmount campaignBudgetCurrencyCode campaignBudgetType "
                    "longTermSales longTermROAS topOfSearchImpressionShare"
                ),
                filters={"campaignStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
        ),
    ),
    _report(
        "sdCampaigns",
        "SPONSORED_DISPLAY",
        "campaign",
        max_span_days=31,
        retention_days=65,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToCartViews addToList "
            "addToListFromClicks addToListFromViews qualifiedBorrows "
            "qualifiedBorrowsFromClicks qualifiedBorrowsFromViews royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks royaltyQualifiedBorrowsFromViews "
            "brandedSearches brandedSearchesClicks brandedSearchesViews brandedSearchRate "
            "campaignBudgetCurrencyCode campaignId campaignName clicks cost date "
            "detailPageViews detailPageViewsClicks eCPAddToCart eCPBrandSearch endDate "
            "impressions impressionsViews newToBrandPurchases newToBrandPurchasesClicks "
            "newToBrandSalesClicks newToBrandUnitsSold newToBrandUnitsSoldClicks purchases "
            "purchasesClicks purchasesPromotedClicks sales salesClicks salesPromotedClicks "
            "startDate unitsSold unitsSoldClicks videoCompleteViews videoFirstQuartileViews "
            "videoMidpointViews videoThirdQuartileViews videoUnmutes viewabilityRate "
            "viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "campaign",
                columns=(
                    "campaignBudgetAmount campaignStatus costType cumulativeReach "
                    "impressionsFrequencyAverage longTermSales longTermROAS "
                    "newToBrandDetailPageViewClicks newToBrandDetailPageViewRate "
                    "newToBrandDetailPageViews newToBrandDetailPageViewViews "
                    "newToBrandECPDetailPageView newToBrandSales"
                ),
                filters={},
            ),
            _group_by(
                "matchedTarget",
                columns=("matchedTargetAsin"),
                filters={},
            ),
        ),
    ),
    _report(
        "sbAdGroup",
        "SPONSORED_BRANDS",
        "ad-group",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate adGroupId adGroupName adStatus addToList "
            "addToListFromClicks qualifiedBorrows qualifiedBorrowsFromClicks "
            "royaltyQualifiedBorrows royaltyQualifiedBorrowsFromClicks brandedSearches "
            "brandedSearchesClicks campaignBudgetAmount campaignBudgetCurrencyCode "
            "campaignBudgetType campaignId campaignName campaignStatus clicks cost costType "
            "date detailPageViews detailPageViewsClicks eCPAddToCart endDate impressions "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "newToBrandDetailPageViewRate newToBrandDetailPageViews "
            "newToBrandDetailPageViewsClicks newToBrandECPDetailPageView newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandPurchasesPercentage newToBrandPurchasesRate "
            "newToBrandSales newToBrandSalesClicks newToBrandSalesPercentage "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks newToBrandUnitsSoldPercentage "
            "purchases purchasesClicks purchasesPromoted sales salesClicks salesPromoted "
            "startDate unitsSold unitsSoldClicks video5SecondViewRate video5SecondViews "
            "videoCompleteViews videoFirstQuartileViews videoMidpointViews "
            "videoThirdQuartileViews videoUnmutes viewabilityRate"
        ),
        group_bys=(
            _group_by(
                "adGroup",
                columns=(),
                filters={"adStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
            _group_by(
                "campaign",
                columns=(),
                filters={},
            ),
        ),
    ),
    _report(
        "sdAdGroup",
        "SPONSORED_DISPLAY",
        "ad-group",
        max_span_days=31,
        retention_days=65,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToCartViews adGroupId adGroupName "
            "addToList addToListFromClicks addToListFromViews qualifiedBorrows "
            "qualifiedBorrowsFromClicks qualifiedBorrowsFromViews royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks royaltyQualifiedBorrowsFromViews "
            "bidOptimization brandedSearches brandedSearchesClicks brandedSearchesViews "
            "brandedSearchRate campaignBudgetCurrencyCode campaignId campaignName clicks cost "
            "cumulativeReach date detailPageViews detailPageViewsClicks eCPAddToCart "
            "eCPBrandSearch endDate impressions impressionsViews newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandSales newToBrandSalesClicks "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks purchases purchasesClicks "
            "purchasesPromotedClicks sales salesClicks salesPromotedClicks startDate unitsSold "
            "unitsSoldClicks videoCompleteViews videoFirstQuartileViews videoMidpointViews "
            "videoThirdQuartileViews videoUnmutes viewabilityRate viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "adGroup",
                columns=(
                    "cumulativeReach impressionsFrequencyAverage "
                    "newToBrandDetailPageViewClicks newToBrandDetailPageViewRate "
                    "newToBrandDetailPageViews newToBrandDetailPageViewViews "
                    "newToBrandECPDetailPageView"
                ),
                filters={},
            ),
            _group_by(
                "matchedTarget",
                columns=("matchedTargetAsin"),
                filters={},
            ),
        ),
    ),
    _report(
        "sbAds",
        "SPONSORED_BRANDS",
        "ad",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToList qualifiedBorrows "
            "royaltyQualifiedBorrows addToListFromClicks qualifiedBorrowsFromClicks "
            "royaltyQualifiedBorrowsFromClicks adGroupId adGroupName adId brandedSearches "
            "brandedSearchesClicks campaignBudgetAmount campaignBudgetCurrencyCode "
            "campaignBudgetType campaignId campaignName campaignStatus clicks cost costType "
            "date detailPageViews detailPageViewsClicks eCPAddToCart endDate impressions "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "newToBrandDetailPageViewRate newToBrandDetailPageViews "
            "newToBrandDetailPageViewsClicks newToBrandECPDetailPageView newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandPurchasesPercentage newToBrandPurchasesRate "
            "newToBrandSales newToBrandSalesClicks newToBrandSalesPercentage "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks newToBrandUnitsSoldPercentage "
            "purchases purchasesClicks purchasesPromoted sales salesClicks salesPromoted "
            "startDate unitsSold unitsSoldClicks video5SecondViewRate video5SecondViews "
            "videoCompleteViews videoFirstQuartileViews videoMidpointViews "
            "videoThirdQuartileViews videoUnmutes viewabilityRate viewableImpressions"
        ),
        group_bys=(
            _group_by(
                "ads",
                columns=(),
                filters={"adStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
        ),
    ),
    _report(
        "spAdvertisedProduct",
        "SPONSORED_PRODUCTS",
        "advertised-product",
        max_span_days=31,
        retention_days=95,
        formats=("GZIP_JSON",),
        base=(
            "date startDate endDate campaignName campaignId adGroupName adGroupId adId "
            "addToList qualifiedBorrows royaltyQualifiedBorrows portfolioId impressions clicks "
            "costPerClick clickThroughRate cost spend campaignBudgetCurrencyCode "
            "campaignBudgetAmount campaignBudgetType campaignStatus advertisedAsin "
            "advertisedSku purchases1d purchases7d purchases14d purchases30d "
            "purchasesSameSku1d purchasesSameSku7d purchasesSameSku14d purchasesSameSku30d "
            "unitsSoldClicks1d unitsSoldClicks7d unitsSoldClicks14d unitsSoldClicks30d sales1d "
            "sales7d sales14d sales30d attributedSalesSameSku1d attributedSalesSameSku7d "
            "attributedSalesSameSku14d attributedSalesSameSku30d salesOtherSku7d "
            "unitsSoldSameSku1d unitsSoldSameSku7d unitsSoldSameSku14d unitsSoldSameSku30d "
            "unitsSoldOtherSku7d kindleEditionNormalizedPagesRead14d "
            "kindleEditionNormalizedPagesRoyalties14d acosClicks7d acosClicks14d roasClicks7d "
            "roasClicks14d"
        ),
        group_bys=(
            _group_by(
                "advertiser",
                columns=(),
                filters={"adCreativeStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
            ),
        ),
    ),
    _report(
        "sdAdvertisedProduct",
        "SPONSORED_DISPLAY",
        "advertised-product",
        max_span_days=31,
        retention_days=65,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartRate addToCartViews addToCartClicks adGroupId adGroupName adId "
            "addToList addToListFromClicks qualifiedBorrows royaltyQualifiedBorrows "
            "addToListFromViews qualifiedBorrowsFromClicks qualifiedBorrowsFromViews "
            "royaltyQualifiedBorrowsFromClicks royaltyQualifiedBorrowsFromViews "
            "bidOptimization brandedSearches brandedSearchesClicks brandedSearchesViews "
            "brandedSearchRate campaignBudgetCurrencyCode campaignId campaignName clicks cost "
            "cumulativeReach date detailPageViews detailPageViewsClicks eCPAddToCart "
            "eCPBrandSearch endDate impressions impressionsFrequencyAverage impressionsViews "
            "newToBrandDetailPageViewClicks newToBrandDetailPageViewRate "
            "newToBrandDetailPageViews newToBrandDetailPageViewViews "
            "newToBrandECPDetailPageView newToBrandPurchases newToBrandPurchasesClicks "
            "newToBrandSales newToBrandSalesClicks newToBrandUnitsSold "
            "newToBrandUnitsSoldClicks promotedAsin promotedSku purchases purchasesClicks "
            "purchasesPromotedClicks sales salesClicks salesPromotedClicks startDate unitsSold "
            "unitsSoldClicks videoCompleteViews videoFirstQuartileViews videoMidpointViews "
            "videoThirdQuartileViews videoUnmutes viewabilityRate viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "advertiser",
                columns=(),
                filters={},
            ),
        ),
    ),
    _report(
        "spPurchasedProduct",
        "SPONSORED_PRODUCTS",
        "purchased-product",
        max_span_days=31,
        retention_days=95,
        formats=("GZIP_JSON",),
        base=(
            "date startDate endDate addToList addToListFromClicks qualifiedBorrows "
            "qualifiedBorrowsFromClicks royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks portfolioId campaignName campaignId adGroupName "
            "adGroupId keywordId keyword keywordType advertisedAsin purchasedAsin "
            "advertisedSku campaignBudgetCurrencyCode matchType unitsSoldClicks1d "
            "unitsSoldClicks7d unitsSoldClicks14d unitsSoldClicks30d sales1d sales7d sales14d "
            "sales30d purchases1d purchases7d purchases14d purchases30d unitsSoldOtherSku1d "
            "unitsSoldOtherSku7d unitsSoldOtherSku14d unitsSoldOtherSku30d salesOtherSku1d "
            "salesOtherSku7d salesOtherSku14d salesOtherSku30d purchasesOtherSku1d "
            "purchasesOtherSku7d purchasesOtherSku14d purchasesOtherSku30d "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d"
        ),
        group_bys=(
            _group_by(
                "asin",
                columns=(),
                filters={},
            ),
        ),
    ),
    _report(
        "sbPurchasedProduct",
        "SPONSORED_BRANDS",
        "purchased-product",
        max_span_days=731,
        retention_days=731,
        formats=("GZIP_JSON",),
        base=(
            "campaignId adGroupId date startDate endDate campaignBudgetCurrencyCode "
            "campaignName campaignPriceTypeCode adGroupName attributionType purchasedAsin "
            "ordersClicks14d productName productCategory sales14d salesClicks14d orders14d "
            "unitsSold14d newToBrandSales14d newToBrandPurchases14d newToBrandUnitsSold14d "
            "newToBrandSalesPercentage14d newToBrandPurchasesPercentage14d "
            "newToBrandUnitsSoldPercentage14d unitsSoldClicks14d "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d"
        ),
        group_bys=(
            _group_by(
                "purchasedAsin",
                columns=(),
                filters={},
            ),
        ),
    ),
    _report(
        "sdPurchasedProduct",
        "SPONSORED_DISPLAY",
        "purchased-product",
        max_span_days=31,
        retention_days=65,
        formats=("GZIP_JSON",),
        base=(
            "adGroupId adGroupName asinBrandHalo addToList addToListFromClicks "
            "qualifiedBorrowsFromClicks royaltyQualifiedBorrowsFromClicks addToListFromViews "
            "qualifiedBorrows qualifiedBorrowsFromViews royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromViews campaignBudgetCurrencyCode campaignId "
            "campaignName conversionsBrandHalo conversionsBrandHaloClicks date endDate "
            "promotedAsin promotedSku salesBrandHalo salesBrandHaloClicks startDate "
            "unitsSoldBrandHalo unitsSoldBrandHaloClicks"
        ),
        group_bys=(
            _group_by(
                "asin",
                columns=(),
                filters={},
            ),
        ),
    ),
    _report(
        "spSearchTerm",
        "SPONSORED_PRODUCTS",
        "search-term",
        max_span_days=31,
        retention_days=95,
        formats=("GZIP_JSON",),
        base=(
            "impressions addToList qualifiedBorrows royaltyQualifiedBorrows clicks "
            "costPerClick clickThroughRate cost purchases1d purchases7d purchases14d "
            "purchases30d purchasesSameSku1d purchasesSameSku7d purchasesSameSku14d "
            "purchasesSameSku30d unitsSoldClicks1d unitsSoldClicks7d unitsSoldClicks14d "
            "unitsSoldClicks30d sales1d sales7d sales14d sales30d attributedSalesSameSku1d "
            "attributedSalesSameSku7d attributedSalesSameSku14d attributedSalesSameSku30d "
            "unitsSoldSameSku1d unitsSoldSameSku7d unitsSoldSameSku14d unitsSoldSameSku30d "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "salesOtherSku7d unitsSoldOtherSku7d acosClicks7d acosClicks14d roasClicks7d "
            "roasClicks14d keywordId keyword campaignBudgetCurrencyCode date startDate endDate "
            "portfolioId searchTerm campaignName campaignId campaignBudgetType "
            "campaignBudgetAmount campaignStatus keywordBid adGroupName adGroupId keywordType "
            "matchType targeting adKeywordStatus"
        ),
        group_bys=(
            _group_by(
                "searchTerm",
                columns=("adKeywordStatus"),
                filters={
                    "keywordType": (
                        "BROAD",
                        "PHRASE",
                        "EXACT",
                        "TARGETING_EXPRESSION",
                        "TARGETING_EXPRESSION_PREDEFINED",
                    )
                },
            ),
        ),
    ),
    _report(
        "sbSearchTerm",
        "SPONSORED_BRANDS",
        "search-term",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "adGroupId adGroupName addToList addToListFromClicks qualifiedBorrows "
            "qualifiedBorrowsFromClicks royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks campaignBudgetAmount campaignBudgetCurrencyCode "
            "campaignBudgetType campaignId campaignName campaignStatus clicks cost costType "
            "date endDate impressions keywordBid keywordId keywordText "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "matchType purchases purchasesClicks sales salesClicks searchTerm startDate "
            "unitsSold video5SecondViewRate video5SecondViews videoCompleteViews "
            "videoFirstQuartileViews videoMidpointViews videoThirdQuartileViews videoUnmutes "
            "viewabilityRate viewableImpressions viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "searchTerm",
                columns=("adKeywordStatus"),
                filters={
                    "keywordType": (
                        "BROAD",
                        "PHRASE",
                        "EXACT",
                        "TARGETING_EXPRESSION",
                        "TARGETING_EXPRESSION_PREDEFINED",
                    )
                },
            ),
        ),
    ),
    _report(
        "spTargeting",
        "SPONSORED_PRODUCTS",
        "targeting",
        max_span_days=31,
        retention_days=95,
        formats=("GZIP_JSON",),
        base=(
            "impressions addToList qualifiedBorrows royaltyQualifiedBorrows clicks "
            "costPerClick clickThroughRate cost purchases1d purchases7d purchases14d "
            "purchases30d purchasesSameSku1d purchasesSameSku7d purchasesSameSku14d "
            "purchasesSameSku30d unitsSoldClicks1d unitsSoldClicks7d unitsSoldClicks14d "
            "unitsSoldClicks30d sales1d sales7d sales14d sales30d attributedSalesSameSku1d "
            "attributedSalesSameSku7d attributedSalesSameSku14d attributedSalesSameSku30d "
            "unitsSoldSameSku1d unitsSoldSameSku7d unitsSoldSameSku14d unitsSoldSameSku30d "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "salesOtherSku7d unitsSoldOtherSku7d acosClicks7d acosClicks14d roasClicks7d "
            "roasClicks14d keywordId keyword campaignBudgetCurrencyCode date startDate endDate "
            "portfolioId campaignName campaignId campaignBudgetType campaignBudgetAmount "
            "campaignStatus keywordBid adGroupName adGroupId keywordType matchType targeting "
            "topOfSearchImpressionShare"
        ),
        group_bys=(
            _group_by(
                "targeting",
                columns=("adKeywordStatus"),
                filters={
                    "adKeywordStatus": ("ENABLED", "PAUSED", "ARCHIVED"),
                    "keywordType": (
                        "BROAD",
                        "PHRASE",
                        "EXACT",
                        "TARGETING_EXPRESSION",
                        "TARGETING_EXPRESSION_PREDEFINED",
                    ),
                },
            ),
        ),
    ),
    _report(
        "sbTargeting",
        "SPONSORED_BRANDS",
        "targeting",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate adGroupId adGroupName addToList "
            "addToListFromClicks qualifiedBorrows qualifiedBorrowsFromClicks "
            "royaltyQualifiedBorrows royaltyQualifiedBorrowsFromClicks brandedSearches "
            "brandedSearchesClicks campaignBudgetAmount campaignBudgetCurrencyCode "
            "campaignBudgetType campaignId campaignName campaignStatus clicks cost costType "
            "date detailPageViews detailPageViewsClicks eCPAddToCart endDate impressions "
            "keywordBid keywordId adKeywordStatus keywordText keywordType matchType "
            "newToBrandDetailPageViewRate newToBrandDetailPageViews "
            "newToBrandDetailPageViewsClicks newToBrandECPDetailPageView newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandPurchasesPercentage newToBrandPurchasesRate "
            "newToBrandSales newToBrandSalesClicks newToBrandSalesPercentage "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks newToBrandUnitsSoldPercentage "
            "purchases purchasesClicks purchasesPromoted sales salesClicks salesPromoted "
            "startDate targetingExpression targetingId targetingText targetingType "
            "topOfSearchImpressionShare unitsSold"
        ),
        group_bys=(
            _group_by(
                "targeting",
                columns=(),
                filters={
                    "adKeywordStatus": ("ENABLED", "PAUSED", "ARCHIVED"),
                    "keywordType": (
                        "BROAD",
                        "PHRASE",
                        "EXACT",
                        "TARGETING_EXPRESSION",
                        "TARGETING_EXPRESSION_PREDEFINED",
                        "THEME",
                    ),
                },
            ),
        ),
    ),
    _report(
        "sdTargeting",
        "SPONSORED_DISPLAY",
        "targeting",
        max_span_days=31,
        retention_days=65,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToCartViews adGroupId adGroupName "
            "addToList addToListFromClicks addToListFromViews qualifiedBorrows "
            "qualifiedBorrowsFromClicks qualifiedBorrowsFromViews royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks royaltyQualifiedBorrowsFromViews "
            "brandedSearches brandedSearchesClicks brandedSearchesViews brandedSearchRate "
            "campaignBudgetCurrencyCode campaignId campaignName clicks cost date "
            "detailPageViews detailPageViewsClicks eCPAddToCart eCPBrandSearch endDate "
            "impressions impressionsViews newToBrandPurchases newToBrandPurchasesClicks "
            "newToBrandSales newToBrandSalesClicks newToBrandUnitsSold "
            "newToBrandUnitsSoldClicks purchases purchasesClicks purchasesPromotedClicks sales "
            "salesClicks salesPromotedClicks startDate targetingExpression targetingId "
            "targetingText unitsSold unitsSoldClicks videoCompleteViews "
            "videoFirstQuartileViews videoMidpointViews videoUnmutes viewabilityRate"
        ),
        group_bys=(
            _group_by(
                "targeting",
                columns=(
                    "adKeywordStatus newToBrandDetailPageViewClicks "
                    "newToBrandDetailPageViewRate newToBrandDetailPageViews "
                    "newToBrandDetailPageViewViews newToBrandECPDetailPageView"
                ),
                filters={},
            ),
            _group_by(
                "matchedTarget",
                columns=("matchedTargetAsin"),
                filters={},
            ),
        ),
    ),
    _report(
        "sbCampaignPlacement",
        "SPONSORED_BRANDS",
        "placement",
        max_span_days=31,
        retention_days=60,
        formats=("GZIP_JSON",),
        base=(
            "addToCart addToCartClicks addToCartRate addToList addToListFromClicks "
            "qualifiedBorrows qualifiedBorrowsFromClicks royaltyQualifiedBorrows "
            "royaltyQualifiedBorrowsFromClicks brandedSearches brandedSearchesClicks "
            "campaignBudgetAmount campaignBudgetCurrencyCode campaignBudgetType campaignId "
            "campaignName campaignStatus clicks cost costType date detailPageViews "
            "detailPageViewsClicks eCPAddToCart endDate impressions "
            "kindleEditionNormalizedPagesRead14d kindleEditionNormalizedPagesRoyalties14d "
            "newToBrandDetailPageViewRate newToBrandDetailPageViews "
            "newToBrandDetailPageViewsClicks newToBrandECPDetailPageView newToBrandPurchases "
            "newToBrandPurchasesClicks newToBrandPurchasesPercentage newToBrandPurchasesRate "
            "newToBrandSales newToBrandSalesClicks newToBrandSalesPercentage "
            "newToBrandUnitsSold newToBrandUnitsSoldClicks newToBrandUnitsSoldPercentage "
            "purchases purchasesClicks purchasesPromoted sales salesClicks salesPromoted "
            "startDate unitsSold unitsSoldClicks video5SecondViewRate video5SecondViews "
            "videoCompleteViews videoFirstQuartileViews videoMidpointViews "
            "videoThirdQuartileViews videoUnmutes viewabilityRate viewableImpressions "
            "viewClickThroughRate"
        ),
        group_bys=(
            _group_by(
                "campaignPlacement",
                columns=("placementClassification"),
                filters={},
            ),
            _group_by(
                "campaign",
                columns=(),
                filters={},
            ),
        ),
    ),
    # Gross and invalid traffic: one report, the same for the three ad products.
    *(
        _report(
            f"{prefix}GrossAndInvalids",
            product,
            "gross-and-invalid-traffic",
            max_span_days=365,
            retention_days=365,
            formats=("GZIP_JSON", "CSV"),
            base=(
                "campaignName campaignStatus clicks date endDate grossClickThroughs "
                "grossImpressions impressions invalidClickThroughRate invalidClickThroughs "
                "invalidImpressionRate invalidImpressions startDate"
            ),
            group_bys=(
                _group_by(
                    "campaign",
                    columns=(),
                    filters={"campaignStatus": ("ENABLED", "PAUSED", "ARCHIVED")},
                ),
            ),
        )
        for prefix, product in (
            ("sp", "SPONSORED_PRODUCTS"), ("sb", "SPONSORED_BRANDS"), ("sd", "SPONSORED_DISPLAY"),
        )
    ),
)

ADS_REPORT_TYPES: Mapping[str, AdsReportType] = MappingProxyType({r.report_type_id: r for r in _REPORTS})

# Column types per columns.md ("Integer", "Decimal", "String"; date/startDate/endDate are
# "YYYY-MM-DD" strings, typed DATE here). Three columns have no documented type:
# longTermSales and longTermROAS are money and a money ratio like sales/roasClicks14d, so DECIMAL;
# cumulativeReach counts shoppers like impressions, so INTEGER.
# columns.md types salesBrandHalo/salesBrandHaloClicks as Integer (unlike every other sales column);
# that is kept as documented.
_TYPED: dict[ColumnType, str] = {
    ColumnType.INTEGER: (
        "adGroupId adId addToCart addToCartClicks addToCartViews addToList addToListFromClicks "
        "addToListFromViews brandedSearches brandedSearchesClicks brandedSearchesViews "
        "campaignId clicks conversionsBrandHalo conversionsBrandHaloClicks cumulativeReach "
        "detailPageViews detailPageViewsClicks grossClickThroughs grossImpressions impressions "
        "impressionsViews invalidClickThroughs invalidImpressions keywordId "
        "kindleEditionNormalizedPagesRead14d newToBrandDetailPageViewClicks "
        "newToBrandDetailPageViewViews newToBrandDetailPageViews "
        "newToBrandDetailPageViewsClicks newToBrandPurchases newToBrandPurchases14d "
        "newToBrandPurchasesClicks newToBrandUnitsSold newToBrandUnitsSold14d "
        "newToBrandUnitsSoldClicks orders14d ordersClicks14d portfolioId purchases "
        "purchases14d purchases1d purchases30d purchases7d purchasesClicks "
        "purchasesOtherSku14d purchasesOtherSku1d purchasesOtherSku30d purchasesOtherSku7d "
        "purchasesPromoted purchasesPromotedClicks purchasesSameSku14d purchasesSameSku1d "
        "purchasesSameSku30d purchasesSameSku7d qualifiedBorrows qualifiedBorrowsFromClicks "
        "qualifiedBorrowsFromViews royaltyQualifiedBorrows royaltyQualifiedBorrowsFromClicks "
        "royaltyQualifiedBorrowsFromViews salesBrandHalo salesBrandHaloClicks targetingId "
        "unitsSold unitsSold14d unitsSoldBrandHalo unitsSoldBrandHaloClicks unitsSoldClicks "
        "unitsSoldClicks14d unitsSoldClicks1d unitsSoldClicks30d unitsSoldClicks7d "
        "unitsSoldOtherSku14d unitsSoldOtherSku1d unitsSoldOtherSku30d unitsSoldOtherSku7d "
        "unitsSoldSameSku14d unitsSoldSameSku1d unitsSoldSameSku30d unitsSoldSameSku7d "
        "video5SecondViews videoCompleteViews videoFirstQuartileViews videoMidpointViews "
        "videoThirdQuartileViews videoUnmutes viewableImpressions"
    ),
    ColumnType.DECIMAL: (
        "acosClicks14d acosClicks7d addToCartRate attributedSalesSameSku14d "
        "attributedSalesSameSku1d attributedSalesSameSku30d attributedSalesSameSku7d "
        "brandedSearchRate campaignBudgetAmount campaignRuleBasedBudgetAmount clickThroughRate "
        "cost costPerClick eCPAddToCart eCPBrandSearch impressionsFrequencyAverage "
        "invalidClickThroughRate invalidImpressionRate keywordBid "
        "kindleEditionNormalizedPagesRoyalties14d longTermROAS longTermSales "
        "newToBrandDetailPageViewRate newToBrandECPDetailPageView "
        "newToBrandPurchasesPercentage newToBrandPurchasesPercentage14d "
        "newToBrandPurchasesRate newToBrandSales newToBrandSales14d newToBrandSalesClicks "
        "newToBrandSalesPercentage newToBrandSalesPercentage14d newToBrandUnitsSoldPercentage "
        "newToBrandUnitsSoldPercentage14d roasClicks14d roasClicks7d sales sales14d sales1d "
        "sales30d sales7d salesClicks salesClicks14d salesOtherSku14d salesOtherSku1d "
        "salesOtherSku30d salesOtherSku7d salesPromoted salesPromotedClicks spend "
        "topOfSearchImpressionShare video5SecondViewRate viewClickThroughRate viewabilityRate"
    ),
    ColumnType.STRING: (
        "adGroupName adKeywordStatus adStatus advertisedAsin advertisedSku asinBrandHalo "
        "attributionType bidOptimization campaignApplicableBudgetRuleId "
        "campaignApplicableBudgetRuleName campaignBiddingStrategy campaignBudgetCurrencyCode "
        "campaignBudgetType campaignName campaignPriceTypeCode campaignStatus costType keyword "
        "keywordText keywordType matchType matchedTargetAsin placementClassification "
        "productCategory productName promotedAsin promotedSku purchasedAsin searchTerm "
        "targeting targetingExpression targetingText targetingType"
    ),
    ColumnType.DATE: ("date endDate startDate"),
}

ADS_COLUMN_TYPES: Mapping[str, ColumnType] = MappingProxyType(
    {col: t for t, cols in _TYPED.items() for col in cols.split()}
)

# Integer columns that identify an entity. They exceed 2^53 in real reports (ads-facts.md §7),
# so readers must keep them as int64 and never route them through a float.
ADS_ID_COLUMNS: frozenset[str] = frozenset(
    {"campaignId", "adGroupId", "adId", "keywordId", "portfolioId", "targetingId"}
)

_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


@dataclass(frozen=True)
class AdsReportRequest:
    """A create-report request that passed validation, with its parts parsed."""

    report_type: AdsReportType
    group_bys: tuple[str, ...]
    columns: tuple[str, ...]
    time_unit: TimeUnit
    format: str
    filters: Mapping[str, frozenset[str]]
    start_date: date
    end_date: date
    name: str | None = None
    raw_filters: tuple[tuple[str, tuple[str, ...]], ...] = field(default=(), repr=False)

    @property
    def days(self) -> int:
        """How many days the range covers, both ends included."""
        return (self.end_date - self.start_date).days + 1

    def configuration_json(self) -> dict[str, Any]:
        """The `configuration` object as the AsyncReport echoes it (filters null when absent)."""
        return {
            "adProduct": str(self.report_type.ad_product),
            "columns": list(self.columns),
            "filters": (
                [{"field": f, "values": list(v)} for f, v in self.raw_filters] if self.raw_filters else None
            ),
            "format": self.format,
            "groupBy": list(self.group_bys),
            "reportTypeId": self.report_type.report_type_id,
            "timeUnit": str(self.time_unit),
        }

    def fingerprint(self) -> tuple[object, ...]:
        """A canonical, order-insensitive identity of the request (for duplicate detection)."""
        return (
            self.report_type.report_type_id,
            tuple(sorted(self.group_bys)),
            tuple(sorted(set(self.columns))),
            str(self.time_unit),
            self.format,
            tuple(sorted((f, tuple(sorted(v))) for f, v in self.filters.items())),
            self.start_date.isoformat(),
            self.end_date.isoformat(),
        )


def _tuple(items: Iterable[str]) -> str:
    return "(" + ", ".join(items) + ")"


def _parse_date(body: Mapping[str, Any], key: str) -> date:
    value = body.get(key)
    if value is None:
        raise AdsRequestInvalid(f"{key} is required")
    if not isinstance(value, str) or not _DATE_RE.match(value):
        raise AdsRequestInvalid(f"{key} ({value}) must be a date in YYYY-MM-DD format")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise AdsRequestInvalid(f"{key} ({value}) must be a date in YYYY-MM-DD format") from None


def _string_list(config: Mapping[str, Any], key: str) -> list[str]:
    value = config.get(key)
    if value is None or (isinstance(value, list) and not value):
        # Spec, AsyncReportConfiguration: "This field cannot be null or empty."
        raise AdsRequestInvalid(f"configuration {key} cannot be null or empty")
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise AdsRequestInvalid(f"configuration {key} must be a list of strings")
    return value


def _validate_group_bys(rt: AdsReportType, group_bys: list[str]) -> tuple[str, ...]:
    unknown = [g for g in group_bys if g not in rt.group_bys]
    if unknown:
        raise AdsRequestInvalid(f"configuration groupBy includes invalid values: {_tuple(unknown)}")
    unique = tuple(dict.fromkeys(group_bys))
    if len(unique) > 1 and not rt.combinable_group_bys:
        raise AdsRequestInvalid(
            f"configuration groupBy accepts a single value for reportTypeId {rt.report_type_id}"
        )
    return unique


def _validate_filters(
    rt: AdsReportType, group_bys: tuple[str, ...], raw: object
) -> tuple[dict[str, frozenset[str]], tuple[tuple[str, tuple[str, ...]], ...]]:
    if raw is None:
        return {}, ()
    if not isinstance(raw, list):
        raise AdsRequestInvalid("configuration filters must be a list")
    parsed: list[tuple[str, tuple[str, ...]]] = []
    for item in raw:
        if (
            not isinstance(item, Mapping)
            or not isinstance(item.get("field"), str)
            or not isinstance(item.get("values"), list)
            or not all(isinstance(v, str) for v in item["values"])
        ):
            raise AdsRequestInvalid("configuration filters must be objects with field and values")
        parsed.append((item["field"], tuple(item["values"])))
    allowed = rt.filters_for(group_bys)
    bad_fields = list(dict.fromkeys(f for f, _ in parsed if f not in allowed))
    if bad_fields:
        # Text observed from Amazon (ads-facts.md §3); one "Allowed filters" clause per groupBy
        # that lacks one of the fields.
        offending = [g for g in group_bys if any(f not in rt.group_bys[g].filters for f in bad_fields)]
        allowed_txt = ". ".join(
            f"Allowed filters for groupBy {g}: {_tuple(sorted(rt.group_bys[g].filters))}" for g in offending
        )
        raise AdsRequestInvalid(
            f"configuration filters includes fields: {_tuple(bad_fields)} which are invalid for "
            f"groupBys: {', '.join(offending)}. {allowed_txt}"
        )
    merged: dict[str, frozenset[str]] = {}
    for f, values in parsed:
        if not values:
            raise AdsRequestInvalid(f"configuration filters values for field {f} cannot be empty")
        bad_values = [v for v in values if v not in allowed[f]]
        if bad_values:
            raise AdsRequestInvalid(
                f"configuration filters includes invalid values for field {f}: "
                f"{_tuple(bad_values)}. Allowed values: {_tuple(sorted(allowed[f]))}"
            )
        # Two filters on one field narrow each other.
        merged[f] = merged[f] & frozenset(values) if f in merged else frozenset(values)
    return merged, tuple(parsed)


def validate_create_request(body: object, today: date) -> AdsReportRequest:
    """The parsed request, or AdsRequestInvalid with Amazon's 400 text for the first problem found.

    `today` is the current date in the profile's time zone (report dates are profile-local).
    Texts marked in ads-facts.md §3 are Amazon's own; the others follow the same style, since
    Amazon documents no more of them.
    """
    if not isinstance(body, Mapping):
        raise AdsRequestInvalid("Request body must be a JSON object")
    config = body.get("configuration")
    if not isinstance(config, Mapping):
        raise AdsRequestInvalid("configuration is required")
    rt = ADS_REPORT_TYPES.get(config.get("reportTypeId"))  # type: ignore[arg-type]
    if rt is None:
        # Amazon's text, quoted in amzn/ads-advanced-tools-docs issue #375.
        raise AdsRequestInvalid("configuration reportTypeId is unknown or invalid")
    product = config.get("adProduct")
    if product not in AdProduct.__members__:
        raise AdsRequestInvalid("configuration adProduct is unknown or invalid")
    if product != rt.ad_product:
        raise AdsRequestInvalid(
            f"configuration adProduct {product} is invalid for reportTypeId {rt.report_type_id}"
        )
    group_bys = _validate_group_bys(rt, _string_list(config, "groupBy"))
    time_unit_raw = config.get("timeUnit")
    if time_unit_raw not in TimeUnit.__members__ or TimeUnit(time_unit_raw) not in rt.time_units:
        raise AdsRequestInvalid("configuration timeUnit is unknown or invalid")
    time_unit = TimeUnit(time_unit_raw)
    columns = _string_list(config, "columns")
    allowed_cols = rt.columns_for(group_bys)
    # A time column of the other timeUnit (date with SUMMARY, startDate/endDate with DAILY) is
    # reported like any column the request may not have.
    wrong_time = DATE_COLUMNS - TIME_UNIT_COLUMNS[time_unit]
    invalid = [c for c in dict.fromkeys(columns) if c not in allowed_cols or c in wrong_time]
    if invalid:
        raise AdsRequestInvalid(f"configuration columns includes invalid values: {_tuple(invalid)}")
    fmt = config.get("format")
    if fmt not in rt.formats:
        raise AdsRequestInvalid("configuration format is unknown or invalid")
    filters, raw_filters = _validate_filters(rt, group_bys, config.get("filters"))

    start = _parse_date(body, "startDate")
    end = _parse_date(body, "endDate")
    if start > end:
        raise AdsRequestInvalid(f"startDate ({start}) must be equal to or before endDate ({end})")
    if end > today:
        raise AdsRequestInvalid(f"endDate ({end}) must be equal to or before today ({today})")
    span = (end - start).days + 1
    if span > rt.max_span_days:
        raise AdsRequestInvalid(
            f"date range ({span} days) exceeds the maximum of {rt.max_span_days} days "
            f"for reportTypeId {rt.report_type_id}"
        )
    retention_start = rt.retention_start(today)
    if start < retention_start:
        # Amazon's text (ads-facts.md §3; airbytehq/airbyte PR #55217).
        raise AdsRequestInvalid(
            f"startDate ({start}) must be equal to or after report type data retention start "
            f"date ({retention_start})"
        )
    name = body.get("name")
    return AdsReportRequest(
        report_type=rt,
        group_bys=group_bys,
        columns=tuple(columns),
        time_unit=time_unit,
        format=str(fmt),
        filters=MappingProxyType(filters),
        start_date=start,
        end_date=end,
        name=name if isinstance(name, str) else None,
        raw_filters=raw_filters,
    )


def report_types_for(ad_product: AdProduct | str) -> tuple[AdsReportType, ...]:
    """The registered report types of one ad product, in registry order."""
    return tuple(r for r in _REPORTS if r.ad_product == ad_product)


def group_by_names(report_type_id: str) -> Sequence[str]:
    """The groupBy values a report type accepts."""
    return tuple(ADS_REPORT_TYPES[report_type_id].group_bys)
