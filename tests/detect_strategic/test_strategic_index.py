"""The volume index and check(): same conflicts as brute force over every pair, at any size."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from shapely import Polygon

from deconfliction.detect import index as index_module
from deconfliction.detect.index import VolumeIndex, check
from deconfliction.detect.strategic import Overlap, SeparationMinima, conflict
from deconfliction.geo import AltitudeBand, Circle, Volume4D
from tests.detect_strategic.reference import T0, minima_strategy, reference, volumes

MINIMA = SeparationMinima(9_260.0, 300.0, 600.0)


def square(lon: float, lat: float, size: float = 0.1) -> Polygon:
    return Polygon([(lon, lat), (lon + size, lat), (lon + size, lat + size), (lon, lat + size)])


def vol(footprint: Polygon | Circle, start_h: float = 0.0, hours: float = 2.0) -> Volume4D:
    start = T0 + timedelta(hours=start_h)
    return Volume4D(footprint, AltitudeBand(1000, 3000), start, start + timedelta(hours=hours))


def brute_force(
    stored: dict[int, tuple[str, Volume4D]],
    new: list[Volume4D],
    owner: str,
    minima: SeparationMinima,
) -> list[tuple[int, int, Overlap]]:
    """Every pair, no index."""
    found = []
    for position, volume in enumerate(new):
        for key in sorted(stored):
            stored_owner, other = stored[key]
            if stored_owner == owner:
                continue
            overlap = conflict(volume, other, minima)
            if overlap is not None:
                found.append((position, key, overlap))
    return found


def test_add_remove_len_and_memory() -> None:
    index = VolumeIndex()
    assert len(index) == 0
    index.add(1, "TR", vol(square(36.0, 33.0)))
    index.add(2, "IL", vol(square(36.05, 33.05)))
    assert len(index) == 2
    with pytest.raises(ValueError, match="key 1 is already in the index"):
        index.add(1, "TR", vol(square(36.0, 33.0)))
    probe = vol(square(36.02, 33.02))
    assert index.candidates(probe, MINIMA) == [1, 2]
    assert index.candidates(probe, MINIMA, exclude_owner="TR") == [2]
    assert index.candidates(probe, MINIMA, exclude_owner="nobody") == [1, 2]
    index.remove(1)
    assert len(index) == 1
    assert index.candidates(probe, MINIMA) == [2]
    with pytest.raises(KeyError):
        index.remove(1)
    index.add(1, "SY", vol(square(36.0, 33.0)))  # a key may come back
    assert index.candidates(probe, MINIMA) == [1, 2]
    assert index.memory_bytes() > 0


def test_candidates_respect_time_altitude_and_space() -> None:
    index = VolumeIndex()
    index.add(1, "IL", vol(square(36.0, 33.0), start_h=5.0))  # later
    index.add(
        2, "IL", Volume4D(square(36.0, 33.0), AltitudeBand(5000, 6000), T0, T0 + timedelta(1))
    )
    index.add(3, "IL", vol(square(38.0, 33.0)))  # 180 km east
    index.add(4, "IL", vol(Circle(36.2, 33.0, 5_000.0)))  # ~4 km east
    assert index.candidates(vol(square(36.0, 33.0)), MINIMA) == [4]


def test_merges_and_rebuilds_keep_answers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(index_module, "DELTA_ROWS", 8)
    index = VolumeIndex()
    stored: dict[int, tuple[str, Volume4D]] = {}
    for key in range(200):
        footprint = square(35.5 + (key % 20) * 0.05, 32.5 + (key // 20) * 0.05, 0.04)
        volume = vol(footprint, start_h=(key % 7) * 0.5)
        owner = ("TR", "IL", "SY")[key % 3]
        index.add(key, owner, volume)
        stored[key] = (owner, volume)
    for key in range(0, 200, 3):
        index.remove(key)
        del stored[key]
    assert len(index) == len(stored)
    new = [vol(square(35.9, 32.7, 0.2)), vol(Circle(36.2, 32.9, 3_000.0), start_h=1.0)]
    got = check(index, new, "TR", MINIMA, stored.__getitem__)
    assert got == brute_force(stored, new, "TR", MINIMA)
    assert got


def test_long_and_huge_volumes() -> None:
    """A month-long zone and a country-sized one take the index's other paths."""
    index = VolumeIndex()
    month = Volume4D(square(36.0, 33.0), AltitudeBand(0, 20000), T0, T0 + timedelta(days=30))
    country = Volume4D(square(30.0, 25.0, 20.0), AltitudeBand(0, 20000), T0, T0 + timedelta(1))
    index.add_many([(1, "IL", month), (2, "IL", country)])
    probe = vol(square(36.05, 33.05, 0.01), start_h=24 * 20)
    assert index.candidates(probe, MINIMA) == [1]
    assert index.candidates(vol(square(36.05, 33.05, 0.01)), MINIMA) == [1, 2]


def test_check_skips_the_lookups_owner() -> None:
    index = VolumeIndex()
    index.add(7, "IL", vol(square(36.0, 33.0)))
    # The index was told IL, the store now says TR: the store wins.
    assert (
        check(
            index,
            [vol(square(36.0, 33.0))],
            "TR",
            MINIMA,
            lambda _: ("TR", vol(square(36.0, 33.0))),
        )
        == []
    )


@settings(max_examples=100, deadline=None)
@given(
    stored_activities=st.lists(
        st.tuples(st.sampled_from(["TR", "IL", "SY"]), volumes()), min_size=1, max_size=8
    ),
    new=volumes(),
    owner=st.sampled_from(["TR", "IL", "UN"]),
    minima=minima_strategy,
    removed=st.sets(st.integers(0, 40), max_size=5),
    bulk=st.booleans(),
)
def test_index_and_engine_equal_brute_force_and_reference(
    stored_activities: list[tuple[str, list[Volume4D]]],
    new: list[Volume4D],
    owner: str,
    minima: SeparationMinima,
    removed: set[int],
    bulk: bool,
) -> None:
    stored: dict[int, tuple[str, Volume4D]] = {}
    for activity_owner, activity in stored_activities:
        for volume in activity:
            stored[len(stored)] = (activity_owner, volume)
    index = VolumeIndex()
    if bulk:
        index.add_many((key, who, volume) for key, (who, volume) in stored.items())
    else:
        for key, (who, volume) in stored.items():
            index.add(key, who, volume)
    for key in removed & stored.keys():
        index.remove(key)
        del stored[key]

    got = check(index, new, owner, minima, stored.__getitem__)
    assert got == brute_force(stored, new, owner, minima)

    found = {(position, key) for position, key, _ in got}
    for position, volume in enumerate(new):
        for key, (who, other) in stored.items():
            if who == owner:
                continue
            verdict = reference(volume, other, minima)
            if not verdict.borderline:
                assert ((position, key) in found) == verdict.conflict, (position, key)


def test_no_volumes_no_candidates() -> None:
    index = VolumeIndex()
    index.add(1, "IL", vol(square(36.0, 33.0)))
    assert index.candidates_many([], MINIMA) == []
    assert check(index, [], "TR", MINIMA, lambda _: ("IL", vol(square(36.0, 33.0)))) == []
