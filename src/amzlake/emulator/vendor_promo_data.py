"""Vendor coupon and promotion performance documents.

Campaigns (coupons) and promotions follow a stable calendar per vendor account; a request lists
those starting inside its window. Their counters grow while they run and are final a while after
they end, so a re-pull of a recent campaign shows new figures. Totals are exact sums of their parts
(money in minor units), budgets are never overspent.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import numpy as np
import orjson

from amzlake.catalog.vendor import parse_datetime
from amzlake.emulator.documents import DocumentPlan, Truth
from amzlake.emulator.vendor_data import Request, iso_z
from amzlake.emulator.vendor_facts import VendorCatalogue
from amzlake.emulator.vendor_json import plan, to_decimal
from amzlake.emulator.world import stable_int, stable_token

COUPON_EVERY_DAYS = 9  # [E] a new coupon campaign every 9 days
PROMOTION_EVERY_DAYS = 12  # [E] a new promotion every 12 days
SETTLE_DAYS = 14  # counters are final this long after the end [E]


def _rng(cat: VendorCatalogue, *parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_int(cat.seed, cat.account_key, "promo", *parts))


def _starts(cat: VendorCatalogue, every: int, lo: datetime, hi: datetime, kind: str
            ) -> list[tuple[int, datetime]]:
    """(number, start) of the events of `kind` starting in lo..hi."""
    origin = datetime.combine(cat.history_start, datetime.min.time(), UTC)
    first = max(0, (lo - origin).days // every - 1)
    last = (hi - origin).days // every + 1
    out = []
    for k in range(first, last + 1):
        hour = stable_int(cat.seed, cat.account_key, kind, k) % 24
        start = origin + timedelta(days=k * every, hours=int(hour))
        if lo <= start <= hi:
            out.append((k, start))
    return out


def _progress(start: datetime, end: datetime, as_of: datetime) -> float:
    """How much of an event's activity is counted by `as_of` (0 before it starts, 1 when final)."""
    if as_of <= start:
        return 0.0
    if as_of >= end + timedelta(days=SETTLE_DAYS):
        return 1.0
    ran = min(as_of, end) - start
    return 0.9 * ran / (end - start) + (0.1 if as_of >= end else 0.0)


def _money(minor: int, decimals: int) -> float | int:
    """A plain JSON number for minor units (these reports print money without an Amount)."""
    value = to_decimal(minor, decimals)
    return float(value) if isinstance(value, Decimal) else value


@dataclass
class _Sums:
    truth: Truth
    decimals: int

    def add(self, key: str, value: int, money: bool = False) -> None:
        self.truth.add(key, to_decimal(value, self.decimals) if money else value)


def _coupon_campaign(req: Request, k: int, start: datetime, sums: _Sums) -> dict[str, Any]:
    cat = req.cat
    r = _rng(cat, "coupon", k)
    shared = bool(r.random() < 0.4)
    active = np.flatnonzero(cat.active(start.date()))
    fee = 60  # per-redemption fee in minor units [E]
    coupons = []
    total_spent = total_clips = total_redemptions = 0
    n_coupons = int(r.integers(1, 4))
    total_budget = int(r.integers(500, 5000)) * 10**cat.decimals * (3 if shared else 1)
    for c in range(n_coupons):
        end = start + timedelta(days=int(r.integers(3, 15)), hours=-1, minutes=59, seconds=59)
        picks = r.choice(active, size=min(len(active), int(r.integers(1, 5))), replace=False)
        percent = bool(r.random() < 0.5)
        pct = int(r.integers(5, 31))
        amount_off = int(cat.price[picks].min() * r.uniform(0.05, 0.3))
        per_redemption = int(cat.price[picks].mean() * pct / 100) if percent else amount_off
        demand = float(cat.demand[picks].sum())
        final_clips = int(r.poisson(demand * (end - start).days * 4 + 5))
        final_redemptions = int(r.binomial(final_clips, 0.15))
        share = _progress(start, end, req.as_of)
        clips = int(final_clips * share)
        redemptions = min(int(final_redemptions * share), clips)
        budget = total_budget if shared else int(r.integers(200, 3000)) * 10**cat.decimals
        cap = (total_budget - total_spent) if shared else budget
        # The coupon stops once its budget is used up.
        redemptions = min(redemptions, cap // (per_redemption + fee) if per_redemption + fee else 0)
        discount = redemptions * per_redemption
        spent = discount + redemptions * fee
        coupon: dict[str, Any] = {
            "couponId": "A" + stable_token(cat.seed, "coupon", cat.account_key, k, c, length=13),
            "name": f"Save {pct}%" if percent else "Save on selected items",
            "websiteMessage": "Save with coupon",
            "startDateTime": iso_z(start),
            "endDateTime": iso_z(end),
            "isOncePerCustomer": bool(r.random() < 0.7),
            "customerSegment": "All (Default)",
            "clips": clips,
            "redemptions": redemptions,
        }
        if not shared:
            coupon["budget"] = _money(budget, cat.decimals)
        coupon["totalDiscount"] = _money(discount, cat.decimals)
        coupon["budgetSpent"] = _money(spent, cat.decimals)
        if not shared:
            coupon["budgetRemaining"] = _money(budget - spent, cat.decimals)
        pct_used = round(spent * 100 / (total_budget if shared else budget), 2)
        coupon["budgetPercentageUsed"] = pct_used
        coupon["asins"] = [
            {
                "asin": cat.asins[int(a)],
                "discountType": "PERCENT_OFF_LIST_PRICE" if percent else "AMOUNT_OFF_LIST_PRICE",
                "discountAmount": pct if percent else _money(amount_off, cat.decimals),
            }
            for a in picks.tolist()
        ]
        coupons.append(coupon)
        total_spent += spent
        total_clips += clips
        total_redemptions += redemptions
        sums.add("campaigns.coupons.clips", clips)
        sums.add("campaigns.coupons.redemptions", redemptions)
        sums.add("campaigns.coupons.totalDiscount", discount, money=True)
        sums.add("campaigns.coupons.budgetSpent", spent, money=True)
    last_end = max(parse_datetime(c["endDateTime"], "end") for c in coupons)
    updated = max(start - timedelta(days=7), min(req.as_of - timedelta(hours=6), last_end
                                                  + timedelta(days=SETTLE_DAYS)))
    campaign: dict[str, Any] = {
        "campaignId": "AMZ" + stable_token(cat.seed, "campaign", cat.account_key, k, length=10),
        "campaignName": f"Campaign {start.date().isoformat()}",
        "vendorCode": req.account.vendor_code,
        "marketplaceId": req.account.marketplace.marketplace_id,
        "creationDateTime": iso_z(start - timedelta(days=7)),
        "lastUpdatedDateTime": iso_z(updated),
        "isSubscribeAndSave": bool(r.random() < 0.1),
        "budgetType": "SHARED_BUDGET" if shared else "PER_INDIVIDUAL_COUPON",
        "totalClips": total_clips,
        "totalRedemptions": total_redemptions,
        "currencyCode": cat.currency,
    }
    if shared:
        campaign["totalBudget"] = _money(total_budget, cat.decimals)
        campaign["totalBudgetSpent"] = _money(total_spent, cat.decimals)
        campaign["totalBudgetRemaining"] = _money(total_budget - total_spent, cat.decimals)
    campaign["coupons"] = coupons
    sums.add("campaigns.totalClips", total_clips)
    sums.add("campaigns.totalRedemptions", total_redemptions)
    return campaign


_PROMO_TYPES = ("BEST_DEAL", "LIGHTNING_DEAL", "PRICE_DISCOUNT")  # vendors' types [D 2022]


def _promotion(req: Request, k: int, start: datetime, sums: _Sums) -> dict[str, Any]:
    cat = req.cat
    r = _rng(cat, "promotion", k)
    kind = _PROMO_TYPES[int(r.integers(0, len(_PROMO_TYPES)))]
    hours = 12 if kind == "LIGHTNING_DEAL" else 24 * int(r.integers(2, 8))
    end = start + timedelta(hours=hours)
    active = np.flatnonzero(cat.active(start.date()))
    picks = r.choice(active, size=min(len(active), int(r.integers(1, 6))), replace=False)
    share = _progress(start, end, req.as_of)
    products = []
    units_total = revenue_total = spent_total = views_total = 0
    discount = r.uniform(0.1, 0.35)
    for a in picks.tolist():
        lam = float(cat.demand[a]) * hours / 24 * 3
        units = int(r.poisson(lam) * share)
        views = int(r.poisson(lam * 25) * share)
        unit_price = int(cat.price[a] * (1 - discount))
        revenue = units * unit_price
        spent = units * (int(cat.price[a]) - unit_price)  # the vendor funds the discount
        products.append({
            "asin": cat.asins[a],
            "productName": f"Emulated product {cat.asins[a]}",
            "productGlanceViews": views,
            "productUnitsSold": units,
            "productAmountSpent": _money(spent, cat.decimals),
            "productAmountSpentCurrencyCode": cat.currency,
            "productRevenue": _money(revenue, cat.decimals),
            "productRevenueCurrencyCode": cat.currency,
        })
        units_total += units
        revenue_total += revenue
        spent_total += spent
        views_total += views
        sums.add("promotions.includedProducts.productUnitsSold", units)
        sums.add("promotions.includedProducts.productRevenue", revenue, money=True)
    sums.add("promotions.unitsSold", units_total)
    sums.add("promotions.revenue", revenue_total, money=True)
    sums.add("promotions.amountSpent", spent_total, money=True)
    created = start - timedelta(days=14)
    return {
        "promotionId": str(10_000_000_000 + stable_int(cat.seed, cat.account_key, "promo-id", k,
                                                       bits=33)),
        "promotionName": f"{kind.replace('_', ' ').title()} {start.date().isoformat()}",
        "vendorCode": req.account.vendor_code,
        "unitsSold": units_total,
        "amountSpent": _money(spent_total, cat.decimals),
        "amountSpentCurrencyCode": cat.currency,
        "revenue": _money(revenue_total, cat.decimals),
        "revenueCurrencyCode": cat.currency,
        "startDateTime": iso_z(start),
        "endDateTime": iso_z(end),
        "type": kind,
        "status": "CANCELED" if r.random() < 0.05 else "APPROVED",
        "creationChannel": "SELF-SERVICE",
        "marketplaceId": req.account.marketplace.marketplace_id,
        "fundingAgreementId": str(stable_int(cat.seed, cat.account_key, "funding", k, bits=26)),
        "glanceViews": views_total,
        "createdDateTime": iso_z(created),
        "lastUpdatedDateTime": iso_z(max(created, min(req.as_of - timedelta(hours=6),
                                                      end + timedelta(days=SETTLE_DAYS)))),
        "includedProducts": products,
    }


def _window(req: Request) -> tuple[str, datetime, datetime, int]:
    rule = req.rt.start_window
    assert rule is not None
    lo = parse_datetime(req.options[rule.option_from], rule.option_from)
    hi = parse_datetime(req.options[rule.option_to], rule.option_to)
    if req.rt.report_type == "GET_COUPON_PERFORMANCE_REPORT":
        return "coupon", lo, hi, COUPON_EVERY_DAYS
    return "promotion", lo, hi, PROMOTION_EVERY_DAYS


def has_data(req: Request) -> bool:
    """Whether any campaign or promotion starts inside the requested window."""
    kind, lo, hi, every = _window(req)
    return bool(_starts(req.cat, every, lo, hi, kind))


def document(req: Request, truth: Truth) -> DocumentPlan:
    """The coupon or promotion performance document of a valid request."""
    kind, lo, hi, every = _window(req)
    sums = _Sums(truth, req.cat.decimals)
    array = "campaigns" if kind == "coupon" else "promotions"
    build = _coupon_campaign if kind == "coupon" else _promotion

    def rows() -> Iterator[list[str]]:
        for k, start in _starts(req.cat, every, lo, hi, kind):
            item = build(req, k, start, sums)
            truth.rows += 1
            counts = truth.details.setdefault("arrays", {})
            counts[array] = counts.get(array, 0) + 1
            yield [orjson.dumps(item).decode()]

    spec = {
        "reportType": req.rt.report_type,
        "reportOptions": dict(req.options),
        "marketplaceIds": [req.account.marketplace.marketplace_id],
    }
    return plan(spec, [(array, rows)], truth)
