"""Brute-force reference for the tactical engine: every pair, plain Python floats, no broad phase.

It answers the same question as ``detect_conflicts`` from the textbook formulas, one pair at a
time, on the same plane states (the plane itself is tested against PROJ on its own), so the
engine must return exactly its pair set and the same figures.
"""

from __future__ import annotations

import math

from deconfliction.detect.tactical import (
    STILL_MPS,
    TacticalConflict,
    TacticalMinima,
    TrackBatch,
    plane_for,
)


def reference_conflicts(
    batch: TrackBatch,
    minima: TacticalMinima,
    same_party: bool = False,
    origin: tuple[float, float] | None = None,
) -> list[TacticalConflict]:
    plane = plane_for(batch, origin)
    t = plane.tracks(batch.lat, batch.lon, batch.gs_mps, batch.course_deg)
    xs, ys, us, vs = t.x.tolist(), t.y.tolist(), t.u.tolist(), t.v.tolist()
    alt, climb = batch.alt_m.tolist(), batch.vs_mps.tolist()
    four_r2 = 4.0 * plane.radius_m * plane.radius_m
    found: list[TacticalConflict] = []
    n = len(batch)
    for i in range(n):
        for j in range(i + 1, n):
            if not same_party and batch.party[i] == batch.party[j]:
                continue
            got = pair_reference(
                (xs[i], ys[i], us[i], vs[i], alt[i], climb[i]),
                (xs[j], ys[j], us[j], vs[j], alt[j], climb[j]),
                four_r2,
                minima,
            )
            if got is not None:
                a, b = sorted((batch.ids[i], batch.ids[j]))
                found.append(TacticalConflict(a, b, *got))
    return sorted(found, key=lambda c: (c.a, c.b))


def pair_reference(
    own: tuple[float, float, float, float, float, float],
    other: tuple[float, float, float, float, float, float],
    four_r2: float,
    minima: TacticalMinima,
) -> tuple[float, float, float, float] | None:
    """(tcpa, dcpa, t_in, t_out) of one pair in the plane, or None when not in conflict."""
    xi, yi, ui, vi, zi, wi = own
    xj, yj, uj, vj, zj, wj = other
    big_r, big_h, look = minima.horizontal_m, minima.vertical_m, minima.lookahead_s
    dx, dy, du, dv = xj - xi, yj - yi, uj - ui, vj - vi
    v2 = du * du + dv * dv
    moving = v2 > STILL_MPS * STILL_MPS
    tcpa_raw = -(dx * du + dy * dv) / v2 if moving else 0.0
    tcpa = min(max(tcpa_raw, 0.0), look)
    mx = (xi + xj + (ui + uj) * tcpa) / 2.0
    my = (yi + yj + (vi + vj) * tcpa) / 2.0
    scale = 1.0 + (mx * mx + my * my) / four_r2
    r_map = big_r * scale
    if moving:
        cross = dx * dv - dy * du
        d2 = cross * cross / v2
        if not d2 < r_map * r_map:
            return None
        half = math.sqrt((r_map * r_map - d2) / v2)
        tin_h, tout_h = tcpa_raw - half, tcpa_raw + half
    else:
        if not dx * dx + dy * dy < r_map * r_map:
            return None
        tin_h, tout_h = -math.inf, math.inf
    dz, dw = zj - zi, wj - wi
    if abs(dw) > STILL_MPS:
        t_top, t_bottom = (big_h - dz) / dw, (-big_h - dz) / dw
        tin_v, tout_v = min(t_top, t_bottom), max(t_top, t_bottom)
    elif abs(dz) < big_h:
        tin_v, tout_v = -math.inf, math.inf
    else:
        return None
    t_in, t_out = max(tin_h, tin_v), min(tout_h, tout_v)
    if not (t_in < t_out and t_out > 0.0 and t_in < look):
        return None
    ex, ey = dx + du * tcpa, dy + dv * tcpa
    return tcpa, math.sqrt(ex * ex + ey * ey) / scale, max(t_in, 0.0), min(t_out, look)
