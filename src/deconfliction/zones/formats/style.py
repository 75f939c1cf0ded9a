"""How each rule looks on a map, shared by the KML and CoT writers: red no-entry, orange
notify, yellow caution."""

from __future__ import annotations

from shapely import MultiPolygon, Polygon

from deconfliction import geo
from deconfliction.volumes import footprint_from_json
from deconfliction.zones.models import ZoneOut

RULE_RGB = {"no_entry": (255, 0, 0), "notify": (255, 165, 0), "caution": (255, 255, 0)}


def polygons(zone: ZoneOut) -> list[Polygon]:
    """The zone's footprint as polygons to draw (a circle by its outer polygon)."""
    shape = {"footprint": zone.footprint} if zone.footprint else {"circle": zone.circle}
    footprint = footprint_from_json(shape)
    drawn = geo.outer_polygon(footprint) if isinstance(footprint, geo.Circle) else footprint
    if isinstance(drawn, MultiPolygon):
        return list(drawn.geoms)
    assert isinstance(drawn, Polygon)
    return [drawn]


def summary(zone: ZoneOut) -> str:
    """One paragraph for a map's pop-up: rule, band, validity, schedule, owner, source."""
    alt = zone.altitude
    band = f"{alt['lower_m']:.0f}-{alt['upper_m']:.0f} m {alt['reference']}"
    if alt.get("unit") == "FL":
        band += f" (FL{alt['lower_m'] / 30.48:.0f}-FL{alt['upper_m'] / 30.48:.0f})"
    elif alt.get("unit") == "ft":
        band += f" ({alt['lower_m'] / 0.3048:.0f}-{alt['upper_m'] / 0.3048:.0f} ft)"
    until = zone.valid_to.isoformat() if zone.valid_to else "withdrawn"
    parts = [
        f"{zone.rule} zone of {zone.owner}",
        band,
        f"valid {zone.valid_from.isoformat()} until {until}",
    ]
    if zone.lead_time_s is not None:
        parts.append(f"notify {zone.lead_time_s} s ahead")
    if zone.schedule:
        parts.append(
            "active "
            + "; ".join(f"{' '.join(p.days)} {p.start}-{p.end} UTC" for p in zone.schedule)
        )
    if zone.source:
        parts.append(f"from {zone.source}")
    return ", ".join(parts)
