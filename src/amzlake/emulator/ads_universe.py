"""The advertising universe of one Ads profile and ad product: campaigns down to targets and cells.

Everything is a column of numpy arrays (no Python object per entity) so a profile with hundreds of
thousands of ad/target cells builds in well under a second. A *cell* is one (ad, target) pair of
the same ad group: the finest grain the emulator draws metrics for; every report row is a sum of
cells, which is what makes the report types agree with each other.

The universe is a pure function of (seed, profile, ad product, the marketplace's ASINs).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import orjson

from amzlake.emulator.world import AdsProfile, stable_int, stable_token

# Ids start at 2^57, so every id exceeds 2^53 like the largest real Ads ids (ads-facts.md §7):
# a reader that parses them through a float is caught at once.
ID_BASE = 144_115_188_075_855_872

PRODUCTS = ("SPONSORED_PRODUCTS", "SPONSORED_BRANDS", "SPONSORED_DISPLAY")
PRODUCT_CODE = {"SPONSORED_PRODUCTS": "SP", "SPONSORED_BRANDS": "SB", "SPONSORED_DISPLAY": "SD"}

STATUSES = ("ENABLED", "PAUSED", "ARCHIVED")
# Placement names as in Amazon's placement breakdown (Top of Search, Rest of Search, Product Pages).
PLACEMENTS = ("Top of Search on-Amazon", "Other on-Amazon", "Detail Page on-Amazon")
PLACEMENT_SHARE = (0.35, 0.45, 0.20)
MATCH_TYPES = ("BROAD", "PHRASE", "EXACT")
ATTRIBUTION_TYPES = ("Promoted", "Brand Halo")

# Rough units of each currency per US dollar, to put prices and bids in a realistic range
# (a click costs ~0.5-2 USD, ~100 JPY).
FX_PER_USD = {
    "USD": 1.0,
    "CAD": 1.35,
    "MXN": 17.0,
    "BRL": 5.0,
    "GBP": 0.8,
    "EUR": 0.92,
    "SEK": 10.5,
    "PLN": 4.0,
    "INR": 83.0,
    "JPY": 150.0,
    "AUD": 1.5,
    "SGD": 1.35,
    "AED": 3.67,
    "TRY": 32.0,
}

_NOUNS = (
    "water bottle",
    "yoga mat",
    "phone case",
    "coffee grinder",
    "desk lamp",
    "backpack",
    "running shoes",
    "headphones",
    "travel mug",
    "cutting board",
    "dog leash",
    "cat toy",
    "face serum",
    "shampoo",
    "protein powder",
    "resistance bands",
    "lunch box",
    "umbrella",
    "notebook",
    "gel pens",
    "bath towel",
    "pillow",
    "french press",
    "kitchen scale",
    "phone charger",
    "usb c cable",
    "bike light",
    "camping chair",
    "tent",
    "rain jacket",
)
_MODIFIERS = (
    "insulated",
    "stainless steel",
    "for women",
    "for men",
    "for kids",
    "large",
    "wireless",
    "bpa free",
    "2 pack",
    "travel",
    "organic",
    "waterproof",
    "portable",
    "premium",
    "cheap",
    "best",
    "black",
    "eco friendly",
    "lightweight",
    "heavy duty",
)
_CATEGORIES = (
    "Kitchen",
    "Sports",
    "Electronics",
    "Kitchen",
    "Home",
    "Luggage",
    "Shoes",
    "Electronics",
    "Kitchen",
    "Kitchen",
    "Pet Products",
    "Pet Products",
    "Beauty",
    "Beauty",
    "Health",
    "Sports",
    "Kitchen",
    "Fashion",
    "Office Products",
    "Office Products",
    "Home",
    "Home",
    "Kitchen",
    "Kitchen",
    "Electronics",
    "Electronics",
    "Sports",
    "Outdoors",
    "Outdoors",
    "Fashion",
)
_THEMES = ("Brand", "Generic", "Competitor", "Category", "Auto", "Launch", "Defense", "Seasonal")


def _esc(s: str) -> str:
    """`s` as a JSON string literal, ready to paste into a row."""
    return orjson.dumps(s).decode()


def _esc_array(values: list[str]) -> np.ndarray:
    return np.array([_esc(v) for v in values], dtype=object)


def _esc_lookup(table: list[str] | tuple[str, ...], codes: np.ndarray) -> np.ndarray:
    """`table[codes]` as escaped literals that share one string object per distinct value.

    Repeated values (SKUs of the same ASIN, bidding strategies, keyword texts) then cost a
    pointer per entity instead of a string each: megabytes less per large universe.
    """
    return _esc_array(list(table))[codes]


@dataclass(frozen=True, eq=False)
class Universe:
    """All entities of one profile and ad product, as parallel numpy arrays.

    Index arrays (`*_campaign`, `cell_ad`, ...) point into the entity tables. String tables hold
    JSON-escaped literals (quotes included) so rows are assembled without escaping per row.
    Money is in minor units of the profile's currency (int64).
    """

    product: str
    currency: str
    decimals: int
    # ASINs of the marketplace
    asin_json: np.ndarray  # escaped ASIN strings
    asin_price: np.ndarray  # minor units
    asin_name_json: np.ndarray
    asin_category_json: np.ndarray
    # portfolios
    portfolio_id: np.ndarray
    # campaigns
    campaign_id: np.ndarray
    campaign_name_json: np.ndarray
    campaign_status: np.ndarray  # index into STATUSES
    campaign_budget: np.ndarray  # minor units
    campaign_portfolio: np.ndarray  # index into portfolio_id, -1 = none
    campaign_strategy_json: np.ndarray
    campaign_cost_type: np.ndarray  # 0 CPC, 1 vCPM
    campaign_video: np.ndarray  # bool: video creative (video metrics non-zero)
    campaign_tos_miss: np.ndarray  # eligible top-of-search impressions missed per one won
    # ad groups
    adgroup_id: np.ndarray
    adgroup_campaign: np.ndarray
    adgroup_name_json: np.ndarray
    adgroup_status: np.ndarray
    adgroup_bid_opt_json: np.ndarray  # SD bidOptimization
    # ads (advertised products / SB ads / SD ads)
    ad_id: np.ndarray
    ad_adgroup: np.ndarray
    ad_asin: np.ndarray
    ad_sku_json: np.ndarray
    ad_status: np.ndarray
    # targets (keywords, product/audience targets, themes)
    target_id: np.ndarray
    target_adgroup: np.ndarray
    target_status: np.ndarray
    target_keyword_type: np.ndarray  # index into keyword_types
    target_match_type: np.ndarray  # index into MATCH_TYPES, -1 for expressions
    target_text_json: np.ndarray  # keyword text or the targeting expression
    target_bid: np.ndarray  # minor units
    target_terms: np.ndarray  # (n_targets, MAX_TERMS) indexes into term_json
    target_n_terms: np.ndarray
    keyword_types: tuple[str, ...]
    term_json: np.ndarray  # search term vocabulary (escaped)
    # cells: one per (ad, target) of the same ad group
    cell_ad: np.ndarray
    cell_target: np.ndarray
    cell_adgroup: np.ndarray
    cell_campaign: np.ndarray
    cell_lambda: np.ndarray  # mean daily impressions when active
    cell_p_active: np.ndarray
    cell_ctr: np.ndarray
    cell_cvr: np.ndarray
    cell_cpc: np.ndarray  # minor units per click
    cell_other_asin: np.ndarray  # the "other SKU" / brand-halo ASIN bought after a click
    cell_matched_asin: np.ndarray  # SD matched target ASIN
    cell_business: np.ndarray  # bool: Amazon Business site traffic (campaignSite filter)

    @property
    def n_cells(self) -> int:
        """How many (ad, target) cells there are."""
        return int(self.cell_ad.shape[0])


MAX_TERMS = 8


# Per-product shape: campaigns per size unit, and the Poisson means of the per-parent counts.
_SHAPE = {
    # campaigns, ad groups / campaign, ads / ad group, targets / ad group, impression scale
    "SP": (20, 2.0, 1.2, 3.0, 45.0),
    "SB": (6, 0.6, 0.3, 4.0, 120.0),
    "SD": (6, 1.2, 1.0, 1.5, 260.0),
}


def _counts(rng: np.random.Generator, n: int, mean_extra: float) -> np.ndarray:
    return 1 + rng.poisson(mean_extra, n)


def _ids(seed: int, profile_id: int, product: str, kind: str, n: int) -> np.ndarray:
    # Sequential within a random 2^40 window per (profile, product, kind): unique and > 2^53.
    base = ID_BASE + (stable_int(seed, profile_id, product, kind, bits=16) << 40)
    return (base + np.arange(n, dtype=np.int64) * 7919 + 104_729).astype(np.int64, copy=False)


@lru_cache(maxsize=16)
def build_universe(seed: int, profile: AdsProfile, product: str, asins: tuple[str, ...]) -> Universe:
    """The (cached) universe of `profile` for `product`; the same arguments give the same arrays."""
    code = PRODUCT_CODE[product]
    rng = np.random.default_rng(stable_int(seed, "ads-universe", profile.profile_id, product))
    currency = profile.currency_code
    decimals = profile.marketplace.currency_decimals
    minor = 10**decimals
    fx = FX_PER_USD.get(currency, 1.0)
    n_camp_unit, ag_extra, ad_extra, tgt_extra, imp_scale = _SHAPE[code]

    # ASINs: price, name and category are properties of the ASIN, the same for every product.
    n_asins = len(asins)
    arng = np.random.default_rng(stable_int(seed, "ads-asins", profile.profile_id))
    price_usd = np.clip(arng.lognormal(np.log(25.0), 0.6, n_asins), 4.0, 400.0)
    asin_price = np.maximum(np.round(price_usd * fx * minor), 1).astype(np.int64, copy=False)
    noun = arng.integers(0, len(_NOUNS), n_asins)
    mod = arng.integers(0, len(_MODIFIERS), n_asins)
    asin_name = [
        f"{profile.name.split(' ')[0]} {_MODIFIERS[m]} {_NOUNS[k]}".title()
        for m, k in zip(mod.tolist(), noun.tolist(), strict=True)
    ]

    # Portfolios and campaigns.
    n_port = max(2, profile.size * 3)
    portfolio_id = _ids(seed, profile.profile_id, "all", "portfolio", n_port)
    n_camp = n_camp_unit * profile.size
    campaign_id = _ids(seed, profile.profile_id, product, "campaign", n_camp)
    campaign_status = rng.choice(3, n_camp, p=(0.78, 0.16, 0.06))
    campaign_budget = np.round(rng.lognormal(np.log(40.0), 0.7, n_camp)) * fx * minor
    campaign_budget = np.maximum(np.round(campaign_budget / minor) * minor, minor).astype(np.int64)
    campaign_portfolio = np.where(rng.random(n_camp) < 0.7, rng.integers(0, n_port, n_camp), -1).astype(
        np.int64
    )
    strategies = ("LEGACY_FOR_SALES", "AUTO_FOR_SALES", "MANUAL")
    campaign_strategy = rng.choice(3, n_camp, p=(0.5, 0.3, 0.2))
    video_share = {"SP": 0.0, "SB": 0.35, "SD": 0.25}[code]
    campaign_video = rng.random(n_camp) < video_share
    campaign_cost_type = np.where((code != "SP") & campaign_video & (rng.random(n_camp) < 0.6), 1, 0).astype(
        np.int64
    )
    campaign_tos_miss = rng.uniform(2.0, 30.0, n_camp)
    # Auto-targeted SP campaigns use targeting expressions instead of keywords.
    campaign_auto = rng.random(n_camp) < (0.3 if code == "SP" else 0.0)
    theme = rng.integers(0, len(_THEMES), n_camp)
    camp_noun = rng.integers(0, len(_NOUNS), n_camp)
    campaign_name = [
        f"{code} - {_THEMES[t]} - {_NOUNS[k].title()}{' - Auto' if auto else ''} #{i + 1}"
        for i, (t, k, auto) in enumerate(
            zip(theme.tolist(), camp_noun.tolist(), campaign_auto.tolist(), strict=True)
        )
    ]

    # Ad groups.
    ags_per = _counts(rng, n_camp, ag_extra)
    adgroup_campaign = np.repeat(np.arange(n_camp), ags_per)
    n_ag = int(adgroup_campaign.shape[0])
    adgroup_id = _ids(seed, profile.profile_id, product, "adgroup", n_ag)
    adgroup_status = np.where(
        campaign_status[adgroup_campaign] == 2, 2, rng.choice(3, n_ag, p=(0.85, 0.12, 0.03))
    )
    adgroup_name = [f"Ad group {i + 1}" for i in range(n_ag)]
    bid_opts = ("clicks", "conversions", "reach")
    adgroup_bid_opt = rng.choice(3, n_ag, p=(0.3, 0.55, 0.15))

    # Ads: each advertises one ASIN (SB ads feature a lead ASIN).
    ads_per = _counts(rng, n_ag, ad_extra)
    ad_adgroup = np.repeat(np.arange(n_ag), ads_per)
    n_ad = int(ad_adgroup.shape[0])
    ad_id = _ids(seed, profile.profile_id, product, "ad", n_ad)
    ad_asin = rng.integers(0, n_asins, n_ad)
    ad_status = rng.choice(3, n_ad, p=(0.88, 0.1, 0.02))
    asin_sku = [f"SKU-{stable_token(seed, profile.profile_id, 'sku', a, length=6)}" for a in range(n_asins)]

    # Search-term vocabulary: phrases, then the ASINs themselves (product targeting matches
    # ASINs, which appear lower-cased as search terms).
    phrases = [f"{m} {k}" for k in _NOUNS for m in _MODIFIERS] + list(_NOUNS)
    n_phr = len(phrases)
    term_strings = phrases + [a.lower() for a in asins]

    # Targets.
    tgts_per = _counts(rng, n_ag, tgt_extra)
    target_adgroup = np.repeat(np.arange(n_ag), tgts_per)
    n_tg = int(target_adgroup.shape[0])
    target_id = _ids(seed, profile.profile_id, product, "target", n_tg)
    tg_camp = adgroup_campaign[target_adgroup]
    if code == "SD":
        keyword_types = ("TARGETING_EXPRESSION", "TARGETING_EXPRESSION_PREDEFINED")
        kt = rng.choice(2, n_tg, p=(0.6, 0.4))
    else:
        keyword_types = (
            "BROAD",
            "PHRASE",
            "EXACT",
            "TARGETING_EXPRESSION",
            "TARGETING_EXPRESSION_PREDEFINED",
        ) + (("THEME",) if code == "SB" else ())
        manual = rng.choice(4, n_tg, p=(0.3, 0.25, 0.3, 0.15))  # broad/phrase/exact/expression
        if code == "SB":
            manual = np.where(rng.random(n_tg) < 0.08, 5, manual)
        kt = np.where(campaign_auto[tg_camp], 4, manual)
    target_match_type = np.where(kt <= 2, kt, -1).astype(np.int64, copy=False)
    target_phrase = rng.integers(0, n_phr, n_tg)
    target_asin = rng.integers(0, n_asins, n_tg)
    predefined = ("close-match", "loose-match", "substitutes", "complements")
    sd_audiences = (
        "views=(exactProduct lookback=30)",
        "purchases=(relatedProduct lookback=60)",
        "audience=(in-market)",
        "views=(similarProduct lookback=30)",
    )
    # Texts as indexes into one table of distinct texts: phrases, ASIN expressions, the
    # predefined expressions (SD audiences for SD) and the SB theme.
    extra = sd_audiences if code == "SD" else predefined
    text_table = phrases + [f'asin="{a}"' for a in asins] + list(extra)
    text_table.append("KEYWORDS_RELATED_TO_YOUR_BRAND")
    text_index = np.empty(n_tg, dtype=np.int64)
    for kti, name in enumerate(keyword_types):
        sel = kt == kti
        if name in ("BROAD", "PHRASE", "EXACT"):
            text_index[sel] = target_phrase[sel]
        elif name == "THEME":
            text_index[sel] = len(text_table) - 1
        elif name == "TARGETING_EXPRESSION":
            text_index[sel] = n_phr + target_asin[sel]
        else:
            text_index[sel] = n_phr + n_asins + target_asin[sel] % len(extra)
    target_status = np.where(
        adgroup_status[target_adgroup] == 2, 2, rng.choice(3, n_tg, p=(0.86, 0.11, 0.03))
    )
    target_bid = np.maximum(np.round(rng.lognormal(np.log(0.9), 0.35, n_tg) * fx * minor), 1).astype(np.int64)
    # Term pools: an exact keyword matches itself; broad/phrase match several related phrases;
    # product targets match ASINs.
    n_terms = np.where(
        target_match_type == 2,
        1,
        np.where(target_match_type >= 0, rng.integers(3, 9, n_tg), rng.integers(2, 7, n_tg)),
    ).astype(np.int64, copy=False)
    same_noun_offset = rng.integers(0, len(_MODIFIERS) + 1, (n_tg, MAX_TERMS))
    phrase_noun = target_phrase // len(_MODIFIERS)
    phrase_noun = np.where(
        target_phrase >= len(_NOUNS) * len(_MODIFIERS),
        target_phrase - len(_NOUNS) * len(_MODIFIERS),
        phrase_noun,
    )
    related = np.where(
        same_noun_offset < len(_MODIFIERS),
        phrase_noun[:, None] * len(_MODIFIERS) + same_noun_offset,
        len(_NOUNS) * len(_MODIFIERS) + phrase_noun[:, None],
    )
    related[:, 0] = target_phrase
    asin_terms = n_phr + rng.integers(0, n_asins, (n_tg, MAX_TERMS))
    target_terms = np.where((target_match_type >= 0)[:, None], related, asin_terms)
    # Free the (n_targets, MAX_TERMS) temporaries now: the cells below are the build's peak.
    del same_noun_offset, related, asin_terms

    # Cells: every ad of an ad group paired with every target of it.
    ad_order = np.argsort(ad_adgroup, kind="stable")
    tg_order = np.argsort(target_adgroup, kind="stable")
    ad_start = np.concatenate(([0], np.cumsum(ads_per)[:-1]))
    tg_start = np.concatenate(([0], np.cumsum(tgts_per)[:-1]))
    per_ag = ads_per * tgts_per
    cell_adgroup = np.repeat(np.arange(n_ag), per_ag)
    offset = np.arange(cell_adgroup.shape[0]) - np.repeat(np.cumsum(per_ag) - per_ag, per_ag)
    n_t_rep = tgts_per[cell_adgroup]
    cell_ad = ad_order[ad_start[cell_adgroup] + offset // n_t_rep]
    cell_target = tg_order[tg_start[cell_adgroup] + offset % n_t_rep]
    n_cells = int(cell_adgroup.shape[0])
    del offset, n_t_rep
    cell_campaign = adgroup_campaign[cell_adgroup]

    lam = rng.lognormal(np.log(imp_scale), 1.1, n_cells)
    # Exact keywords earn fewer but better impressions.
    exact = target_match_type[cell_target] == 2
    lam = np.where(exact, lam * 0.6, lam)
    ctr_mean = {"SP": 0.006, "SB": 0.004, "SD": 0.0035}[code]
    ctr = np.clip(rng.lognormal(np.log(ctr_mean), 0.45, n_cells) * np.where(exact, 1.6, 1.0), 0.0005, 0.05)
    cvr = rng.uniform(0.05, 0.15, n_cells)
    cpc = np.maximum(np.round(rng.lognormal(np.log(0.9), 0.35, n_cells) * fx * minor), 1).astype(np.int64)
    p_active = rng.uniform(0.55, 0.97, n_cells)
    paused = (campaign_status[cell_campaign] != 0) | (adgroup_status[cell_adgroup] != 0)
    p_active = np.where(paused, p_active * 0.3, p_active)
    other = (ad_asin[cell_ad] + rng.integers(1, max(n_asins, 2), n_cells)) % n_asins
    matched = rng.integers(0, n_asins, n_cells)
    business = rng.random(n_cells) < 0.15

    return Universe(
        product=product,
        currency=currency,
        decimals=decimals,
        asin_json=_esc_array(list(asins)),
        asin_price=asin_price,
        asin_name_json=_esc_array(asin_name),
        asin_category_json=_esc_lookup(_CATEGORIES, noun),
        portfolio_id=portfolio_id,
        campaign_id=campaign_id,
        campaign_name_json=_esc_array(campaign_name),
        campaign_status=campaign_status.astype(np.int64, copy=False),
        campaign_budget=campaign_budget,
        campaign_portfolio=campaign_portfolio,
        campaign_strategy_json=_esc_lookup(strategies, campaign_strategy),
        campaign_cost_type=campaign_cost_type,
        campaign_video=campaign_video,
        campaign_tos_miss=campaign_tos_miss,
        adgroup_id=adgroup_id,
        adgroup_campaign=adgroup_campaign.astype(np.int64, copy=False),
        adgroup_name_json=_esc_array(adgroup_name),
        adgroup_status=adgroup_status.astype(np.int64, copy=False),
        adgroup_bid_opt_json=_esc_lookup(bid_opts, adgroup_bid_opt),
        ad_id=ad_id,
        ad_adgroup=ad_adgroup.astype(np.int64, copy=False),
        ad_asin=ad_asin.astype(np.int64, copy=False),
        ad_sku_json=_esc_lookup(asin_sku, ad_asin),
        ad_status=ad_status.astype(np.int64, copy=False),
        target_id=target_id,
        target_adgroup=target_adgroup.astype(np.int64, copy=False),
        target_status=target_status.astype(np.int64, copy=False),
        target_keyword_type=kt.astype(np.int64, copy=False),
        target_match_type=target_match_type,
        target_text_json=_esc_lookup(text_table, text_index),
        target_bid=target_bid,
        target_terms=target_terms,
        target_n_terms=n_terms,
        keyword_types=keyword_types,
        term_json=_esc_array(term_strings),
        cell_ad=cell_ad.astype(np.int64, copy=False),
        cell_target=cell_target.astype(np.int64, copy=False),
        cell_adgroup=cell_adgroup.astype(np.int64, copy=False),
        cell_campaign=cell_campaign.astype(np.int64, copy=False),
        cell_lambda=lam,
        cell_p_active=p_active,
        cell_ctr=ctr,
        cell_cvr=cvr,
        cell_cpc=cpc,
        cell_other_asin=other.astype(np.int64, copy=False),
        cell_matched_asin=matched.astype(np.int64, copy=False),
        cell_business=business,
    )
