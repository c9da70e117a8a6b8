"""The commented starter config that `amzlake init` writes; it loads and validates as it stands."""

from __future__ import annotations

from pathlib import Path

from amzlake.config import (
    ADS_30D_LOOKBACK_DAYS,
    DEFAULT_ADS_LOOKBACK_DAYS,
    DEFAULT_VENDOR_LOOKBACK_DAYS,
)
from amzlake.errors import ConfigError

STARTER_CONFIG = f"""\
# amzlake configuration. Docs: every key below is optional unless marked "required".
#
# Secrets never go in this file: give a *reference* to where each one lives:
#   env:NAME                          an environment variable
#   file:PATH#KEY                     a key of a TOML/JSON file only you can read (chmod 600);
#                                     a relative PATH is relative to this file's folder
#   secretsmanager:NAME_OR_ARN#KEY    a key of a JSON secret in AWS Secrets Manager
#
# Any value can be overridden from the environment: AMZLAKE_<SECTION>__<KEY>, levels joined by
# "__", e.g. AMZLAKE_ADS__LOOKBACK_DAYS=30 or AMZLAKE_ENDPOINTS__BASE_URL=http://127.0.0.1:8600.

# ---- Login with Amazon apps (one table per app; "default" is used unless an account names another)
[lwa.default]
client_id = "amzn1.application-oa2-client.REPLACE_ME"         # required
client_secret = "env:AMZLAKE_LWA_CLIENT_SECRET"                # required: a reference

# ---- Amazon Ads (reporting v3)
[ads]
enabled = true
lwa_app = "default"
refresh_token = "env:AMZLAKE_ADS_REFRESH_TOKEN"                # required when enabled
regions = ["NA", "EU", "FE"]        # where to list the login's profiles
# Which profiles: leave both out for every profile of the login; or list ids; or filter by country.
# profiles = [1234567890123456]
# countries = ["US", "CA", "UK", "DE"]
# How far back days are pulled again, because Amazon restates conversions. Left out: per report,
# {DEFAULT_ADS_LOOKBACK_DAYS} days (28-day restatement after a 14-day attribution window), or
# {ADS_30D_LOOKBACK_DAYS} with 30-day attribution columns (Sponsored Products' *30d). Capped by retention.
# lookback_days = {DEFAULT_ADS_LOOKBACK_DAYS}
# backfill_start = 2025-01-01       # first day to pull once (clamped to each report's retention)

# The reports: left out, every Sponsored Products/Brands/Display report type at DAILY, grouped by
# its own level, with every column. To choose, list them; unset fields take those defaults:
# [[ads.reports]]
# report_type = "spCampaigns"
# group_by = ["campaign"]
# columns = ["date", "campaignId", "impressions", "clicks", "cost", "sales14d"]
# filters = {{ campaignStatus = ["ENABLED", "PAUSED"] }}
# lookback_days = 60

# ---- Vendor Central (SP-API reports)
[vendor]
enabled = false                     # set to true once an account below is filled in
lwa_app = "default"
brand_analytics = false             # true adds Brand Analytics reports (needs the role)
# Days pulled again for reports Amazon revises after publishing (sales, inventory, traffic, net
# pure product margin): {DEFAULT_VENDOR_LOOKBACK_DAYS}, well past the 48-72 h availability lag.
lookback_days = {DEFAULT_VENDOR_LOOKBACK_DAYS}
# backfill_start = 2024-01-01

[[vendor.accounts]]
selling_partner_id = "A1EXAMPLE0SPID"                          # required
region = "NA"                                                  # NA | EU | FE
marketplace_id = "ATVPDKIKX0DER"                               # required (this is amazon.com)
selling_programs = ["RETAIL"]       # RETAIL | BUSINESS | FRESH
distributor_views = ["MANUFACTURING"]  # MANUFACTURING | SOURCING
refresh_token = "env:AMZLAKE_VENDOR_US_REFRESH_TOKEN"          # required

# The reports: left out, sales, inventory, traffic, net pure product margin (DAY), forecasting and
# the three real-time reports (+ Brand Analytics when enabled). To choose, list them:
# [[vendor.reports]]
# report_type = "GET_VENDOR_SALES_REPORT"
# options = {{ reportPeriod = "WEEK" }}   # sellingProgram/distributorView come from the account

# ---- Where data goes
[storage]
lake = "lake"                       # a folder; relative to this file
# raw = "s3://my-bucket/amzlake/raw"  # default: <lake>/raw (a folder or an s3:// URL)
# ledger = "lake/ledger.sqlite"       # default: <lake>/ledger.sqlite (or dynamodb://TABLE)

# ---- How runs behave
[run]
concurrency = 8                     # creates under way per account, and downloads at once
poll_initial = "30s"                # first status check after a create; grows by poll_factor
poll_max = "5m"
poll_factor = 1.2                   # each wait 1.2x the last: polls grow with log(time)
http_timeout = "60s"
# A report still running after this is left for the next run to pick up.
max_wait = {{ default = "3h" }}       # keys: default, ads, vendor or a report type

# ---- Where the APIs are (Amazon's production hosts unless set)
[endpoints]
# base_url = "http://127.0.0.1:8600"  # everything at one server, e.g. `amzlake emulator`
# ads = {{ NA = "https://advertising-api.amazon.com" }}
# spapi = {{ NA = "https://sandbox.sellingpartnerapi-na.amazon.com" }}
"""


def write_starter_config(path: Path, *, force: bool = False) -> Path:
    """The path written with the starter config; an existing file is kept unless `force`."""
    if path.exists() and not force:
        raise ConfigError(f"{path} already exists; pass --force to overwrite it")
    if path.exists() and not path.is_file():
        raise ConfigError(f"{path} exists and is not a file")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(STARTER_CONFIG, encoding="utf-8")
    return path
