"""Curated names: one snake_case rule for every field, valid identifiers for every table."""

from __future__ import annotations

import re

import pytest

from amzlake.catalog.ads import ADS_REPORT_TYPES
from amzlake.transform.names import ads_table, path_column, snake
from amzlake.transform.schemas import (
    VENDOR_DOCUMENTS,
    ads_schema,
    is_ads_rate,
    vendor_field_columns,
    vendor_tables,
)

IDENT = re.compile(r"^[a-z_][a-z0-9_]*$")


@pytest.mark.parametrize(("field", "column"), [
    ("campaignId", "campaign_id"),
    ("clickThroughRate", "click_through_rate"),
    ("sales14d", "sales_14d"),
    ("purchasesSameSku1d", "purchases_same_sku_1d"),
    ("kindleEditionNormalizedPagesRead14d", "kindle_edition_normalized_pages_read_14d"),
    ("eCPAddToCart", "e_cp_add_to_cart"),
    ("newToBrandECPDetailPageView", "new_to_brand_ecp_detail_page_view"),
    ("longTermROAS", "long_term_roas"),
    ("video5SecondViews", "video_5_second_views"),
    ("aged90PlusDaysSellableInventoryCost", "aged_90_plus_days_sellable_inventory_cost"),
    ("date", "date"),
    ("asin", "asin"),
    ("ASIN", "asin"),
    ("some-new field!", "some_new_field"),
    ("7dayThing", "_7day_thing"),
    ("", "field"),
])
def test_snake_case_rule(field: str, column: str) -> None:
    assert snake(field) == column


def test_nested_paths_and_amounts() -> None:
    assert path_column(["impressionData", "impressionCount"]) == "impression_data_impression_count"
    assert [f.name for f in vendor_field_columns("shippedRevenue", "A")] == [
        "shipped_revenue_amount", "shipped_revenue_currency"]
    assert str(vendor_field_columns("shippedRevenue", "A")[0].type) == "decimal128(18, 4)"


def test_ads_tables_are_named_by_type_and_unit() -> None:
    assert ads_table("spCampaigns", "DAILY") == "ads_sp_campaigns_daily"
    assert ads_table("sbAdGroup", "SUMMARY") == "ads_sb_ad_group_summary"
    assert ads_table("spGrossAndInvalids", "DAILY") == "ads_sp_gross_and_invalids_daily"


def test_every_table_and_column_is_a_plain_unique_identifier() -> None:
    schemas = {ads_table(rt, u): ads_schema(rt, u)
               for rt in ADS_REPORT_TYPES for u in ("DAILY", "SUMMARY")}
    schemas.update(vendor_tables())
    assert len(schemas) == 2 * len(ADS_REPORT_TYPES) + sum(
        len(d.tables) for d in VENDOR_DOCUMENTS.values())
    for table, schema in schemas.items():
        assert IDENT.match(table), table
        assert len(set(schema.names)) == len(schema.names), table
        assert all(IDENT.match(c) for c in schema.names), table
        assert schema.names[:7] == ["report_date", "account_id", "identity_key", "slice_key",
                                    "remote_report_id", "raw_key", "fetched_at"]


def test_ads_money_and_rates_are_told_apart() -> None:
    schema = ads_schema("spCampaigns", "DAILY")
    types = {f.name: str(f.type) for f in schema}
    assert types["campaign_id"] == "int64"
    assert types["cost"] == types["sales_14d"] == types["cost_per_click"] == "decimal128(18, 4)"
    assert types["click_through_rate"] == types["top_of_search_impression_share"] == "double"
    assert types["date"] == "date32[day]" and "start_date" not in types
    assert "start_date" in ads_schema("spCampaigns", "SUMMARY").names
    assert all(is_ads_rate(c) for c in ("acosClicks14d", "roasClicks7d", "viewabilityRate",
                                         "newToBrandSalesPercentage14d", "longTermROAS"))
    assert not any(is_ads_rate(c) for c in ("cost", "spend", "eCPBrandSearch", "keywordBid",
                                            "longTermSales", "newToBrandSales14d"))
