"""Well-clear mode: predicted loss of DO-365 "DAA well clear" between tracks (pure, numpy).

Reimplemented from the published definitions (RTCA DO-365, as formalised for DAIDALUS by Munoz
et al., "DAIDALUS: Detect and Avoid Alerting Logic for Unmanned Systems", DASC 2015); no NASA
code. With s, v the relative horizontal position and velocity and s_z the relative altitude:

- modified tau ``tau_mod = (DMOD**2 - |s|**2) / (s . v)`` while converging (s . v < 0), undefined
  otherwise;
- HMD, the horizontal miss distance: the distance at the horizontal closest point of approach;
- horizontally not well clear: ``|s| <= DMOD``, or ``HMD <= HMD*`` and ``0 <= tau_mod <= TAUMOD``;
- vertically not well clear: ``|s_z| <= ZTHR`` (DO-365 sets the time-to-co-altitude threshold to
  0 s, which adds nothing to this);
- loss of well clear: both at once. DO-365: DMOD = HMD* = 4,000 ft, ZTHR = 450 ft, TAUMOD = 35 s;
  this module uses HMD* = DMOD, as DO-365 does.

Unlike the separation minima of ``detect_conflicts``, every comparison is ``<=`` as in the
standard: exactly at a threshold is a violation.

Along straight lines the horizontal violation is one closed interval. Write tcpa for the time of
horizontal CPA and h = sqrt(DMOD**2 - HMD**2) / |v| for half the time inside DMOD; at t < tcpa,
``s . v = |v|**2 (t - tcpa)`` and ``|s|**2 = HMD**2 + |v|**2 (t - tcpa)**2``, so
``tau_mod <= TAUMOD`` reads ``(t - tcpa)**2 + TAUMOD (t - tcpa) - h**2 <= 0``. The interval is
therefore ``[tcpa - (TAUMOD + sqrt(TAUMOD**2 + 4 h**2)) / 2, tcpa + h]`` when HMD <= DMOD, and
empty otherwise. It starts at most TAUMOD before the pair comes within DMOD, which is what the
broad phase uses: horizontal boxes are swept TAUMOD beyond the look-ahead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from deconfliction.detect.tactical import (
    STILL_MPS,
    IntArray,
    PairFigures,
    TacticalConflict,
    TacticalMinima,
    TrackBatch,
    candidate_pairs,
    conflict_list,
    plane_for,
    plane_tracks,
)
from deconfliction.detect.tactical_plane import ConformalPlane, PlaneTracks

FloatArray = NDArray[np.float64]
FT = 0.3048


@dataclass(frozen=True, slots=True)
class WellClear:
    """DO-365 well-clear thresholds (DMOD 4,000 ft, ZTHR 450 ft, TAUMOD 35 s) and look-ahead."""

    dmod_m: float = 4000 * FT
    zthr_m: float = 450 * FT
    tau_mod_s: float = 35.0
    lookahead_s: float = 75.0

    def __post_init__(self) -> None:
        for name in ("dmod_m", "zthr_m", "lookahead_s"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0.0):
                raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
        if not (math.isfinite(self.tau_mod_s) and self.tau_mod_s >= 0.0):
            raise ValueError(f"tau_mod_s must be a finite number >= 0, got {self.tau_mod_s!r}")


def well_clear_test(
    plane: ConformalPlane,
    tracks: PlaneTracks,
    alt_m: FloatArray,
    vs_mps: FloatArray,
    i: IntArray,
    j: IntArray,
    params: WellClear,
) -> PairFigures:
    """Predicted loss of well clear for the pairs (i[k], j[k]), vectorised. Figures as in
    ``pair_test``: tcpa clipped to the look-ahead, HMD then (as ``dcpa_m``), and the violation
    interval clipped to [0, look-ahead]."""
    dmod = params.dmod_m
    zthr = params.zthr_m
    tau = params.tau_mod_s
    look = params.lookahead_s
    dx = tracks.x[j] - tracks.x[i]
    dy = tracks.y[j] - tracks.y[i]
    du = tracks.u[j] - tracks.u[i]
    dv = tracks.v[j] - tracks.v[i]
    v2 = du * du + dv * dv
    moving = v2 > STILL_MPS * STILL_MPS
    v2s = np.where(moving, v2, 1.0)
    tcpa_raw = np.where(moving, -(dx * du + dy * dv) / v2s, 0.0)
    tcpa = np.clip(tcpa_raw, 0.0, look)
    scale = plane.scale(
        (tracks.x[i] + tracks.x[j] + (tracks.u[i] + tracks.u[j]) * tcpa) / 2.0,
        (tracks.y[i] + tracks.y[j] + (tracks.v[i] + tracks.v[j]) * tcpa) / 2.0,
    )
    d_map = dmod * scale
    cross = dx * dv - dy * du
    hmd2 = np.where(moving, cross * cross / v2s, dx * dx + dy * dy)
    horizontal = hmd2 <= d_map * d_map
    h2 = np.maximum(d_map * d_map - hmd2, 0.0) / v2s
    start_h = np.where(moving, tcpa_raw - (tau + np.sqrt(tau * tau + 4.0 * h2)) / 2.0, -np.inf)
    end_h = np.where(moving, tcpa_raw + np.sqrt(h2), np.inf)

    dz = alt_m[j] - alt_m[i]
    dw = vs_mps[j] - vs_mps[i]
    climbing = np.abs(dw) > STILL_MPS
    dws = np.where(climbing, dw, 1.0)
    t_top = (zthr - dz) / dws
    t_bottom = (-zthr - dz) / dws
    level_inside = np.abs(dz) <= zthr
    start_v = np.where(
        climbing, np.minimum(t_top, t_bottom), np.where(level_inside, -np.inf, np.inf)
    )
    end_v = np.where(climbing, np.maximum(t_top, t_bottom), np.where(level_inside, np.inf, -np.inf))

    t_in = np.maximum(start_h, start_v)
    t_out = np.minimum(end_h, end_v)
    violation = horizontal & (t_in <= t_out) & (t_out >= 0.0) & (t_in <= look)
    ex = dx + du * tcpa
    ey = dy + dv * tcpa
    return PairFigures(
        conflict=violation,
        tcpa_s=tcpa,
        dcpa_m=np.sqrt(ex * ex + ey * ey) / scale,
        t_in_s=np.maximum(t_in, 0.0),
        t_out_s=np.minimum(t_out, look),
    )


def detect_well_clear(
    batch: TrackBatch,
    params: WellClear = WellClear(),
    *,
    same_party: bool = False,
    origin: tuple[float, float] | None = None,
) -> list[TacticalConflict]:
    """Pairs predicted to lose DO-365 well clear within the look-ahead, as conflicts sorted by
    (a, b): ``t_in_s``/``t_out_s`` bound the violation, ``dcpa_m`` is the horizontal distance at
    ``tcpa_s`` (the CPA clipped to the look-ahead)."""
    if len(batch) < 2:
        return []
    plane = plane_for(batch, origin)
    tracks = plane_tracks(batch, plane)
    # Closed thresholds against closed box overlaps: the box argument of tactical still holds.
    reach = TacticalMinima(params.dmod_m, params.zthr_m, params.lookahead_s)
    i, j = candidate_pairs(plane, tracks, batch, reach, same_party, params.tau_mod_s)
    fig = well_clear_test(plane, tracks, batch.alt_m, batch.vs_mps, i, j, params)
    return conflict_list(batch, i, j, fig)
