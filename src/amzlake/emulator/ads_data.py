"""Ads v3 report documents: rows for a request, summed from the cells of a profile's universe.

A report row is the sum of the cells that share its key (its campaign, ad group, ad, target, plus
placement, search term or purchased ASIN where the groupBy asks for them), so every report type
agrees with every other: a campaign's cost in spCampaigns is the sum of its spAdvertisedProduct
rows and of its spTargeting rows. Generation runs one day at a time with numpy (no Python object
per row), keeps only one day's cells in memory (SUMMARY keeps one running sum per row key), and
formats rows with one precompiled %-template per request.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import numpy as np
import orjson

from amzlake.catalog.ads import (
    ADS_COLUMN_TYPES,
    ADS_ID_COLUMNS,
    FORMAT_CSV,
    AdsReportRequest,
    ColumnType,
    TimeUnit,
    validate_create_request,
)
from amzlake.emulator.ads_columns import Attr, Null, Ratio, Spec, Sum, Zero, measures_of, spec_for
from amzlake.emulator.ads_metrics import DayCells, day_age, lag_buckets
from amzlake.emulator.ads_universe import (
    ATTRIBUTION_TYPES,
    MATCH_TYPES,
    MAX_TERMS,
    PLACEMENTS,
    STATUSES,
    Universe,
    build_universe,
)
from amzlake.emulator.documents import DocumentPlan, Truth, json_array
from amzlake.emulator.world import AdsProfile, World

CHUNK_ROWS = 5_000
_STATUS_JSON = np.array([orjson.dumps(s).decode() for s in STATUSES], dtype=object)
_PLACEMENT_JSON = np.array([orjson.dumps(s).decode() for s in PLACEMENTS], dtype=object)
_ATTRIBUTION_JSON = np.array([orjson.dumps(s).decode() for s in ATTRIBUTION_TYPES], dtype=object)


# ---------------------------------------------------------------------------------------------
# Grains: which key a report row has.


@dataclass(frozen=True)
class Grain:
    """A row key: one entity level plus optional extra dimensions (each with its size)."""

    primary: str  # campaign | adGroup | ad | target | cell
    extras: tuple[str, ...] = ()  # placement | slot | masin | hasin | pasin


def grain_for(report_type_id: str, group_bys: tuple[str, ...]) -> Grain:
    """The row key of a report type and groupBy combination."""
    gb = set(group_bys)
    family_primary = {
        "spTargeting": "target",
        "sbTargeting": "target",
        "sdTargeting": "target",
        "spSearchTerm": "target",
        "sbSearchTerm": "target",
        "spAdvertisedProduct": "ad",
        "sdAdvertisedProduct": "ad",
        "sbAds": "ad",
        "sbAdGroup": "adGroup",
        "sdAdGroup": "adGroup",
        "spPurchasedProduct": "cell",
        "sdPurchasedProduct": "ad",
        "sbPurchasedProduct": "adGroup",
    }
    primary = family_primary.get(report_type_id, "campaign")
    if report_type_id == "spCampaigns" and "adGroup" in gb:
        primary = "adGroup"
    extras: list[str] = []
    if "campaignPlacement" in gb:
        extras.append("placement")
    if "searchTerm" in gb:
        extras.append("slot")
    if "matchedTarget" in gb:
        extras.append("masin")
    if report_type_id == "sdPurchasedProduct":
        extras.append("hasin")
    if report_type_id == "sbPurchasedProduct":
        extras.append("pasin")
    return Grain(primary, tuple(extras))


def _row_rule(report_type_id: str) -> tuple[str, ...]:
    """Measures whose sum must be positive for a row to appear (only active entities appear)."""
    if report_type_id.endswith("GrossAndInvalids"):
        return ("gross_impressions",)
    if report_type_id.endswith("SearchTerm"):
        # The search-term report only has terms with at least one click (ads-facts.md §8).
        return ("clicks",)
    if report_type_id == "spPurchasedProduct":
        return tuple(f"{m}_o{lag}" for m in "pu" for lag in lag_buckets(30))
    if report_type_id == "sdPurchasedProduct":
        return tuple(f"{m}_o{lag}" for m in "pu" for lag in lag_buckets(14))
    if report_type_id == "sbPurchasedProduct":
        return ("pp_p", "pp_pv", "pp_u", "pp_uv")
    return ("impressions",)


# ---------------------------------------------------------------------------------------------
# Source rows of one day: the cells (or, for sbPurchasedProduct, cell parts) before summing.


@dataclass
class _Source:
    cell: np.ndarray
    extras: dict[str, np.ndarray]
    get: Callable[[str], np.ndarray]


def _cell_mask(uni: Universe, request: AdsReportRequest) -> np.ndarray:
    """The cells the request's filters keep."""
    mask = np.ones(uni.n_cells, dtype=bool)
    family = request.report_type.family
    for field, values in request.filters.items():
        if field == "campaignStatus":
            sel = uni.campaign_status[uni.cell_campaign]
            allowed = [STATUSES.index(v) for v in values]
        elif field == "adStatus":
            sel = uni.ad_status[uni.cell_ad] if family == "ad" else uni.adgroup_status[uni.cell_adgroup]
            allowed = [STATUSES.index(v) for v in values]
        elif field == "adCreativeStatus":
            sel = uni.ad_status[uni.cell_ad]
            allowed = [STATUSES.index(v) for v in values]
        elif field == "adKeywordStatus":
            sel = uni.target_status[uni.cell_target]
            allowed = [STATUSES.index(v) for v in values]
        elif field == "keywordType":
            sel = uni.target_keyword_type[uni.cell_target]
            allowed = [uni.keyword_types.index(v) for v in values if v in uni.keyword_types]
        elif field == "campaignSite":
            sel = uni.cell_business.astype(np.int64)
            allowed = [1]
        else:  # pragma: no cover - the catalogue has no other filter fields
            raise ValueError(f"unsupported filter field {field}")
        mask &= np.isin(sel, allowed)
    return mask


def _source(day: DayCells, request: AdsReportRequest, mask: np.ndarray) -> _Source:
    uni = day.uni
    idx = np.flatnonzero(mask & (day.measure("gross_impressions") > 0))
    extras = {
        "placement": lambda: day.measure("placement")[idx],
        "slot": lambda: day.measure("slot")[idx],
        "masin": lambda: uni.cell_matched_asin[idx],
        "hasin": lambda: uni.cell_other_asin[idx],
    }
    grain = grain_for(request.report_type.report_type_id, request.group_bys)
    if request.report_type.report_type_id != "sbPurchasedProduct":
        return _Source(
            cell=idx,
            extras={e: extras[e]() for e in grain.extras},
            get=lambda m: day.measure(m)[idx],
        )
    # sbPurchasedProduct: one row source for the promoted (advertised) ASIN and one for the
    # brand-halo ASIN bought instead; together they hold every 14-day purchase of the cells.
    lags = lag_buckets(14)

    def part(kind: str) -> dict[str, np.ndarray]:
        p = sum(day.measure(f"p_{kind}{lag}")[idx] for lag in lags)
        u = sum(day.measure(f"u_{kind}{lag}")[idx] for lag in lags)
        s = sum(day.measure(f"s_{kind}{lag}")[idx] for lag in lags)
        zero = np.zeros(idx.shape[0], dtype=np.int64)
        if kind == "o":
            return {
                "pp_p": p,
                "pp_u": u,
                "pp_s": s,
                "pp_pv": zero,
                "pp_uv": zero,
                "pp_sv": zero,
                "pp_ntb_p": zero,
                "pp_ntb_u": zero,
                "pp_ntb_s": zero,
            }
        pv, uv, sv = (day.measure(m)[idx] for m in ("pv", "uv", "sv"))
        ntb_p = day.measure("ntb_pc")[idx] + day.measure("ntb_pv")[idx]
        ntb_u = day.measure("ntb_uc")[idx] + day.measure("ntb_uv")[idx]
        ntb_s = day.measure("ntb_sc")[idx] + day.measure("ntb_sv")[idx]
        return {
            "pp_p": p,
            "pp_u": u,
            "pp_s": s,
            "pp_pv": pv,
            "pp_uv": uv,
            "pp_sv": sv,
            "pp_ntb_p": np.minimum(ntb_p, p + pv),
            "pp_ntb_u": np.minimum(ntb_u, u + uv),
            "pp_ntb_s": np.minimum(ntb_s, s + sv),
        }

    promoted, halo = part("s"), part("o")
    pasin = np.concatenate((uni.ad_asin[uni.cell_ad[idx]] * 2, uni.cell_other_asin[idx] * 2 + 1))
    both = {k: np.concatenate((promoted[k], halo[k])) for k in promoted}
    return _Source(cell=np.concatenate((idx, idx)), extras={"pasin": pasin}, get=lambda m: both[m])


# ---------------------------------------------------------------------------------------------
# Summing source rows into report rows.


@dataclass
class _Rows:
    """Report rows: sorted keys, a representative cell and the sums of the needed measures."""

    key: np.ndarray
    cell: np.ndarray
    sums: dict[str, np.ndarray]

    def take(self, sel: np.ndarray) -> _Rows:
        """The rows at `sel` (a boolean mask or indexes)."""
        return _Rows(self.key[sel], self.cell[sel], {m: v[sel] for m, v in self.sums.items()})


def _extra_sizes(uni: Universe) -> dict[str, int]:
    n_asins = int(uni.asin_price.shape[0])
    return {
        "placement": len(PLACEMENTS),
        "slot": MAX_TERMS,
        "masin": n_asins,
        "hasin": n_asins,
        "pasin": 2 * n_asins,
    }


def _primary(uni: Universe, name: str, cell: np.ndarray) -> np.ndarray:
    table = {
        "campaign": uni.cell_campaign,
        "adGroup": uni.cell_adgroup,
        "ad": uni.cell_ad,
        "target": uni.cell_target,
    }
    return cell if name == "cell" else table[name][cell]


def _keys(uni: Universe, grain: Grain, src: _Source) -> np.ndarray:
    key = _primary(uni, grain.primary, src.cell).astype(np.int64, copy=False)
    sizes = _extra_sizes(uni)
    for e in grain.extras:
        key = key * sizes[e] + src.extras[e]
    return key


def decode_extras(uni: Universe, grain: Grain, key: np.ndarray) -> dict[str, np.ndarray]:
    """The extra dimensions packed into row keys."""
    sizes = _extra_sizes(uni)
    out: dict[str, np.ndarray] = {}
    for e in reversed(grain.extras):
        out[e] = key % sizes[e]
        key = key // sizes[e]
    return out


def _reduce(key: np.ndarray, cell: np.ndarray, values: Mapping[str, np.ndarray]) -> _Rows:
    """Sum rows sharing a key (exact int64 sums; no float on the way)."""
    return _reduce_each(key, cell, list(values), values.__getitem__)


def _reduce_each(
    key: np.ndarray, cell: np.ndarray, names: list[str], get: Callable[[str], np.ndarray]
) -> _Rows:
    """Sum rows sharing a key, fetching one measure at a time with `get`.

    Only one source-length measure is alive at a time (not all of them), which keeps a large
    universe's day well below the memory of its every measure at once.
    """
    if key.shape[0] == 0:
        return _Rows(key, cell, {m: get(m)[:0].astype(np.int64, copy=False) for m in names})
    order = np.argsort(key, kind="stable")
    sk = key[order]
    starts = np.concatenate(([0], np.flatnonzero(sk[1:] != sk[:-1]) + 1))
    return _Rows(
        sk[starts],
        cell[order][starts],
        {m: np.add.reduceat(get(m).astype(np.int64, copy=False)[order], starts) for m in names},
    )


def _day_rows(
    day: DayCells, request: AdsReportRequest, grain: Grain, mask: np.ndarray, needed: list[str]
) -> _Rows:
    src = _source(day, request, mask)
    key = _keys(day.uni, grain, src)
    return _reduce_each(key, src.cell, needed, src.get)


def _merge(a: _Rows | None, b: _Rows) -> _Rows:
    if a is None:
        return b
    return _reduce(
        np.concatenate((a.key, b.key)),
        np.concatenate((a.cell, b.cell)),
        {m: np.concatenate((a.sums[m], b.sums[m])) for m in a.sums},
    )


# ---------------------------------------------------------------------------------------------
# Column values.


@dataclass
class _Values:
    """One column of a chunk: ints at `scale` decimals, or JSON string literals."""

    kind: str  # int | str
    ints: np.ndarray | None = None
    scale: int = 0
    null: np.ndarray | None = None  # rows that are null
    strs: np.ndarray | None = None  # escaped JSON strings (object array)
    const: str | None = None  # the one escaped JSON string every row has (dates, currency)


def _linear(rows: _Rows, names: tuple[str, ...]) -> np.ndarray:
    total = np.zeros(rows.key.shape[0], dtype=np.int64)
    for m in names:
        total = total - rows.sums[m[1:]] if m.startswith("-") else total + rows.sums[m]
    return total


def _ratio(num: np.ndarray, den: np.ndarray, mult: int) -> np.ndarray:
    """round(num * mult / den) half up, 0 where den is 0; exact integer arithmetic."""
    safe = np.where(den == 0, 1, den)
    return np.where(den == 0, 0, (2 * num * mult + safe) // (2 * safe))


class _Context:
    """What column values need besides the row sums: universe, dates, currency scale."""

    def __init__(self, uni: Universe, request: AdsReportRequest, grain: Grain) -> None:
        self.uni = uni
        self.request = request
        self.grain = grain
        self.decimals = uni.decimals
        self.currency_json = orjson.dumps(uni.currency).decode()
        self.start_json = orjson.dumps(request.start_date.isoformat()).decode()
        self.end_json = orjson.dumps(request.end_date.isoformat()).decode()


def _const(n: int, s: str) -> _Values:
    return _Values("str", strs=np.full(n, s, dtype=object), const=s)


def _attr(name: str, ctx: _Context, rows: _Rows, day_json: str | None) -> _Values:
    u = ctx.uni
    cell = rows.cell
    n = cell.shape[0]
    camp, ag, ad, tg = u.cell_campaign[cell], u.cell_adgroup[cell], u.cell_ad[cell], u.cell_target[cell]
    money = ctx.decimals

    def s(arr: np.ndarray) -> _Values:
        return _Values("str", strs=arr)

    def i(arr: np.ndarray, scale: int = 0, null: np.ndarray | None = None) -> _Values:
        return _Values("int", ints=arr.astype(np.int64, copy=False), scale=scale, null=null)

    extras = decode_extras(u, ctx.grain, rows.key) if ctx.grain.extras else {}
    kt = u.target_keyword_type[tg]
    kt_json = np.array([orjson.dumps(k).decode() for k in u.keyword_types], dtype=object)
    match_json = np.array([orjson.dumps(m).decode() for m in MATCH_TYPES] + list(kt_json), dtype=object)
    if name == "date":
        assert day_json is not None
        return _const(n, day_json)
    if name == "startDate":
        return _const(n, ctx.start_json)
    if name == "endDate":
        return _const(n, ctx.end_json)
    if name == "campaignId":
        return i(u.campaign_id[camp])
    if name == "campaignName":
        return s(u.campaign_name_json[camp])
    if name == "campaignStatus":
        return s(_STATUS_JSON[u.campaign_status[camp]])
    if name == "campaignBudgetAmount":
        return i(u.campaign_budget[camp], money)
    if name == "campaignBudgetType":
        return _const(n, '"DAILY_BUDGET"')
    if name == "campaignBudgetCurrencyCode":
        return _const(n, ctx.currency_json)
    if name == "campaignBiddingStrategy":
        return s(u.campaign_strategy_json[camp])
    if name == "portfolioId":
        port = u.campaign_portfolio[camp]
        return i(np.where(port >= 0, u.portfolio_id[np.maximum(port, 0)], 0), null=port < 0)
    if name in ("costType", "campaignPriceTypeCode"):
        return s(np.array(['"CPC"', '"VCPM"'], dtype=object)[u.campaign_cost_type[camp]])
    if name == "adGroupId":
        return i(u.adgroup_id[ag])
    if name == "adGroupName":
        return s(u.adgroup_name_json[ag])
    if name == "adStatus":
        status = u.ad_status[ad] if ctx.request.report_type.family == "ad" else u.adgroup_status[ag]
        return s(_STATUS_JSON[status])
    if name == "adId":
        return i(u.ad_id[ad])
    if name in ("advertisedAsin", "promotedAsin"):
        return s(u.asin_json[u.ad_asin[ad]])
    if name in ("advertisedSku", "promotedSku"):
        return s(u.ad_sku_json[ad])
    if name in ("keywordId", "targetingId"):
        return i(u.target_id[tg])
    if name in ("keyword", "keywordText", "targeting", "targetingExpression", "targetingText"):
        return s(u.target_text_json[tg])
    if name in ("keywordType", "targetingType"):
        return s(kt_json[kt])
    if name == "matchType":
        mt = u.target_match_type[tg]
        return s(match_json[np.where(mt >= 0, mt, len(MATCH_TYPES) + kt)])
    if name == "adKeywordStatus":
        return s(_STATUS_JSON[u.target_status[tg]])
    if name == "keywordBid":
        return i(u.target_bid[tg], money)
    if name == "searchTerm":
        return s(u.term_json[u.target_terms[tg, extras["slot"]]])
    if name == "placementClassification":
        return s(_PLACEMENT_JSON[extras["placement"]])
    if name == "matchedTargetAsin":
        return s(u.asin_json[extras["masin"]])
    if name == "asinBrandHalo":
        return s(u.asin_json[extras["hasin"]])
    if name in ("purchasedAsin", "productName", "productCategory"):
        asin = extras["pasin"] // 2 if "pasin" in extras else u.cell_other_asin[cell]
        table = {
            "purchasedAsin": u.asin_json,
            "productName": u.asin_name_json,
            "productCategory": u.asin_category_json,
        }[name]
        return s(table[asin])
    if name == "attributionType":
        return s(_ATTRIBUTION_JSON[extras["pasin"] % 2])
    if name == "bidOptimization":
        return s(u.adgroup_bid_opt_json[ag])
    raise KeyError(name)  # pragma: no cover - every Attr name is handled above


def column_values(column: str, spec: Spec, ctx: _Context, rows: _Rows, day_json: str | None) -> _Values:
    """The values of one column for `rows`."""
    n = rows.key.shape[0]
    dec = ctx.decimals
    if isinstance(spec, Sum):
        total = _linear(rows, spec.measures)
        if spec.whole_units:
            return _Values("int", ints=(2 * total + 10**dec) // (2 * 10**dec))
        return _Values("int", ints=total, scale=dec if spec.money else 0)
    if isinstance(spec, Ratio):
        num, den = _linear(rows, spec.num), _linear(rows, spec.den)
        scale = dec if spec.money else spec.scale
        mult = spec.factor * (1 if spec.money else 10**spec.scale)
        null = (den == 0) if spec.null_if_empty else None
        return _Values("int", ints=_ratio(num, den, mult), scale=scale, null=null)
    if isinstance(spec, Zero):
        return _Values("int", ints=np.zeros(n, dtype=np.int64), scale=dec if spec.money else 0)
    if isinstance(spec, Null):
        return _Values("int", ints=np.zeros(n, dtype=np.int64), null=np.ones(n, dtype=bool))
    assert isinstance(spec, Attr)
    return _attr(spec.name, ctx, rows, day_json)


# ---------------------------------------------------------------------------------------------
# Formatting.


def _json_piece(v: _Values) -> tuple[str, list[Any]]:
    """A %-template fragment and the row values for it (none for a constant: it is inlined)."""
    if v.const is not None:
        # Written into the template itself: one field fewer to format per row.
        return v.const.replace("%", "%%"), []
    if v.kind == "str":
        assert v.strs is not None
        return "%s", v.strs.tolist()
    assert v.ints is not None
    if v.null is not None and v.null.any():
        # Render only the non-null values (ratios are null on most rows: no sales, no ACOS).
        text = np.full(v.ints.shape[0], "null", dtype=object)
        keep = ~v.null
        text[keep] = _render_decimal(v.ints[keep], v.scale)
        return "%s", text.tolist()
    if v.scale == 0:
        return "%d", v.ints.tolist()
    # A float of v/10^scale printed at `scale` decimals gives back exactly v for |v| < 2^53.
    return f"%.{v.scale}f", (v.ints / 10**v.scale).tolist()


def _render_decimal(ints: np.ndarray, scale: int) -> np.ndarray:
    if scale == 0:
        return ints.astype(str)
    fmt = f"%.{scale}f"
    return np.array([fmt % x for x in (ints / 10**scale).tolist()], dtype=object)


def _csv_cell(v: _Values) -> list[str]:
    if v.kind == "str":
        assert v.strs is not None
        buf = io.StringIO()
        w = csv.writer(buf, lineterminator="")
        out = []
        for s in v.strs.tolist():
            buf.seek(0)
            buf.truncate()
            w.writerow([orjson.loads(s)])
            out.append(buf.getvalue())
        return out
    assert v.ints is not None
    text = _render_decimal(v.ints, v.scale)
    if v.null is not None:
        text = np.where(v.null, "", text)
    return [str(t) for t in text.tolist()]


# ---------------------------------------------------------------------------------------------
# The document.


class _Generator:
    """Produces a report's chunks and fills its Truth along the way."""

    def __init__(self, world: World, profile: AdsProfile, request: AdsReportRequest, as_of: datetime) -> None:
        rt = request.report_type
        self.request = request
        self.profile = profile
        self.as_of = as_of
        self.seed = world.seed
        self.uni = build_universe(
            world.seed,
            profile,
            str(rt.ad_product),
            world.asins(profile.marketplace.marketplace_id),
        )
        self.grain = grain_for(rt.report_type_id, request.group_bys)
        self.ctx = _Context(self.uni, request, self.grain)
        self.specs = {c: spec_for(rt.report_type_id, c) for c in dict.fromkeys(request.columns)}
        self.rule = _row_rule(rt.report_type_id)
        needed = set(self.rule)
        for spec in self.specs.values():
            needed.update(measures_of(spec))
        self.detail_measures = (
            () if rt.report_type_id == "sbPurchasedProduct" else ("impressions", "clicks", "cost")
        )
        needed.update(self.detail_measures)
        self.needed = sorted(needed)
        self.mask = _cell_mask(self.uni, request)
        self.truth = Truth()
        self.truth.details = {
            "reportTypeId": rt.report_type_id,
            "timeUnit": str(request.time_unit),
            "asOf": as_of.isoformat(),
            "currency": self.uni.currency,
            "byDate": {},
        }
        self.csv = request.format == FORMAT_CSV

    def _days(self) -> Iterator[DayCells]:
        d = self.request.start_date
        while d <= self.request.end_date:
            age = day_age(d, self.profile.timezone, self.as_of)
            if age is not None:  # no data for days that have not begun at as_of
                yield DayCells(self.uni, self.seed, self.profile.profile_id, d, age)
            d += timedelta(days=1)

    def _active(self, rows: _Rows) -> _Rows:
        return rows.take(_linear(rows, self.rule) > 0)

    def _record(self, label: str, rows: _Rows) -> None:
        entry: dict[str, Any] = {"rows": int(rows.key.shape[0])}
        for m in self.detail_measures:
            total = int(rows.sums[m].sum())
            entry[m] = str(Decimal(total).scaleb(-self.uni.decimals)) if m == "cost" else total
        self.truth.details["byDate"][label] = entry

    def chunks(self) -> Iterator[bytes]:
        """Formatted rows, a chunk of up to CHUNK_ROWS at a time."""
        if self.request.time_unit == TimeUnit.DAILY:
            for day in self._days():
                rows = self._active(_day_rows(day, self.request, self.grain, self.mask, self.needed))
                label = day.day.isoformat()
                # Drop the day's cell arrays before formatting, so the two never coexist.
                del day
                self._record(label, rows)
                yield from self._format(rows, orjson.dumps(label).decode())
                del rows
        else:
            acc: _Rows | None = None
            for day in self._days():
                acc = _merge(acc, _day_rows(day, self.request, self.grain, self.mask, self.needed))
            if acc is not None:
                rows = self._active(acc)
                self._record(
                    f"{self.request.start_date.isoformat()}/{self.request.end_date.isoformat()}",
                    rows,
                )
                yield from self._format(rows, None)

    def _format(self, rows: _Rows, day_json: str | None) -> Iterator[bytes]:
        n = rows.key.shape[0]
        for lo in range(0, n, CHUNK_ROWS):
            part = rows.take(slice(lo, lo + CHUNK_ROWS))
            values = {c: column_values(c, spec, self.ctx, part, day_json) for c, spec in self.specs.items()}
            self._add_truth(values)
            self.truth.rows += part.key.shape[0]
            if self.csv:
                cols = [_csv_cell(values[c]) for c in self.request.columns]
                yield "".join(",".join(r) + "\n" for r in zip(*cols, strict=True)).encode()
                continue
            pieces = [_json_piece(values[c]) for c in self.request.columns]
            template = (
                "{"
                + ",".join(f'"{c}":{frag}' for c, (frag, _) in zip(self.request.columns, pieces, strict=True))
                + "}"
            )
            lists = [
                lst for c, (_, lst) in zip(self.request.columns, pieces, strict=True)
                if values[c].const is None
            ]
            if not lists:  # only constant columns: the same object on every row
                yield ",".join([template % ()] * part.key.shape[0]).encode()
                continue
            yield ",".join(template % row for row in zip(*lists, strict=True)).encode()

    def _add_truth(self, values: Mapping[str, _Values]) -> None:
        for c, v in values.items():
            if ADS_COLUMN_TYPES.get(c) not in (ColumnType.INTEGER, ColumnType.DECIMAL):
                continue
            assert v.ints is not None
            ints = v.ints if v.null is None else v.ints[~v.null]
            # Ids exceed 2^53: their sum would overflow int64, so it is taken in Python ints.
            total = sum(ints.tolist()) if c in ADS_ID_COLUMNS else int(ints.sum())
            self.truth.add(c, Decimal(total).scaleb(-v.scale) if v.scale else total)


def _as_request(
    request: AdsReportRequest | Mapping[str, Any], profile: AdsProfile, as_of: datetime
) -> AdsReportRequest:
    if isinstance(request, AdsReportRequest):
        return request
    today = as_of.astimezone(ZoneInfo(profile.timezone)).date()
    return validate_create_request(request, today)


def ads_document(
    world: World,
    profile: AdsProfile,
    request: AdsReportRequest | Mapping[str, Any],
    as_of: datetime,
) -> DocumentPlan:
    """The plan of the report document `request` gives for `profile`, as Amazon shows it at `as_of`.

    JSON: one array of flat objects keyed by exactly the requested columns, in request order.
    CSV (gross-and-invalids only): a header line, then one line per row.
    """
    parsed = _as_request(request, profile, as_of)
    gen = _Generator(world, profile, parsed, as_of)
    if gen.csv:
        header = ",".join(parsed.columns).encode() + b"\n"

        def csv_chunks() -> Iterator[bytes]:
            yield header
            yield from gen.chunks()

        return DocumentPlan(chunks=csv_chunks(), truth=gen.truth)
    return DocumentPlan(chunks=json_array(c for c in gen.chunks() if c), truth=gen.truth)
