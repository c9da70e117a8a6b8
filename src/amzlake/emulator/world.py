"""The emulator's world: LWA apps, Ads profiles, vendor accounts and each marketplace's ASINs.

Everything is derived from the seed, so the same seed gives the same credentials, ids and catalogue.
Ads profiles advertise the ASINs that the vendor account of the same marketplace sells, so Ads and
vendor reports join on ASIN the way a real 1P brand's data does.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property

from amzlake.catalog.marketplaces import MARKETPLACES_BY_COUNTRY, Marketplace

_ALNUM = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ"


# The emulator's marketplaces are Amazon's (shared with the pipeline's catalogue).
MARKETPLACES = MARKETPLACES_BY_COUNTRY


def stable_int(*parts: object, bits: int = 63) -> int:
    """A stable non-negative integer of `bits` bits derived from `parts` (not Python's salted hash)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=16).digest()
    return int.from_bytes(digest, "big") >> (128 - bits)


def stable_token(*parts: object, length: int = 32) -> str:
    """A stable alphanumeric string derived from `parts`."""
    n = stable_int(*parts, bits=128)
    out = []
    for _ in range(length):
        n, r = divmod(n, len(_ALNUM))
        out.append(_ALNUM[r])
        if n == 0:
            n = stable_int(*parts, len(out), bits=128)
    return "".join(out)


@dataclass(frozen=True)
class LwaApp:
    """A Login with Amazon application (the client id and secret an integration holds)."""

    client_id: str
    client_secret: str


@dataclass(frozen=True)
class AdsProfile:
    """An Amazon Ads profile: one advertiser in one marketplace, reporting in its own time zone."""

    profile_id: int
    marketplace: Marketplace
    timezone: str
    account_type: str  # seller | vendor | agency
    account_id: str
    name: str
    daily_budget: float
    # Multiplies the number of campaigns, ad groups, ads and targets (the size knob).
    size: int = 1

    @property
    def country_code(self) -> str:
        return self.marketplace.country_code

    @property
    def currency_code(self) -> str:
        return self.marketplace.currency_code

    @property
    def region(self) -> str:
        return self.marketplace.region


@dataclass(frozen=True)
class VendorAccount:
    """A vendor (1P) selling partner in one marketplace, reached with its own refresh token."""

    selling_partner_id: str  # amzn1.vg.<n> for vendor groups
    vendor_code: str
    name: str
    marketplace: Marketplace
    refresh_token: str
    size: int = 1

    @property
    def region(self) -> str:
        return self.marketplace.region


@dataclass(frozen=True)
class World:
    """Everything the emulator knows about its fictional company, derived from `seed`."""

    seed: int
    lwa_app: LwaApp
    ads_refresh_token: str
    ads_profiles: tuple[AdsProfile, ...]
    vendor_accounts: tuple[VendorAccount, ...]
    asins_per_marketplace: int = 40
    _asin_cache: dict[str, tuple[str, ...]] = field(default_factory=dict, compare=False, repr=False)

    def asins(self, marketplace_id: str) -> tuple[str, ...]:
        """The ASINs sold in a marketplace (stable for the seed); Ads and vendor data share them."""
        if marketplace_id not in self._asin_cache:
            size = max(
                [p.size for p in self.ads_profiles if p.marketplace.marketplace_id == marketplace_id]
                + [v.size for v in self.vendor_accounts
                   if v.marketplace.marketplace_id == marketplace_id]
                + [1]
            )
            n = self.asins_per_marketplace * size
            self._asin_cache[marketplace_id] = tuple(
                "B0" + stable_token(self.seed, "asin", marketplace_id, i, length=8)
                for i in range(n)
            )
        return self._asin_cache[marketplace_id]

    def profile(self, profile_id: int) -> AdsProfile | None:
        """The Ads profile with this id, if any."""
        return self._profiles_by_id.get(profile_id)

    def vendor_by_refresh_token(self, refresh_token: str) -> VendorAccount | None:
        """The vendor account a refresh token authorises, if any."""
        return next((v for v in self.vendor_accounts if v.refresh_token == refresh_token), None)

    @cached_property
    def _profiles_by_id(self) -> dict[int, AdsProfile]:
        return {p.profile_id: p for p in self.ads_profiles}

    def credentials(self) -> dict[str, object]:
        """The credentials the emulator accepts, as served by GET /_emulator/credentials."""
        return {
            "lwa": {
                "client_id": self.lwa_app.client_id,
                "client_secret": self.lwa_app.client_secret,
            },
            "ads": {
                "refresh_token": self.ads_refresh_token,
                "profiles": [
                    {
                        "profile_id": p.profile_id,
                        "country_code": p.country_code,
                        "currency_code": p.currency_code,
                        "timezone": p.timezone,
                        "region": p.region,
                    }
                    for p in self.ads_profiles
                ],
            },
            "vendor": [
                {
                    "selling_partner_id": v.selling_partner_id,
                    "refresh_token": v.refresh_token,
                    "region": v.region,
                    "marketplace_id": v.marketplace.marketplace_id,
                    "country_code": v.marketplace.country_code,
                }
                for v in self.vendor_accounts
            ],
        }


# Where Ads profiles past the first three are: the largest Ads marketplaces of each region, in
# turn, so an agency-sized world spans NA, EU and FE with several profiles per marketplace.
_MORE_PROFILE_COUNTRIES = ("US", "UK", "CA", "DE", "FR", "JP", "IT", "ES", "MX", "AU")


def build_world(seed: int = 1, size: int = 1, asins_per_marketplace: int = 40,
                profiles: int = 3) -> World:
    """The default world: a US and a German Ads profile and a Japanese one, and US and DE vendors;
    with `profiles` over 3, more profiles (an agency's) across NA, EU and FE marketplaces.

    `size` multiplies every account's entity counts; a large size makes reports of millions of rows.
    """
    if profiles < 1:
        raise ValueError(f"profiles must be at least 1, got {profiles}")
    if size < 1:
        raise ValueError(f"size must be at least 1, got {size}")
    app = LwaApp(
        client_id="amzn1.application-oa2-client." + stable_token(seed, "client", length=32).lower(),
        client_secret="amzn1.oa2-cs.v1." + stable_token(seed, "secret", length=64).lower(),
    )

    def profile(country: str, n: int) -> AdsProfile:
        mp = MARKETPLACES[country]
        return AdsProfile(
            # Real profile ids are 13 to 16 digits.
            profile_id=1_000_000_000_000_000 + stable_int(seed, "profile", n, bits=48),
            marketplace=mp,
            timezone=mp.timezone,
            account_type="vendor",
            account_id="ENTITY" + stable_token(seed, "entity", n, length=13),
            name=f"Emulated Brand {country}" + (f" #{n}" if n >= 3 else ""),
            daily_budget=float(500 * size),
            size=size,
        )

    def vendor(country: str, n: int) -> VendorAccount:
        return VendorAccount(
            selling_partner_id=f"amzn1.vg.{stable_int(seed, 'vg', n, bits=24)}",
            vendor_code=stable_token(seed, "vendor-code", n, length=5),
            name=f"Emulated Brand {country} (1P)",
            marketplace=MARKETPLACES[country],
            refresh_token="Atzr|" + stable_token(seed, "vendor-refresh", n, length=120),
            size=size,
        )

    return World(
        seed=seed,
        lwa_app=app,
        ads_refresh_token="Atzr|" + stable_token(seed, "ads-refresh", length=120),
        ads_profiles=tuple(
            profile(("US", "DE", "JP")[n] if n < 3
                    else _MORE_PROFILE_COUNTRIES[(n - 3) % len(_MORE_PROFILE_COUNTRIES)], n)
            for n in range(profiles)
        ),
        vendor_accounts=(vendor("US", 0), vendor("DE", 1)),
        asins_per_marketplace=asins_per_marketplace,
    )
