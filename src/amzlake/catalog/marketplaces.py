"""Amazon marketplaces: id, country, currency, API region and the time zone of their data.

Ids: SP-API "Marketplace IDs" (developer-docs.amazon.com/sp-api/docs/marketplace-ids). Time zones:
the marketplace's home zone, the default of an Ads profile there (each profile reports its own).
Ads writes the United Kingdom as UK, not GB; so does this table.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType


@dataclass(frozen=True)
class Marketplace:
    """One Amazon marketplace."""

    marketplace_id: str
    country_code: str
    currency_code: str
    region: str  # NA | EU | FE
    timezone: str
    currency_decimals: int = 2  # minor units: JPY has none


_ALL = (
    Marketplace("A2EUQ1WTGCTBG2", "CA", "CAD", "NA", "America/Los_Angeles"),
    Marketplace("ATVPDKIKX0DER", "US", "USD", "NA", "America/Los_Angeles"),
    Marketplace("A1AM78C64UM0Y8", "MX", "MXN", "NA", "America/Mexico_City"),
    Marketplace("A2Q3Y263D00KWC", "BR", "BRL", "NA", "America/Sao_Paulo"),
    Marketplace("A28R8C7NBKEWEA", "IE", "EUR", "EU", "Europe/Dublin"),
    Marketplace("A1RKKUPIHCS9HS", "ES", "EUR", "EU", "Europe/Paris"),
    Marketplace("A1F83G8C2ARO7P", "UK", "GBP", "EU", "Europe/London"),
    Marketplace("A13V1IB3VIYZZH", "FR", "EUR", "EU", "Europe/Paris"),
    Marketplace("AMEN7PMS3EDWL", "BE", "EUR", "EU", "Europe/Brussels"),
    Marketplace("A1805IZSGTT6HS", "NL", "EUR", "EU", "Europe/Amsterdam"),
    Marketplace("A1PA6795UKMFR9", "DE", "EUR", "EU", "Europe/Paris"),
    Marketplace("APJ6JRA9NG5V4", "IT", "EUR", "EU", "Europe/Paris"),
    Marketplace("A2NODRKZP88ZB9", "SE", "SEK", "EU", "Europe/Stockholm"),
    Marketplace("AE08WJ6YKNBMC", "ZA", "ZAR", "EU", "Africa/Johannesburg"),
    Marketplace("A1C3SOZRARQ6R3", "PL", "PLN", "EU", "Europe/Warsaw"),
    Marketplace("ARBP9OOSHTCHU", "EG", "EGP", "EU", "Africa/Cairo"),
    Marketplace("A33AVAJ2PDY3EV", "TR", "TRY", "EU", "Europe/Istanbul"),
    Marketplace("A17E79C6D8DWNP", "SA", "SAR", "EU", "Asia/Riyadh"),
    Marketplace("A2VIGQ35RCS4UG", "AE", "AED", "EU", "Asia/Dubai"),
    Marketplace("A21TJRUUN4KGV", "IN", "INR", "EU", "Asia/Kolkata"),
    Marketplace("A19VAU5U5O7RUS", "SG", "SGD", "FE", "Asia/Singapore"),
    Marketplace("A39IBJ37TRP1C6", "AU", "AUD", "FE", "Australia/Sydney"),
    Marketplace("A1VC38T7YXB528", "JP", "JPY", "FE", "Asia/Tokyo", currency_decimals=0),
)

MARKETPLACES_BY_ID: Mapping[str, Marketplace] = MappingProxyType({m.marketplace_id: m for m in _ALL})
MARKETPLACES_BY_COUNTRY: Mapping[str, Marketplace] = MappingProxyType({m.country_code: m for m in _ALL})
