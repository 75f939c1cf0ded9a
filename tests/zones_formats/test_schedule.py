"""Schedules and altitude references, pure: active windows against a brute-force reference, the
strategic test within a schedule, and the explicit conversions of flight levels and AGL."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import box

from deconfliction.detect.schedule import conflict_in_schedule
from deconfliction.detect.strategic import SeparationMinima, conflict
from deconfliction.geo.model import (
    AGL_TERRAIN_HIGH_M,
    AGL_TERRAIN_LOW_M,
    STD_MARGIN_M,
    AltitudeBand,
    GeoError,
    Volume4D,
    comparable_band,
    flight_level_m,
)
from deconfliction.geo.schedule import (
    DailyPeriod,
    active_windows,
    period_from_json,
    period_to_json,
    schedule_from_json,
)

MONDAY = datetime(2030, 1, 7, tzinfo=UTC)


def active_at(periods: list[DailyPeriod], moment: datetime) -> bool:
    """The reference: is ``moment`` inside a period that began today or yesterday?"""
    for period in periods:
        for back in (0, 1):
            day = (moment - timedelta(days=back)).date()
            if day.weekday() not in period.days:
                continue
            begin = datetime.combine(day, period.start, UTC)
            end = datetime.combine(day, period.end, UTC)
            if end <= begin:
                end += timedelta(days=1)
            if begin <= moment < end:
                return True
    return False


periods_strategy = st.lists(
    st.builds(
        DailyPeriod,
        st.frozensets(st.integers(0, 6), min_size=1),
        st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
        st.builds(time, st.integers(0, 23), st.sampled_from([0, 15, 30, 45])),
    ),
    min_size=1,
    max_size=3,
)


@settings(max_examples=200, deadline=None)
@given(
    periods_strategy,
    st.integers(0, 14 * 96),
    st.integers(1, 4 * 96),
    st.lists(st.integers(0, 18 * 96 * 15), min_size=5, max_size=40),
)
def test_active_windows_match_the_reference(
    periods: list[DailyPeriod], start_q: int, length_q: int, probes: list[int]
) -> None:
    start = MONDAY + timedelta(minutes=15 * start_q)
    end = start + timedelta(minutes=15 * length_q)
    valid_from, valid_to = MONDAY + timedelta(days=1), MONDAY + timedelta(days=12)
    windows = active_windows(periods, valid_from, valid_to, start, end)
    for a, b in itertools.pairwise(windows):
        assert a[1] < b[0]  # sorted, merged
    for minute in probes:
        moment = MONDAY + timedelta(minutes=minute)
        expected = (
            start <= moment < end and valid_from <= moment < valid_to and active_at(periods, moment)
        )
        inside = any(a <= moment < b for a, b in windows)
        assert inside == expected, moment


def test_no_schedule_is_the_whole_validity_and_midnight_periods() -> None:
    assert active_windows(
        [],
        MONDAY,
        MONDAY + timedelta(days=1),
        MONDAY - timedelta(hours=1),
        MONDAY + timedelta(hours=2),
    ) == [(MONDAY, MONDAY + timedelta(hours=2))]
    overnight = period_from_json({"days": ["SUN"], "start": "22:00", "end": "04:00"})
    assert active_windows(
        [overnight],
        MONDAY - timedelta(days=2),
        MONDAY + timedelta(days=7),
        MONDAY,
        MONDAY + timedelta(days=1),
    ) == [(MONDAY, MONDAY + timedelta(hours=4))]
    whole_day = period_from_json({"days": ["ANY"], "start": "00:00", "end": "24:00"})
    assert active_windows(
        [whole_day], MONDAY, MONDAY + timedelta(days=3), MONDAY, MONDAY + timedelta(days=3)
    ) == [(MONDAY, MONDAY + timedelta(days=3))]
    assert period_to_json(overnight) == {"days": ["SUN"], "start": "22:00", "end": "04:00"}


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"days": ["FUN"], "start": "08:00", "end": "09:00"}, "day 'FUN' is not one of"),
        ({"days": [], "start": "08:00", "end": "09:00"}, "at least one day"),
        ({"days": ["MON"], "start": "25:00", "end": "09:00"}, "'25:00' is not a UTC time"),
        ({"days": ["MON"], "start": "24:30", "end": "09:00"}, "after 24:00"),
        ({"days": ["MON"], "start": 8}, "needs start and end"),
        ("MON 0800-0900", "not an object"),
    ],
)
def test_bad_periods(data: object, message: str) -> None:
    with pytest.raises(GeoError, match=message):
        schedule_from_json([data])


def test_conflict_only_within_the_scheduled_windows() -> None:
    zone = Volume4D(
        box(36.0, 33.0, 36.2, 33.2),
        AltitudeBand(0, 3000, "MSL"),
        MONDAY,
        MONDAY + timedelta(days=30),
    )
    weekdays = [
        period_from_json(
            {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "06:00", "end": "18:00"}
        )
    ]
    minima = SeparationMinima(0.0, 0.0, 600.0)

    def plan(start: datetime, hours: float = 1) -> Volume4D:
        return Volume4D(
            box(36.05, 33.05, 36.1, 33.1),
            AltitudeBand(500, 900, "MSL"),
            start,
            start + timedelta(hours=hours),
        )

    assert (
        conflict_in_schedule(plan(MONDAY + timedelta(hours=10)), zone, weekdays, minima) is not None
    )
    assert conflict_in_schedule(plan(MONDAY + timedelta(hours=20)), zone, weekdays, minima) is None
    assert (
        conflict_in_schedule(plan(MONDAY + timedelta(days=5, hours=10)), zone, weekdays, minima)
        is None
    )
    # Across the weekend into Monday morning: the overlap starts when the zone wakes up.
    found = conflict_in_schedule(plan(MONDAY + timedelta(days=5), hours=60), zone, weekdays, minima)
    assert found is not None
    assert found.start == MONDAY + timedelta(days=7, hours=6) - timedelta(seconds=600)
    # Without periods: the plain test.
    assert conflict_in_schedule(plan(MONDAY + timedelta(hours=20)), zone, [], minima) == conflict(
        plan(MONDAY + timedelta(hours=20)), zone, minima
    )


def test_flight_levels_and_agl_are_compared_with_a_stated_margin() -> None:
    assert flight_level_m(95) == pytest.approx(2895.6)
    msl = AltitudeBand(100, 200, "MSL")
    assert comparable_band(msl).band == msl and comparable_band(msl).margin_note is None
    std = comparable_band(AltitudeBand(flight_level_m(50), flight_level_m(150), "STD"))
    assert std.band.lower_m == pytest.approx(1524 - STD_MARGIN_M)
    assert std.band.upper_m == pytest.approx(4572 + STD_MARGIN_M)
    assert std.band.reference == "MSL"
    assert std.margin_note == "flight levels compared as MSL widened by 300 m (QNH unknown)"
    agl = comparable_band(AltitudeBand(0, 120, "AGL"))
    assert (agl.band.lower_m, agl.band.upper_m) == (AGL_TERRAIN_LOW_M, 120 + AGL_TERRAIN_HIGH_M)
    assert agl.margin_note is not None and "terrain unknown" in agl.margin_note
