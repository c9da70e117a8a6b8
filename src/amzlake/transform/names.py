"""Curated names: Amazon's camelCase field names to snake_case columns, report types to tables.

The rule (one rule for every field, known or not):
1. an acronym run before a capitalised word is its own word (`eCPAddToCart` -> e CP Add To Cart);
2. a capital after a lowercase letter or a digit starts a word (`campaignId` -> campaign Id);
3. a run of digits starts a word and keeps the lowercase letters right after it as a unit
   (`sales14d` -> sales, 14d; `video5SecondViews` -> video, 5, Second, Views);
4. everything is lowercased, any other character becomes `_`, repeated `_` collapse, and a name
   that would start with a digit gets a leading `_` (so every name is a plain SQL identifier).
"""

from __future__ import annotations

import re

_ACRONYM = re.compile(r"([A-Z]+)([A-Z][a-z])")
_LOWER_UPPER = re.compile(r"([a-z])([A-Z])")
_LETTER_DIGIT = re.compile(r"([A-Za-z])(\d)")
_DIGIT_UPPER = re.compile(r"(\d)([A-Z])")
_NON_IDENT = re.compile(r"[^a-z0-9_]+")
_REPEATS = re.compile(r"_{2,}")


def snake(name: str) -> str:
    """`name` (camelCase, or anything) as a lowercase snake_case SQL identifier."""
    s = _ACRONYM.sub(r"\1_\2", name)
    s = _LOWER_UPPER.sub(r"\1_\2", s)
    s = _LETTER_DIGIT.sub(r"\1_\2", s)
    s = _DIGIT_UPPER.sub(r"\1_\2", s)
    s = _REPEATS.sub("_", _NON_IDENT.sub("_", s.lower())).strip("_")
    if not s:
        return "field"
    return "_" + s if s[0].isdigit() else s


def path_column(path: tuple[str, ...] | list[str]) -> str:
    """The column of a nested field path (`impressionData.impressionCount` ->
    `impression_data_impression_count`): parts joined, so two objects' fields never collide."""
    return snake("_".join(snake(p) for p in path))


def ads_table(report_type_id: str, time_unit: str) -> str:
    """The curated table of an Ads report type and time unit (`ads_sp_campaigns_daily`)."""
    unit = "daily" if time_unit.upper() == "DAILY" else "summary"
    return f"ads_{snake(report_type_id)}_{unit}"
