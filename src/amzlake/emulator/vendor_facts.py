"""The emulated vendor's daily facts: per ASIN and day, sales, traffic and inventory.

One deterministic model per vendor account feeds every vendor document, so a WEEK row is the exact
sum of its DAY rows, an aggregate row the exact sum of its ASIN rows, and real-time hours add up to
the day. Each day is drawn from a numpy Generator seeded by `stable_int(seed, account, day, ...)`,
vectorised over the ASINs, so any day can be computed on its own in any order.

Restatement: a day's shipped figures, returns and glance views keep changing for
`RESTATEMENT_DAYS` after the day (Amazon revises vendor figures; `lastUpdatedDate` was added to the
documents in April 2024 for that reason), then they are final. Ordered units and revenue are not
revised, so the hourly real-time sales always add up to the day's ordered figures.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta
from functools import lru_cache

import numpy as np

from amzlake.emulator.world import VendorAccount, World, stable_int

RESTATEMENT_DAYS = 30  # [E] how long a day's figures keep moving (emulator choice)

# Rough list-price scale per currency, so prices look local (USD 25 -> JPY ~3,750).
_FX = {
    "USD": 1.0, "CAD": 1.35, "MXN": 17.0, "BRL": 5.0, "GBP": 0.8, "EUR": 0.92, "SEK": 10.5,
    "PLN": 4.0, "INR": 83.0, "JPY": 150.0, "AUD": 1.5, "SGD": 1.35,
}
# Amazon Fresh is emulated in the US marketplace only [E]; elsewhere a FRESH request has no data.
_FRESH_COUNTRIES = frozenset({"US"})
# Relative volume of each selling program against RETAIL [E].
_PROGRAM_SCALE = {"RETAIL": 1.0, "BUSINESS": 0.12, "FRESH": 0.8}


@dataclass(frozen=True, eq=False)
class VendorCatalogue:
    """A vendor account's ASINs and their stable traits (prices in minor units)."""

    seed: int
    account_key: str
    asins: tuple[str, ...]
    currency: str
    decimals: int
    timezone: str
    price: np.ndarray  # int64 list price, minor units
    cost: np.ndarray  # int64 cost of goods per unit, minor units
    demand: np.ndarray  # float64 mean ordered units a day (RETAIL)
    launch: np.ndarray  # int64 date ordinal of the first selling day
    return_rate: np.ndarray
    fresh: np.ndarray  # bool: sold through Amazon Fresh
    coop_rate: np.ndarray  # vendor-funded co-op as a share of revenue
    sourcing_share: np.ndarray  # share of units Amazon sourced from this vendor
    cycle: np.ndarray  # int64 replenishment cycle in days
    phase: np.ndarray  # int64
    lead_time_tenths: np.ndarray  # int64 vendor lead time in tenths of a day
    aged_share: np.ndarray

    @property
    def size(self) -> int:
        """How many ASINs the vendor sells."""
        return len(self.asins)

    @property
    def history_start(self) -> date:
        """The first day any ASIN sold."""
        return date.fromordinal(int(self.launch.min()))

    def sells_program(self, program: str) -> bool:
        """Whether the vendor has any ASIN in `program` (RETAIL, BUSINESS, FRESH)."""
        return program != "FRESH" or bool(self.fresh.any())

    def program_mask(self, program: str) -> np.ndarray:
        """Which ASINs are listed in `program`."""
        if program == "FRESH":
            return self.fresh
        return np.ones(self.size, dtype=bool)

    def active(self, day: date, program: str = "RETAIL") -> np.ndarray:
        """Which ASINs are on sale on `day` in `program`."""
        return (self.launch <= day.toordinal()) & self.program_mask(program)


@lru_cache(maxsize=64)
def vendor_catalogue(world: World, account: VendorAccount) -> VendorCatalogue:
    """The stable catalogue of `account` (its ASINs are shared with the Ads profile)."""
    mp = account.marketplace
    asins = world.asins(mp.marketplace_id)
    n = len(asins)
    key = account.selling_partner_id
    rng = np.random.default_rng(stable_int(world.seed, "vendor-catalogue", key))
    fx = _FX.get(mp.currency_code, 1.0)
    unit = 10**mp.currency_decimals
    major = np.exp(rng.normal(math.log(25.0), 0.6, n)) * fx
    if mp.currency_decimals:
        price = np.maximum(np.rint(major), 1).astype(np.int64) * unit - 1  # 24.99-style prices
    else:
        price = np.maximum(np.rint(major / 10) * 10, 10).astype(np.int64)
    cost = np.rint(price * rng.uniform(0.45, 0.7, n)).astype(np.int64)
    demand = np.exp(rng.normal(math.log(6.0), 0.9, n))
    # Most of the range has sold since the brand's start; a fifth launched later, some of it in
    # the future of any given clock, so new ASINs keep appearing.
    base = date(2020, 1, 5).toordinal() + int(rng.integers(0, 28))
    later = base + rng.integers(30, 6 * 365, n)
    launch = np.where(rng.random(n) < 0.8, base, later).astype(np.int64)
    launch[0] = base  # the account always has history from its first day
    fresh_mask = (rng.random(n) < 0.15) if mp.country_code in _FRESH_COUNTRIES else np.zeros(n, bool)
    if mp.country_code in _FRESH_COUNTRIES:
        fresh_mask[0] = True
    return VendorCatalogue(
        seed=world.seed,
        account_key=key,
        asins=asins,
        currency=mp.currency_code,
        decimals=mp.currency_decimals,
        timezone=mp.timezone,
        price=price,
        cost=cost,
        demand=demand,
        launch=launch,
        return_rate=rng.uniform(0.01, 0.08, n),
        fresh=fresh_mask,
        coop_rate=rng.uniform(0.02, 0.1, n),
        sourcing_share=rng.uniform(0.7, 1.0, n),
        cycle=rng.integers(7, 29, n).astype(np.int64),
        phase=rng.integers(0, 28, n).astype(np.int64),
        lead_time_tenths=rng.integers(40, 180, n).astype(np.int64),
        aged_share=rng.uniform(0.0, 0.25, n),
    )


def season(day: date) -> float:
    """Demand multiplier of `day`: weekday shape, a yearly wave, the Q4 peak, slow growth."""
    weekday = (1.08, 1.0, 0.97, 0.96, 0.98, 1.02, 1.1)[day.weekday()]
    yearly = 1.0 + 0.15 * math.sin(2 * math.pi * (day.timetuple().tm_yday - 100) / 365.25)
    peak = 1.6 if (day.month == 11 and day.day >= 20) or (day.month == 12 and day.day <= 22) else 1.0
    growth = 1.0 + 0.00015 * (day.toordinal() - 737400)
    return weekday * yearly * peak * max(growth, 0.5)


def _rng(cat: VendorCatalogue, *parts: object) -> np.random.Generator:
    return np.random.default_rng(stable_int(cat.seed, cat.account_key, *parts))


def _age(day: date, as_of: date) -> int:
    return (as_of - day).days


@dataclass(frozen=True)
class SalesDay:
    """One day's sales per ASIN (int64 arrays; money in minor units)."""

    ordered_units: np.ndarray
    ordered_revenue: np.ndarray
    shipped_units: np.ndarray
    shipped_revenue: np.ndarray
    shipped_cogs: np.ndarray
    customer_returns: np.ndarray


def _ordered_and_shipped(cat: VendorCatalogue, day: date, program: str) -> tuple[np.ndarray, ...]:
    """Final (unrestated) ordered units, shipped units and returns of MANUFACTURING."""
    mask = cat.active(day, program)
    lam = cat.demand * season(day) * _PROGRAM_SCALE[program] * mask
    rng = _rng(cat, "sales", program, day.toordinal())
    ordered = rng.poisson(lam)
    shipped = rng.binomial(ordered, 0.96) + rng.poisson(lam * 0.04)
    returns = rng.binomial(shipped, cat.return_rate)
    return ordered.astype(np.int64), shipped.astype(np.int64), returns.astype(np.int64)


def _restate(cat: VendorCatalogue, day: date, as_of: date, program: str, values: np.ndarray,
             what: str) -> np.ndarray:
    """`values` as they stood `as_of`: below final while the day is recent, final afterwards."""
    age = _age(day, as_of)
    if age >= RESTATEMENT_DAYS:
        return values
    age = max(age, 0)
    delta = _rng(cat, "restate", what, program, day.toordinal()).uniform(0.0, 0.12, cat.size)
    keep = 1.0 - delta * (RESTATEMENT_DAYS - age) / RESTATEMENT_DAYS
    return np.floor(values * keep).astype(np.int64)


def sales_day(cat: VendorCatalogue, day: date, view: str, program: str, as_of: date) -> SalesDay:
    """Sales of `day` for a distributorView and sellingProgram, as known on `as_of`."""
    ordered, shipped, returns = _ordered_and_shipped(cat, day, program)
    shipped = _restate(cat, day, as_of, program, shipped, "shipped")
    age = _age(day, as_of)
    if age < RESTATEMENT_DAYS:
        # Returns are booked over the weeks after the sale.
        returns = np.floor(returns * (max(age, 0) + 1) / RESTATEMENT_DAYS).astype(np.int64)
    if view == "SOURCING":
        rng = _rng(cat, "sourcing", program, day.toordinal())
        shipped = rng.binomial(shipped, cat.sourcing_share).astype(np.int64)
        returns = np.minimum(returns, shipped)
        ordered = np.zeros_like(ordered)
    return SalesDay(
        ordered_units=ordered,
        ordered_revenue=ordered * cat.price,
        shipped_units=shipped,
        shipped_revenue=shipped * cat.price,
        shipped_cogs=shipped * cat.cost,
        customer_returns=returns,
    )


def glance_views_day(cat: VendorCatalogue, day: date, as_of: date) -> np.ndarray:
    """Detail-page glance views per ASIN on `day`, as known on `as_of`."""
    lam = cat.demand * season(day) * 14.0 * cat.active(day)
    views = _rng(cat, "traffic", day.toordinal()).poisson(lam).astype(np.int64)
    return _restate(cat, day, as_of, "ALL", views, "traffic")


def stock_day(cat: VendorCatalogue, day: date, program: str) -> np.ndarray:
    """Sellable units on hand per ASIN at the end of `day` (negative = backorders)."""
    mask = cat.active(day, program)
    pos = ((day.toordinal() + cat.phase) % cat.cycle) / cat.cycle
    target = cat.demand * _PROGRAM_SCALE[program] * cat.cycle * 1.6
    noise = _rng(cat, "stock", program, day.toordinal()).normal(0.0, 0.05, cat.size)
    stock = np.rint(target * (1.03 - pos + noise))
    return (stock * mask).astype(np.int64)


@dataclass(frozen=True)
class InventoryDay:
    """One day's inventory flows and end-of-day snapshots per ASIN (int64 arrays)."""

    net_received: np.ndarray
    received: np.ndarray  # positive receipts only
    requested: np.ndarray  # units Amazon asked for
    confirmed: np.ndarray  # units the vendor confirmed
    lead_weighted: np.ndarray  # lead time (tenths of a day) x received units
    shipped: np.ndarray
    returns: np.ndarray
    glance_views: np.ndarray
    oos_glance_views: np.ndarray
    in_stock: np.ndarray  # 1 when sellable stock was positive
    sellable: np.ndarray
    open_po: np.ndarray
    unfilled: np.ndarray
    unsellable: np.ndarray
    aged90: np.ndarray
    unhealthy: np.ndarray


def inventory_day(
    cat: VendorCatalogue, day: date, view: str, program: str, as_of: date
) -> InventoryDay:
    """Inventory of `day` for a distributorView and sellingProgram (RETAIL or FRESH)."""
    sales = sales_day(cat, day, view, program, as_of)
    stock = stock_day(cat, day, program)
    before = stock_day(cat, day - timedelta(days=1), program)
    if view == "SOURCING":
        stock = np.floor(stock * cat.sourcing_share).astype(np.int64)
        before = np.floor(before * cat.sourcing_share).astype(np.int64)
    # Flows follow the stock: what arrived is what the stock gained plus what left.
    net_received = stock - before + sales.shipped_units
    received = np.maximum(net_received, 0)
    rng = _rng(cat, "inventory", view, program, day.toordinal())
    requested = np.rint(received * rng.uniform(1.0, 1.15, cat.size)).astype(np.int64)
    confirmed = np.rint(requested * rng.uniform(0.85, 1.02, cat.size)).astype(np.int64)
    confirmed = np.maximum(confirmed, received)
    views = glance_views_day(cat, day, as_of) * cat.program_mask(program)
    mask = cat.active(day, program)
    lam = cat.demand * _PROGRAM_SCALE[program] * mask
    sellable_pos = np.maximum(stock, 0)
    return InventoryDay(
        net_received=net_received,
        received=received,
        requested=requested,
        confirmed=confirmed,
        lead_weighted=cat.lead_time_tenths * received,
        shipped=sales.shipped_units,
        returns=sales.customer_returns,
        glance_views=views,
        oos_glance_views=np.where(stock <= 0, views, 0),
        in_stock=((stock > 0) & mask).astype(np.int64),
        sellable=stock,
        open_po=np.rint(lam * cat.lead_time_tenths / 10 * 0.8).astype(np.int64),
        unfilled=rng.poisson(lam * 0.1).astype(np.int64),
        unsellable=np.rint(sellable_pos * rng.uniform(0.0, 0.04, cat.size)).astype(np.int64),
        aged90=np.rint(sellable_pos * cat.aged_share).astype(np.int64),
        unhealthy=np.maximum(stock - np.rint(lam * 42).astype(np.int64), 0),
    )


def hourly_split(
    cat: VendorCatalogue, local_day: date, totals: np.ndarray, hours: int, what: str
) -> np.ndarray:
    """Split each ASIN's day total over the local day's `hours` hours: shape (asins, hours)."""
    local_hour = np.arange(hours)
    # Evening-heavy shopping curve [E].
    weights = 0.4 + np.sin(np.pi * np.clip(local_hour - 6, 0, 17) / 17) ** 2
    p = weights / weights.sum()
    rng = _rng(cat, "hourly", what, local_day.toordinal())
    return rng.multinomial(totals, p).astype(np.int64)
