"""The planner: new days, restatement re-pulls, backfill, time zones, vendor periods, live slices."""

from __future__ import annotations

import dataclasses
import itertools
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from amzlake.catalog.ads import ADS_REPORT_TYPES
from amzlake.catalog.periods import ReportPeriod, is_aligned
from amzlake.catalog.vendor import vendor_report_type
from amzlake.errors import ConfigError
from amzlake.ingest.planner import PlannedSlice, ReportPlan, milestones, plan_backfill, plan_report
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.slices import Account, AdsReportSpec, Source, VendorReportSpec
from amzlake.storage.ledger import LedgerEntry, RawObject, planned_entry

NOW = datetime(2026, 11, 20, 15, 0, tzinfo=UTC)  # 07:00 in Los Angeles, 00:00 next day in Tokyo
US = Account(Source.ADS, "111", "NA", "ATVPDKIKX0DER", "US", "USD", "America/Los_Angeles")
JP = Account(Source.ADS, "333", "FE", "A1VC38T7YXB528", "JP", "JPY", "Asia/Tokyo")
VENDOR = Account(Source.VENDOR, "amzn1.vg.1", "NA", "ATVPDKIKX0DER", "US", "USD", "America/Los_Angeles")
SP_CAMPAIGNS = AdsReportSpec("spCampaigns", "SPONSORED_PRODUCTS", ("campaign",),
                             ("date", "campaignId", "cost"), "DAILY")


def sales(period: str = "DAY") -> VendorReportSpec:
    return VendorReportSpec.of("GET_VENDOR_SALES_REPORT", {
        "reportPeriod": period, "distributorView": "MANUFACTURING", "sellingProgram": "RETAIL"})


def fetched(planned: list[PlannedSlice], at: datetime, state: SliceState = SliceState.CURATED
            ) -> list[LedgerEntry]:
    """Ledger entries for `planned` as if each was fetched at `at` and curated."""
    out = []
    for p in planned:
        e = planned_entry(p.slice, at)
        raw = RawObject(f"raw/{p.slice.key}", "0" * 64, 10, at)
        out.append(dataclasses.replace(e, state=state, raw_objects=(raw,), finished_at=at,
                                       updated_at=at))
    return out


def days_of(planned: list[PlannedSlice]) -> list[date]:
    out: list[date] = []
    for p in planned:
        d = p.slice.start
        while d <= p.slice.end:
            out.append(d)
            d += timedelta(days=1)
    return out


def test_milestones_follow_amazons_restatement_rhythm() -> None:
    assert milestones(42) == (1, 2, 3, 7, 14, 21, 28, 35, 42)
    assert milestones(10) == (1, 2, 3, 7, 10)
    assert milestones(0) == ()


def test_first_run_asks_for_the_lookback_in_the_widest_slices() -> None:
    planned = plan_report(ReportPlan(US, SP_CAMPAIGNS, 42), NOW, [])
    today = date(2026, 11, 20)  # in Los Angeles
    assert days_of(planned) == [today - timedelta(days=n) for n in range(42, 0, -1)]
    assert [p.slice.end - p.slice.start for p in planned] == [timedelta(days=30), timedelta(days=10)]
    assert {p.reason for p in planned} == {"new"}


def test_yesterday_is_counted_in_the_profiles_time_zone() -> None:
    us = plan_report(ReportPlan(US, SP_CAMPAIGNS, 1), NOW, [])
    jp = plan_report(ReportPlan(JP, SP_CAMPAIGNS, 1), NOW, [])
    assert [p.slice.start for p in us] == [date(2026, 11, 19)]
    assert [p.slice.start for p in jp] == [date(2026, 11, 20)]  # already the 21st in Tokyo


def test_a_second_run_the_same_day_asks_for_nothing() -> None:
    plan = ReportPlan(US, SP_CAMPAIGNS, 42)
    first = plan_report(plan, NOW, [])
    assert plan_report(plan, NOW + timedelta(hours=3), fetched(first, NOW)) == []


def test_next_day_asks_for_the_new_day_and_restated_milestones_only() -> None:
    plan = ReportPlan(US, SP_CAMPAIGNS, 42)
    history: list[LedgerEntry] = []
    # Run daily for 60 days, then look at one day's plan.
    now = NOW
    for _ in range(60):
        planned = plan_report(plan, now, history)
        history += fetched(planned, now)
        now += timedelta(days=1)
    planned = plan_report(plan, now, history)
    today = now.astimezone(US_TZ).date()
    ages = sorted((today - p.slice.start).days for p in planned)
    assert ages == [1, 2, 3, 7, 14, 21, 28, 35, 42]
    assert [p.reason for p in planned if (today - p.slice.start).days == 1] == ["new"]
    # Each day was fetched at most once per milestone: 9 times over its life.
    per_day: dict[date, int] = {}
    for e in history:
        d = e.start
        while d <= e.end:
            per_day[d] = per_day.get(d, 0) + 1
            d += timedelta(days=1)
    settled = [n for d, n in per_day.items() if (today - d).days > 45 and (today - d).days < 55]
    assert settled and all(n == 9 for n in settled)


US_TZ = __import__("zoneinfo").ZoneInfo("America/Los_Angeles")


def test_live_blocked_and_retried_slices() -> None:
    plan = ReportPlan(US, SP_CAMPAIGNS, 3)
    first = plan_report(plan, NOW, [])
    assert len(first) == 1
    live = [planned_entry(first[0].slice, NOW)]
    assert plan_report(plan, NOW, live) == []  # the runner resumes it
    blocked = [dataclasses.replace(live[0], state=SliceState.FAILED,
                                   failure_class=FailureClass.FATAL_INPUT)]
    assert plan_report(plan, NOW, blocked) == []
    retry = [dataclasses.replace(live[0], state=SliceState.FAILED,
                                 failure_class=FailureClass.RETRYABLE)]
    again = plan_report(plan, NOW, retry)
    assert [(p.slice.key, p.reason) for p in again] == [(first[0].slice.key, "retry")]


def test_backfill_is_clamped_to_retention_and_skips_done_days() -> None:
    plan = ReportPlan(US, SP_CAMPAIGNS, 7)
    rt = ADS_REPORT_TYPES["spCampaigns"]
    recent = plan_report(plan, NOW, [])
    planned = plan_backfill(plan, date(2025, 1, 1), date(2026, 11, 19), NOW, fetched(recent, NOW))
    days = days_of(planned)
    assert min(days) == rt.retention_start(date(2026, 11, 20))
    assert not set(days) & set(days_of(recent))
    assert all((p.slice.end - p.slice.start).days < rt.max_span_days for p in planned)
    assert {p.reason for p in planned} == {"backfill"}
    with pytest.raises(ConfigError, match="before it starts"):
        plan_backfill(plan, date(2026, 2, 1), date(2026, 1, 1), NOW, [])


def test_vendor_days_wait_for_availability_and_respect_the_span() -> None:
    planned = plan_report(ReportPlan(VENDOR, sales("DAY"), 30), NOW, [])
    days = days_of(planned)
    # 72 h after the Pacific close: on Nov 20 07:00 PT the 16th is the newest complete day.
    assert max(days) == date(2026, 11, 16)
    assert all((p.slice.end - p.slice.start).days < 15 for p in planned)


def test_vendor_weeks_are_sunday_to_saturday() -> None:
    planned = plan_report(ReportPlan(VENDOR, sales("WEEK"), 70), NOW, [])
    assert planned
    for p in planned:
        assert p.slice.start.weekday() == 6 and p.slice.end.weekday() == 5
        assert is_aligned(ReportPeriod.WEEK, p.slice.start, p.slice.end)


def test_vendor_quarters_and_years_are_calendar_aligned() -> None:
    # The lookback counts back from the newest complete period's end (Q3 2026: Sep 30) and takes
    # every period it touches; a slice may hold several whole quarters (the type's span).
    quarters = plan_report(ReportPlan(VENDOR, sales("QUARTER"), 200), NOW, [])
    spans = [(p.slice.start, p.slice.end) for p in quarters]
    assert spans[0][0] == date(2026, 1, 1) and spans[-1][1] == date(2026, 9, 30)
    assert all(is_aligned(ReportPeriod.QUARTER, a, b) for a, b in spans)
    assert all((b + timedelta(days=1)) == c for (_, b), (c, _) in itertools.pairwise(spans))
    years = plan_report(ReportPlan(VENDOR, sales("YEAR"), 400), NOW, [])
    assert [(p.slice.start, p.slice.end) for p in years] == [
        (date(2024, 1, 1), date(2024, 12, 31)), (date(2025, 1, 1), date(2025, 12, 31))]
    # A period still open (Q4 2026, the year 2026) is never asked for.
    later = plan_report(ReportPlan(VENDOR, sales("QUARTER"), 200), NOW + timedelta(days=10),
                        fetched(quarters, NOW))
    assert all(p.slice.end <= date(2026, 9, 30) and p.reason == "restatement" for p in later)


def test_real_time_inventory_covers_the_last_168_hours_by_utc_day() -> None:
    spec = VendorReportSpec.of("GET_VENDOR_REAL_TIME_INVENTORY_REPORT")
    planned = plan_report(ReportPlan(VENDOR, spec, 7), NOW, [])
    assert planned[0].slice.start >= NOW - timedelta(hours=168)
    assert planned[-1].slice.end <= NOW
    for p in planned:
        assert p.slice.end - p.slice.start <= timedelta(hours=24)
        assert p.slice.start.minute == 0 and p.slice.end.minute == 0 and p.slice.end.second == 0
    # A day fetched after it closed is done; today's partial window is fetched again next run.
    again = plan_report(ReportPlan(VENDOR, spec, 7), NOW + timedelta(hours=2), fetched(planned, NOW))
    assert [p.slice.start.date() for p in again] == [NOW.date()]


def test_forecasts_once_a_day() -> None:
    spec = VendorReportSpec.of("GET_VENDOR_FORECASTING_REPORT", {"sellingProgram": "RETAIL"})
    plan = ReportPlan(VENDOR, spec, 1)
    first = plan_report(plan, NOW, [])
    assert len(first) == 1
    assert plan_report(plan, NOW + timedelta(hours=1), fetched(first, NOW)) == []
    assert len(plan_report(plan, NOW + timedelta(days=1), fetched(first, NOW))) == 1


def test_bad_specs_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="unknown Ads report type"):
        plan_report(ReportPlan(US, dataclasses.replace(SP_CAMPAIGNS, report_type_id="spNope"), 3), NOW, [])
    with pytest.raises(ConfigError, match="reportPeriod"):
        plan_report(ReportPlan(VENDOR, VendorReportSpec.of("GET_VENDOR_SALES_REPORT"), 3), NOW, [])
    assert vendor_report_type("GET_VENDOR_SALES_REPORT") is not None


@settings(max_examples=60, deadline=None)
@given(
    hours=st.integers(0, 24 * 400),
    lookback=st.integers(1, 500),
    period=st.sampled_from(["DAY", "WEEK", "MONTH", "QUARTER", "YEAR"]),
    ads=st.booleans(),
)
def test_plans_never_overlap_stay_in_bounds_and_settle(hours: int, lookback: int, period: str,
                                                       ads: bool) -> None:
    now = NOW + timedelta(hours=hours)
    plan = ReportPlan(US, SP_CAMPAIGNS, lookback) if ads else ReportPlan(VENDOR, sales(period), lookback)
    planned = plan_report(plan, now, [])
    spans = sorted((p.slice.start, p.slice.end) for p in planned)
    for (_, end_a), (start_b, _) in itertools.pairwise(spans):
        assert end_a < start_b
    if ads:
        today = now.astimezone(US_TZ).date()
        assert all(p.slice.start >= ADS_REPORT_TYPES["spCampaigns"].retention_start(today) for p in planned)
        assert all(p.slice.end < today for p in planned)
    else:
        assert all(is_aligned(ReportPeriod(period), p.slice.start, p.slice.end) for p in planned)
    assert plan_report(plan, now, fetched(planned, now)) == []
