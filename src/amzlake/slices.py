"""Report specs, slices and slice keys: the unit of work, of retry, of raw storage and of replacement.

A slice is one report request: an account, a report spec and a date range. Its key is a stable hash
of those fields, normalised (sorted options and filters, ISO dates), so the same request always has
the same key, on any machine, in any run, in either runtime.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Any

import orjson


class Source(StrEnum):
    """Where a report comes from."""

    ADS = "ads"
    VENDOR = "vendor"


@dataclass(frozen=True)
class Account:
    """An Ads profile or a vendor selling partner in one marketplace.

    `account_id` is the Ads profile id or the vendor's selling-partner id; `timezone` is the zone
    report dates are in (an Ads profile's own zone; vendor reports use the marketplace's).
    """

    source: Source
    account_id: str
    region: str  # NA | EU | FE
    marketplace_id: str
    country_code: str
    currency_code: str
    timezone: str
    lwa_app: str = "default"  # which configured LWA app (client id + secret) signs its calls

    @property
    def label(self) -> str:
        """A short path-safe name: `ads-<profile id>` or `vendor-<selling partner id>`."""
        return f"{self.source.value}-{self.account_id}".replace("/", "_")


@dataclass(frozen=True)
class AdsReportSpec:
    """What to ask Ads reporting v3 for (everything in `configuration` but the dates)."""

    report_type_id: str
    ad_product: str
    group_by: tuple[str, ...]
    columns: tuple[str, ...]
    time_unit: str = "DAILY"
    filters: tuple[tuple[str, tuple[str, ...]], ...] = ()
    format: str = "GZIP_JSON"

    @property
    def report_type(self) -> str:
        """The name raw keys and tables use for this spec."""
        return self.report_type_id

    @classmethod
    def from_normalised(cls, data: dict[str, Any]) -> AdsReportSpec:
        """The spec `normalised()` described (lists in their sorted, canonical order)."""
        return cls(
            report_type_id=data["reportTypeId"],
            ad_product=data["adProduct"],
            group_by=tuple(data["groupBy"]),
            columns=tuple(data["columns"]),
            time_unit=data["timeUnit"],
            filters=tuple((f, tuple(v)) for f, v in data["filters"]),
            format=data["format"],
        )

    def canonical(self) -> AdsReportSpec:
        """The same spec with groupBy, columns and filters in canonical order.

        Requests are always sent in this order, so a repeated create is byte-identical and Amazon's
        425 duplicate check recognises it, whichever run (or runtime) sends it.
        """
        return AdsReportSpec.from_normalised(self.normalised())

    def normalised(self) -> dict[str, Any]:
        """The fields that identify the spec, order-independent where Amazon's meaning is."""
        return {
            "reportTypeId": self.report_type_id,
            "adProduct": self.ad_product,
            "groupBy": sorted(self.group_by),
            "columns": sorted(self.columns),
            "timeUnit": self.time_unit,
            "filters": sorted([f, sorted(v)] for f, v in self.filters),
            "format": self.format,
        }


@dataclass(frozen=True)
class VendorReportSpec:
    """What to ask SP-API for: the report type and its options (string to string)."""

    report_type: str
    options: tuple[tuple[str, str], ...] = ()

    @classmethod
    def of(cls, report_type: str, options: dict[str, str] | None = None) -> VendorReportSpec:
        """A spec with options sorted by name."""
        return cls(report_type, tuple(sorted((options or {}).items())))

    @classmethod
    def from_normalised(cls, data: dict[str, Any]) -> VendorReportSpec:
        """The spec `normalised()` described."""
        return cls.of(data["reportType"], data.get("reportOptions") or {})

    def options_dict(self) -> dict[str, str]:
        """The options as sent in `reportOptions`."""
        return dict(self.options)

    def normalised(self) -> dict[str, Any]:
        """The fields that identify the spec."""
        return {"reportType": self.report_type, "reportOptions": dict(sorted(self.options))}


ReportSpec = AdsReportSpec | VendorReportSpec


def spec_from_normalised(source: Source | str, data: dict[str, Any]) -> ReportSpec:
    """The spec of `source` that a ledger row's `spec` field describes."""
    if Source(source) is Source.ADS:
        return AdsReportSpec.from_normalised(data)
    return VendorReportSpec.from_normalised(data)


def _iso(value: date | datetime) -> str:
    return value.isoformat()


@dataclass(frozen=True)
class Slice:
    """One report request: account + spec + inclusive date range (datetimes for hourly reports)."""

    account: Account
    spec: ReportSpec
    start: date | datetime
    end: date | datetime
    key: str = field(init=False)

    def __post_init__(self) -> None:
        if self.end < self.start:
            raise ValueError(f"slice ends ({self.end}) before it starts ({self.start})")
        object.__setattr__(self, "key", slice_key(self.account, self.spec, self.start, self.end))

    @property
    def source(self) -> Source:
        return self.account.source

    @property
    def report_type(self) -> str:
        return self.spec.report_type

    @property
    def report_date(self) -> date:
        """The day the slice's raw objects are filed under: its first day."""
        return self.start.date() if isinstance(self.start, datetime) else self.start

    def describe(self) -> dict[str, Any]:
        """A JSON-ready description (ledger rows, notifications, logs); holds no secret."""
        return {
            "key": self.key,
            "source": self.source.value,
            "account": self.account.account_id,
            "report_type": self.report_type,
            "spec": self.spec.normalised(),
            "start": _iso(self.start),
            "end": _iso(self.end),
        }


def slice_key(account: Account, spec: ReportSpec, start: date | datetime, end: date | datetime) -> str:
    """The stable key of a slice: 20 hex digits of SHA-256 over its normalised identity."""
    identity = {
        "source": account.source.value,
        "account": account.account_id,
        "marketplace": account.marketplace_id,
        "spec": spec.normalised(),
        "start": _iso(start),
        "end": _iso(end),
    }
    digest = hashlib.sha256(orjson.dumps(identity, option=orjson.OPT_SORT_KEYS)).hexdigest()
    return digest[:20]


# Raw documents are stored as served: gzip as `.json.gz`; an SP-API document served without
# compressionAlgorithm (plain bytes, which the spec allows) as `.json`. A FATAL report's error
# document adds `.fatal` before either.
RAW_SUFFIXES = (".json.gz", ".json")
ERROR_SUFFIXES = (".fatal.json.gz", ".fatal.json")


def raw_key(slice_: Slice, fetched_at: datetime, prefix: str = "", *, compressed: bool = True,
            error: bool = False) -> str:
    """Where a downloaded document lives inside the raw zone (DESIGN invariant 2):
    `{source}/{report_type}/{report_date}/{account}/{slice_key}/{fetched_at}.json.gz`, under
    `prefix` if given (`.json` for a document served uncompressed, `.fatal` before it for a FATAL
    report's error document). The raw zone itself is a folder or bucket prefix, e.g. `<lake>/raw`."""
    if fetched_at.tzinfo is None:
        raise ValueError("fetched_at must be timezone-aware")
    stamp = fetched_at.astimezone(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    account = slice_.account.account_id.replace("/", "_")
    suffix = (".fatal" if error else "") + (".json.gz" if compressed else ".json")
    key = (
        f"{slice_.source.value}/{slice_.report_type}/{slice_.report_date.isoformat()}/"
        f"{account}/{slice_.key}/{stamp}{suffix}"
    )
    return f"{prefix.rstrip('/')}/{key}" if prefix else key


def is_data_document(key: str) -> bool:
    """Whether a raw key holds a report's data (not a FATAL report's error document)."""
    return key.endswith(RAW_SUFFIXES) and not key.endswith(ERROR_SUFFIXES)


def is_compressed(key: str) -> bool:
    """Whether the raw document under `key` is gzip (as Amazon served it)."""
    return key.endswith(".gz")
