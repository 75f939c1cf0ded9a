"""Zones: declared areas with a rule, a footprint, an altitude band and a validity window."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from deconfliction.parties.models import MinimaConfig, check_party_codes
from deconfliction.volumes import AltitudeIn, FootprintIn

Rule = Literal["no_entry", "notify", "caution"]
ZoneStatus = Literal["declared", "proposed", "agreed", "withdrawn"]


class ZoneIn(FootprintIn):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    rule: Rule
    lead_time_s: int | None = Field(None, ge=60, le=90 * 86_400)
    altitude: AltitudeIn
    valid_from: AwareDatetime
    valid_to: AwareDatetime | None = None
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
    status: ZoneStatus
    version: int
    parties: list[ConsentOut]
    created_at: datetime
    withdrawn_at: datetime | None
