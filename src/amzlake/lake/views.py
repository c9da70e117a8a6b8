"""The day-one views: what a user queries first, over whichever curated tables exist.

Each view is built from the tables present (with none, an empty view of the same columns, so
queries never fail on a young lake). Money is never summed across currencies: every view that sums
money groups by currency, or by something that has one currency (an Ads profile, a marketplace),
and says so below.

v_ads_daily: daily ad spend, sales and ROAS per Ads profile, summed over the campaign-level
  tables of Sponsored Products, Brands and Display (ads_sp|sb|sd_campaigns_daily).
  report_date (the profile's local day), account_id (the profile id), currency (the profile's:
  an Ads profile has one currency, so each row's sums are in one currency; sum across profiles
  by currency), impressions, clicks, cost (spend, decimal), sales (SP sales14d, SB/SD sales:
  14-day attributed sales, decimal), roas (sales / cost, NULL when cost is 0), acos (cost /
  sales, NULL when sales is 0). A table holding two identities of one report type for one
  profile (say campaign and campaign+adGroup groupBys) would be counted twice: keep one
  campaign-level report per type.

v_vendor_daily_asin: vendor shipped revenue per ASIN and day, from vendor_sales_by_asin rows of
  the DAY report period. report_date, account_id (selling partner), marketplace_id, asin,
  distributor_view, selling_program, shipped_revenue (decimal), currency (of the amounts: sum
  across marketplaces by currency), shipped_units, ordered_revenue, ordered_units (MANUFACTURING
  view only, NULL otherwise), shipped_cogs. Sums nothing itself.

v_tacos_daily_asin: TACoS per day and ASIN: Ads advertised-product spend (SP advertisedAsin,
  SD promotedAsin) / vendor shipped revenue (MANUFACTURING view, summed over selling programs),
  in the same marketplace, so spend and revenue are summed per marketplace (one currency each)
  and the row carries that currency. report_date, marketplace_id, asin, currency, ad_spend,
  shipped_revenue, tacos (ad_spend / shipped_revenue, NULL when there is no revenue). Rows with
  spend and no sales (or sales and no spend, ad_spend 0) are kept. The marketplace of an account
  comes from the `lake_accounts` table (the ledger knows it); without it, accounts are matched on
  currency, a stand-in that is exact only with one marketplace per currency.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from amzlake.lake.names import quote_ident

DAY_ONE_VIEWS = ("v_ads_daily", "v_vendor_daily_asin", "v_tacos_daily_asin")
# The tables each view reads, when they exist (the lake_accounts table is always there).
VIEW_SOURCES: dict[str, tuple[str, ...]] = {
    "v_ads_daily": ("ads_sp_campaigns_daily", "ads_sb_campaigns_daily", "ads_sd_campaigns_daily"),
    "v_vendor_daily_asin": ("vendor_sales_by_asin",),
    "v_tacos_daily_asin": ("ads_sp_advertised_product_daily", "ads_sd_advertised_product_daily",
                           "vendor_sales_by_asin"),
}
ACCOUNTS_TABLE = "lake_accounts"




def _pick(cols: set[str], *names: str) -> str | None:
    return next((n for n in names if n in cols), None)


def _col(cols: set[str], names: Sequence[str], sql_type: str, alias: str) -> str:
    found = _pick(cols, *names)
    return f"{quote_ident(found)} AS {alias}" if found else f"CAST(NULL AS {sql_type}) AS {alias}"


_MONEY = "DECIMAL(18,4)"

_ADS_DAILY_EMPTY = (
    "SELECT CAST(NULL AS DATE) AS report_date, CAST(NULL AS VARCHAR) AS account_id, "
    "CAST(NULL AS VARCHAR) AS currency, CAST(NULL AS BIGINT) AS impressions, "
    "CAST(NULL AS BIGINT) AS clicks, CAST(NULL AS DECIMAL(38,4)) AS cost, "
    "CAST(NULL AS DECIMAL(38,4)) AS sales, CAST(NULL AS DOUBLE) AS roas, "
    "CAST(NULL AS DOUBLE) AS acos WHERE false"
)


def ads_daily_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_ads_daily SELECT over the campaign tables present in `columns` (name -> columns)."""
    parts = []
    for product in ("sp", "sb", "sd"):
        name = f"ads_{product}_campaigns_daily"
        cols = columns.get(name)
        if not cols or "cost" not in cols:
            continue
        parts.append(
            "SELECT report_date, account_id, "
            + ", ".join([
                _col(cols, ["currency"], "VARCHAR", "currency"),
                _col(cols, ["impressions"], "BIGINT", "impressions"),
                _col(cols, ["clicks"], "BIGINT", "clicks"),
                f"CAST(cost AS {_MONEY}) AS cost",
                f"CAST({_pick(cols, 'sales_14d', 'sales14d', 'sales') or 'NULL'} AS {_MONEY})"
                " AS sales",
            ])
            + f" FROM {quote_ident(name)}"
        )
    if not parts:
        return _ADS_DAILY_EMPTY
    union = " UNION ALL ".join(parts)
    return (
        "SELECT report_date, account_id, currency, "
        "CAST(sum(impressions) AS BIGINT) AS impressions, "
        "CAST(sum(clicks) AS BIGINT) AS clicks, sum(cost) AS cost, "
        "sum(sales) AS sales, "
        "CAST(sum(sales) AS DOUBLE) / NULLIF(CAST(sum(cost) AS DOUBLE), 0) AS roas, "
        "CAST(sum(cost) AS DOUBLE) / NULLIF(CAST(sum(sales) AS DOUBLE), 0) AS acos "
        f"FROM ({union}) GROUP BY report_date, account_id, currency"
    )


def vendor_daily_asin_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_vendor_daily_asin SELECT (empty, typed, without vendor_sales_by_asin)."""
    cols = columns.get("vendor_sales_by_asin")
    fields = [
        ("report_date", ["report_date"], "DATE"),
        ("account_id", ["account_id"], "VARCHAR"),
        ("marketplace_id", ["marketplace_id"], "VARCHAR"),
        ("asin", ["asin"], "VARCHAR"),
        ("distributor_view", ["distributor_view"], "VARCHAR"),
        ("selling_program", ["selling_program"], "VARCHAR"),
        ("shipped_revenue", ["shipped_revenue_amount"], _MONEY),
        ("currency", ["shipped_revenue_currency", "currency"], "VARCHAR"),
        ("shipped_units", ["shipped_units"], "BIGINT"),
        ("ordered_revenue", ["ordered_revenue_amount"], _MONEY),
        ("ordered_units", ["ordered_units"], "BIGINT"),
        ("shipped_cogs", ["shipped_cogs_amount"], _MONEY),
    ]
    if not cols or "asin" not in cols:
        return ("SELECT " + ", ".join(f"CAST(NULL AS {t}) AS {a}" for a, _, t in fields)
                + " WHERE false")
    where = " WHERE upper(report_period) = 'DAY'" if "report_period" in cols else ""
    return ("SELECT " + ", ".join(_col(cols, names, t, a) for a, names, t in fields)
            + f" FROM vendor_sales_by_asin{where}")


def tacos_daily_asin_sql(columns: Mapping[str, set[str]]) -> str:
    """The v_tacos_daily_asin SELECT: advertised-ASIN spend over vendor shipped revenue."""
    spend_parts = []
    for name, asin in (("ads_sp_advertised_product_daily", ("advertised_asin",)),
                       ("ads_sd_advertised_product_daily", ("promoted_asin",))):
        cols = columns.get(name)
        found = _pick(cols or set(), *asin)
        if not cols or not found or "cost" not in cols:
            continue
        cur = "currency" if "currency" in cols else "CAST(NULL AS VARCHAR)"
        spend_parts.append(
            f"SELECT report_date, account_id, {quote_ident(found)} AS asin, {cur} AS currency, "
            f"CAST(cost AS {_MONEY}) AS cost FROM {quote_ident(name)}"
        )
    if not spend_parts:
        spend_parts.append(
            "SELECT CAST(NULL AS DATE) AS report_date, CAST(NULL AS VARCHAR) AS account_id, "
            "CAST(NULL AS VARCHAR) AS asin, CAST(NULL AS VARCHAR) AS currency, "
            f"CAST(NULL AS {_MONEY}) AS cost WHERE false"
        )
    # Market key: the account's marketplace when known, else its currency (see the module doc).
    market = ("coalesce({mp}, 'currency:' || {cur})")
    ads = (
        "SELECT s.report_date, "
        + market.format(mp="la.marketplace_id", cur="s.currency")
        + " AS market, la.marketplace_id, s.asin, s.currency, "
        "sum(s.cost) AS ad_spend "
        f"FROM ({' UNION ALL '.join(spend_parts)}) s "
        "LEFT JOIN lake_accounts la ON la.source = 'ads' AND la.account_id = s.account_id "
        "WHERE s.asin IS NOT NULL GROUP BY ALL"
    )
    vendor_view = ("WHERE coalesce(upper(v.distributor_view), 'MANUFACTURING') = 'MANUFACTURING'")
    vendor = (
        "SELECT v.report_date, "
        + market.format(mp="coalesce(v.marketplace_id, la.marketplace_id)", cur="v.currency")
        + " AS market, coalesce(v.marketplace_id, la.marketplace_id) AS marketplace_id, v.asin, "
        "v.currency, sum(v.shipped_revenue) AS shipped_revenue "
        "FROM v_vendor_daily_asin v "
        "LEFT JOIN lake_accounts la ON la.source = 'vendor' AND la.account_id = v.account_id "
        f"{vendor_view} GROUP BY ALL"
    )
    return (
        "SELECT coalesce(v.report_date, a.report_date) AS report_date, "
        "coalesce(v.marketplace_id, a.marketplace_id) AS marketplace_id, "
        "coalesce(v.asin, a.asin) AS asin, coalesce(v.currency, a.currency) AS currency, "
        f"coalesce(a.ad_spend, CAST(0 AS {_MONEY})) AS ad_spend, v.shipped_revenue, "
        "CAST(coalesce(a.ad_spend, 0) AS DOUBLE) / "
        "NULLIF(CAST(v.shipped_revenue AS DOUBLE), 0) AS tacos "
        f"FROM ({vendor}) v FULL OUTER JOIN ({ads}) a "
        "ON v.report_date = a.report_date AND v.market = a.market AND v.asin = a.asin "
        "AND v.currency IS NOT DISTINCT FROM a.currency"
    )


def day_one_views_sql(columns: Mapping[str, set[str]]) -> dict[str, str]:
    """The day-one views' SELECTs, in creation order, given each table's column names."""
    return {
        "v_ads_daily": ads_daily_sql(columns),
        "v_vendor_daily_asin": vendor_daily_asin_sql(columns),
        "v_tacos_daily_asin": tacos_daily_asin_sql(columns),
    }
