"""Ads report data: consistent across report types, deterministic, restated like Amazon's."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from amzlake.catalog.ads import ADS_COLUMN_TYPES, ADS_REPORT_TYPES, ColumnType
from amzlake.emulator.ads_columns import spec_for
from amzlake.emulator.ads_data import ads_document
from amzlake.emulator.ads_metrics import day_age
from amzlake.emulator.world import World, build_world

AS_OF = datetime(2025, 3, 20, 12, tzinfo=UTC)
START, END = "2025-03-01", "2025-03-07"


@pytest.fixture(scope="module")
def world() -> World:
    return build_world(seed=7)


def request(
    report: str,
    columns: list[str],
    group_by: list[str] | None = None,
    time_unit: str = "DAILY",
    start: str = START,
    end: str = END,
    filters: list[dict[str, Any]] | None = None,
    fmt: str = "GZIP_JSON",
) -> dict[str, Any]:
    rt = ADS_REPORT_TYPES[report]
    config: dict[str, Any] = {
        "adProduct": str(rt.ad_product),
        "reportTypeId": report,
        "groupBy": group_by or [next(iter(rt.group_bys))],
        "columns": columns,
        "timeUnit": time_unit,
        "format": fmt,
    }
    if filters:
        config["filters"] = filters
    return {"startDate": start, "endDate": end, "configuration": config}


def rows_of(world: World, body: dict[str, Any], as_of: datetime = AS_OF, profile: int = 0):
    plan = ads_document(world, world.ads_profiles[profile], body, as_of)
    raw = b"".join(plan.chunks)
    return json.loads(raw), plan.truth, raw


def sums_by(rows: list[dict[str, Any]], keys: tuple[str, ...], col: str) -> dict[Any, Decimal]:
    out: dict[Any, Decimal] = defaultdict(Decimal)
    for r in rows:
        out[tuple(r[k] for k in keys)] += Decimal(str(r[col]))
    return dict(out)


def test_every_catalogue_column_can_be_generated() -> None:
    for rt in ADS_REPORT_TYPES.values():
        for col in rt.columns_for(rt.group_bys):
            assert spec_for(rt.report_type_id, col) is not None


@pytest.mark.parametrize("metric", ["impressions", "clicks", "cost", "sales14d", "purchases7d"])
def test_campaign_equals_sum_of_advertised_products_and_of_targets(world: World, metric: str):
    cols = ["date", "campaignId", metric]
    camp, _, _ = rows_of(world, request("spCampaigns", cols, ["campaign"]))
    ads, _, _ = rows_of(world, request("spAdvertisedProduct", cols))
    tgt, _, _ = rows_of(world, request("spTargeting", cols))
    by_campaign = sums_by(camp, ("date", "campaignId"), metric)
    assert by_campaign == sums_by(ads, ("date", "campaignId"), metric)
    assert by_campaign == sums_by(tgt, ("date", "campaignId"), metric)
    assert sum(by_campaign.values()) > 0


def test_placements_and_ad_groups_add_up_to_campaigns(world: World) -> None:
    cols = ["date", "campaignId", "cost", "clicks"]
    camp, _, _ = rows_of(world, request("spCampaigns", cols, ["campaign"]))
    place, _, _ = rows_of(
        world, request("spCampaigns", [*cols, "placementClassification"], ["campaignPlacement"])
    )
    ag, _, _ = rows_of(world, request("spCampaigns", [*cols, "adGroupId"], ["campaign", "adGroup"]))
    assert {r["placementClassification"] for r in place} >= {"Top of Search on-Amazon"}
    for part in (place, ag):
        assert sums_by(part, ("date", "campaignId"), "cost") == sums_by(camp, ("date", "campaignId"), "cost")


def test_purchased_product_other_sku_sales_match_advertised_product(world: World) -> None:
    _, ads_truth, _ = rows_of(world, request("spAdvertisedProduct", ["date", "salesOtherSku7d"]))
    pp, pp_truth, _ = rows_of(
        world, request("spPurchasedProduct", ["date", "salesOtherSku7d", "purchasedAsin"])
    )
    assert ads_truth.sums["salesOtherSku7d"] == pp_truth.sums["salesOtherSku7d"] > 0
    assert all(r["purchasedAsin"].startswith("B0") for r in pp)


def test_sb_purchased_product_holds_every_sb_sale(world: World) -> None:
    _, camp, _ = rows_of(world, request("sbCampaigns", ["date", "sales", "purchases"]))
    _, pp, _ = rows_of(
        world, request("sbPurchasedProduct", ["date", "sales14d", "orders14d", "attributionType"])
    )
    assert camp.sums["sales"] == pp.sums["sales14d"] > 0
    assert camp.sums["purchases"] == pp.sums["orders14d"]


def test_rows_are_internally_consistent(world: World) -> None:
    windows = (1, 7, 14, 30)
    cols = ["impressions", "clicks", "cost", "costPerClick", "clickThroughRate", "date"]
    cols += [f"purchases{w}d" for w in windows] + [f"purchasesSameSku{w}d" for w in windows]
    cols += [f"sales{w}d" for w in windows] + [f"attributedSalesSameSku{w}d" for w in windows]
    rows, _, _ = rows_of(world, request("spAdvertisedProduct", cols))
    assert rows
    for r in rows:
        assert list(r) == cols  # exactly the requested columns, in request order
        assert 0 <= r["clicks"] <= r["impressions"] and r["impressions"] > 0
        p = [r[f"purchases{w}d"] for w in windows]
        assert p == sorted(p)
        s = [Decimal(str(r[f"sales{w}d"])) for w in windows]
        assert s == sorted(s)
        for w in windows:
            assert r[f"purchasesSameSku{w}d"] <= r[f"purchases{w}d"]
        if r["clicks"]:
            cpc = Decimal(str(r["cost"])) / r["clicks"]
            assert abs(Decimal(str(r["costPerClick"])) - cpc) <= Decimal("0.005")
            ctr = Decimal(r["clicks"]) / r["impressions"]
            assert abs(Decimal(str(r["clickThroughRate"])) - ctr) <= Decimal("0.00005")


def test_sb_and_sd_un_suffixed_columns_are_derived_consistently(world: World) -> None:
    cols = [
        "date",
        "purchases",
        "purchasesClicks",
        "sales",
        "salesClicks",
        "unitsSold",
        "newToBrandPurchases",
        "impressions",
        "detailPageViews",
        "detailPageViewsClicks",
    ]
    for report, viewable in (
        ("sbCampaigns", "viewableImpressions"),
        ("sdCampaigns", "impressionsViews"),
    ):
        rows, _, _ = rows_of(world, request(report, [*cols, viewable]))
        assert rows
        for r in rows:
            r["viewableImpressions"] = r[viewable]
            assert r["purchasesClicks"] <= r["purchases"]
            assert Decimal(str(r["salesClicks"])) <= Decimal(str(r["sales"]))
            assert r["newToBrandPurchases"] <= r["purchases"] <= r["unitsSold"]
            assert r["viewableImpressions"] <= r["impressions"]
            assert r["detailPageViewsClicks"] <= r["detailPageViews"]


def test_gross_is_at_least_net(world: World) -> None:
    cols = [
        "date",
        "impressions",
        "grossImpressions",
        "invalidImpressions",
        "clicks",
        "grossClickThroughs",
        "invalidClickThroughs",
    ]
    rows, _, _ = rows_of(
        world, request("spGrossAndInvalids", cols), as_of=datetime(2025, 3, 8, 12, tzinfo=UTC)
    )
    assert rows
    for r in rows:
        assert r["grossImpressions"] == r["impressions"] + r["invalidImpressions"]
        assert r["grossClickThroughs"] == r["clicks"] + r["invalidClickThroughs"]
        assert r["invalidImpressions"] >= 0 and r["invalidClickThroughs"] >= 0


def test_ids_are_integers_above_2_53_that_survive_json(world: World) -> None:
    cols = ["date", "campaignId", "adGroupId", "adId", "portfolioId", "cost"]
    rows, truth, raw = rows_of(world, request("spAdvertisedProduct", cols))
    for r in rows:
        for c in ("campaignId", "adGroupId", "adId"):
            assert isinstance(r[c], int) and r[c] > 2**53
            assert str(r[c]).encode() in raw  # written as an exact integer, no exponent
        assert r["portfolioId"] is None or r["portfolioId"] > 2**53
    assert truth.sums["campaignId"] == sum(r["campaignId"] for r in rows)


def test_truth_matches_the_document(world: World) -> None:
    rt = ADS_REPORT_TYPES["sbCampaigns"]
    cols = [c for c in rt.columns_for(["campaign"]) if c not in ("startDate", "endDate")]
    rows, truth, _ = rows_of(world, request("sbCampaigns", sorted(cols)))
    assert truth.rows == len(rows) > 0
    for c in cols:
        if ADS_COLUMN_TYPES[c] in (ColumnType.INTEGER, ColumnType.DECIMAL):
            expected = sum(Decimal(str(r[c])) for r in rows if r[c] is not None)
            assert Decimal(truth.sums[c]) == expected, c
    by_date = truth.details["byDate"]
    assert sum(d["rows"] for d in by_date.values()) == len(rows)


def test_summary_equals_the_sum_of_daily(world: World) -> None:
    daily, dt, _ = rows_of(world, request("spTargeting", ["date", "keywordId", "cost", "clicks"]))
    summ, st, _ = rows_of(
        world,
        request("spTargeting", ["keywordId", "cost", "clicks", "startDate", "endDate"], time_unit="SUMMARY"),
    )
    assert st.sums["cost"] == dt.sums["cost"] and st.sums["clicks"] == dt.sums["clicks"]
    assert len(summ) == len({r["keywordId"] for r in daily}) < len(daily)
    assert {(r["startDate"], r["endDate"]) for r in summ} == {(START, END)}


def test_filters_keep_only_matching_entities(world: World) -> None:
    cols = ["date", "campaignId", "campaignStatus", "cost"]
    all_rows, all_truth, _ = rows_of(world, request("spCampaigns", cols, ["campaign"]))
    enabled, en_truth, _ = rows_of(
        world,
        request(
            "spCampaigns", cols, ["campaign"], filters=[{"field": "campaignStatus", "values": ["ENABLED"]}]
        ),
    )
    assert {r["campaignStatus"] for r in enabled} == {"ENABLED"}
    assert enabled == [r for r in all_rows if r["campaignStatus"] == "ENABLED"]
    assert 0 < en_truth.sums["cost"] < all_truth.sums["cost"]
    exact, _, _ = rows_of(
        world,
        request(
            "spSearchTerm",
            ["date", "matchType", "searchTerm", "keyword", "clicks"],
            filters=[{"field": "keywordType", "values": ["EXACT"]}],
        ),
    )
    assert exact and all(r["matchType"] == "EXACT" for r in exact)
    assert all(r["searchTerm"] == r["keyword"] and r["clicks"] >= 1 for r in exact)


def test_same_seed_same_bytes_other_seed_other_bytes(world: World) -> None:
    body = request("spSearchTerm", ["date", "searchTerm", "keywordId", "cost", "sales7d"])
    _, _, a = rows_of(world, body)
    _, _, b = rows_of(build_world(seed=7), body)
    _, _, c = rows_of(build_world(seed=8), body)
    assert a == b and a != c


def _day_report(world: World, day: date, as_of: datetime) -> dict[str, Any]:
    cols = ["campaignId", "impressions", "clicks", "cost", "purchases14d", "sales14d", "date"]
    body = request("spCampaigns", cols, ["campaign"], start=day.isoformat(), end=day.isoformat())
    _, truth, _ = rows_of(world, body, as_of)
    return truth.sums


def _after(day: date, days: float) -> datetime:
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), ZoneInfo("America/Los_Angeles"))
    return (end + timedelta(days=days)).astimezone(UTC)


def test_recent_days_are_restated_and_old_days_are_final(world: World) -> None:
    day = date(2025, 2, 10)
    early, later = _day_report(world, day, _after(day, 0.5)), _day_report(world, day, _after(day, 10))
    assert early != later
    # Invalid traffic is removed: a fresh day shows at least as much as the settled one.
    assert early["impressions"] >= later["impressions"] and early["clicks"] >= later["clicks"]
    a, b = _day_report(world, day, _after(day, 40)), _day_report(world, day, _after(day, 50))
    assert a == b


def test_conversions_only_grow_as_they_mature(world: World) -> None:
    day = date(2025, 2, 10)
    seen = [_day_report(world, day, _after(day, age)) for age in (0.2, 2, 8, 29, 45)]
    purchases = [s["purchases14d"] for s in seen]
    sales = [s["sales14d"] for s in seen]
    assert purchases == sorted(purchases) and sales == sorted(sales)
    assert purchases[0] < purchases[-1]


def test_a_day_in_progress_is_partial(world: World) -> None:
    day = date(2025, 2, 10)
    partial = _day_report(world, day, _after(day, -0.5))
    full = _day_report(world, day, _after(day, 0.1))
    assert 0 < partial["impressions"] < full["impressions"]
    assert day_age(day, "America/Los_Angeles", _after(day, -1.5)) is None  # not begun: no rows


def test_jpy_money_has_no_fraction(world: World) -> None:
    jp = next(i for i, p in enumerate(world.ads_profiles) if p.currency_code == "JPY")
    rows, _, _ = rows_of(
        world,
        request(
            "spAdvertisedProduct",
            ["date", "cost", "sales7d", "costPerClick", "campaignBudgetAmount", "campaignBudgetCurrencyCode"],
        ),
        profile=jp,
    )
    assert rows
    for r in rows:
        assert r["campaignBudgetCurrencyCode"] == "JPY"
        for c in ("cost", "sales7d", "costPerClick", "campaignBudgetAmount"):
            assert isinstance(r[c], int), (c, r[c])
    cpc = [r["costPerClick"] for r in rows if r["costPerClick"]]
    assert 40 <= sorted(cpc)[len(cpc) // 2] <= 300  # about 100 yen a click


def test_csv_for_gross_and_invalids(world: World) -> None:
    body = request("spGrossAndInvalids", ["date", "campaignName", "grossImpressions"], fmt="CSV")
    plan = ads_document(world, world.ads_profiles[0], body, AS_OF)
    lines = b"".join(plan.chunks).decode().splitlines()
    assert lines[0] == "date,campaignName,grossImpressions"
    assert len(lines) == plan.truth.rows + 1
    assert sum(int(line.rsplit(",", 1)[1]) for line in lines[1:]) == plan.truth.sums["grossImpressions"]
