"""The intake's area check against the WGS-84 geodesic it stands for."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from pyproj import Geod

from deconfliction.tracks.picture import IntakeRules

GEOD = Geod(ellps="WGS84")


@settings(max_examples=500, deadline=None)
@given(
    st.floats(-89.0, 89.0),
    st.floats(-180.0, 180.0),
    st.floats(-90.0, 90.0),
    st.floats(-180.0, 180.0),
    st.sampled_from([1_500_000.0, 50_000.0, 5_000_000.0, 15_000_000.0]),
    st.booleans(),
)
def test_outside_area_is_the_geodesic_distance_test(
    lat0: float, lon0: float, lat: float, lon: float, radius: float, near_edge: bool
) -> None:
    if near_edge:
        # On a bearing from the origin, within 2 % of the radius: where the sphere cannot tell.
        lon, lat, _ = GEOD.fwd(lon0, lat0, (lat * 4.0) % 360.0, radius * (1.0 + lon / 9_000.0))
    rules = IntakeRules(origin=(lat0, lon0), area_radius_m=radius)
    _, _, dist = GEOD.inv(lon0, lat0, lon, lat)
    assert rules.outside_area(lat, lon) == (dist > radius)


def test_exactly_at_the_radius_is_inside() -> None:
    lon, lat, _ = GEOD.fwd(38.9, 34.8, 77.0, 1_500_000.0)
    _, _, dist = GEOD.inv(38.9, 34.8, lon, lat)
    rules = IntakeRules(area_radius_m=dist)
    assert not rules.outside_area(lat, lon)
    assert IntakeRules(area_radius_m=dist * (1 - 1e-9)).outside_area(lat, lon)
