"""amzlake's configuration: typed pydantic models, loaded from one TOML file plus env overrides.

Where the file is found (first hit wins):
  1. `--config PATH` (the `path` argument of `load_config`);
  2. the environment variable `AMZLAKE_CONFIG`;
  3. `amzlake.toml` in the current directory or any of its parents (so `amzlake demo` and a
     project folder work from any subfolder).

Env overrides: `AMZLAKE_<SECTION>__<KEY>[__<KEY>...]=value` sets one value, `__` separating the
levels, names case-insensitive; a number selects a list item. Examples:
  AMZLAKE_ADS__LOOKBACK_DAYS=30                       [ads] lookback_days = 30
  AMZLAKE_STORAGE__RAW=s3://my-bucket/raw             [storage] raw = "s3://my-bucket/raw"
  AMZLAKE_LWA__DEFAULT__CLIENT_ID=amzn1.application-oa2-client.abc
  AMZLAKE_VENDOR__ACCOUNTS__0__REFRESH_TOKEN=env:VENDOR_US_TOKEN
  AMZLAKE_ENDPOINTS__BASE_URL=http://127.0.0.1:8600   everything at the emulator
  AMZLAKE_ADS__COUNTRIES=["US","CA"]                  a value starting with [ or { is JSON
Other values are strings that the models convert ("30", "true", "2025-01-01"). Only names with
a `__` count, so `AMZLAKE_CONFIG` or a secret in `AMZLAKE_ADS_REFRESH_TOKEN` is never an override.

Secrets are never in the config, only references to them (`env:NAME`, `file:PATH#KEY`,
`secretsmanager:ID#KEY`; see amzlake.secrets). A bad config raises ConfigError with one line
naming the field (dotted path), the value (hidden for secret fields) and what is allowed.
"""

from __future__ import annotations

import copy
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainSerializer,
    PlainValidator,
    PrivateAttr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from amzlake.catalog.ads import (
    ADS_REPORT_TYPES,
    AdsRequestInvalid,
    TimeUnit,
    validate_create_request,
)
from amzlake.catalog.marketplaces import MARKETPLACES_BY_ID
from amzlake.catalog.vendor import VENDOR_REPORT_TYPES, DateRule, VendorReportType
from amzlake.default_reports import (
    ACCOUNT_OPTIONS,
    DEFAULT_AD_PRODUCTS,
    DEFAULT_BRAND_ANALYTICS_REPORTS,
    DEFAULT_VENDOR_REPORTS,
    ads_spec,
    all_columns,
    default_group_by,
    default_vendor_report_options,
    vendor_specs,
)
from amzlake.errors import ConfigError
from amzlake.secrets import SecretRef, parse_ref
from amzlake.slices import AdsReportSpec, VendorReportSpec
from amzlake.sources.ads import report_request
from amzlake.sources.hosts import (
    ADS_HOSTS,
    ADS_LWA_TOKEN_URLS,
    SPAPI_HOSTS,
    SPAPI_LWA_TOKEN_URL,
    Hosts,
    Region,
    emulator_hosts,
)

CONFIG_FILENAME = "amzlake.toml"
ENV_CONFIG = "AMZLAKE_CONFIG"
ENV_PREFIX = "AMZLAKE_"

# Ads restatement: conversions are restated 1, 7 and 28 days after the conversion and reported on
# the click's date, so with the 14-day attribution window a day can change for up to 28 + 14 = 42
# days (ads-facts.md §9; Airbyte's fixed 3-day lookback missing it: airbytehq/airbyte#18929).
# A report with 30-day attribution columns (SP's *30d) can move for 28 + 30 = 58 days. Always
# capped by the report type's retention (60/65/95 days), past which Amazon refuses.
DEFAULT_ADS_LOOKBACK_DAYS = 42
ADS_30D_LOOKBACK_DAYS = 58


def default_ads_lookback(columns: Iterable[str]) -> int:
    """Days a report with these columns may still be restated: longer with 30-day attribution."""
    return ADS_30D_LOOKBACK_DAYS if any(c.endswith("30d") for c in columns) else DEFAULT_ADS_LOOKBACK_DAYS

# Vendor restatement: Amazon revises vendor figures after first publication (it added
# `lastUpdatedDate` to the vendor schemas in 2024-04 for that, spapi-facts.md §8) but publishes no
# window. The catalogue's restatement_days (the longest, 30) covers the documented availability
# lags (48-72 h, NPPM 4 days: catalog/vendor.py) many times over and a retail month-end close.
# Types the catalogue marks as not restated (real-time, forecasting, Brand Analytics) get no
# lookback by default: each period is fetched once, when it becomes available.
DEFAULT_VENDOR_LOOKBACK_DAYS = max(rt.restatement_days for rt in VENDOR_REPORT_TYPES.values())

# Amazon's Ads maintainers: reports "can take up to 3 hours" (ads-facts.md §10). A report that is
# still running after this is left `processing` and re-attached by the next run.
DEFAULT_MAX_WAIT = timedelta(hours=3)

# Any date passes the Ads request check for a one-day range ending on the day it is judged.
_PROBE_DAY = date(2024, 1, 1)

# SP-API marketplace ids by region (developer-docs.amazon.com/sp-api/docs/marketplace-ids).
MARKETPLACES: Mapping[str, tuple[str, Region]] = {
    m.marketplace_id: (m.country_code, Region(m.region)) for m in MARKETPLACES_BY_ID.values()
}

# Ads profile country codes by region (ads-facts.md §1; Ads writes UK, not GB).
ADS_COUNTRIES: Mapping[str, Region] = {
    **dict.fromkeys(("US", "CA", "MX", "BR"), Region.NA),
    **dict.fromkeys(
        (
            "UK",
            "FR",
            "IT",
            "ES",
            "DE",
            "NL",
            "AE",
            "PL",
            "TR",
            "EG",
            "SA",
            "SE",
            "BE",
            "IN",
            "ZA",
            "IE",
        ),
        Region.EU,
    ),
    **dict.fromkeys(("JP", "AU", "SG"), Region.FE),
}

# Fields whose values are never echoed in an error, even when they are not valid references.
SECRET_FIELDS = frozenset({"client_secret", "refresh_token"})

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
_S3_URL = re.compile(r"^s3://([a-z0-9][a-z0-9.-]{1,61}[a-z0-9])(/.*)?$")
# arn:aws:sns:<region>:<12-digit account>:<topic name> (SNS topic names: up to 256 letters,
# digits, hyphens, underscores; `.fifo` for FIFO topics).
_SNS_ARN = re.compile(r"^arn:aws[a-z-]*:sns:[a-z0-9-]+:\d{12}:[A-Za-z0-9_-]{1,256}(\.fifo)?$")
_DYNAMO_URL = re.compile(r"^dynamodb://([A-Za-z0-9_.-]{3,255})$")
_DURATION = re.compile(
    r"^\s*(?:(\d+(?:\.\d+)?)d)?\s*(?:(\d+(?:\.\d+)?)h)?\s*(?:(\d+(?:\.\d+)?)m)?"
    r"\s*(?:(\d+(?:\.\d+)?)s)?\s*$"
)


# ---- Field types --------------------------------------------------------------------------------


def _field_error(field: str, value: Any, message: str) -> PydanticCustomError:
    """An error about `field` of the model being validated (formatted as model.field)."""
    return PydanticCustomError(
        "field_error", "{message}", {"field": field, "value": value, "message": message}
    )


def _secret_ref(value: Any) -> SecretRef:
    if isinstance(value, SecretRef):
        return value
    try:
        return parse_ref(value)
    except ValueError as e:
        raise PydanticCustomError("secret_ref", "{message}", {"message": str(e)}) from None


SecretRefField = Annotated[SecretRef, PlainValidator(_secret_ref), PlainSerializer(str)]


def parse_duration(value: Any) -> timedelta:
    """A timedelta from seconds (a number) or text like "90s", "15m", "3h", "1h30m", "1d"."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError("must be a duration like 30s, 15m, 3h or a number of seconds")
    if isinstance(value, int | float):
        return timedelta(seconds=value)
    if isinstance(value, str):
        text = value.strip()
        try:
            return timedelta(seconds=float(text))
        except ValueError:
            pass
        m = _DURATION.match(text)
        if text and m and any(m.groups()):
            d, h, mi, s = (float(g) if g else 0.0 for g in m.groups())
            return timedelta(days=d, hours=h, minutes=mi, seconds=s)
    raise ValueError("must be a duration like 30s, 15m, 3h or a number of seconds")


def _positive_duration(value: Any) -> timedelta:
    d = parse_duration(value)
    if d <= timedelta(0):
        raise ValueError("must be a positive duration like 30s, 15m, 3h")
    return d


def format_duration(value: timedelta) -> str:
    """`value` as the config writes durations: "3h", "90m", "30s", "2.5s"."""
    seconds = value.total_seconds()
    if seconds and seconds % 3600 == 0:
        return f"{int(seconds // 3600)}h"
    if seconds and seconds % 60 == 0:
        return f"{int(seconds // 60)}m"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta,
    BeforeValidator(_positive_duration),
    PlainSerializer(format_duration, when_used="json"),
]
AppName = Annotated[str, Field(pattern=_NAME.pattern)]


def _region(value: Any) -> Region:
    if isinstance(value, Region):
        return value
    allowed = ", ".join(r.value for r in Region)
    if isinstance(value, str) and value.upper() in Region.__members__:
        return Region(value.upper())
    raise PydanticCustomError("region", "must be one of: {allowed}", {"allowed": allowed})


RegionField = Annotated[Region, PlainValidator(_region), PlainSerializer(str)]


def _allowed(values: Iterable[str]) -> str:
    return ", ".join(values)


class _Section(BaseModel):
    """A config table: unknown keys are errors that list the allowed ones (typos are caught)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @model_validator(mode="before")
    @classmethod
    def _known_keys(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            unknown = [k for k in data if k not in cls.model_fields]
            if unknown:
                raise PydanticCustomError(
                    "unknown_key",
                    "unknown key; allowed: {allowed}",
                    {
                        "field": str(unknown[0]),
                        "value": data[unknown[0]],
                        "allowed": _allowed(cls.model_fields),
                    },
                )
        return data


# ---- [lwa.<name>] -------------------------------------------------------------------------------


class LwaAppConfig(_Section):
    """One Login-with-Amazon app: its client id and where its client secret is."""

    client_id: str = Field(min_length=1, pattern=r"^\S+$")
    client_secret: SecretRefField


# ---- [ads] --------------------------------------------------------------------------------------


def _catalog_field(message: str) -> str:
    """The AdsReportConfig field an Amazon 400 text is about."""
    m = re.search(r"configuration (\w+)", message)
    return (
        {
            "groupBy": "group_by",
            "timeUnit": "time_unit",
            "reportTypeId": "report_type",
            "adProduct": "report_type",
        }.get(m.group(1), m.group(1))
        if m
        else "report_type"
    )


class AdsReportConfig(_Section):
    """One Ads report to pull; left out, groupBy is the report's own level and columns are all."""

    report_type: str
    group_by: list[str] | None = None
    columns: list[str] | None = None
    time_unit: Literal["DAILY", "SUMMARY"] = "DAILY"
    filters: dict[str, list[str]] = Field(default_factory=dict)
    format: str = "GZIP_JSON"
    lookback_days: int | None = Field(default=None, ge=0, le=731)

    @field_validator("report_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in ADS_REPORT_TYPES:
            raise ValueError(f"unknown Ads report type; allowed: {_allowed(ADS_REPORT_TYPES)}")
        return value

    @model_validator(mode="after")
    def _against_catalog(self) -> AdsReportConfig:
        rt = ADS_REPORT_TYPES[self.report_type]
        gb = tuple(self.group_by) if self.group_by else default_group_by(rt)
        bad = [g for g in gb if g not in rt.group_bys]
        if bad:
            raise _field_error(
                "group_by",
                self.group_by,
                f"not a groupBy of {rt.report_type_id}; allowed: {_allowed(rt.group_bys)}",
            )
        if len(set(gb)) > 1 and not rt.combinable_group_bys:
            raise _field_error(
                "group_by",
                self.group_by,
                f"{rt.report_type_id} takes a single groupBy; allowed: {_allowed(rt.group_bys)}",
            )
        unit = TimeUnit(self.time_unit)
        allowed_cols = all_columns(rt, gb, unit)
        if self.columns is not None:
            bad = [c for c in self.columns if c not in allowed_cols]
            if bad or not self.columns:
                raise _field_error(
                    "columns",
                    bad or self.columns,
                    f"not columns of {rt.report_type_id} by {'+'.join(gb)} at {unit}; "
                    f"allowed: {_allowed(allowed_cols)}",
                )
        allowed_filters = rt.filters_for(gb)
        for name, values in self.filters.items():
            if name not in allowed_filters:
                raise _field_error(
                    "filters",
                    name,
                    f"not a filter of {rt.report_type_id} by "
                    f"{'+'.join(gb)}; allowed: {_allowed(sorted(allowed_filters)) or '(none)'}",
                )
            bad = [v for v in values if v not in allowed_filters[name]]
            if bad or not values:
                raise _field_error(
                    "filters",
                    {name: values},
                    f"allowed values of {name}: {_allowed(sorted(allowed_filters[name]))}",
                )
        if self.format not in rt.formats:
            raise _field_error("format", self.format, f"allowed: {_allowed(rt.formats)}")
        # The catalogue's own request check is the last word (anything the checks above missed).
        # It checks the very body the client will send.
        try:
            validate_create_request(report_request(self.spec(), _PROBE_DAY, _PROBE_DAY),
                                    _PROBE_DAY)
        except AdsRequestInvalid as e:
            field = _catalog_field(e.message)
            raise _field_error(field, getattr(self, field, None), e.message) from None
        return self

    def spec(self) -> AdsReportSpec:
        """The report spec this entry asks for, defaults filled in."""
        return ads_spec(
            self.report_type,
            self.group_by,
            self.columns,
            TimeUnit(self.time_unit),
            self.filters,
            self.format,
        )


def _default_ads_reports() -> list[AdsReportConfig]:
    return [
        AdsReportConfig(report_type=rt.report_type_id)
        for rt in ADS_REPORT_TYPES.values()
        if rt.ad_product in DEFAULT_AD_PRODUCTS
    ]


@dataclass(frozen=True)
class PlannedReport:
    """A spec to pull and how many past days each run pulls again (its restatement lookback)."""

    spec: AdsReportSpec | VendorReportSpec
    lookback_days: int


class AdsConfig(_Section):
    """[ads]: the Ads login, which profiles, which reports, how far back."""

    enabled: bool = True
    lwa_app: AppName = "default"
    refresh_token: SecretRefField | None = None
    regions: list[RegionField] = Field(default_factory=lambda: list(Region), min_length=1)
    profiles: list[Annotated[int, Field(ge=1)]] | None = None
    countries: list[str] | None = None
    # None: each report's own default (default_ads_lookback: 42 days, 58 with 30-day columns).
    lookback_days: int | None = Field(default=None, ge=0, le=731)
    backfill_start: date | None = None
    reports: list[AdsReportConfig] = Field(default_factory=_default_ads_reports)

    @field_validator("countries")
    @classmethod
    def _known_countries(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        upper = [c.upper() for c in value]
        bad = [c for c in upper if c not in ADS_COUNTRIES]
        if bad:
            raise ValueError(f"unknown Ads country {bad[0]!r}; allowed: {_allowed(ADS_COUNTRIES)}")
        return upper

    @model_validator(mode="after")
    def _consistent(self) -> AdsConfig:
        if self.enabled and self.refresh_token is None:
            raise _field_error(
                "refresh_token", None, "required when ads is enabled (a reference such as env:NAME)"
            )
        if self.profiles is not None and self.countries is not None:
            raise _field_error(
                "countries",
                self.countries,
                "give either profiles (explicit ids) or countries (a filter), not both",
            )
        if self.profiles is not None and (
            not self.profiles or len(set(self.profiles)) != len(self.profiles)
        ):
            raise _field_error(
                "profiles", self.profiles, "must be a non-empty list of distinct ids"
            )
        for c in self.countries or ():
            if ADS_COUNTRIES[c] not in self.regions:
                raise _field_error(
                    "countries",
                    c,
                    f"is in region {ADS_COUNTRIES[c]}, which regions "
                    f"leaves out; allowed regions: {_allowed(self.regions)}",
                )
        seen: dict[str, int] = {}
        for i, r in enumerate(self.reports):
            key = json.dumps(r.spec().normalised(), sort_keys=True)
            if key in seen:
                raise _field_error(
                    "reports",
                    r.report_type,
                    f"reports[{i}] repeats reports[{seen[key]}]; each spec once",
                )
            seen[key] = i
        return self

    def planned_reports(self) -> tuple[PlannedReport, ...]:
        """Every configured spec with its lookback (capped by the report type's retention): the
        report's own setting, else [ads] lookback_days, else what its columns need."""
        out = []
        for r in self.reports:
            spec = r.spec()
            days = next((d for d in (r.lookback_days, self.lookback_days) if d is not None),
                        default_ads_lookback(spec.columns))
            out.append(PlannedReport(spec, min(days, ADS_REPORT_TYPES[r.report_type].retention_days)))
        return tuple(out)


# ---- [vendor] -----------------------------------------------------------------------------------

SellingProgram = Literal["RETAIL", "BUSINESS", "FRESH"]
DistributorView = Literal["MANUFACTURING", "SOURCING"]


class VendorAccountConfig(_Section):
    """One vendor selling partner in one marketplace, with the refresh token it authorised."""

    selling_partner_id: str = Field(pattern=r"^[A-Za-z0-9._-]+$")
    region: RegionField
    marketplace_id: str
    selling_programs: list[SellingProgram] = Field(default_factory=lambda: ["RETAIL"], min_length=1)
    distributor_views: list[DistributorView] = Field(
        default_factory=lambda: ["MANUFACTURING"], min_length=1
    )
    lwa_app: AppName | None = None
    refresh_token: SecretRefField
    brand_analytics: bool | None = None

    @model_validator(mode="after")
    def _marketplace_in_region(self) -> VendorAccountConfig:
        known = MARKETPLACES.get(self.marketplace_id)
        if known is None:
            ids = [f"{m} ({c})" for m, (c, r) in MARKETPLACES.items() if r == self.region]
            raise _field_error(
                "marketplace_id",
                self.marketplace_id,
                f"unknown marketplace in {self.region}; allowed: {_allowed(ids)}",
            )
        if known[1] != self.region:
            raise _field_error(
                "marketplace_id",
                self.marketplace_id,
                f"is {known[0]}, in region {known[1]}, not {self.region}",
            )
        return self

    @property
    def country_code(self) -> str:
        """The marketplace's country code (UK, DE, US, ...)."""
        return MARKETPLACES[self.marketplace_id][0]


def _fixed_options(rt: VendorReportType) -> set[str]:
    """Options a report entry may set: all but the account's and the planner's date options."""
    window = rt.start_window
    planner = {window.option_from, window.option_to} if window else set()
    return {o.name for o in rt.options} - set(ACCOUNT_OPTIONS) - planner


def _default_period(rt: VendorReportType) -> str | None:
    preset = {**DEFAULT_VENDOR_REPORTS, **DEFAULT_BRAND_ANALYTICS_REPORTS}.get(rt.report_type, {})
    if "reportPeriod" in preset:
        return preset["reportPeriod"]
    return next(iter(rt.periods)).value if rt.periods else None


class VendorReportConfig(_Section):
    """One vendor report to pull: its type and fixed options (the account's options expand)."""

    report_type: str
    options: dict[str, str] = Field(default_factory=dict)
    lookback_days: int | None = Field(default=None, ge=0, le=1460)

    @field_validator("report_type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value not in VENDOR_REPORT_TYPES:
            raise ValueError(
                f"unknown vendor report type; allowed: {_allowed(VENDOR_REPORT_TYPES)}"
            )
        return value

    @model_validator(mode="after")
    def _options(self) -> VendorReportConfig:
        rt = VENDOR_REPORT_TYPES[self.report_type]
        settable = _fixed_options(rt) | {n for n in ACCOUNT_OPTIONS if rt.option(n)}
        for name, value in self.options.items():
            spec = rt.option(name)
            if spec is None or name not in settable:
                raise _field_error(
                    "options",
                    name,
                    f"not an option of {rt.report_type} you set "
                    f"here; allowed: {_allowed(sorted(settable)) or '(none)'}",
                )
            if spec.values is not None and value not in spec.values:
                raise _field_error(
                    "options", {name: value}, f"allowed values of {name}: {_allowed(spec.values)}"
                )
            if spec.max_length is not None and len(value) > spec.max_length:
                raise _field_error(
                    "options", {name: value}, f"{name} is at most {spec.max_length} characters"
                )
        missing = [
            n
            for n in sorted(_fixed_options(rt))
            if rt.option(n).required  # type: ignore[union-attr]
            and n not in self.options
            and not (n == "reportPeriod" and _default_period(rt))
        ]
        if missing:
            raise _field_error(
                "options", self.options, f"{rt.report_type} needs option(s): {_allowed(missing)}"
            )
        return self

    def fixed_options(self) -> dict[str, str]:
        """The options as configured, with reportPeriod defaulted for period reports."""
        rt = VENDOR_REPORT_TYPES[self.report_type]
        period = _default_period(rt)
        if rt.date_rule is DateRule.PERIODS and period and "reportPeriod" not in self.options:
            return {"reportPeriod": period, **self.options}
        return dict(self.options)


def _vendor_lookback(rt: VendorReportType, configured: int, explicit: int | None) -> int:
    """Days re-pulled for `rt`: explicit, else the section's if it restates; capped by Amazon."""
    days = explicit if explicit is not None else (configured if rt.restatement_days > 0 else 0)
    if rt.date_rule is DateRule.NONE:
        return 0  # forecasting has no dates: every run pulls the current forecast
    if rt.date_rule is DateRule.HOURS and rt.hour_rule is not None:
        return min(days, rt.hour_rule.lookback.days)
    if rt.date_rule is DateRule.START_DATE_OPTIONS and rt.start_window is not None:
        return min(days, rt.start_window.lookback.days)
    return days


class VendorConfig(_Section):
    """[vendor]: vendor (1P) accounts and the SP-API reports to pull for them."""

    enabled: bool = True
    lwa_app: AppName = "default"
    brand_analytics: bool = False
    accounts: list[VendorAccountConfig] = Field(default_factory=list)
    reports: list[VendorReportConfig] | None = None
    lookback_days: int = Field(default=DEFAULT_VENDOR_LOOKBACK_DAYS, ge=0, le=1460)
    backfill_start: date | None = None

    @model_validator(mode="after")
    def _consistent(self) -> VendorConfig:
        if self.enabled and not self.accounts:
            raise _field_error("accounts", [], "at least one account when vendor is enabled")
        seen: dict[tuple[str, str], int] = {}
        for i, a in enumerate(self.accounts):
            key = (a.selling_partner_id, a.marketplace_id)
            if key in seen:
                raise _field_error(
                    "accounts",
                    a.selling_partner_id,
                    f"accounts[{i}] repeats accounts[{seen[key]}] (same partner and marketplace)",
                )
            seen[key] = i
        return self

    def account_lwa_app(self, account: VendorAccountConfig) -> str:
        """The LWA app that signs `account`'s calls."""
        return account.lwa_app or self.lwa_app

    def report_entries(self, account: VendorAccountConfig) -> list[VendorReportConfig]:
        """The configured report entries, or the default set for `account`."""
        if self.reports is not None:
            return list(self.reports)
        ba = self.brand_analytics if account.brand_analytics is None else account.brand_analytics
        return [
            VendorReportConfig(report_type=t, options=o)
            for t, o in default_vendor_report_options(ba).items()
        ]

    def planned_reports(self, account: VendorAccountConfig) -> tuple[PlannedReport, ...]:
        """Every spec for `account` (account options expanded) with its lookback in days."""
        out: list[PlannedReport] = []
        for entry in self.report_entries(account):
            rt = VENDOR_REPORT_TYPES[entry.report_type]
            lookback = _vendor_lookback(rt, self.lookback_days, entry.lookback_days)
            for spec in vendor_specs(
                rt, entry.fixed_options(), account.selling_programs, account.distributor_views
            ):
                out.append(PlannedReport(spec, lookback))
        return tuple(out)


# ---- [storage] ----------------------------------------------------------------------------------


def _base_dir(info: ValidationInfo) -> Path:
    ctx = info.context or {}
    return Path(ctx.get("base_dir") or Path.cwd())


class StorageConfig(_Section):
    """[storage]: the lake folder, the raw zone (folder or s3:// URL) and the ledger.

    Relative paths are relative to the config file's folder. `raw` defaults to `<lake>/raw`,
    `ledger` to `<lake>/ledger.sqlite` (a path is SQLite; `dynamodb://TABLE` is DynamoDB).
    """

    lake: Path = Field(default=Path("lake"), validate_default=True)
    raw: str | None = None
    ledger: str | None = None

    @field_validator("lake", mode="before")
    @classmethod
    def _lake_folder(cls, value: Any, info: ValidationInfo) -> Any:
        text = str(value)
        if "://" in text:
            raise ValueError("must be a local folder (the raw zone may be s3://, see raw)")
        path = Path(text).expanduser()
        return path if path.is_absolute() else _base_dir(info) / path

    @field_validator("raw")
    @classmethod
    def _raw_location(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "://" in value:
            if not _S3_URL.match(value):
                raise ValueError("must be a folder or s3://BUCKET[/PREFIX] (a valid bucket name)")
            return value.rstrip("/")
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else _base_dir(info) / path)

    @field_validator("ledger")
    @classmethod
    def _ledger_location(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        if "://" in value:
            if not _DYNAMO_URL.match(value):
                raise ValueError("must be a SQLite file path or dynamodb://TABLE")
            return value
        path = Path(value).expanduser()
        return str(path if path.is_absolute() else _base_dir(info) / path)

    @property
    def raw_location(self) -> str:
        """Where raw documents go: a folder path or an s3:// URL."""
        return self.raw or str(self.lake / "raw")

    @property
    def ledger_location(self) -> str:
        """The ledger: a SQLite file path or a dynamodb:// URL."""
        return self.ledger or str(self.lake / "ledger.sqlite")


# ---- [run] --------------------------------------------------------------------------------------


class RunConfig(_Section):
    """[run]: how many slices at once, how long to wait for a report, how to poll."""

    # Creates under way per account, and downloads at once. Slices waiting for their reports are
    # not counted: a wait costs a poll now and then, and the rate limits pace every call.
    concurrency: int = Field(default=8, ge=1, le=256)
    # Keys: "default", a source ("ads", "vendor") or a report type; the most specific wins.
    max_wait: dict[str, Duration] = Field(default_factory=dict)
    poll_initial: Duration = timedelta(seconds=30)
    poll_max: Duration = timedelta(minutes=5)
    # 1.2: a finished report waits at most ~20% of its age for the next poll (1.5 let the
    # slowest report, which sets when a run ends, idle up to half its age: benchmarks/ingest_schedule).
    poll_factor: float = Field(default=1.2, gt=1.0, le=10.0)
    http_timeout: Duration = timedelta(seconds=60)

    @field_validator("max_wait")
    @classmethod
    def _known_keys_of_max_wait(cls, value: dict[str, timedelta]) -> dict[str, timedelta]:
        allowed = ("default", "ads", "vendor", *ADS_REPORT_TYPES, *VENDOR_REPORT_TYPES)
        for key in value:
            if key not in allowed:
                raise ValueError(
                    f"unknown key {key!r}; allowed: default, ads, vendor or a report type"
                )
        return value

    @model_validator(mode="after")
    def _poll_order(self) -> RunConfig:
        if self.poll_max < self.poll_initial:
            raise _field_error(
                "poll_max",
                str(self.poll_max),
                f"must be at least poll_initial ({self.poll_initial})",
            )
        return self

    def max_wait_for(self, source: str, report_type: str) -> timedelta:
        """How long a run waits for one report before leaving it to the next run."""
        for key in (report_type, source, "default"):
            if key in self.max_wait:
                return self.max_wait[key]
        return DEFAULT_MAX_WAIT


# ---- [endpoints] --------------------------------------------------------------------------------


def _url(value: Any) -> str:
    if not isinstance(value, str) or not re.match(r"^https?://[^\s/]+", value):
        raise ValueError("must be an http(s) URL")
    return value.rstrip("/")


Url = Annotated[str, PlainValidator(_url)]


class EndpointsConfig(_Section):
    """[endpoints]: base URLs per region (Amazon's production hosts unless overridden).

    `base_url` puts every API behind one server, e.g. the emulator: APIs at <base_url>/na|eu|fe,
    LWA at <base_url>/auth/o2/token. The per-region tables override single entries.
    """

    base_url: Url | None = None
    ads: dict[RegionField, Url] = Field(default_factory=dict)
    spapi: dict[RegionField, Url] = Field(default_factory=dict)
    ads_lwa: dict[RegionField, Url] = Field(default_factory=dict)
    spapi_lwa: dict[RegionField, Url] = Field(default_factory=dict)

    def hosts(self, region: Region | str) -> Hosts:
        """The base URLs one region's clients talk to."""
        r = _region(region)
        if self.base_url:
            base = emulator_hosts(self.base_url, r)
        else:
            base = Hosts(ADS_HOSTS[r], SPAPI_HOSTS[r], ADS_LWA_TOKEN_URLS[r], SPAPI_LWA_TOKEN_URL)
        return Hosts(
            self.ads.get(r, base.ads),
            self.spapi.get(r, base.spapi),
            self.ads_lwa.get(r, base.ads_lwa),
            self.spapi_lwa.get(r, base.spapi_lwa),
        )


# ---- [transform] and [notify] --------------------------------------------------------------------


class TransformConfig(_Section):
    """[transform]: when the transform starts and how many documents it parses at once."""

    # The transform starts once no new raw document has arrived for this long (guidance step 4).
    quiet_period: Duration = timedelta(seconds=30)
    workers: int = Field(default=2, ge=1, le=64)
    # How often `amzlake transform --watch` looks for new raw documents.
    poll_interval: Duration = timedelta(seconds=10)


class MaintenanceConfig(_Section):
    """[maintenance]: keep the lake small and fast as it ages (`amzlake maintain`)."""

    after_run: bool = True  # maintain at the end of `amzlake run` ...
    every: Duration = timedelta(days=1)  # ... at most this often
    compact: bool = True
    # Snapshots (time travel, rollback) older than this are expired; the newest few always stay.
    snapshot_retention: Duration = timedelta(days=7)
    min_snapshots: int = Field(default=3, ge=1, le=10_000)
    # Unreferenced files are removed once this old: a commit in flight may be about to use a
    # younger one, so it must exceed the longest transform.
    orphan_age: Duration = timedelta(days=3)

    @field_validator("orphan_age")
    @classmethod
    def _safe_orphan_age(cls, value: timedelta) -> timedelta:
        if value < timedelta(hours=1):
            raise ValueError("must be at least 1h: a younger unreferenced file may belong to a "
                             "commit still running")
        return value


class WebhookConfig(_Section):
    """A webhook notifier: events are POSTed as JSON, retried with backoff."""

    url: Url
    retries: int = Field(default=3, ge=0, le=10)
    timeout: Duration = timedelta(seconds=10)


class NotifyConfig(_Section):
    """[notify]: where commit events go (a log line unless turned off; the others when set)."""

    log: bool = True
    jsonl: Path | None = None  # a JSON-lines file events are appended to
    webhook: WebhookConfig | None = None
    command: list[str] | None = Field(default=None, min_length=1)  # gets the event JSON on stdin
    # An SNS topic ARN (the AWS runtime): each event is published to it as JSON.
    sns: str | None = Field(default=None, pattern=_SNS_ARN.pattern)

    @field_validator("jsonl", mode="before")
    @classmethod
    def _jsonl_path(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:
            return None
        path = Path(str(value)).expanduser()
        return path if path.is_absolute() else _base_dir(info) / path


# ---- The whole file -----------------------------------------------------------------------------


class AmzlakeConfig(_Section):
    """The whole configuration."""

    lwa: dict[AppName, LwaAppConfig] = Field(default_factory=dict)
    ads: AdsConfig = Field(default_factory=lambda: AdsConfig(enabled=False))
    vendor: VendorConfig = Field(default_factory=lambda: VendorConfig(enabled=False))
    storage: StorageConfig = Field(default_factory=StorageConfig)
    run: RunConfig = Field(default_factory=RunConfig)
    endpoints: EndpointsConfig = Field(default_factory=EndpointsConfig)
    transform: TransformConfig = Field(default_factory=TransformConfig)
    notify: NotifyConfig = Field(default_factory=NotifyConfig)
    maintenance: MaintenanceConfig = Field(default_factory=MaintenanceConfig)

    _path: Path | None = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _lwa_apps_exist(self) -> AmzlakeConfig:
        configured = _allowed(self.lwa) or "(none: add an [lwa.<name>] table)"
        if self.ads.enabled and self.ads.lwa_app not in self.lwa:
            raise _field_error(
                "ads.lwa_app", self.ads.lwa_app, f"no such LWA app; configured: {configured}"
            )
        if self.vendor.enabled:
            for i, a in enumerate(self.vendor.accounts):
                app = self.vendor.account_lwa_app(a)
                if app not in self.lwa:
                    where = f"vendor.accounts[{i}].lwa_app" if a.lwa_app else "vendor.lwa_app"
                    raise _field_error(where, app, f"no such LWA app; configured: {configured}")
        return self

    @property
    def path(self) -> Path | None:
        """The file this config was read from (None when built in code)."""
        return self._path

    @property
    def base_dir(self) -> Path:
        """The folder relative paths (credential files among them) are resolved against."""
        return self._path.parent if self._path else Path.cwd()


# ---- Errors -------------------------------------------------------------------------------------


def _where(loc: Iterable[Any]) -> str:
    out = ""
    for part in loc:
        if part == "[key]":
            continue  # pydantic's marker for a dict key; the key itself precedes it
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def _show(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def format_error(error: Mapping[str, Any], env_sources: Mapping[str, str] | None = None) -> str:
    """One line for one pydantic error: `field = value: what is allowed` (secret values hidden)."""
    loc = list(error.get("loc", ()))
    ctx = error.get("ctx") or {}
    value = error.get("input")
    if "field" in ctx:
        loc = [*loc, *str(ctx["field"]).split(".")]
        value = ctx.get("value")
    where = _where(loc) or "(top level)"
    message = str(error.get("msg", "invalid"))
    message = message.removeprefix("Value error, ").replace("Input should be", "must be")
    kind = error.get("type")
    if kind == "missing":
        text = f"{where}: missing; required"
    elif kind == "field_error" and value is None:
        text = f"{where}: {message}"
    elif kind == "secret_ref" or (set(map(str, loc)) & SECRET_FIELDS and value is not None):
        text = f"{where} = <hidden>: {message}"
    elif kind == "unknown_key":
        text = f"{where}: {message}"
    else:
        text = f"{where} = {_show(value)}: {message}"
    plain = _where(loc)
    # The variable that set this field, or one below it (an override that built a table here).
    source = next(
        (
            var
            for path, var in (env_sources or {}).items()
            if path == plain or path.startswith((plain + ".", plain + "["))
        ),
        None,
    )
    return f"{text} (from {source})" if source else text


def _config_error(e: ValidationError, origin: str, env_sources: Mapping[str, str]) -> ConfigError:
    errors = e.errors(include_url=False)
    first = format_error(errors[0], env_sources)
    more = f" (and {len(errors) - 1} more)" if len(errors) > 1 else ""
    return ConfigError(f"{origin}: {first}{more}")


# ---- Env overrides ------------------------------------------------------------------------------


def env_overrides(environ: Mapping[str, str]) -> list[tuple[tuple[str, ...], str, str]]:
    """The overrides in `environ`: (lowercased path, raw value, variable name), sorted by name."""
    out = []
    for name in sorted(environ):
        if not name.upper().startswith(ENV_PREFIX):
            continue
        rest = name[len(ENV_PREFIX) :]
        if "__" not in rest:
            continue
        parts = tuple(p.lower() for p in rest.split("__"))
        if any(not p for p in parts):
            raise ConfigError(f"env {name}: empty name between '__' separators")
        out.append((parts, environ[name], name))
    return out


def _env_value(raw: str, name: str) -> Any:
    if raw.lstrip().startswith(("[", "{")):
        try:
            return json.loads(raw)
        except ValueError:
            raise ConfigError(f"env {name}: a value starting with [ or {{ must be JSON") from None
    return raw


def apply_overrides(
    data: dict[str, Any], environ: Mapping[str, str]
) -> tuple[dict[str, Any], dict[str, str]]:
    """`data` with the env overrides applied, and which dotted field each variable set."""
    data = copy.deepcopy(data)
    sources: dict[str, str] = {}
    for parts, raw, name in env_overrides(environ):
        node: Any = data
        loc: list[str | int] = []
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(
                        f"env {name}: {_where(loc)} has {len(node)} item(s); "
                        f"{part!r} is not one of their indexes"
                    )
                key: str | int = int(part)
            elif isinstance(node, dict):
                # Match existing keys case-insensitively (LWA app names, NA/EU/FE).
                key = next((k for k in node if str(k).lower() == part), part)
            else:
                raise ConfigError(f"env {name}: {_where(loc)} is a value, not a table")
            loc.append(key)
            if last:
                node[key] = _env_value(raw, name)
            else:
                if isinstance(node, dict) and key not in node:
                    node[key] = {}
                node = node[key]
        sources[_where(loc)] = name
    return data, sources


# ---- Loading ------------------------------------------------------------------------------------


def candidate_paths(cwd: Path) -> list[Path]:
    """Where `amzlake.toml` is looked for without --config: `cwd` and its parents."""
    return [d / CONFIG_FILENAME for d in (cwd, *cwd.parents)]


def find_config(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> Path:
    """The config file to read: --config, else $AMZLAKE_CONFIG, else the nearest amzlake.toml."""
    env = os.environ if environ is None else environ
    if path is not None or env.get(ENV_CONFIG):
        chosen = Path(path if path is not None else env[ENV_CONFIG]).expanduser()
        how = "--config" if path is not None else ENV_CONFIG
        if not chosen.is_file():
            raise ConfigError(f"config file not found: {chosen} (from {how})")
        return chosen
    candidates = candidate_paths((cwd or Path.cwd()).resolve())
    for c in candidates:
        if c.is_file():
            return c
    shown = ", ".join(str(c) for c in candidates[:3]) + (", ..." if len(candidates) > 3 else "")
    raise ConfigError(
        f"no {CONFIG_FILENAME} found; looked in {shown}; pass --config, set "
        f"{ENV_CONFIG}, or run `amzlake init`"
    )


def parse_config(
    data: Mapping[str, Any],
    *,
    base_dir: Path | None = None,
    environ: Mapping[str, str] | None = None,
    origin: str = "config",
) -> AmzlakeConfig:
    """A validated config from parsed TOML plus env overrides; ConfigError (one line) if bad."""
    merged, sources = apply_overrides(dict(data), os.environ if environ is None else environ)
    try:
        return AmzlakeConfig.model_validate(merged, context={"base_dir": base_dir or Path.cwd()})
    except ValidationError as e:
        raise _config_error(e, origin, sources) from None


def load_config(
    path: Path | str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    cwd: Path | None = None,
) -> AmzlakeConfig:
    """The validated config from the file found by `find_config`, with env overrides applied."""
    env = os.environ if environ is None else environ
    file = find_config(path, environ=env, cwd=cwd)
    try:
        data = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{file}: not valid TOML: {e}") from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"{file}: cannot read: {e}") from None
    config = parse_config(data, base_dir=file.resolve().parent, environ=env, origin=str(file))
    config._path = file.resolve()
    return config
