"""Conflicts: two activities of different parties, or an activity and another party's zone,
closer than the separation minima. A conflict carries the overlap, not the other's whole plan."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel

ConflictKind = Literal["activities", "zone"]
Severity = Literal["high", "medium", "advisory"]
ConflictState = Literal["open", "acknowledged", "resolved", "accepted"]


class OverlapOut(BaseModel):
    region: dict[str, Any]  # GeoJSON Polygon/MultiPolygon, lon/lat
    lower_m: float
    upper_m: float
    start: datetime
    end: datetime
    distance_m: float


class SideOut(BaseModel):
    party: str
    activity: int | None = None
    version: int | None = None
    zone: int | None = None
    # Only when the caller may read that activity or zone: minimal disclosure otherwise.
    title: str | None = None
    kind: str | None = None


class PartyStanceOut(BaseModel):
    party: str
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    accepted_at: datetime | None
    accepted_by: str | None


class ConflictOut(BaseModel):
    id: int
    kind: ConflictKind
    severity: Severity
    state: ConflictState
    a: SideOut
    b: SideOut
    overlap: OverlapOut
    parties: list[PartyStanceOut]
    resolution: str | None
    created_at: datetime
    updated_at: datetime


class ProposedConflict(BaseModel):
    """A conflict that a plan would create (the dry-run check), not stored."""

    kind: ConflictKind
    severity: Severity
    b: SideOut
    overlap: OverlapOut
    volumes: list[int]  # which of the plan's volumes take part
