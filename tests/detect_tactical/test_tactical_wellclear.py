"""Well-clear mode against the DO-365 predicates evaluated instant by instant."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.detect.tactical import detect_conflicts, plane_for
from deconfliction.detect.tactical_plane import ConformalPlane, PlaneTracks
from deconfliction.detect.tactical_wellclear import (
    FT,
    WellClear,
    detect_well_clear,
    well_clear_test,
)

from .support import CENTRE, batch, offset, syria_traffic

PLANE = ConformalPlane(*CENTRE)
DMOD = 4000 * FT
ZTHR = 450 * FT


def kernel(
    state: list[tuple[float, float, float, float, float, float]], params: WellClear
) -> tuple[bool, float, float, float, float]:
    """One pair of plane states (x, y, u, v, z, w) through the vectorised test."""
    x, y, u, v, z, w = (np.array(c, dtype=np.float64) for c in zip(*state, strict=True))
    f = well_clear_test(
        PLANE,
        PlaneTracks(x, y, u, v),
        z,
        w,
        np.array([0], dtype=np.int64),
        np.array([1], dtype=np.int64),
        params,
    )
    return (
        bool(f.conflict[0]),
        float(f.tcpa_s[0]),
        float(f.dcpa_m[0]),
        float(f.t_in_s[0]),
        float(f.t_out_s[0]),
    )


def not_well_clear_at(
    state: list[tuple[float, float, float, float, float, float]], t: float, params: WellClear
) -> bool:
    """The DO-365 predicates at one instant, straight from their definitions, with DMOD scaled
    like the engine does (by the plane's point scale at the pair's clipped CPA midpoint)."""
    (x1, y1, u1, v1, z1, w1), (x2, y2, u2, v2, z2, w2) = state
    sx, sy = x2 - x1 + (u2 - u1) * t, y2 - y1 + (v2 - v1) * t
    vx, vy = u2 - u1, v2 - v1
    vv = vx * vx + vy * vy
    tcpa = -((x2 - x1) * vx + (y2 - y1) * vy) / vv if vv > 1e-18 else 0.0
    clipped = min(max(tcpa, 0.0), params.lookahead_s)
    mx = (x1 + x2 + (u1 + u2) * clipped) / 2.0
    my = (y1 + y2 + (v1 + v2) * clipped) / 2.0
    dmod = params.dmod_m * float(PLANE.scale(np.array([mx]), np.array([my]))[0])
    r2 = sx * sx + sy * sy
    sv = sx * vx + sy * vy
    hmd2 = (sx * vy - sy * vx) ** 2 / vv if vv > 1e-18 else r2
    tau_ok = sv < 0.0 and 0.0 <= (dmod * dmod - r2) / sv <= params.tau_mod_s
    horizontal = r2 <= dmod * dmod or (hmd2 <= dmod * dmod and tau_ok)
    return horizontal and abs(z2 - z1 + (w2 - w1) * t) <= params.zthr_m


def test_head_on_interval_and_thresholds() -> None:
    # Closing at 100 m/s from 20 km: CPA at 200 s; inside DMOD for 12.192 s either side; the tau
    # criterion fires (35 + sqrt(35^2 + 4 * 12.192^2)) / 2 = 38.83 s before CPA.
    state = [(0.0, -10_000.0, 0.0, 50.0, 0.0, 0.0), (0.0, 10_000.0, 0.0, -50.0, 100.0, 0.0)]
    params = WellClear(lookahead_s=300.0)
    hit, tcpa, hmd, t_in, t_out = kernel(state, params)
    h = DMOD / 100.0
    assert hit
    assert (tcpa, hmd) == (200.0, 0.0)
    assert t_in == pytest.approx(200.0 - (35.0 + math.sqrt(35.0**2 + 4 * h * h)) / 2.0)
    assert t_out == pytest.approx(200.0 + h)
    assert not not_well_clear_at(state, t_in - 0.01, params)
    assert not_well_clear_at(state, t_in + 0.01, params)
    # The default 75 s look-ahead ends before the violation starts.
    assert not kernel(state, WellClear())[0]


def test_exactly_at_the_thresholds_is_a_violation() -> None:
    # Vertically exactly ZTHR apart, level, stationary inside DMOD.
    still = [(-100.0, 0.0, 0.0, 0.0, 0.0, 0.0), (100.0, 0.0, 0.0, 0.0, ZTHR, 0.0)]
    assert kernel(still, WellClear())[0]
    still[1] = (100.0, 0.0, 0.0, 0.0, ZTHR + 0.01, 0.0)
    assert not kernel(still, WellClear())[0]
    # HMD exactly DMOD (1,000 m here: exact in binary), symmetric about the plane centre where
    # the scale is exactly 1: a single point of the disc, reached at CPA (50 s); tau fires 35 s
    # before it.
    params = WellClear(dmod_m=1000.0)
    passing = [(-500.0, -5000.0, 0.0, 100.0, 0.0, 0.0), (500.0, 5000.0, 0.0, -100.0, 0.0, 0.0)]
    assert kernel(passing, params) == (True, 50.0, 1000.0, 15.0, 50.0)
    passing[1] = (500.001, 5000.0, 0.0, -100.0, 0.0, 0.0)
    assert not kernel(passing, params)[0]


def test_diverging_inside_dmod_and_far_apart() -> None:
    inside = [(0.0, 0.0, 0.0, -30.0, 0.0, 0.0), (0.0, 600.0, 0.0, 30.0, 0.0, 0.0)]
    hit, tcpa, _, t_in, t_out = kernel(inside, WellClear())
    assert (hit, tcpa, t_in) == (True, 0.0, 0.0)
    assert t_out == pytest.approx((DMOD - 600.0) / 60.0)
    far = [(0.0, 0.0, 0.0, 0.0, 0.0, 0.0), (0.0, 5000.0, 0.0, 0.0, 0.0, 0.0)]
    assert not kernel(far, WellClear())[0]


def test_well_clear_parameters_checked() -> None:
    with pytest.raises(ValueError, match="dmod_m"):
        WellClear(dmod_m=-1.0)
    with pytest.raises(ValueError, match="tau_mod_s"):
        WellClear(tau_mod_s=math.inf)


finite = st.floats(-20_000.0, 20_000.0)
speed = st.sampled_from([0.0, 50.0]) | st.floats(-150.0, 150.0)
state_st = st.tuples(
    finite, finite, speed, speed, st.floats(0.0, 1000.0), st.sampled_from([0.0, 5.0, -5.0])
)


@settings(max_examples=300, deadline=None)
@given(st.lists(state_st, min_size=2, max_size=2), st.sampled_from([0.0, 20.0, 35.0]))
def test_interval_matches_the_predicates_instant_by_instant(
    state: list[tuple[float, float, float, float, float, float]], tau: float
) -> None:
    params = WellClear(tau_mod_s=tau, lookahead_s=120.0)
    hit, _, _, t_in, t_out = kernel(state, params)
    for t in np.linspace(0.0, params.lookahead_s, 241).tolist():
        if hit and t_in + 1e-6 < t < t_out - 1e-6:
            assert not_well_clear_at(state, t, params), t
        elif not hit or t < t_in - 1e-6 or t > t_out + 1e-6:
            assert not not_well_clear_at(state, t, params), t


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 2**32 - 1), st.integers(2, 200), st.booleans())
def test_broad_phase_keeps_every_violation(seed: int, n: int, same_party: bool) -> None:
    # Dense traffic in a 30 km square so that violations are common.
    rng = np.random.default_rng(seed)
    rows = []
    for k in range(n):
        lat, lon = offset(*CENTRE, *rng.uniform(-15_000.0, 15_000.0, 2).tolist())
        rows.append(
            (
                f"t{k:03d}",
                "AB"[k % 2],
                lat,
                lon,
                float(rng.integers(0, 10)) * 100.0,
                float(rng.uniform(0.0, 120.0)),
                float(rng.uniform(0.0, 360.0)),
                float(rng.choice([0.0, 0.0, 4.0, -4.0])),
            )
        )
    b = batch(rows)
    params = WellClear()
    plane = plane_for(b)
    tracks = plane.tracks(b.lat, b.lon, b.gs_mps, b.course_deg)
    i, j = np.triu_indices(n, 1)
    fig = well_clear_test(
        plane, tracks, b.alt_m, b.vs_mps, i.astype(np.int64), j.astype(np.int64), params
    )
    keep = fig.conflict & (same_party | (np.array(b.party)[i] != np.array(b.party)[j]))
    want = {(b.ids[p], b.ids[q]) for p, q in zip(i[keep].tolist(), j[keep].tolist(), strict=True)}
    got = detect_well_clear(b, params, same_party=same_party)
    assert {(c.a, c.b) for c in got} == want


def test_syria_traffic_has_far_fewer_well_clear_losses_than_conflicts() -> None:
    b = syria_traffic(3000, seed=11)
    found = detect_well_clear(b)
    assert 0 < len(found) < len(detect_conflicts(b)) / 10
    assert all(c.a < c.b and 0.0 <= c.t_in_s <= c.t_out_s <= 75.0 for c in found)
    assert [(c.a, c.b) for c in found] == sorted((c.a, c.b) for c in found)
