"""Calendar arithmetic for SP-API vendor report periods (pure functions, no I/O).

Amazon's vendor and Brand Analytics schemas define the periods: a WEEK runs Sunday to Saturday
("dataStartTime must be a Sunday for the WEEK reportPeriod"), MONTH, QUARTER and YEAR are calendar
periods, DAY is one calendar day. Hourly real-time reports use whole UTC hours.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum


class ReportPeriod(StrEnum):
    """The `reportPeriod` values of the vendor analytics and Brand Analytics reports."""

    DAY = "DAY"
    WEEK = "WEEK"
    MONTH = "MONTH"
    QUARTER = "QUARTER"
    YEAR = "YEAR"


def _month_index(day: date) -> int:
    return day.year * 12 + day.month - 1


def _month_start(index: int) -> date:
    return date(index // 12, index % 12 + 1, 1)


def _months_in(period: ReportPeriod) -> int:
    return {ReportPeriod.MONTH: 1, ReportPeriod.QUARTER: 3, ReportPeriod.YEAR: 12}[period]


def period_index(period: ReportPeriod, day: date) -> int:
    """A running number of the period holding `day` (consecutive periods differ by one)."""
    if period is ReportPeriod.DAY:
        return day.toordinal()
    if period is ReportPeriod.WEEK:
        # date.toordinal() of 0001-01-07 (a Sunday) is 7; Sunday-based weeks are (ordinal) // 7.
        return day.toordinal() // 7
    return _month_index(day) // _months_in(period)


def period_start_of_index(period: ReportPeriod, index: int) -> date:
    """The first day of the period numbered `index` (the inverse of `period_index`)."""
    if period is ReportPeriod.DAY:
        return date.fromordinal(index)
    if period is ReportPeriod.WEEK:
        return date.fromordinal(index * 7)
    return _month_start(index * _months_in(period))


def period_bounds(period: ReportPeriod, day: date) -> tuple[date, date]:
    """The first and last day (inclusive) of the period that holds `day`."""
    index = period_index(period, day)
    start = period_start_of_index(period, index)
    end = period_start_of_index(period, index + 1) - timedelta(days=1)
    return start, end


def is_period_start(period: ReportPeriod, day: date) -> bool:
    """Whether `day` is the first day of its period (a Sunday for WEEK, the 1st for MONTH...)."""
    return period_bounds(period, day)[0] == day


def is_period_end(period: ReportPeriod, day: date) -> bool:
    """Whether `day` is the last day of its period (a Saturday for WEEK...)."""
    return period_bounds(period, day)[1] == day


def is_aligned(period: ReportPeriod, start: date, end: date) -> bool:
    """Whether `start`..`end` is a whole number of periods: a period start, a period end, in order."""
    return start <= end and is_period_start(period, start) and is_period_end(period, end)


def count_periods(period: ReportPeriod, start: date, end: date) -> int:
    """How many periods `start`..`end` touches (0 when end is before start)."""
    if end < start:
        return 0
    return period_index(period, end) - period_index(period, start) + 1


def split_periods(period: ReportPeriod, start: date, end: date) -> list[tuple[date, date]]:
    """The whole periods touched by `start`..`end`, in order; an aligned range is covered exactly."""
    if end < start:
        return []
    first, last = period_index(period, start), period_index(period, end)
    out = []
    for index in range(first, last + 1):
        out.append(
            (
                period_start_of_index(period, index),
                period_start_of_index(period, index + 1) - timedelta(days=1),
            )
        )
    return out


def periods_between(period: ReportPeriod, earlier: date, later: date) -> int:
    """How many period boundaries lie between the periods of `earlier` and `later` (>= 0 if ordered)."""
    return period_index(period, later) - period_index(period, earlier)


def days(start: date, end: date) -> Iterator[date]:
    """Every day from `start` to `end` inclusive."""
    for n in range((end - start).days + 1):
        yield start + timedelta(days=n)


def full_hours(start: datetime, end: datetime) -> list[datetime]:
    """The start of every whole UTC hour lying inside `start`..`end` (both timezone-aware)."""
    start = start.astimezone(UTC)
    end = end.astimezone(UTC)
    first = start.replace(minute=0, second=0, microsecond=0)
    if first < start:
        first += timedelta(hours=1)
    out = []
    hour = first
    while hour + timedelta(hours=1) <= end:
        out.append(hour)
        hour += timedelta(hours=1)
    return out
