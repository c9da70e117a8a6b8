"""Daily metrics of every (ad, target) cell of a universe, as Amazon would report them at `as_of`.

Final values are drawn per (profile, ad product, day) from numpy Generators seeded with
stable_int, so they never depend on which report asks, its range or its columns. What a report
shows is the final value seen at `as_of` (ads-facts.md §9):

- impressions/clicks still include invalid traffic that Amazon removes within 3 days;
- conversions (purchases, units, sales) mature in steps 1, 7 and 28 days after the day;
- a day still in progress shows the part of the day that has passed.

Every measure here is an int64 per cell (money in minor units), so sums are exact.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from functools import cached_property
from zoneinfo import ZoneInfo

import numpy as np

from amzlake.emulator.ads_universe import PLACEMENT_SHARE, Universe
from amzlake.emulator.world import stable_int

# Attribution lag buckets: purchases within 1 day of the click, 1-7, 7-14 and 14-30 days.
LAG_WINDOWS = (1, 7, 14, 30)
LAG_SHARE = (0.62, 0.24, 0.08, 0.06)
SAME_SKU_SHARE = 0.78
# Monday..Sunday: shoppers click more at the weekend.
WEEKDAY_FACTOR = (0.97, 0.95, 0.96, 0.98, 1.02, 1.07, 1.08)
VIEW_PURCHASE_RATE = {"SPONSORED_PRODUCTS": 0.0, "SPONSORED_BRANDS": 0.00012, "SPONSORED_DISPLAY": 0.0005}

# Share of a day's invalid traffic not yet removed, by age in days after the day ended
# (removed within 3 days; P99 72 h).
_PENDING_INVALID = ((1.0, 1.0), (2.0, 0.6), (3.0, 0.25))
# Share of the final conversions reported, by age: restated 1, 7 and 28 days after the day.
_MATURITY = ((1.0, 0.80), (7.0, 0.93), (28.0, 0.98))


def day_age(day: date, timezone: str, as_of: datetime) -> float | None:
    """Days between the end of `day` (profile time zone) and `as_of`; None before the day began.

    Negative while the day is still in progress (-0.25: three quarters of it have passed).
    """
    tz = ZoneInfo(timezone)
    start = datetime.combine(day, time(), tz)
    end = datetime.combine(day + timedelta(days=1), time(), tz)
    if as_of < start:
        return None
    if as_of < end:
        return -(end - as_of).total_seconds() / (end - start).total_seconds()
    return (as_of - end).total_seconds() / 86400.0


def pending_invalid_share(age: float) -> float:
    """The share of invalid impressions and clicks still counted at `age` days."""
    for limit, share in _PENDING_INVALID:
        if age < limit:
            return share
    return 0.0


def conversion_maturity(age: float) -> float:
    """The share of a day's final conversions reported at `age` days."""
    for limit, share in _MATURITY:
        if age < limit:
            return share
    return 1.0


def day_fraction(age: float) -> float:
    """How much of the day has passed (1.0 once it is over)."""
    return 1.0 if age >= 0 else max(0.0, 1.0 + age)


# Rows per block when drawing from an (n, 8) array in pieces (bounds the temporaries).
_DRAW_BLOCK = 16_384


class DayCells:
    """The measures of every cell of `uni` for one day, seen at `as_of`, computed on demand."""

    def __init__(self, uni: Universe, seed: int, profile_id: int, day: date, age: float) -> None:
        self.uni = uni
        self.day = day
        self.age = age
        self._seed = stable_int(seed, "ads-day", profile_id, uni.product, day.isoformat())
        self.frac = day_fraction(age)
        self.pending = pending_invalid_share(age)
        self.maturity = conversion_maturity(age) * self.frac

    def _rng(self, stream: str) -> np.random.Generator:
        return np.random.default_rng([self._seed, stable_int(stream, bits=32)])

    def _scale(self, x: np.ndarray) -> np.ndarray:
        """Counts of a partial day: the share of the day that has passed."""
        if self.frac >= 1.0:
            return x
        return np.floor(x * self.frac).astype(np.int64)

    @cached_property
    def final_traffic(self) -> dict[str, np.ndarray]:
        """Final (fully filtered) impressions/clicks, invalid traffic, CPC, placement, term slot."""
        u = self.uni
        n = u.n_cells
        rng = self._rng("traffic")
        day_noise = float(self._rng("day").lognormal(0.0, 0.08))
        season = WEEKDAY_FACTOR[self.day.weekday()] * day_noise
        active = rng.random(n) < u.cell_p_active
        lam = u.cell_lambda * season * rng.lognormal(0.0, 0.35, n)
        imps = np.where(active, rng.poisson(lam), 0).astype(np.int64, copy=False)
        clicks = rng.binomial(imps, u.cell_ctr).astype(np.int64, copy=False)
        inv_rate = rng.uniform(0.005, 0.04, n)
        inv_imps = rng.binomial(imps, inv_rate).astype(np.int64, copy=False)
        # Never more invalid clicks than invalid impressions: keeps clicks <= impressions while
        # the invalid traffic is still counted.
        inv_clicks = np.minimum(rng.binomial(clicks, inv_rate), inv_imps).astype(np.int64, copy=False)
        cpc = np.maximum(np.round(u.cell_cpc * rng.uniform(0.85, 1.15, n)), 1).astype(np.int64, copy=False)
        placement = rng.choice(len(PLACEMENT_SHARE), n, p=PLACEMENT_SHARE).astype(np.int64, copy=False)
        slot = np.floor(rng.random(n) * u.target_n_terms[u.cell_target]).astype(np.int64, copy=False)
        return {
            "imps": imps,
            "clicks": clicks,
            "inv_imps": inv_imps,
            "inv_clicks": inv_clicks,
            "cpc": cpc,
            "placement": placement,
            "slot": slot,
        }

    @cached_property
    def traffic(self) -> dict[str, np.ndarray]:
        """Impressions, clicks, cost and gross traffic as reported at `as_of`."""
        t = self.final_traffic
        p = self.pending
        imps = self._scale(t["imps"] + np.floor(t["inv_imps"] * p).astype(np.int64))
        clicks = self._scale(t["clicks"] + np.floor(t["inv_clicks"] * p).astype(np.int64))
        gross_imps = self._scale(t["imps"] + t["inv_imps"])
        gross_clicks = self._scale(t["clicks"] + t["inv_clicks"])
        cost = clicks * t["cpc"]
        tos = np.where(t["placement"] == 0, imps, 0)
        tos_missed = np.floor(tos * self.uni.campaign_tos_miss[self.uni.cell_campaign]).astype(np.int64)
        return {
            "impressions": imps,
            "clicks": clicks,
            "cost": cost,
            "gross_impressions": gross_imps,
            "gross_clicks": gross_clicks,
            "tos_impressions": tos,
            "tos_missed": tos_missed,
        }

    def _mature(self, x: np.ndarray, u: np.ndarray) -> np.ndarray:
        # Stochastic rounding with one uniform per cell: monotone in the maturity, equal to the
        # final value at maturity 1, and order-preserving between measures (x <= y stays so).
        if self.maturity >= 1.0:
            return x
        return np.floor(x * self.maturity + u).astype(np.int64)

    @cached_property
    def _conversion_draws(self) -> dict[str, np.ndarray]:
        """The random draws behind the conversions (before maturity); every measure derives from them.

        Only the draws are kept: the ~34 derived measures are computed one at a time on demand,
        so a day of a large universe does not hold all of them at once.
        """
        u = self.uni
        n = u.n_cells
        t = self.final_traffic
        rng = self._rng("conversions")
        purchases = rng.binomial(t["clicks"], u.cell_cvr)
        pvals = [s * k for s in LAG_SHARE for k in (SAME_SKU_SHARE, 1.0 - SAME_SKU_SHARE)]
        # (n, 8): lag*2 + other. Counts of one cell and day are small: int32 halves the two
        # largest arrays a day keeps (values and sums are the same; sums are taken in int64).
        buckets = rng.multinomial(purchases, pvals).astype(np.int32)
        del purchases
        # Units in row blocks: the generator draws element after element in C order, so block
        # by block gives the very same draws without an (n, 8) float and int64 temporary.
        units = np.empty_like(buckets)
        for lo in range(0, n, _DRAW_BLOCK):
            part = buckets[lo : lo + _DRAW_BLOCK]
            units[lo : lo + _DRAW_BLOCK] = part + rng.poisson(part * 0.15)
        pv = rng.binomial(t["imps"], VIEW_PURCHASE_RATE[u.product]).astype(np.int64, copy=False)
        uv = pv + rng.poisson(pv * 0.1)
        clicks14 = buckets[:, :6].sum(axis=1)
        units14 = units[:, :6].sum(axis=1)
        ntb_pc = rng.binomial(clicks14, 0.4)
        ntb_uc = rng.binomial(units14, 0.4)
        del clicks14, units14
        ntb_pv = rng.binomial(pv, 0.45)
        ntb_uv = rng.binomial(uv, 0.45)
        roll = rng.random(n)
        return {
            "buckets": buckets,
            "units": units,
            "pv": pv,
            "uv": uv,
            "ntb_pc": ntb_pc,
            "ntb_uc": ntb_uc,
            "ntb_pv": ntb_pv,
            "ntb_uv": ntb_uv,
            "roll": roll,
            "own_price": u.asin_price[u.ad_asin[u.cell_ad]],
            "other_price": u.asin_price[u.cell_other_asin],
        }

    def conversion(self, name: str) -> np.ndarray:
        """One conversion measure at `as_of`: purchases/units/sales per lag bucket and SKU kind
        (`p_s0`, `u_o3`, `s_s1`, ...), views (`pv`, `uv`, `sv`), new-to-brand (`ntb_*`), `lts`."""
        d = self._conversion_draws
        roll = d["roll"]
        if name[:2] in ("p_", "u_", "s_"):
            kind, lag = name[2], int(name[3:])
            col = 2 * lag + (kind == "o")
            if name[0] == "p":
                return self._mature(d["buckets"][:, col], roll)
            units = self._mature(d["units"][:, col], roll)
            if name[0] == "u":
                return units
            return units * d["own_price" if kind == "s" else "other_price"]
        if name in ("pv", "uv"):
            return self._mature(d[name], roll)
        if name == "sv":
            return self.conversion("uv") * d["own_price"]
        # New-to-brand is a subset of the purchases reported at the same time.
        if name in ("ntb_pc", "ntb_uc"):
            return np.minimum(self._mature(d[name], roll), self._sum14(name[4]))
        if name in ("ntb_pv", "ntb_uv"):
            return np.minimum(self._mature(d[name], roll), self.conversion(name[4] + "v"))
        if name in ("ntb_sc", "ntb_sv"):
            return self.conversion(f"ntb_u{name[-1]}") * d["own_price"]
        if name == "lts":
            # Long-term (brand) sales: the 14-day click sales plus repeat purchases over a year.
            return self._sum14("s") * 8 // 5
        raise KeyError(name)

    def _sum14(self, measure: str) -> np.ndarray:
        """`measure` (p, u or s) summed over the 14-day lag buckets of both SKU kinds."""
        return sum(self.conversion(f"{measure}_{k}{lag}") for lag in range(3) for k in "so")

    @cached_property
    def funnel(self) -> dict[str, np.ndarray]:
        """Detail page views, add-to-cart, branded searches, viewability, video and reach."""
        u = self.uni
        t = self.final_traffic
        imps, clicks = t["imps"], t["clicks"]
        rng = self._rng("funnel")
        video = np.where(u.campaign_video[u.cell_campaign], imps, 0)
        dpv_c = rng.binomial(clicks, 0.55)
        dpv_v = rng.binomial(imps, 0.0008)
        q1 = rng.binomial(video, 0.42)
        mid = rng.binomial(q1, 0.72)
        q3 = rng.binomial(mid, 0.8)
        raw = {
            "dpv_c": dpv_c,
            "dpv_v": dpv_v,
            "ntb_dpv_c": rng.binomial(dpv_c, 0.5),
            "ntb_dpv_v": rng.binomial(dpv_v, 0.5),
            "atc_c": rng.binomial(clicks, 0.07),
            "atc_v": rng.binomial(imps, 0.00015),
            "bs_c": rng.binomial(clicks, 0.03),
            "bs_v": rng.binomial(imps, 0.0002),
            "viewable": rng.binomial(imps, 0.68),
            "video_q1": q1,
            "video_mid": mid,
            "video_q3": q3,
            "video_complete": rng.binomial(q3, 0.85),
            "video_5s": rng.binomial(video, 0.3),
            "video_unmutes": rng.binomial(video, 0.015),
            "reach": rng.binomial(imps, 0.72),
        }
        return {k: self._scale(v.astype(np.int64)) for k, v in raw.items()}

    def measure(self, name: str) -> np.ndarray:
        """One cell-level measure by name (see `MEASURES`); computes only the group it belongs to."""
        if name in _TRAFFIC:
            return self.traffic[name]
        if name in _CONVERSIONS:
            return self.conversion(name)
        if name in _FUNNEL:
            return self.funnel[name]
        if name in _FINAL_TRAFFIC:
            return self.final_traffic[name]
        raise KeyError(name)


_CONVERSIONS = frozenset(
    {f"{m}_{k}{lag}" for m in "pus" for k in "so" for lag in range(len(LAG_WINDOWS))}
    | {"pv", "uv", "sv", "ntb_pc", "ntb_uc", "ntb_sc", "ntb_pv", "ntb_uv", "ntb_sv", "lts"}
)
_TRAFFIC = frozenset(
    {
        "impressions",
        "clicks",
        "cost",
        "gross_impressions",
        "gross_clicks",
        "tos_impressions",
        "tos_missed",
    }
)
_FUNNEL = frozenset(
    {
        "dpv_c",
        "dpv_v",
        "ntb_dpv_c",
        "ntb_dpv_v",
        "atc_c",
        "atc_v",
        "bs_c",
        "bs_v",
        "viewable",
        "video_q1",
        "video_mid",
        "video_q3",
        "video_complete",
        "video_5s",
        "video_unmutes",
        "reach",
    }
)
# Final (not yet as-of) traffic draws that extras read: placement and search-term slot.
_FINAL_TRAFFIC = frozenset({"imps", "clicks", "inv_imps", "inv_clicks", "cpc", "placement", "slot"})

# Every cell-level measure DayCells.measure knows.
MEASURES: frozenset[str] = _CONVERSIONS | _TRAFFIC | _FUNNEL


def lag_buckets(window_days: int) -> range:
    """The lag buckets a `window_days` attribution window sums (1d: 0; 7d: 0-1; 30d: 0-3)."""
    return range(LAG_WINDOWS.index(window_days) + 1)
