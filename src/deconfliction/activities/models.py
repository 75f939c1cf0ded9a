"""Activities: a party's notified operation, made of Volume4Ds or a 4D route."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, PrivateAttr, model_validator

from deconfliction import geo
from deconfliction.conflicts.models import ConflictOut
from deconfliction.parties.models import check_party_codes
from deconfliction.volumes import MAX_VOLUMES, AltitudeIn, VolumeIn

ActivityKind = Literal["air_patrol", "transit", "exercise", "uav", "ground_movement"]
ActivityState = Literal["notified", "acknowledged", "active", "completed", "cancelled"]


class WaypointIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    time: AwareDatetime


class RouteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    waypoints: list[WaypointIn] = Field(min_length=2, max_length=MAX_VOLUMES + 1)
    half_width_m: float = Field(gt=0, le=200_000, allow_inf_nan=False)
    altitude: AltitudeIn

    def to_volumes(self) -> list[geo.Volume4D]:
        return geo.route_to_volumes(
            [(w.lon, w.lat, w.time) for w in self.waypoints],
            self.half_width_m,
            self.altitude.to_geo(),
        )


class ActivityIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: ActivityKind
    title: str = Field(min_length=1, max_length=200)
    callsign: str | None = Field(None, max_length=64)
    volumes: list[VolumeIn] | None = Field(None, min_length=1, max_length=MAX_VOLUMES)
    route: RouteIn | None = None
    notified_to: list[str] | None = Field(None, max_length=32)
    # The plan's volumes, built once by validation (see `FootprintIn`).
    _plan: list[geo.Volume4D] | None = PrivateAttr(None)

    @model_validator(mode="after")
    def one_plan(self) -> ActivityIn:
        if (self.volumes is None) == (self.route is None):
            raise ValueError("give exactly one of 'volumes' or 'route'")
        if self.route is not None:
            self._plan = self.route.to_volumes()  # raises with the reason when unusable
        else:
            assert self.volumes is not None
            self._plan = [v.to_geo() for v in self.volumes]
        if self.notified_to is not None:
            check_party_codes(self.notified_to, "notified_to")
        return self

    def to_volumes(self) -> list[geo.Volume4D]:
        assert self._plan is not None
        return list(self._plan)


class AcknowledgementOut(BaseModel):
    party: str
    officer: str
    version: int
    at: datetime


class ActivityOut(BaseModel):
    id: int
    party: str
    kind: ActivityKind
    title: str
    callsign: str | None
    state: ActivityState
    version: int
    start: datetime
    end: datetime
    late: bool
    late_zones: list[int]
    notified_to: list[str]
    volumes: list[dict[str, Any]]
    route: dict[str, Any] | None
    acknowledgements: list[AcknowledgementOut]
    created_at: datetime
    updated_at: datetime


class ActivityVersionOut(BaseModel):
    version: int
    author: str
    created_at: datetime
    volumes: list[dict[str, Any]]
    route: dict[str, Any] | None
    late_zones: list[int]


class FiledOut(ActivityOut):
    """The answer to notify and amend: the activity and the conflicts this filing created."""

    conflicts: list[ConflictOut]
