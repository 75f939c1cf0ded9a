"""The regional plane of the tactical engine: WGS-84 to a conformal plane, in numpy (pure).

Tracks are placed on an oblique stereographic plane of the Gauss conformal sphere (PROJ's
``sterea``, the "double stereographic"), tangent at the middle of the traffic. It is written out
in numpy rather than called through PROJ because a detection cycle projects every track twice and
numpy does that for 20,000 tracks in well under a millisecond (it matches PROJ to 1e-8 m).

Why this plane: it is conformal, so a course becomes a direction in the plane by one rotation (the
meridian convergence, read from the image of a short northward step) and a speed becomes a
plane speed by one factor, the point scale ``m = 1 + r**2 / (4 R**2)`` (r = distance from the
centre in the plane). ``m`` is 1.0012 at 450 km from the centre, the corners of Syria; the
engine divides by it at each pair's closest approach, so what is left is the bending of the
geodesics in the plane: straight-line motion drifts from the geodesic by up to ~20 m over 300 s
at 280 m/s in the corners of Syria, and CPA distances stay within ~30 m of pyproj.Geod's (tests
hold them to 50 m).
Beyond about 600 km from the centre that drift grows with the square of the distance: this is a
regional engine, and a batch must not straddle the antimeridian.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]

WGS84_A = 6_378_137.0
WGS84_F = 1.0 / 298.257223563
_E2 = WGS84_F * (2.0 - WGS84_F)
_E = math.sqrt(_E2)
# Northward step (radians of latitude, ~0.6 m) for the direction of north in the plane: small
# enough that the forward difference is exact to ~1e-7, large enough to stay far above rounding.
_STEP_RAD = 1e-7


@dataclass(frozen=True, slots=True)
class PlaneTracks:
    """Track states in the plane: metres, and metres per second of the plane (true speed times
    the point scale ``m``); altitude and vertical speed are unchanged."""

    x: FloatArray
    y: FloatArray
    u: FloatArray
    v: FloatArray


class ConformalPlane:
    """Oblique stereographic projection of the Gauss conformal sphere, tangent at
    ``(lat0, lon0)``, scale 1 at the centre."""

    __slots__ = ("_c", "_chi0_cos", "_chi0_sin", "_k", "_lon0", "lat0", "lon0", "radius_m")

    def __init__(self, lat0: float, lon0: float) -> None:
        if not (math.isfinite(lat0) and math.isfinite(lon0)):
            raise ValueError("plane centre must be finite")
        # The Gauss sphere's constants blow up at the poles themselves.
        if not (-89.9 <= lat0 <= 89.9 and -180.0 <= lon0 <= 180.0):
            raise ValueError(
                f"plane centre ({lat0}, {lon0}) outside lat -89.9..89.9, lon -180..180"
            )
        self.lat0 = lat0
        self.lon0 = lon0
        phi0 = math.radians(lat0)
        s0 = math.sin(phi0)
        self._lon0 = math.radians(lon0)
        self._c = math.sqrt(1.0 + _E2 * math.cos(phi0) ** 4 / (1.0 - _E2))
        chi0 = math.asin(s0 / self._c)
        self._chi0_sin = math.sin(chi0)
        self._chi0_cos = math.cos(chi0)
        # Gaussian mean radius at the centre: the radius of the conformal sphere.
        self.radius_m = WGS84_A * math.sqrt(1.0 - _E2) / (1.0 - _E2 * s0 * s0)
        self._k = math.tan(math.pi / 4.0 + chi0 / 2.0) / (
            math.tan(math.pi / 4.0 + phi0 / 2.0) ** self._c
            * ((1.0 - _E * s0) / (1.0 + _E * s0)) ** (self._c * _E / 2.0)
        )

    def _forward_rad(self, phi: FloatArray, lam: FloatArray) -> tuple[FloatArray, FloatArray]:
        s = np.sin(phi)
        chi = (
            2.0
            * np.arctan(
                self._k
                * np.tan(np.pi / 4.0 + phi / 2.0) ** self._c
                * ((1.0 - _E * s) / (1.0 + _E * s)) ** (self._c * _E / 2.0)
            )
            - np.pi / 2.0
        )
        big_lam = self._c * (lam - self._lon0)
        sin_chi = np.sin(chi)
        cos_chi = np.cos(chi)
        cos_lam = np.cos(big_lam)
        k = (2.0 * self.radius_m) / (
            1.0 + self._chi0_sin * sin_chi + self._chi0_cos * cos_chi * cos_lam
        )
        x = k * cos_chi * np.sin(big_lam)
        y = k * (self._chi0_cos * sin_chi - self._chi0_sin * cos_chi * cos_lam)
        return x, y

    def forward(self, lat: FloatArray, lon: FloatArray) -> tuple[FloatArray, FloatArray]:
        """Plane coordinates (metres) of WGS-84 degrees."""
        return self._forward_rad(np.radians(lat), np.radians(lon))

    def scale(self, x: FloatArray, y: FloatArray) -> FloatArray:
        """Point scale (plane metres per metre on the ground) at plane coordinates.

        Exact for the stereographic step; the ellipsoid-to-sphere step adds less than 1e-6
        within 600 km of the centre, which is ignored (0.01 m on a 9 km distance)."""
        scale: FloatArray = 1.0 + (x * x + y * y) / (4.0 * self.radius_m * self.radius_m)
        return scale

    def tracks(
        self, lat: FloatArray, lon: FloatArray, gs_mps: FloatArray, course_deg: FloatArray
    ) -> PlaneTracks:
        """Positions and plane velocities of tracks flying ``course_deg`` at ``gs_mps``."""
        phi = np.radians(lat)
        lam = np.radians(lon)
        x, y = self._forward_rad(phi, lam)
        xn, yn = self._forward_rad(phi + _STEP_RAD, lam)
        s = np.sin(phi)
        meridian_m = WGS84_A * (1.0 - _E2) / (1.0 - _E2 * s * s) ** 1.5
        # Image of one metre north; conformal, so one metre east is it turned 90 degrees right.
        per_m = 1.0 / (meridian_m * _STEP_RAD)
        nx = (xn - x) * per_m
        ny = (yn - y) * per_m
        course = np.radians(course_deg)
        east = gs_mps * np.sin(course)
        north = gs_mps * np.cos(course)
        return PlaneTracks(x=x, y=y, u=east * ny + north * nx, v=north * ny - east * nx)
