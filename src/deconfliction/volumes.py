"""The JSON form of Volume4D shared by zones and activities (see docs/formats.md).

Input models validate through `geo` (a bad polygon is a 422 that says why); output keeps the
footprint exactly as notified: a polygon as given, a circle as centre and radius.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, model_validator
from shapely.geometry import MultiPolygon, Polygon

from deconfliction import geo

MAX_VOLUMES = 500


class AltitudeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lower_m: float = Field(allow_inf_nan=False)
    upper_m: float = Field(allow_inf_nan=False)
    reference: Literal["W84", "MSL"] = "W84"

    def to_geo(self) -> geo.AltitudeBand:
        return geo.AltitudeBand(self.lower_m, self.upper_m, self.reference)


class CircleIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    center: tuple[float, float]
    radius_m: float


class TimeWindowIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def ordered(self) -> TimeWindowIn:
        if self.end <= self.start:
            raise ValueError(f"time window inverted or empty: end {self.end} <= start {self.start}")
        return self


class FootprintIn(BaseModel):
    """Exactly one of a GeoJSON polygon footprint or a circle."""

    model_config = ConfigDict(extra="forbid")
    footprint: dict[str, Any] | None = None
    circle: CircleIn | None = None
    # Built once by validation (it raises with the reason), then handed out: building a
    # footprint costs more than the rest of the request's parsing.
    _shape: geo.Footprint | None = PrivateAttr(None)

    @model_validator(mode="after")
    def one_shape(self) -> FootprintIn:
        if (self.footprint is None) == (self.circle is None):
            raise ValueError("give exactly one of 'footprint' (GeoJSON) or 'circle'")
        if self.circle is not None:
            self._shape = geo.circle_from_json(self.circle.model_dump())
        else:
            assert self.footprint is not None
            self._shape = geo.footprint_from_geojson(self.footprint)
        return self

    def shape(self) -> geo.Footprint:
        assert self._shape is not None
        return self._shape


class VolumeIn(FootprintIn):
    altitude: AltitudeIn
    time: TimeWindowIn
    _volume: geo.Volume4D | None = PrivateAttr(None)  # built once by validation, as `_shape`

    @model_validator(mode="after")
    def whole(self) -> VolumeIn:
        self._volume = geo.Volume4D(  # raises GeoError (a ValueError) with the reason
            self.shape(),
            self.altitude.to_geo(),
            self.time.start.astimezone(UTC),
            self.time.end.astimezone(UTC),
        )
        return self

    def to_geo(self) -> geo.Volume4D:
        assert self._volume is not None
        return self._volume


def footprint_json(fp: geo.Footprint) -> dict[str, Any]:
    if isinstance(fp, geo.Circle):
        return {"circle": {"center": [fp.lon, fp.lat], "radius_m": fp.radius_m}}
    assert isinstance(fp, Polygon | MultiPolygon)
    return {"footprint": geo.footprint_to_geojson(fp)}


def footprint_from_json(data: dict[str, Any]) -> geo.Footprint:
    """Read back a stored footprint (already validated when it was written)."""
    if "circle" in data:
        return geo.circle_from_json(data["circle"])
    return geo.footprint_from_geojson(data["footprint"])


def altitude_json(band: geo.AltitudeBand) -> dict[str, Any]:
    return {"lower_m": band.lower_m, "upper_m": band.upper_m, "reference": band.reference}


def volume_json(volume: geo.Volume4D) -> dict[str, Any]:
    return {
        **footprint_json(volume.footprint),
        "altitude": altitude_json(volume.altitude),
        "time": {"start": iso(volume.start), "end": iso(volume.end)},
    }


def volume_from_json(data: dict[str, Any]) -> geo.Volume4D:
    alt = data["altitude"]
    return geo.Volume4D(
        footprint_from_json(data),
        geo.AltitudeBand(alt["lower_m"], alt["upper_m"], alt["reference"]),
        datetime.fromisoformat(data["time"]["start"]),
        datetime.fromisoformat(data["time"]["end"]),
    )


def display_geometry(fp: geo.Footprint) -> dict[str, Any]:
    """A GeoJSON geometry to draw: polygons as they are, circles by their outer cover."""
    outer = fp if not isinstance(fp, geo.Circle) else geo.outer_polygon(fp)
    return geo.footprint_to_geojson(outer)


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def feature_collection(features: list[dict[str, Any]]) -> dict[str, Any]:
    return {"type": "FeatureCollection", "features": features}


def feature(shape: dict[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    """A GeoJSON Feature from a stored shape (`footprint` or `circle` key) and properties."""
    fp = footprint_from_json(shape)
    props = dict(properties)
    if isinstance(fp, geo.Circle):
        props["circle"] = shape["circle"]
    return {"type": "Feature", "geometry": display_geometry(fp), "properties": props}
