"""Recurring schedules: a zone active only in its daily periods (ED-269 schedules, NOTAM item D).

Pure: the caller says which span of time it cares about, and gets the zone's active windows in
it. Times of day are UTC, as both formats give them.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any

from deconfliction.geo.model import GeoError

DAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
MAX_PERIODS = 64
_TIME = re.compile(r"^([01]\d|2[0-4]):?([0-5]\d)(?::?([0-5]\d))?Z?$")


@dataclass(frozen=True, slots=True)
class DailyPeriod:
    """Active from ``start`` to ``end`` (UTC) on each of ``days`` (0 = Monday, the day the period
    starts). An ``end`` at or before ``start`` runs past midnight into the next day; 00:00 to
    00:00 is the whole day."""

    days: frozenset[int]
    start: time
    end: time

    def __post_init__(self) -> None:
        if not self.days or not self.days <= set(range(7)):
            raise GeoError("a daily period needs at least one day, MON..SUN")


def parse_time_of_day(raw: str, what: str) -> time:
    """'08:00', '0800', '08:00:00Z' or '24:00' (the end of the day, kept as 00:00)."""
    found = _TIME.match(raw.strip())
    if found is None:
        raise GeoError(f"{what} {raw!r} is not a UTC time of day such as 08:00")
    hour, minute, second = int(found[1]), int(found[2]), int(found[3] or 0)
    if hour == 24:
        if minute or second:
            raise GeoError(f"{what} {raw!r} is after 24:00")
        return time(0, 0)
    return time(hour, minute, second)


def period_from_json(data: Any, what: str = "schedule period") -> DailyPeriod:
    """{"days": ["MON", ...], "start": "08:00", "end": "18:00"} (our JSON form)."""
    if not isinstance(data, dict):
        raise GeoError(f"{what} is not an object with days, start and end")
    days = data.get("days")
    if not isinstance(days, list) or not all(isinstance(d, str) for d in days):
        raise GeoError(f'{what} days is not a list such as ["MON", "TUE"]')
    numbers: set[int] = set()
    for day in days:
        if day.upper() == "ANY":
            numbers.update(range(7))
        elif day.upper() in DAYS:
            numbers.add(DAYS.index(day.upper()))
        else:
            raise GeoError(f"{what} day {day!r} is not one of {', '.join(DAYS)} or ANY")
    start, end = data.get("start"), data.get("end")
    if not isinstance(start, str) or not isinstance(end, str):
        raise GeoError(f'{what} needs start and end as times of day such as "08:00"')
    return DailyPeriod(
        frozenset(numbers),
        parse_time_of_day(start, f"{what} start"),
        parse_time_of_day(end, f"{what} end"),
    )


def period_to_json(period: DailyPeriod) -> dict[str, Any]:
    return {
        "days": [DAYS[d] for d in sorted(period.days)],
        "start": period.start.strftime("%H:%M:%S" if period.start.second else "%H:%M"),
        "end": period.end.strftime("%H:%M:%S" if period.end.second else "%H:%M"),
    }


def schedule_from_json(data: Any) -> tuple[DailyPeriod, ...]:
    if data is None:
        return ()
    if not isinstance(data, list):
        raise GeoError("schedule is not a list of daily periods")
    if len(data) > MAX_PERIODS:
        raise GeoError(f"schedule has {len(data)} periods; at most {MAX_PERIODS} are allowed")
    return tuple(period_from_json(p, f"schedule period {i}") for i, p in enumerate(data))


def _length(period: DailyPeriod) -> timedelta:
    day = datetime(2000, 1, 1)
    length = datetime.combine(day, period.end) - datetime.combine(day, period.start)
    return length if length > timedelta(0) else length + timedelta(days=1)


def active_windows(
    periods: Sequence[DailyPeriod],
    valid_from: datetime,
    valid_to: datetime,
    start: datetime,
    end: datetime,
) -> list[tuple[datetime, datetime]]:
    """The zone's active windows within [start, end], merged where they touch, in time order.

    Without periods the zone is active through its whole validity. The cost is one step per day
    of [start, end], so callers ask about the span they need (a plan's window, a look-ahead).
    """
    lo, hi = max(valid_from, start), min(valid_to, end)
    if lo >= hi:
        return []
    if not periods:
        return [(lo, hi)]
    windows: list[tuple[datetime, datetime]] = []
    # A period that started the day before can still be running at `lo`.
    day = datetime.combine(lo.astimezone(UTC).date() - timedelta(days=1), time(0), UTC)
    while day < hi:
        for period in periods:
            if day.weekday() not in period.days:
                continue
            begin = datetime.combine(day.date(), period.start, UTC)
            finish = begin + _length(period)
            clipped = (max(begin, lo), min(finish, hi))
            if clipped[0] < clipped[1]:
                windows.append(clipped)
        day += timedelta(days=1)
    windows.sort()
    merged: list[tuple[datetime, datetime]] = []
    for begin, finish in windows:
        if merged and begin <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], finish))
        else:
            merged.append((begin, finish))
    return merged
