"""Config: validation messages, env overrides, file discovery, default reports, `amzlake init`."""

from __future__ import annotations

import copy
import os
import re
import subprocess
import sys
import tomllib
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from amzlake.catalog.ads import ADS_REPORT_TYPES, AdProduct, validate_create_request
from amzlake.catalog.vendor import VENDOR_REPORT_TYPES
from amzlake.cli import app
from amzlake.config import (
    ADS_30D_LOOKBACK_DAYS,
    CONFIG_FILENAME,
    DEFAULT_MAX_WAIT,
    AmzlakeConfig,
    find_config,
    load_config,
    parse_config,
)
from amzlake.default_reports import default_ads_reports, default_vendor_reports
from amzlake.errors import ConfigError
from amzlake.slices import AdsReportSpec
from amzlake.starter_config import STARTER_CONFIG

INLINE_SECRET = "amzn1.oa2-cs.v1.0123456789abcdefSECRET"

BASE: dict[str, Any] = {
    "lwa": {
        "default": {
            "client_id": "amzn1.application-oa2-client.abc",
            "client_secret": "env:LWA_SECRET",
        }
    },
    "ads": {"refresh_token": "env:ADS_TOKEN"},
    "vendor": {
        "accounts": [
            {
                "selling_partner_id": "A1VENDORUS",
                "region": "NA",
                "marketplace_id": "ATVPDKIKX0DER",
                "refresh_token": "env:VENDOR_US",
            },
        ],
    },
}


def with_(path: str, value: Any, base: dict[str, Any] | None = None) -> dict[str, Any]:
    """BASE with one dotted path set (a number selects a list item)."""
    data = copy.deepcopy(BASE if base is None else base)
    node: Any = data
    parts = path.split(".")
    for part in parts[:-1]:
        node = node[int(part)] if isinstance(node, list) else node.setdefault(part, {})
    if isinstance(node, list):
        node[int(parts[-1])] = value
    else:
        node[parts[-1]] = value
    return data


def parse(data: dict[str, Any], environ: dict[str, str] | None = None) -> AmzlakeConfig:
    return parse_config(data, environ=environ or {}, base_dir=Path("/lake-home"))


def error_of(data: dict[str, Any], environ: dict[str, str] | None = None) -> str:
    with pytest.raises(ConfigError) as info:
        parse(data, environ)
    assert info.value.exit_code == 2
    message = str(info.value)
    assert "\n" not in message, "a config error is one line"
    return message


def test_base_config_is_valid_and_enables_both_sources():
    config = parse(BASE)
    assert config.ads.enabled and config.vendor.enabled
    assert str(config.lwa["default"].client_secret) == "env:LWA_SECRET"


# ---- Bad input: every model names the field, the value and what is allowed -----------------------

BAD: list[tuple[str, dict[str, Any], list[str]]] = [
    # [lwa.<name>]
    (
        "lwa client_id blank",
        with_("lwa.default.client_id", "has space"),
        ["lwa.default.client_id", "'has space'", "pattern"],
    ),
    (
        "lwa app name",
        with_("lwa.bad name!", {"client_id": "x", "client_secret": "env:X"}),
        ["lwa.bad name!", "pattern"],
    ),
    (
        "lwa unknown key",
        with_("lwa.default.secret", "env:X"),
        ["lwa.default.secret", "unknown key", "client_id, client_secret"],
    ),
    (
        "lwa secret not a reference",
        with_("lwa.default.client_secret", "vault:abc"),
        ["lwa.default.client_secret", "<hidden>", "env:NAME, file:PATH#KEY or secretsmanager:"],
    ),
    (
        "lwa file ref without key",
        with_("lwa.default.client_secret", "file:/etc/creds.toml"),
        ["lwa.default.client_secret", "file:PATH#KEY"],
    ),
    # [ads]
    (
        "ads unknown key",
        with_("ads.lookbak_days", 3),
        ["ads.lookbak_days", "unknown key", "lookback_days"],
    ),
    (
        "ads lookback negative",
        with_("ads.lookback_days", -1),
        ["ads.lookback_days", "-1", "greater than or equal to 0"],
    ),
    (
        "ads lookback not a number",
        with_("ads.lookback_days", "lots"),
        ["ads.lookback_days", "'lots'", "integer"],
    ),
    ("ads region", with_("ads.regions", ["NA", "US"]), ["ads.regions[1]", "'US'", "NA, EU, FE"]),
    ("ads country", with_("ads.countries", ["XX"]), ["ads.countries", "'XX'", "US, CA"]),
    (
        "ads country outside regions",
        with_("ads.regions", ["NA"], with_("ads.countries", ["DE"])),
        ["ads.countries", "'DE'", "region EU", "allowed regions: NA"],
    ),
    (
        "ads profiles and countries",
        with_("ads.profiles", [1], with_("ads.countries", ["US"])),
        ["ads.countries", "['US']", "not both"],
    ),
    (
        "ads profile id",
        with_("ads.profiles", [0]),
        ["ads.profiles[0]", "0", "greater than or equal to 1"],
    ),
    (
        "ads refresh token missing",
        with_("ads.refresh_token", None),
        ["ads.refresh_token", "required"],
    ),
    (
        "ads lwa app missing",
        with_("ads.lwa_app", "other"),
        ["ads.lwa_app", "'other'", "configured: default"],
    ),
    (
        "ads backfill date",
        with_("ads.backfill_start", "2025-02-30"),
        ["ads.backfill_start", "'2025-02-30'", "date"],
    ),
    # [[ads.reports]]
    (
        "ads report type",
        with_("ads.reports", [{"report_type": "spKeywords"}]),
        ["ads.reports[0].report_type", "'spKeywords'", "spCampaigns"],
    ),
    (
        "ads report group_by",
        with_("ads.reports", [{"report_type": "sbCampaigns", "group_by": ["adGroup"]}]),
        ["ads.reports[0].group_by", "['adGroup']", "allowed: campaign"],
    ),
    (
        "ads report single group_by",
        with_(
            "ads.reports",
            [{"report_type": "sdCampaigns", "group_by": ["campaign", "matchedTarget"]}],
        ),
        ["ads.reports[0].group_by", "single groupBy", "campaign, matchedTarget"],
    ),
    (
        "ads report column",
        with_("ads.reports", [{"report_type": "spCampaigns", "columns": ["date", "foo"]}]),
        ["ads.reports[0].columns", "['foo']", "allowed:", "campaignId"],
    ),
    (
        "ads report summary column at daily",
        with_("ads.reports", [{"report_type": "spCampaigns", "columns": ["startDate"]}]),
        ["ads.reports[0].columns", "['startDate']", "at DAILY"],
    ),
    (
        "ads report time unit",
        with_("ads.reports", [{"report_type": "spCampaigns", "time_unit": "HOURLY"}]),
        ["ads.reports[0].time_unit", "'HOURLY'", "'DAILY' or 'SUMMARY'"],
    ),
    (
        "ads report filter field",
        with_(
            "ads.reports", [{"report_type": "spCampaigns", "filters": {"adStatus": ["ENABLED"]}}]
        ),
        ["ads.reports[0].filters", "'adStatus'", "allowed: campaignStatus"],
    ),
    (
        "ads report filter value",
        with_(
            "ads.reports", [{"report_type": "spCampaigns", "filters": {"campaignStatus": ["LIVE"]}}]
        ),
        ["ads.reports[0].filters", "LIVE", "ARCHIVED, ENABLED, PAUSED"],
    ),
    (
        "ads report format",
        with_("ads.reports", [{"report_type": "spCampaigns", "format": "CSV"}]),
        ["ads.reports[0].format", "'CSV'", "allowed: GZIP_JSON"],
    ),
    (
        "ads report repeated",
        with_("ads.reports", [{"report_type": "spCampaigns"}, {"report_type": "spCampaigns"}]),
        ["ads.reports", "'spCampaigns'", "reports[1] repeats reports[0]"],
    ),
    # [vendor]
    (
        "vendor no accounts",
        with_("vendor.accounts", []),
        ["vendor.accounts", "[]", "at least one account"],
    ),
    (
        "vendor marketplace unknown",
        with_("vendor.accounts.0.marketplace_id", "ATVPDKIKX0DEX"),
        ["vendor.accounts[0].marketplace_id", "'ATVPDKIKX0DEX'", "ATVPDKIKX0DER (US)"],
    ),
    (
        "vendor marketplace region",
        with_("vendor.accounts.0.marketplace_id", "A1PA6795UKMFR9"),
        ["vendor.accounts[0].marketplace_id", "'A1PA6795UKMFR9'", "region EU, not NA"],
    ),
    (
        "vendor region",
        with_("vendor.accounts.0.region", "APAC"),
        ["vendor.accounts[0].region", "'APAC'", "NA, EU, FE"],
    ),
    (
        "vendor selling program",
        with_("vendor.accounts.0.selling_programs", ["WHOLESALE"]),
        [
            "vendor.accounts[0].selling_programs[0]",
            "'WHOLESALE'",
            "'RETAIL', 'BUSINESS' or 'FRESH'",
        ],
    ),
    (
        "vendor distributor view",
        with_("vendor.accounts.0.distributor_views", ["BOTH"]),
        ["vendor.accounts[0].distributor_views[0]", "'BOTH'", "'MANUFACTURING' or 'SOURCING'"],
    ),
    (
        "vendor account refresh token",
        with_("vendor.accounts.0.refresh_token", INLINE_SECRET),
        ["vendor.accounts[0].refresh_token", "<hidden>", "inline secrets are not accepted"],
    ),
    (
        "vendor account lwa app",
        with_("vendor.accounts.0.lwa_app", "eu-app"),
        ["vendor.accounts[0].lwa_app", "'eu-app'", "configured: default"],
    ),
    (
        "vendor repeated account",
        with_("vendor.accounts", BASE["vendor"]["accounts"] * 2),
        ["vendor.accounts", "'A1VENDORUS'", "accounts[1] repeats accounts[0]"],
    ),
    (
        "vendor report type",
        with_("vendor.reports", [{"report_type": "GET_VENDOR_PO_REPORT"}]),
        ["vendor.reports[0].report_type", "'GET_VENDOR_PO_REPORT'", "GET_VENDOR_SALES_REPORT"],
    ),
    (
        "vendor report option",
        with_(
            "vendor.reports",
            [{"report_type": "GET_VENDOR_TRAFFIC_REPORT", "options": {"sellingProgram": "RETAIL"}}],
        ),
        ["vendor.reports[0].options", "'sellingProgram'", "allowed: reportPeriod"],
    ),
    (
        "vendor report option value",
        with_(
            "vendor.reports",
            [{"report_type": "GET_VENDOR_SALES_REPORT", "options": {"reportPeriod": "HOUR"}}],
        ),
        ["vendor.reports[0].options", "'HOUR'", "DAY, WEEK, MONTH, QUARTER, YEAR"],
    ),
    (
        "vendor report required option",
        with_(
            "vendor.reports",
            [{"report_type": "GET_BRAND_ANALYTICS_SEARCH_QUERY_PERFORMANCE_REPORT"}],
        ),
        ["vendor.reports[0].options", "{}", "needs option(s): asin"],
    ),
    (
        "vendor lookback",
        with_("vendor.lookback_days", 5000),
        ["vendor.lookback_days", "5000", "less than or equal to 1460"],
    ),
    # [storage]
    (
        "storage raw scheme",
        with_("storage.raw", "gs://bucket/raw"),
        ["storage.raw", "'gs://bucket/raw'", "s3://BUCKET"],
    ),
    (
        "storage raw bucket",
        with_("storage.raw", "s3://B!/raw"),
        ["storage.raw", "'s3://B!/raw'", "valid bucket"],
    ),
    (
        "storage lake url",
        with_("storage.lake", "s3://bucket/lake"),
        ["storage.lake", "'s3://bucket/lake'", "local folder"],
    ),
    (
        "storage ledger",
        with_("storage.ledger", "postgres://db"),
        ["storage.ledger", "'postgres://db'", "dynamodb://TABLE"],
    ),
    # [run]
    (
        "run concurrency",
        with_("run.concurrency", 0),
        ["run.concurrency", "0", "greater than or equal to 1"],
    ),
    (
        "run max_wait key",
        with_("run.max_wait", {"spCampaign": "1h"}),
        ["run.max_wait", "'spCampaign'", "report type"],
    ),
    (
        "run duration",
        with_("run.poll_initial", "soon"),
        ["run.poll_initial", "'soon'", "30s, 15m, 3h"],
    ),
    (
        "run poll order",
        with_("run.poll_max", "10s"),
        ["run.poll_max", "0:00:10", "at least poll_initial"],
    ),
    ("run poll factor", with_("run.poll_factor", 1), ["run.poll_factor", "1", "greater than 1"]),
    # [endpoints]
    (
        "endpoints url",
        with_("endpoints.base_url", "localhost:8600"),
        ["endpoints.base_url", "'localhost:8600'", "http(s) URL"],
    ),
    (
        "endpoints region key",
        with_("endpoints.ads", {"APAC": "https://x"}),
        ["endpoints.ads.APAC", "NA, EU, FE"],
    ),
    (
        "top-level unknown section",
        with_("notifications", {}),
        ["notifications", "unknown key", "lwa, ads, vendor"],
    ),
]


@pytest.mark.parametrize(
    ("data", "expected"), [(d, e) for _, d, e in BAD], ids=[n for n, _, _ in BAD]
)
def test_bad_config_names_field_value_and_allowed(data: dict[str, Any], expected: list[str]):
    message = error_of(data)
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_inline_secret_is_never_echoed():
    message = error_of(with_("lwa.default.client_secret", INLINE_SECRET))
    assert INLINE_SECRET not in message
    assert "SECRET" not in message


def test_error_counts_further_problems():
    data = with_("run.concurrency", 0, with_("ads.lookback_days", -1))
    assert "(and 1 more)" in error_of(data)


def test_disabled_sections_need_no_credentials():
    config = parse({})
    assert not config.ads.enabled and not config.vendor.enabled
    assert config.lwa == {}


# ---- Env overrides -------------------------------------------------------------------------------


def test_env_overrides_convert_and_nest():
    config = parse(
        BASE,
        {
            "AMZLAKE_ADS__LOOKBACK_DAYS": "30",
            "AMZLAKE_ADS__COUNTRIES": '["us", "CA"]',
            "AMZLAKE_LWA__DEFAULT__CLIENT_ID": "amzn1.application-oa2-client.fromenv",
            "AMZLAKE_VENDOR__ACCOUNTS__0__REFRESH_TOKEN": "env:OTHER_TOKEN",
            "AMZLAKE_VENDOR__BRAND_ANALYTICS": "true",
            "AMZLAKE_RUN__MAX_WAIT": '{"ads": "90m"}',
            "AMZLAKE_ENDPOINTS__BASE_URL": "http://127.0.0.1:8600/",
        },
    )
    assert config.ads.lookback_days == 30
    assert config.ads.countries == ["US", "CA"]
    assert config.lwa["default"].client_id.endswith(".fromenv")
    assert str(config.vendor.accounts[0].refresh_token) == "env:OTHER_TOKEN"
    assert config.vendor.brand_analytics is True
    assert config.run.max_wait_for("ads", "spCampaigns") == timedelta(minutes=90)
    assert config.endpoints.hosts("EU").ads == "http://127.0.0.1:8600/eu"


def test_env_overrides_ignore_names_without_double_underscore():
    config = parse(
        BASE,
        {
            "AMZLAKE_CONFIG": "/nowhere.toml",
            "AMZLAKE_ADS_REFRESH_TOKEN": "Atzr|x",
            "OTHER__ADS__LOOKBACK_DAYS": "1",
        },
    )
    assert config.ads.lookback_days is None


def test_env_override_errors_name_the_variable():
    message = error_of(BASE, {"AMZLAKE_ADS__LOOKBACK_DAYS": "-3"})
    assert "ads.lookback_days = '-3'" in message
    assert "(from AMZLAKE_ADS__LOOKBACK_DAYS)" in message


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AMZLAKE_VENDOR__ACCOUNTS__3__REGION", "EU", "vendor.accounts has 1 item(s)"),
        (
            "AMZLAKE_ADS__LOOKBACK_DAYS__X",
            "1",
            "ads.lookback_days = {'x': '1'}: must be a valid integer",
        ),
        ("AMZLAKE_RUN__CONCURRENCY__X", "1", "run.concurrency is a value, not a table"),
        ("AMZLAKE_ADS__COUNTRIES", "[oops", "must be JSON"),
        ("AMZLAKE_ADS____X", "1", "empty name"),
    ],
)
def test_bad_env_overrides(name: str, value: str, expected: str):
    message = error_of(with_("run.concurrency", 4), {name: value})
    assert name in message and expected in message


def test_env_override_of_a_secret_field_hides_the_value():
    message = error_of(BASE, {"AMZLAKE_ADS__REFRESH_TOKEN": "Atzr|very-secret-token"})
    assert "very-secret-token" not in message
    assert (
        "ads.refresh_token = <hidden>" in message and "(from AMZLAKE_ADS__REFRESH_TOKEN)" in message
    )


# ---- Finding and reading the file ----------------------------------------------------------------


def write_toml(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_explicit_path_wins_and_missing_file_says_where(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"config file not found: .*nope\.toml \(from --config\)"):
        find_config(tmp_path / "nope.toml", environ={})
    with pytest.raises(ConfigError, match=r"nope\.toml \(from AMZLAKE_CONFIG\)"):
        find_config(environ={"AMZLAKE_CONFIG": str(tmp_path / "nope.toml")})


def test_config_found_in_a_parent_folder(tmp_path: Path):
    found = write_toml(tmp_path / CONFIG_FILENAME, "")
    deep = tmp_path / "a" / "b"
    deep.mkdir(parents=True)
    assert find_config(environ={}, cwd=deep) == found


def test_no_config_lists_where_it_looked(tmp_path: Path):
    deep = tmp_path / "x"
    deep.mkdir()
    with pytest.raises(ConfigError) as info:
        find_config(environ={}, cwd=deep)
    message = str(info.value)
    assert str(deep / CONFIG_FILENAME) in message and str(tmp_path / CONFIG_FILENAME) in message
    assert "amzlake init" in message


def test_toml_syntax_error_names_the_file(tmp_path: Path):
    bad = write_toml(tmp_path / "amzlake.toml", "[ads\nenabled = true\n")
    with pytest.raises(ConfigError, match=r"amzlake\.toml: not valid TOML"):
        load_config(bad, environ={})


def test_relative_storage_paths_are_relative_to_the_config_file(tmp_path: Path):
    file = write_toml(
        tmp_path / "conf" / "amzlake.toml", '[storage]\nlake = "data"\nraw = "s3://bkt/raw/"\n'
    )
    config = load_config(file, environ={})
    assert config.path == file.resolve()
    assert config.storage.lake == (tmp_path / "conf" / "data").resolve()
    assert config.storage.raw_location == "s3://bkt/raw"
    assert config.storage.ledger_location == str(
        (tmp_path / "conf" / "data" / "ledger.sqlite").resolve()
    )


def test_load_config_reads_env_var_path_and_overrides(tmp_path: Path):
    file = write_toml(tmp_path / "elsewhere.toml", "[run]\nconcurrency = 2\n")
    config = load_config(
        environ={"AMZLAKE_CONFIG": str(file), "AMZLAKE_RUN__CONCURRENCY": "3"}, cwd=tmp_path
    )
    assert config.run.concurrency == 3


# ---- Defaults: reports, lookbacks, waits, endpoints ----------------------------------------------


def catalog_body(spec: AdsReportSpec, day: date) -> dict[str, Any]:
    return {
        "startDate": day.isoformat(),
        "endDate": day.isoformat(),
        "configuration": {
            "adProduct": spec.ad_product,
            "reportTypeId": spec.report_type_id,
            "groupBy": list(spec.group_by),
            "columns": list(spec.columns),
            "timeUnit": spec.time_unit,
            "format": spec.format,
        },
    }


def test_default_ads_reports_cover_every_sp_sb_sd_type_and_validate():
    specs = {p.spec.report_type_id: p.spec for p in parse(BASE).ads.planned_reports()}
    wanted = {
        k
        for k, rt in ADS_REPORT_TYPES.items()
        if rt.ad_product
        in (AdProduct.SPONSORED_PRODUCTS, AdProduct.SPONSORED_BRANDS, AdProduct.SPONSORED_DISPLAY)
    }
    assert set(specs) == wanted and len(wanted) == 20
    assert set(specs.values()) == set(default_ads_reports())
    for spec in specs.values():
        rt = ADS_REPORT_TYPES[spec.report_type_id]
        assert spec.time_unit == "DAILY"
        request = validate_create_request(
            catalog_body(spec, date(2026, 11, 19)), date(2026, 11, 20)
        )
        # Every column the groupBy allows at DAILY: `date` in, the SUMMARY date columns out.
        assert set(request.columns) == rt.columns_for(spec.group_by) - {"startDate", "endDate"}
        assert "date" in request.columns


def test_explicit_ads_report_keeps_defaults_for_unset_fields():
    data = with_(
        "ads.reports",
        [
            {"report_type": "spCampaigns", "group_by": ["campaign", "adGroup"]},
            {"report_type": "spTargeting", "columns": ["date", "clicks"], "lookback_days": 10},
        ],
    )
    first, second = parse(data).ads.planned_reports()
    assert first.spec.group_by == ("campaign", "adGroup")
    assert "adGroupId" in first.spec.columns and "campaignId" in first.spec.columns
    assert second.spec.group_by == ("targeting",) and second.spec.columns == ("date", "clicks")
    # spCampaigns' default columns include 30-day attribution (e.g. purchases30d): 58 days.
    assert (first.lookback_days, second.lookback_days) == (ADS_30D_LOOKBACK_DAYS, 10)


def test_ads_default_lookback_covers_each_reports_attribution_window():
    lookback = {p.spec.report_type_id: p.lookback_days for p in parse(BASE).ads.planned_reports()}
    assert lookback["spCampaigns"] == lookback["spAdvertisedProduct"] == 58  # *30d columns
    assert lookback["sbCampaigns"] == lookback["sdCampaigns"] == 42  # 14-day attribution at most
    narrow = {**BASE, "ads": {**BASE["ads"], "reports": [
        {"report_type": "spCampaigns", "columns": ["date", "clicks", "purchases14d"]}]}}
    assert [p.lookback_days for p in parse(narrow).ads.planned_reports()] == [42]
    fixed = {**BASE, "ads": {**BASE["ads"], "lookback_days": 7}}
    assert set(p.lookback_days for p in parse(fixed).ads.planned_reports()) == {7}


def test_ads_lookback_is_capped_by_retention():
    plans = {
        p.spec.report_type_id: p.lookback_days
        for p in parse(with_("ads.lookback_days", 100)).ads.planned_reports()
    }
    assert plans["spCampaigns"] == 95 and plans["sbCampaigns"] == 60 and plans["sdCampaigns"] == 65
    assert plans["spGrossAndInvalids"] == 100


def vendor_types(config: AmzlakeConfig, index: int = 0) -> dict[str, list[dict[str, str]]]:
    out: dict[str, list[dict[str, str]]] = {}
    for p in config.vendor.planned_reports(config.vendor.accounts[index]):
        out.setdefault(p.spec.report_type, []).append(p.spec.options_dict())  # type: ignore[union-attr]
    return out


def test_default_vendor_reports_expand_account_options():
    data = with_(
        "vendor.accounts.0.selling_programs",
        ["RETAIL", "BUSINESS"],
        with_("vendor.accounts.0.distributor_views", ["MANUFACTURING", "SOURCING"]),
    )
    types = vendor_types(parse(data))
    assert set(types) == {
        "GET_VENDOR_SALES_REPORT",
        "GET_VENDOR_INVENTORY_REPORT",
        "GET_VENDOR_TRAFFIC_REPORT",
        "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT",
        "GET_VENDOR_FORECASTING_REPORT",
        "GET_VENDOR_REAL_TIME_SALES_REPORT",
        "GET_VENDOR_REAL_TIME_INVENTORY_REPORT",
        "GET_VENDOR_REAL_TIME_TRAFFIC_REPORT",
    }
    assert len(types["GET_VENDOR_SALES_REPORT"]) == 4  # 2 programs x 2 views
    assert len(types["GET_VENDOR_INVENTORY_REPORT"]) == 2  # inventory has no BUSINESS program
    assert types["GET_VENDOR_TRAFFIC_REPORT"] == [{"reportPeriod": "DAY"}]
    assert types["GET_VENDOR_FORECASTING_REPORT"] == [{"sellingProgram": "RETAIL"}]
    assert types["GET_VENDOR_REAL_TIME_SALES_REPORT"] == [{}]
    for report_type, option_sets in types.items():
        rt = VENDOR_REPORT_TYPES[report_type]
        for options in option_sets:
            assert set(options) == set(rt.required_options)
            assert all(
                rt.option(k).values is None or v in rt.option(k).values for k, v in options.items()
            )


def test_brand_analytics_only_when_enabled():
    assert not any(t.startswith("GET_BRAND_ANALYTICS") for t in vendor_types(parse(BASE)))
    on = vendor_types(parse(with_("vendor.brand_analytics", True)))
    assert {t for t in on if t.startswith("GET_BRAND_ANALYTICS")} == {
        "GET_BRAND_ANALYTICS_SEARCH_TERMS_REPORT",
        "GET_BRAND_ANALYTICS_MARKET_BASKET_REPORT",
        "GET_BRAND_ANALYTICS_REPEAT_PURCHASE_REPORT",
        "GET_BRAND_ANALYTICS_SEARCH_CATALOG_PERFORMANCE_REPORT",
    }
    account_off = with_(
        "vendor.accounts.0.brand_analytics", False, with_("vendor.brand_analytics", True)
    )
    assert not any(t.startswith("GET_BRAND_ANALYTICS") for t in vendor_types(parse(account_off)))


def test_default_vendor_reports_function_matches_config():
    config = parse(BASE)
    account = config.vendor.accounts[0]
    assert tuple(p.spec for p in config.vendor.planned_reports(account)) == default_vendor_reports(
        ["RETAIL"], ["MANUFACTURING"]
    )


def test_vendor_lookbacks_follow_restatement_and_amazon_limits():
    data = with_(
        "vendor.reports",
        [
            {"report_type": "GET_VENDOR_SALES_REPORT"},
            {"report_type": "GET_VENDOR_REAL_TIME_SALES_REPORT"},
            {"report_type": "GET_VENDOR_REAL_TIME_INVENTORY_REPORT", "lookback_days": 20},
            {"report_type": "GET_VENDOR_FORECASTING_REPORT", "lookback_days": 20},
            {
                "report_type": "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT",
                "options": {"reportPeriod": "MONTH"},
            },
        ],
    )
    plans = parse(data).vendor.planned_reports(parse(data).vendor.accounts[0])
    got = {p.spec.report_type: p.lookback_days for p in plans}
    assert got["GET_VENDOR_SALES_REPORT"] == 30  # restated: the section's default
    assert got["GET_VENDOR_REAL_TIME_SALES_REPORT"] == 0  # not restated
    assert got["GET_VENDOR_REAL_TIME_INVENTORY_REPORT"] == 7  # Amazon: start at most 168 h back
    assert got["GET_VENDOR_FORECASTING_REPORT"] == 0  # no dates at all
    nppm = next(
        p for p in plans if p.spec.report_type == "GET_VENDOR_NET_PURE_PRODUCT_MARGIN_REPORT"
    )
    assert nppm.spec.options_dict() == {"reportPeriod": "MONTH"}


def test_max_wait_most_specific_key_wins():
    run = parse(
        with_("run.max_wait", {"default": "2h", "vendor": "45m", "GET_VENDOR_SALES_REPORT": 600})
    ).run
    assert run.max_wait_for("vendor", "GET_VENDOR_SALES_REPORT") == timedelta(seconds=600)
    assert run.max_wait_for("vendor", "GET_VENDOR_TRAFFIC_REPORT") == timedelta(minutes=45)
    assert run.max_wait_for("ads", "spCampaigns") == timedelta(hours=2)
    assert parse(BASE).run.max_wait_for("ads", "spCampaigns") == DEFAULT_MAX_WAIT


def test_endpoints_default_to_amazon_and_override_per_region():
    endpoints = parse(
        with_("endpoints.spapi", {"na": "https://sandbox.sellingpartnerapi-na.amazon.com/"})
    ).endpoints
    na, fe = endpoints.hosts("NA"), endpoints.hosts("FE")
    assert na.ads == "https://advertising-api.amazon.com"
    assert na.spapi == "https://sandbox.sellingpartnerapi-na.amazon.com"
    assert (
        fe.ads == "https://advertising-api-fe.amazon.com"
        and fe.ads_lwa == "https://api.amazon.co.jp/auth/o2/token"
    )
    assert fe.spapi_lwa == "https://api.amazon.com/auth/o2/token"


def test_emulator_base_url_serves_every_region():
    hosts = parse(with_("endpoints.base_url", "http://127.0.0.1:9000")).endpoints.hosts("NA")
    assert hosts.ads == hosts.spapi == "http://127.0.0.1:9000/na"
    assert hosts.ads_lwa == hosts.spapi_lwa == "http://127.0.0.1:9000/auth/o2/token"


def test_config_round_trips_through_its_dump():
    config = parse(with_("run.max_wait", {"ads": "2h"}, with_("ads.countries", ["US"])))
    again = parse(config.model_dump(mode="json"))
    assert again.model_dump() == config.model_dump()


# ---- The starter config and `amzlake init` -------------------------------------------------------


def test_starter_config_loads_and_round_trips(tmp_path: Path):
    file = write_toml(tmp_path / "amzlake.toml", STARTER_CONFIG)
    config = load_config(file, environ={})
    assert config.ads.enabled and not config.vendor.enabled
    assert str(config.ads.refresh_token) == "env:AMZLAKE_ADS_REFRESH_TOKEN"
    assert len(config.ads.planned_reports()) == 20
    assert config.storage.lake == tmp_path.resolve() / "lake"
    assert parse(config.model_dump(mode="json")).model_dump() == config.model_dump()


def test_starter_config_commented_examples_are_valid_too(tmp_path: Path):
    # Uncomment every example line (the `# key = value` ones) and it still loads.
    example = re.compile(r"^# ((?!ledger|profiles)[a-z_]+ = |\[\[)")
    lines = [line[2:] if example.match(line) else line for line in STARTER_CONFIG.splitlines()]
    data = tomllib.loads("\n".join(lines))
    assert data["ads"]["reports"][0]["report_type"] == "spCampaigns"
    config = parse_config(data, environ={}, base_dir=tmp_path)
    assert config.storage.raw_location == "s3://my-bucket/amzlake/raw"
    assert config.ads.countries == ["US", "CA", "UK", "DE"]


def test_init_writes_a_loadable_config_and_refuses_to_overwrite(tmp_path: Path):
    runner = CliRunner()
    target = tmp_path / "conf" / "amzlake.toml"
    result = runner.invoke(app, ["init", "--path", str(target)])
    assert result.exit_code == 0, result.output
    assert target.read_text(encoding="utf-8") == STARTER_CONFIG
    assert load_config(target, environ={}).ads.enabled

    target.write_text("# mine\n", encoding="utf-8")
    again = runner.invoke(app, ["init", "--path", str(target)])
    assert isinstance(again.exception, ConfigError) and "--force" in str(again.exception)
    assert target.read_text(encoding="utf-8") == "# mine\n"

    forced = runner.invoke(app, ["init", "--path", str(target), "--force"])
    assert forced.exit_code == 0 and target.read_text(encoding="utf-8") == STARTER_CONFIG


def test_init_refusal_exits_2_through_main(tmp_path: Path):
    (tmp_path / "amzlake.toml").write_text("", encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, "-m", "amzlake", "init"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
        timeout=60,
    )
    assert proc.returncode == 2
    assert "amzlake.toml already exists; pass --force" in proc.stderr


def test_init_help_shows_an_example():
    result = CliRunner().invoke(app, ["init", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "amzlake init --path conf/amzlake.toml --force" in result.output
