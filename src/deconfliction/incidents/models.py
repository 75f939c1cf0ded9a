"""Incidents: unwanted events reported by a party and reviewed jointly with the other."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from deconfliction.parties.models import CODE_PATTERN

IncidentKind = Literal[
    "unsafe_proximity", "zone_infringement", "radar_lock_on", "strike_near_forces", "other"
]
IncidentState = Literal[
    "reported", "acknowledged", "joint_review", "agreed_findings", "disputed", "closed", "duplicate"
]
EvidenceKind = Literal["activity", "conflict", "alert", "track_state", "message", "ledger"]


class PlaceIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    name: str | None = Field(None, max_length=200)


class EvidenceIn(BaseModel):
    """A reference to something on record: `activity` 12, `track_state` "TR/ANKA-1",
    `ledger` 340 (an entry index)."""

    model_config = ConfigDict(extra="forbid")
    kind: EvidenceKind
    ref: str = Field(min_length=1, max_length=200)

    @field_validator("ref", mode="before")
    @classmethod
    def text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


class IncidentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: IncidentKind
    other_party: str = Field(pattern=CODE_PATTERN)
    occurred_at: AwareDatetime
    place: PlaceIn
    description: str = Field(min_length=1, max_length=10_000)
    evidence: list[EvidenceIn] = Field(default_factory=list, max_length=100)


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    note: str | None = Field(None, max_length=10_000)


class FindingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    outcome: Literal["agreed", "disputed"]
    text: str = Field(min_length=1, max_length=10_000)


class DuplicateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    of: int = Field(ge=1)


class StepOut(BaseModel):
    action: str
    state: IncidentState
    party: str
    officer: str
    note: str | None
    at: datetime


class IncidentOut(BaseModel):
    id: int
    kind: IncidentKind
    reported_by: str
    reporter: str
    other_party: str
    occurred_at: datetime
    place: PlaceIn
    description: str
    state: IncidentState
    findings: str | None
    duplicate_of: int | None
    evidence: list[EvidenceIn]
    close_consents: list[str]
    history: list[StepOut]
    version: int
    created_at: datetime
    updated_at: datetime
