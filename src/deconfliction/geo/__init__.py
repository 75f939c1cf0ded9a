"""Pure geometry core: Volume4D and its parts, GeoJSON in and out, local metric projections,
distances and routes. No I/O, no clock."""

from deconfliction.geo.geojson import circle_from_json, footprint_from_geojson, footprint_to_geojson
from deconfliction.geo.model import (
    AltitudeBand,
    AltitudeReference,
    Circle,
    Footprint,
    GeoError,
    Volume4D,
    comparable_band,
)
from deconfliction.geo.projection import LocalProjection, horizontal_distance_m, outer_polygon
from deconfliction.geo.route import route_to_volumes

__all__ = [
    "AltitudeBand",
    "AltitudeReference",
    "Circle",
    "Footprint",
    "GeoError",
    "LocalProjection",
    "Volume4D",
    "circle_from_json",
    "comparable_band",
    "footprint_from_geojson",
    "footprint_to_geojson",
    "horizontal_distance_m",
    "outer_polygon",
    "route_to_volumes",
]
