"""Brand Analytics documents for a vendor: search terms, market basket, repeat purchase, search
catalog performance and search query performance.

Figures tie back to the vendor's daily facts where the reports overlap (repeat-purchase orders and
revenue come from the period's ordered units and revenue; catalog purchases are a share of them),
and funnels are ordered: impressions >= clicks >= cart adds >= purchases; shares lie in [0, 1].
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date

import numpy as np

from amzlake.emulator.documents import DocumentPlan, Truth
from amzlake.emulator.vendor_data import Request, _period_head, _ratio, _sum_days
from amzlake.emulator.vendor_facts import VendorCatalogue, sales_day
from amzlake.emulator.vendor_json import (
    RATE_PLACES,
    Col,
    RowWriter,
    encode_strings,
    plan,
    string_column,
)
from amzlake.emulator.world import stable_int, stable_token

_ADJ = ("wireless", "organic", "portable", "stainless", "kids", "large", "mini", "smart",
        "waterproof", "vegan", "rechargeable", "bamboo", "cordless", "ceramic", "travel")
_NOUN = ("charger", "water bottle", "coffee beans", "headphones", "yoga mat", "lunch box",
         "desk lamp", "phone case", "backpack", "blender", "toothbrush", "notebook", "speaker",
         "pillow", "kettle", "socks", "dog toy", "shampoo", "vitamins", "candle")
_DEPARTMENTS = ("Beauty", "Electronics", "Home & Kitchen", "Grocery", "Sports & Outdoors")
TERMS_PER_SIZE = 100  # search terms listed per unit of account size


def _rng(cat: VendorCatalogue, *parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_int(cat.seed, cat.account_key, "ba", *parts))


def search_term(i: int) -> str:
    """The i-th search term of the emulated marketplace (stable, unique)."""
    adj, rest = _ADJ[i % len(_ADJ)], i // len(_ADJ)
    noun, extra = _NOUN[rest % len(_NOUN)], rest // len(_NOUN)
    return f"{adj} {noun}" + (f" {extra + 1} pack" if extra else "")


def _other_asin(cat: VendorCatalogue, *parts: object) -> str:
    return "B0" + stable_token(cat.seed, "competitor", *parts, length=8)


def _period_sales(req: Request, p: tuple[date, date]) -> dict[str, np.ndarray]:
    cat = req.cat
    return _sum_days(
        lambda d: sales_day(cat, d, "MANUFACTURING", "RETAIL", req.as_of_day),
        ("ordered_units", "ordered_revenue"), p[0], p[1], cat.size,
    )


def _asin_filter(req: Request, option: str) -> np.ndarray:
    """Which catalogue ASINs a space-separated ASIN option selects (all when absent)."""
    cat = req.cat
    raw = req.options.get(option, "").split()
    if not raw:
        return np.ones(cat.size, dtype=bool)
    wanted = set(raw)
    return np.array([a in wanted for a in cat.asins], dtype=bool)


def has_data(req: Request) -> bool:
    """Whether a Brand Analytics request selects anything (e.g. an ASIN the vendor sells)."""
    rt = req.rt.report_type
    if rt.endswith("SEARCH_QUERY_PERFORMANCE_REPORT"):
        return bool(_asin_filter(req, "asin").any())
    if rt.endswith("SEARCH_CATALOG_PERFORMANCE_REPORT"):
        return bool(_asin_filter(req, "asins").any())
    return True


def _spec(req: Request) -> dict[str, object]:
    return req.base_spec(last_updated=False)


def _search_terms(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    (p,) = req.periods()[-1:]  # one period per request [M]
    n = TERMS_PER_SIZE * req.account.size
    rng = _rng(cat, "terms", p[0].toordinal())
    popularity = rng.lognormal(0.0, 1.0, n)
    order = np.argsort(-popularity, kind="stable")
    cols = [
        Col("searchFrequencyRank"), Col("clickShareRank"),
        Col("clickShare", "fixed", RATE_PLACES), Col("conversionShare", "fixed", RATE_PLACES),
    ]
    writer = RowWriter("dataByDepartmentAndSearchTerm", cols, cat.currency, truth)
    dept_home = "Amazon." + {"US": "com", "UK": "co.uk", "JP": "co.jp"}.get(
        req.account.marketplace.country_code, req.account.marketplace.country_code.lower()
    )

    def rows() -> Iterator[list[str]]:
        for start in range(0, n, 500):
            idx = order[start : start + 500]
            k = len(idx)
            ranks = np.arange(start + 1, start + k + 1)
            r = _rng(cat, "shares", p[0].toordinal(), start)
            s1 = r.uniform(0.08, 0.4, k)
            shares = [s1, s1 * r.uniform(0.3, 0.9, k), s1 * r.uniform(0.1, 0.3, k)]
            conv = [s * r.uniform(0.5, 1.5, k) for s in shares]
            own = r.random(k) < 0.3
            pick = r.integers(0, cat.size, k)
            for rank in range(3):
                clicked = [
                    cat.asins[pick[j]] if (rank == 0 and own[j]) else _other_asin(cat, i, rank)
                    for j, i in enumerate(idx.tolist())
                ]
                dept = [
                    dept_home if i % 3 == 0 else _DEPARTMENTS[i % len(_DEPARTMENTS)]
                    for i in idx.tolist()
                ]
                yield writer.rows_for(
                    [],
                    [ranks, np.full(k, rank + 1), np.rint(shares[rank] * 1e4).astype(np.int64),
                     np.rint(np.clip(conv[rank], 0, 1) * 1e4).astype(np.int64)],
                    [
                        string_column("departmentName", dept),
                        string_column("searchTerm", [search_term(i) for i in idx.tolist()]),
                        string_column("clickedAsin", clicked),
                    ],
                )

    return plan(_spec(req), [("dataByDepartmentAndSearchTerm", rows)], truth)


def _market_basket(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    cols = [Col("purchasedWithRank"), Col("combinationPct", "fixed", RATE_PLACES)]
    writer = RowWriter("dataByAsin", cols, cat.currency, truth)
    asins = np.array(cat.asins, dtype=object)

    def rows() -> Iterator[list[str]]:
        for p in req.periods():
            mask = cat.active(p[1])
            k = int(mask.sum())
            r = _rng(cat, "basket", p[0].toordinal(), p[1].toordinal())
            top = r.uniform(0.01, 0.2, k)
            for rank in range(1, 4):
                pct = top * (1.0 / rank) * r.uniform(0.8, 1.0, k)
                partner = r.integers(0, cat.size, k)
                names = [
                    cat.asins[j] if r.random() < 0.5 else _other_asin(cat, a, rank)
                    for a, j in zip(asins[mask].tolist(), partner.tolist(), strict=True)
                ]
                yield writer.rows_for(
                    _period_head(p),
                    [np.full(k, rank), np.rint(pct * 1e4).astype(np.int64)],
                    [string_column("asin", asins[mask].tolist()),
                     string_column("purchasedWithAsin", names)],
                )

    return plan(_spec(req), [("dataByAsin", rows)], truth)


def _repeat_purchase(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    cols = [
        Col("orders"), Col("uniqueCustomers"),
        Col("repeatCustomersPctTotal", "fixed", RATE_PLACES),
        Col("repeatPurchaseRevenue", "amount", cat.decimals),
        Col("repeatPurchaseRevenuePctTotal", "fixed", RATE_PLACES),
    ]
    writer = RowWriter("dataByAsin", cols, cat.currency, truth)
    asins = np.array(cat.asins, dtype=object)

    def rows() -> Iterator[list[str]]:
        for p in req.periods():
            sales = _period_sales(req, p)
            units, revenue = sales["ordered_units"], sales["ordered_revenue"]
            mask = units > 0
            r = _rng(cat, "repeat", p[0].toordinal(), p[1].toordinal())
            # An order may hold several units; repeat customers are a few percent.
            orders = np.maximum(np.floor(units * r.uniform(0.85, 1.0, cat.size)), 1).astype(
                np.int64
            )
            repeat_orders = np.floor(orders * r.uniform(0.0, 0.12, cat.size)).astype(np.int64)
            unique = orders - repeat_orders
            repeat_customers = np.minimum(repeat_orders, unique)
            repeat_revenue = np.floor(revenue * repeat_orders / np.maximum(orders, 1)).astype(
                np.int64
            )
            values = [
                orders, unique, _ratio(repeat_customers, unique), repeat_revenue,
                _ratio(repeat_revenue, revenue),
            ]
            yield writer.rows_for(
                _period_head(p), [v[mask] for v in values],
                [string_column("asin", asins[mask].tolist())],
            )

    return plan(_spec(req), [("dataByAsin", rows)], truth)


def _speeds(r: np.random.Generator, total: np.ndarray) -> list[np.ndarray]:
    same = r.binomial(total, 0.1)
    one = r.binomial(total - same, 0.3)
    two = r.binomial(total - same - one, 0.5)
    return [same, one, two]


def _funnel(r: np.random.Generator, purchases: np.ndarray) -> dict[str, np.ndarray]:
    carts = purchases + r.poisson(purchases * 1.5 + 1)
    clicks = carts + r.poisson(carts * 3.0 + 2)
    impressions = clicks + r.poisson(clicks * 20.0 + 10)
    return {"purchases": purchases, "carts": carts, "clicks": clicks,
            "impressions": impressions}


def _catalog_performance(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    (p,) = req.periods()[-1:]
    m = cat.decimals
    cols = [
        Col("impressionData.impressionCount"),
        Col("impressionData.impressionMedianPrice", "amount", m),
        Col("impressionData.sameDayShippingImpressionCount"),
        Col("impressionData.oneDayShippingImpressionCount"),
        Col("impressionData.twoDayShippingImpressionCount"),
        Col("clickData.clickCount"),
        Col("clickData.clickRate", "fixed", RATE_PLACES),
        Col("clickData.clickedMedianPrice", "amount", m),
        Col("clickData.sameDayShippingClickCount"),
        Col("clickData.oneDayShippingClickCount"),
        Col("clickData.twoDayShippingClickCount"),
        Col("cartAddData.cartAddCount"),
        Col("cartAddData.cartAddedMedianPrice", "amount", m),
        Col("cartAddData.sameDayShippingCartAddCount"),
        Col("cartAddData.oneDayShippingCartAddCount"),
        Col("cartAddData.twoDayShippingCartAddCount"),
        Col("purchaseData.purchaseCount"),
        Col("purchaseData.searchTrafficSales", "amount", m),
        Col("purchaseData.conversionRate", "fixed", RATE_PLACES),
        Col("purchaseData.purchaseMedianPrice", "amount", m),
        Col("purchaseData.sameDayShippingPurchaseCount"),
        Col("purchaseData.oneDayShippingPurchaseCount"),
        Col("purchaseData.twoDayShippingPurchaseCount"),
    ]
    writer = RowWriter("dataByAsin", cols, cat.currency, truth)
    asins = np.array(cat.asins, dtype=object)

    def rows() -> Iterator[list[str]]:
        mask = _asin_filter(req, "asins") & cat.active(p[1])
        units = _period_sales(req, p)["ordered_units"]
        r = _rng(cat, "catalog", p[0].toordinal(), p[1].toordinal())
        # Purchases that came through search: a share of the period's ordered units.
        f = _funnel(r, np.floor(units * r.uniform(0.4, 0.7, cat.size)).astype(np.int64))
        price = cat.price
        values: list[np.ndarray] = []
        for stage, rate in (("impressions", None), ("clicks", "impressions"),
                            ("carts", None), ("purchases", "clicks")):
            values.append(f[stage])
            if stage == "purchases":
                values.append(f[stage] * price)
                values.append(_ratio(f["purchases"], f["clicks"]))
            elif rate:
                values.append(_ratio(f[stage], f[rate]))
            values.append(price)
            values.extend(_speeds(r, f[stage]))
        yield writer.rows_for(
            _period_head(p), [v[mask] for v in values], [string_column("asin", asins[mask].tolist())]
        )

    return plan(_spec(req), [("dataByAsin", rows)], truth)


QUERIES_PER_ASIN = 10


def _query_performance(req: Request, truth: Truth) -> DocumentPlan:
    cat = req.cat
    (p,) = req.periods()[-1:]
    m = cat.decimals
    cols = [
        Col("searchQueryData.searchQuery", "str"),
        Col("searchQueryData.searchQueryScore"),
        Col("searchQueryData.searchQueryVolume"),
    ]
    for stage, word in (("impression", "Impression"), ("click", "Click"),
                        ("cartAdd", "CartAdd"), ("purchase", "Purchase")):
        group = f"{stage}Data"
        if stage == "impression":
            cols += [Col(f"{group}.totalQueryImpressionCount"),
                     Col(f"{group}.asinImpressionCount"),
                     Col(f"{group}.asinImpressionShare", "fixed", RATE_PLACES)]
            continue
        cols += [
            Col(f"{group}.total{word}Count"),
            Col(f"{group}.total{word}Rate", "fixed", RATE_PLACES),
            Col(f"{group}.asin{word}Count"),
            Col(f"{group}.asin{word}Share", "fixed", RATE_PLACES),
            Col(f"{group}.totalMedian{word}Price", "amount", m),
            Col(f"{group}.asinMedian{word}Price", "amount", m),
            Col(f"{group}.totalSameDayShipping{word}Count"),
            Col(f"{group}.totalOneDayShipping{word}Count"),
            Col(f"{group}.totalTwoDayShipping{word}Count"),
        ]
    writer = RowWriter("dataByAsin", cols, cat.currency, truth)

    def rows() -> Iterator[list[str]]:
        mask = _asin_filter(req, "asin") & cat.active(p[1])
        for a in np.flatnonzero(mask).tolist():
            r = _rng(cat, "query", a, p[0].toordinal(), p[1].toordinal())
            k = QUERIES_PER_ASIN
            terms = r.choice(TERMS_PER_SIZE * 20, size=k, replace=False)
            volume = np.sort(r.integers(500, 50_000, k))[::-1]
            total = _funnel(r, np.floor(volume * r.uniform(0.005, 0.02, k)).astype(np.int64))
            share = r.uniform(0.01, 0.3, k)
            own = {s: np.floor(total[s] * share).astype(np.int64)
                   for s in ("impressions", "clicks", "carts", "purchases")}
            median = np.full(k, int(cat.price[a]))
            values: list = [encode_strings(search_term(int(t)) for t in terms),
                      np.arange(1, k + 1), volume, total["impressions"], own["impressions"],
                      _ratio(own["impressions"], total["impressions"])]
            for stage in ("clicks", "carts", "purchases"):
                values += [total[stage], _ratio(total[stage], total["impressions"]),
                           own[stage], _ratio(own[stage], total[stage]),
                           np.rint(median * r.uniform(0.8, 1.2, k)).astype(np.int64), median,
                           *_speeds(r, total[stage])]
            yield writer.rows_for(
                _period_head(p), values,
                [string_column("asin", [cat.asins[a]] * k)],
            )

    return plan(_spec(req), [("dataByAsin", rows)], truth)


def document(req: Request, truth: Truth) -> DocumentPlan:
    """The Brand Analytics document of a valid request."""
    builders = {
        "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT": _search_terms,
        "GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT": _market_basket,
        "GET_BRAND_ANALYTICS_REPEAT_PURCHASE_REPORT": _repeat_purchase,
        "GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT": _catalog_performance,
        "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT": _query_performance,
    }
    return builders[req.rt.report_type](req, truth)
