"""Where each region's APIs live: Ads and SP-API hosts and the LWA token URLs.

From shared/reference/ads-facts.md §1 (Ads hosts and the regional LWA token URLs) and
spapi-facts.md §1-2 (SP-API hosts; SP-API's docs use api.amazon.com for LWA in every region).
An emulator (or any stand-in) serves every region under one base URL: see `emulator_hosts`.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Region(StrEnum):
    """An Amazon API region."""

    NA = "NA"
    EU = "EU"
    FE = "FE"


ADS_HOSTS: dict[Region, str] = {
    Region.NA: "https://advertising-api.amazon.com",
    Region.EU: "https://advertising-api-eu.amazon.com",
    Region.FE: "https://advertising-api-fe.amazon.com",
}

SPAPI_HOSTS: dict[Region, str] = {
    Region.NA: "https://sellingpartnerapi-na.amazon.com",
    Region.EU: "https://sellingpartnerapi-eu.amazon.com",
    Region.FE: "https://sellingpartnerapi-fe.amazon.com",
}

# SP-API's static sandbox: the production host with a `sandbox.` prefix (spapi-facts §1).
SPAPI_SANDBOX_HOSTS: dict[Region, str] = {
    r: host.replace("https://", "https://sandbox.") for r, host in SPAPI_HOSTS.items()
}

# Ads documents one LWA token URL per region (ads-facts §1).
ADS_LWA_TOKEN_URLS: dict[Region, str] = {
    Region.NA: "https://api.amazon.com/auth/o2/token",
    Region.EU: "https://api.amazon.co.uk/auth/o2/token",
    Region.FE: "https://api.amazon.co.jp/auth/o2/token",
}

# SP-API's docs and Amazon's sample clients use the NA endpoint for every region (spapi-facts §2).
SPAPI_LWA_TOKEN_URL = "https://api.amazon.com/auth/o2/token"


@dataclass(frozen=True)
class Hosts:
    """The base URLs one region's clients talk to."""

    ads: str
    spapi: str
    ads_lwa: str
    spapi_lwa: str


def region_of(value: str) -> Region:
    """The Region named by `value` (case-insensitive); raises ValueError naming what is allowed."""
    try:
        return Region(value.upper())
    except ValueError:
        allowed = ", ".join(r.value for r in Region)
        raise ValueError(f"unknown region {value!r}; allowed: {allowed}") from None


def amazon_hosts(region: Region | str, *, sandbox: bool = False) -> Hosts:
    """Amazon's production hosts for `region` (SP-API's sandbox hosts when `sandbox`)."""
    r = region_of(region) if isinstance(region, str) else region
    spapi = SPAPI_SANDBOX_HOSTS[r] if sandbox else SPAPI_HOSTS[r]
    return Hosts(ADS_HOSTS[r], spapi, ADS_LWA_TOKEN_URLS[r], SPAPI_LWA_TOKEN_URL)


def emulator_hosts(base_url: str, region: Region | str) -> Hosts:
    """A stand-in serving every region under `base_url`: APIs at /na|/eu|/fe, LWA at the root."""
    r = region_of(region) if isinstance(region, str) else region
    root = base_url.rstrip("/")
    api = f"{root}/{r.value.lower()}"
    lwa = f"{root}/auth/o2/token"
    return Hosts(api, api, lwa, lwa)
