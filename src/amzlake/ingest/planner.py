"""The planner: from configured reports, the clock and the ledger, the slices still needed.

Pure functions, no I/O. The unit of time is a report's own: a day in an Ads profile's time zone,
a vendor reporting period (day, Sunday-Saturday week, month, quarter, year in Pacific time), a UTC
day of hours for the real-time reports, today for forecasts, a start-date window for coupons.

Which units a run asks for:
- never fetched (new days, backfill): asked in slices as wide as the report type allows;
- fetched, but Amazon may have restated them since: asked again, one unit per slice, when the
  unit's age (days since it closed) has passed a restatement milestone that its last fetch had not
  reached. Milestones follow Amazon's restatement rhythm (Ads: invalid traffic settles within 3
  days; conversions are restated 1, 7 and 28 days after they happen, up to a 14-day window later)
  and stop at the configured lookback. A daily run so re-pulls each day about seven times, not
  every day of the lookback every day.
- live (planned, requested, processing): not asked again; the runner resumes them.
- failed as fatal-input: not asked again with the same spec (it would only be refused again).
- failed as retryable or throttled: the same slice again (same key), so the ledger keeps one row.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from amzlake.catalog.ads import ADS_REPORT_TYPES
from amzlake.catalog.periods import ReportPeriod, period_bounds, period_index, period_start_of_index
from amzlake.catalog.vendor import (
    REPORTING_TIMEZONE,
    DateRule,
    VendorReportType,
    available_at,
    vendor_report_type,
)
from amzlake.errors import ConfigError
from amzlake.ingest.states import FailureClass, SliceState
from amzlake.slices import Account as Account  # re-exported for planner callers
from amzlake.slices import AdsReportSpec, Slice, VendorReportSpec
from amzlake.storage.ledger import LedgerEntry

# Days after a unit closes at which it is pulled again (capped by the lookback).
MILESTONES = (1, 2, 3, 7, 14, 21, 28, 35, 42, 49, 56, 60, 90)


@dataclass(frozen=True)
class ReportPlan:
    """One configured report for one account, with how far back it is re-pulled and backfilled."""

    account: Account
    spec: AdsReportSpec | VendorReportSpec
    lookback_days: int
    backfill_start: date | None = None


@dataclass(frozen=True)
class PlannedSlice:
    """A slice to fetch and why: `new`, `restatement`, `backfill` or `retry`."""

    slice: Slice
    reason: str


@dataclass(frozen=True)
class Unit:
    """One unit of a report's time axis: its first and last day (datetimes for hourly windows)."""

    start: date | datetime
    end: date | datetime
    closes: date  # the day after which the unit's data is complete (for ages)


def milestones(lookback_days: int) -> tuple[int, ...]:
    """The re-pull ages (days) for a lookback: Amazon's restatement rhythm, ending at the lookback."""
    if lookback_days < 1:
        return ()
    return tuple(sorted({m for m in MILESTONES if m < lookback_days} | {lookback_days}))


def _day(value: date | datetime) -> date:
    return value.date() if isinstance(value, datetime) else value


def _fetched_on(entry: LedgerEntry, tz: ZoneInfo) -> date | None:
    when = entry.raw_objects[-1].fetched_at if entry.raw_objects else entry.finished_at
    return when.astimezone(tz).date() if when else None


@dataclass
class _History:
    """What the ledger says about each unit of one (account, spec)."""

    last_fetch: dict[date | datetime, date]  # unit start -> day of the latest successful fetch
    live: set[date | datetime]
    blocked: set[date | datetime]  # fatal-input
    retry: list[LedgerEntry]  # retryable failures, asked again as they were

    @classmethod
    def of(cls, entries: Iterable[LedgerEntry], units: Sequence[Unit], tz: ZoneInfo) -> _History:
        h = cls({}, set(), set(), [])
        ordered = sorted(entries, key=lambda e: e.updated_at)
        for e in ordered:
            covered = [u.start for u in units if e.start <= u.start and u.end <= e.end]
            if e.state in (SliceState.PLANNED, SliceState.REQUESTED, SliceState.PROCESSING):
                h.live.update(covered)
            elif e.state in (SliceState.DOWNLOADED, SliceState.CURATED, SliceState.EMPTY):
                fetched = _fetched_on(e, tz)
                if fetched is not None:
                    for start in covered:
                        h.last_fetch[start] = max(fetched, h.last_fetch.get(start, fetched))
            elif e.state is SliceState.FAILED:
                if e.failure_class is FailureClass.FATAL_INPUT:
                    h.blocked.update(covered)
                elif e.failure_class in (FailureClass.RETRYABLE, FailureClass.THROTTLED):
                    h.retry.append(e)
        return h


def _axis(plan: ReportPlan, now: datetime) -> tuple[list[Unit], int, ZoneInfo, date]:
    """The units a report may be asked for now (oldest first), its widest request in units, the
    time zone its days are counted in, and today there."""
    spec = plan.spec
    if isinstance(spec, AdsReportSpec):
        rt = ADS_REPORT_TYPES.get(spec.report_type_id)
        if rt is None:
            raise ConfigError(f"unknown Ads report type {spec.report_type_id!r}")
        tz = ZoneInfo(plan.account.timezone)
        today = now.astimezone(tz).date()
        first = rt.retention_start(today)
        units = [Unit(d, d, d) for d in _dates(first, today - timedelta(days=1))]
        return units, rt.max_span_days, tz, today
    rt_v = vendor_report_type(spec.report_type)
    if rt_v is None:
        raise ConfigError(f"unknown vendor report type {spec.report_type!r}")
    today = now.astimezone(REPORTING_TIMEZONE).date()
    if rt_v.date_rule is DateRule.PERIODS:
        return (*_period_units(rt_v, spec, now, today), REPORTING_TIMEZONE, today)
    if rt_v.date_rule is DateRule.HOURS:
        return (*_hour_units(rt_v, now), ZoneInfo("UTC"), now.astimezone(UTC).date())
    if rt_v.date_rule is DateRule.NONE:
        return [Unit(today, today, today)], 1, REPORTING_TIMEZONE, today
    return _window_units(rt_v, plan, now, today), 1, REPORTING_TIMEZONE, today


def _dates(first: date, last: date) -> list[date]:
    return [first + timedelta(days=i) for i in range((last - first).days + 1)]


def _period_units(rt: VendorReportType, spec: VendorReportSpec, now: datetime,
                  today: date) -> tuple[list[Unit], int]:
    raw = spec.options_dict().get("reportPeriod")
    if raw is None:
        raise ConfigError(f"{rt.report_type}: reportOptions.reportPeriod is required")
    period = ReportPeriod(raw)
    rule = rt.periods.get(period)
    if rule is None:
        allowed = ", ".join(p.value for p in rt.periods)
        raise ConfigError(f"{rt.report_type}: reportPeriod {raw} is not offered (allowed: {allowed})")
    current = period_index(period, today)
    units = []
    for index in range(current - rule.lookback, current + 1):
        start = period_start_of_index(period, index)
        _, end = period_bounds(period, start)
        if available_at(rule, end) <= now:
            units.append(Unit(start, end, end))
    return units, rule.max_span if rt.spans_multiple_periods else 1


def _hour_units(rt: VendorReportType, now: datetime) -> tuple[list[Unit], int]:
    rule = rt.hour_rule
    assert rule is not None
    newest_end = (now - rule.min_end_age).astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    oldest = (now - rule.lookback).astimezone(UTC)
    oldest = oldest.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    units = []
    day = oldest.date()
    while True:
        start = max(oldest, datetime.combine(day, time(0), UTC))
        end = min(newest_end, datetime.combine(day + timedelta(days=1), time(0), UTC))
        if end <= start:
            break
        # On the hour, as SP-API wants; the report holds every full hour between start and end.
        units.append(Unit(start, end, day))
        day += timedelta(days=1)
    return units, 1


def _window_units(rt: VendorReportType, plan: ReportPlan, now: datetime, today: date) -> list[Unit]:
    rule = rt.start_window
    assert rule is not None
    days = min(plan.lookback_days, rule.max_span.days)
    return [Unit(today - timedelta(days=days), today, today)]


def _runs(units: Sequence[Unit], width: int) -> list[tuple[Unit, Unit]]:
    """Consecutive units grouped into runs of at most `width` units."""
    out: list[tuple[Unit, Unit]] = []
    run: list[Unit] = []
    for u in units:
        if run and (len(run) >= width or not _adjacent(run[-1], u)):
            out.append((run[0], run[-1]))
            run = []
        run.append(u)
    if run:
        out.append((run[0], run[-1]))
    return out


def _adjacent(a: Unit, b: Unit) -> bool:
    return _day(b.start) - _day(a.end) <= timedelta(days=1)


def _make(plan: ReportPlan, first: Unit, last: Unit, reason: str) -> PlannedSlice:
    return PlannedSlice(Slice(plan.account, plan.spec, first.start, last.end), reason)


def plan_report(plan: ReportPlan, now: datetime, history: Iterable[LedgerEntry]) -> list[PlannedSlice]:
    """The slices `plan` needs at `now`, given the ledger `history` (any accounts and specs)."""
    return _plan(plan, now, history, plan.backfill_start, None)


def plan_backfill(plan: ReportPlan, start: date, end: date, now: datetime,
                  history: Iterable[LedgerEntry]) -> list[PlannedSlice]:
    """The slices that fill `start..end` for `plan`, clamped to what Amazon still serves."""
    if end < start:
        raise ConfigError(f"backfill ends ({end}) before it starts ({start})")
    return _plan(plan, now, history, start, end)


def _plan(plan: ReportPlan, now: datetime, history: Iterable[LedgerEntry],
          earliest: date | None, latest: date | None) -> list[PlannedSlice]:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    units, width, tz, today = _axis(plan, now)
    if latest is not None:
        units = [u for u in units if _day(u.end) <= latest]
    spec_id = plan.spec.normalised()
    mine = [e for e in history if e.account_id == plan.account.account_id and e.spec == spec_id]
    h = _History.of(mine, units, tz)
    ages = milestones(plan.lookback_days)
    hourly = isinstance(units[0].start, datetime) if units else False
    if earliest is None and units:
        # The lookback counts back from the newest unit Amazon serves, so a report that is
        # never restated (lookback 0) still gets its newest period, whatever its lag.
        earliest = min(today - timedelta(days=plan.lookback_days),
                       units[-1].closes - timedelta(days=max(plan.lookback_days - 1, 0)))
    earliest = earliest or today

    out: list[PlannedSlice] = []
    for e in h.retry:
        out.append(PlannedSlice(Slice(plan.account, plan.spec, e.start, e.end), "retry"))
        h.live.update(u.start for u in units if e.start <= u.start and u.end <= e.end)

    new: list[Unit] = []
    for u in units:
        if u.start in h.live or u.start in h.blocked or _day(u.end) < earliest:
            continue
        last = h.last_fetch.get(u.start)
        if last is None:
            new.append(u)
            continue
        age = (today - u.closes).days
        if hourly:
            # A real-time window is complete once fetched after it closed; partial ones are redone.
            if last <= u.closes:
                out.append(_make(plan, u, u, "restatement"))
            continue
        fetched_age = (last - u.closes).days
        if any(fetched_age < m <= age for m in ages):
            out.append(_make(plan, u, u, "restatement"))
    lookback_from = today - timedelta(days=plan.lookback_days)
    for first, last_unit in _runs(new, width):
        reason = "new" if _day(first.start) >= lookback_from else "backfill"
        out.append(_make(plan, first, last_unit, reason))
    return sorted(out, key=lambda p: (_day(p.slice.start), p.slice.key))

