"""The plane against PROJ, and the planar CPA figures against the WGS-84 geodesic."""

from __future__ import annotations

import numpy as np
import pytest
from pyproj import Transformer

from deconfliction.detect.tactical import (
    TacticalMinima,
    TrackBatch,
    detect_conflicts,
    with_geodesic_dcpa,
)
from deconfliction.detect.tactical_plane import ConformalPlane

from .support import CENTRE, EAST, GEOD, NORTH, SOUTH, WEST, batch


def test_plane_matches_proj_sterea() -> None:
    rng = np.random.default_rng(1)
    lat = rng.uniform(SOUTH - 1, NORTH + 1, 2000)
    lon = rng.uniform(WEST - 1, EAST + 1, 2000)
    for lat0, lon0 in (CENTRE, (-33.0, 151.0), (70.0, -20.0)):
        proj = Transformer.from_pipeline(
            "+proj=pipeline +step +proj=unitconvert +xy_in=deg +xy_out=rad "
            f"+step +proj=sterea +lat_0={lat0} +lon_0={lon0} +k=1 +ellps=WGS84"
        )
        want_x, want_y = proj.transform(lon - CENTRE[1] + lon0, lat - CENTRE[0] + lat0)
        x, y = ConformalPlane(lat0, lon0).forward(lat - CENTRE[0] + lat0, lon - CENTRE[1] + lon0)
        assert np.abs(x - want_x).max() < 1e-6
        assert np.abs(y - want_y).max() < 1e-6


def test_plane_velocity_follows_the_geodesic_and_scale() -> None:
    # The plane velocity points where a 10 m geodesic step goes, and is m times the speed.
    rng = np.random.default_rng(2)
    lat = rng.uniform(SOUTH, NORTH, 500)
    lon = rng.uniform(WEST, EAST, 500)
    course = rng.uniform(0.0, 360.0, 500)
    plane = ConformalPlane(*CENTRE)
    t = plane.tracks(lat, lon, np.full(500, 10.0), course)
    lon2, lat2, _ = GEOD.fwd(lon, lat, course, np.full(500, 10.0))
    x2, y2 = plane.forward(lat2, lon2)
    step = np.hypot(x2 - t.x, y2 - t.y)
    assert np.abs(t.u - (x2 - t.x)).max() < 1e-5
    assert np.abs(t.v - (y2 - t.y)).max() < 1e-5
    assert np.abs(plane.scale(t.x, t.y) * 10.0 - step).max() < 1e-4


def meeting_pairs(n: int, seed: int) -> TrackBatch:
    """n pairs anywhere in Syria (a third from its corners) flying straight on geodesics and
    meeting within 0-9 km of each other 0-300 s from now."""
    rng = np.random.default_rng(seed)
    lat1 = rng.uniform(SOUTH, NORTH, n)
    lon1 = rng.uniform(WEST, EAST, n)
    corner = rng.random(n) < 1 / 3
    lat1[corner] = rng.choice([SOUTH, NORTH], int(corner.sum()))
    lon1[corner] = rng.choice([WEST, EAST], int(corner.sum()))
    gs1, gs2 = rng.uniform(60.0, 280.0, (2, n))
    c1, c2 = rng.uniform(0.0, 360.0, (2, n))
    t_meet = rng.uniform(0.0, 300.0, n)
    lon_m, lat_m, _ = GEOD.fwd(lon1, lat1, c1, gs1 * t_meet)
    lon_p, lat_p, _ = GEOD.fwd(lon_m, lat_m, rng.uniform(0, 360, n), rng.uniform(0, 9000, n))
    lon2, lat2, back = GEOD.fwd(lon_p, lat_p, c2 + 180.0, gs2 * t_meet)
    alt = rng.uniform(1000.0, 11000.0, n)
    rows = []
    for k in range(n):
        rows.append((f"a{k:03d}", "TR", lat1[k], lon1[k], alt[k], gs1[k], c1[k], 0.0))
        course2 = float(back[k] % 360.0)
        rows.append((f"b{k:03d}", "IL", lat2[k], lon2[k], alt[k], gs2[k], course2, 0.0))
    return batch(rows)


def test_planar_cpa_within_50_m_of_the_geodesic() -> None:
    b = meeting_pairs(600, seed=3)
    found = detect_conflicts(b, TacticalMinima(), origin=CENTRE)
    assert len(found) >= 500
    geodesic = with_geodesic_dcpa(b, found)
    errors = np.array([abs(p.dcpa_m - g.dcpa_m) for p, g in zip(found, geodesic, strict=True)])
    assert errors.max() < 50.0
    assert np.median(errors) < 2.0
    assert [(g.a, g.b, g.tcpa_s, g.t_in_s, g.t_out_s) for g in geodesic] == [
        (p.a, p.b, p.tcpa_s, p.t_in_s, p.t_out_s) for p in found
    ]


def test_geodesic_dcpa_of_a_hand_case() -> None:
    # Two tracks 5 km apart on the same meridian, both flying north at 100 m/s: the geodesic
    # distance stays 5 km (to a metre) at any tcpa.
    lon2, lat2, _ = GEOD.fwd(39.0, 34.0, 0.0, 5000.0)
    b = batch(
        [
            ("a", "TR", 34.0, 39.0, 5000.0, 100.0, 0.0, 0.0),
            ("b", "IL", float(lat2), float(lon2), 5000.0, 100.0, 0.0, 0.0),
        ]
    )
    (c,) = with_geodesic_dcpa(b, detect_conflicts(b))
    assert c.dcpa_m == pytest.approx(5000.0, abs=1.0)
    assert with_geodesic_dcpa(b, []) == []
