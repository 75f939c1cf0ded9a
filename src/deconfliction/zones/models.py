"""Zones: declared areas with a rule, a footprint, an altitude band and a validity window."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from deconfliction import geo
from deconfliction.geo.schedule import schedule_from_json
from deconfliction.parties.models import MinimaConfig, check_party_codes
from deconfliction.volumes import FootprintIn

Rule = Literal["no_entry", "notify", "caution"]
ZoneStatus = Literal["declared", "proposed", "agreed", "withdrawn"]


class ZoneAltitudeIn(BaseModel):
    """A zone's band: metres in its reference (W84, MSL, STD flight levels, AGL); ``unit`` is
    how the source gave it (m, ft or FL), kept for display and export."""

    model_config = ConfigDict(extra="forbid")
    lower_m: float = Field(allow_inf_nan=False)
    upper_m: float = Field(allow_inf_nan=False)
    reference: geo.AltitudeReference = "W84"
    unit: Literal["m", "ft", "FL"] = "m"

    def to_geo(self) -> geo.AltitudeBand:
        return geo.AltitudeBand(self.lower_m, self.upper_m, self.reference)


class SchedulePeriodIn(BaseModel):
    """Active on ``days`` from ``start`` to ``end`` (UTC times of day, "08:00")."""

    model_config = ConfigDict(extra="forbid")
    days: list[str] = Field(min_length=1, max_length=8)
    start: str = Field(max_length=9)
    end: str = Field(max_length=9)


class ZoneIn(FootprintIn):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    rule: Rule
    lead_time_s: int | None = Field(None, ge=60, le=90 * 86_400)
    altitude: ZoneAltitudeIn
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
    # Recurring daily periods within the validity; empty: active through all of it.
    schedule: list[SchedulePeriodIn] = Field(default_factory=list, max_length=64)
    agreed_with: list[str] = Field(default_factory=list, max_length=32)
    # Separation minima inside this zone, instead of the area's default.
    minima: MinimaConfig | None = None

    @model_validator(mode="after")
    def consistent(self) -> ZoneIn:
        if (self.rule == "notify") != (self.lead_time_s is not None):
            raise ValueError("lead_time_s is required for a 'notify' zone and only for it")
        if self.valid_to is not None and self.valid_to <= self.valid_from:
            raise ValueError("validity window inverted or empty: valid_to <= valid_from")
        self.altitude.to_geo()  # raises with the reason when the band is upside down
        schedule_from_json([p.model_dump() for p in self.schedule])  # raises with the reason
        check_party_codes(self.agreed_with, "agreed_with")
        return self


class ConsentOut(BaseModel):
    party: str
    consented_at: datetime | None
    consented_by: str | None


class ZoneOut(BaseModel):
    id: int
    owner: str
    name: str
    rule: Rule
    lead_time_s: int | None
    footprint: dict[str, Any] | None = None
    circle: dict[str, Any] | None = None
    altitude: dict[str, Any]
    valid_from: datetime
    valid_to: datetime | None
    minima: MinimaConfig | None
    schedule: list[SchedulePeriodIn] = Field(default_factory=list)
    # Where an imported zone came from ("notam:LLLL:A1234/30"); None when declared directly.
    source: str | None = None
    status: ZoneStatus
    version: int
    parties: list[ConsentOut]
    created_at: datetime
    withdrawn_at: datetime | None
