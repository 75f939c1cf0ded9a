"""Agreements: rounds of talks, the parties' stated positions, commitments and violations."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from deconfliction.agreements.rules import Rule
from deconfliction.parties.models import CODE_PATTERN, check_party_codes

# not_reported: the sources do not say how the round ended.
Outcome = Literal["no_agreement", "partial", "agreed", "not_reported"]
CommitmentStatus = Literal["proposed", "binding"]


class DelegationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    party: str = Field(pattern=CODE_PATTERN)
    lead: str | None = Field(None, max_length=200)


class RoundIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    number: int = Field(ge=1, le=10_000)
    held_on: date
    venue: str = Field(min_length=1, max_length=200)
    host: str = Field(pattern=CODE_PATTERN)
    delegations: list[DelegationIn] = Field(min_length=1, max_length=32)
    outcome: Outcome
    summary: str = Field("", max_length=5000)

    @model_validator(mode="after")
    def distinct(self) -> RoundIn:
        check_party_codes([d.party for d in self.delegations], "delegations")
        return self


class PositionIn(BaseModel):
    """A party's stated position: its own words and the English rendering it supplies."""

    model_config = ConfigDict(extra="forbid")
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    text: str = Field(min_length=1, max_length=5000)
    english: str = Field(min_length=1, max_length=5000)
    source: str | None = Field(None, max_length=500)


class PositionOut(PositionIn):
    id: int
    round_id: int
    party: str
    created_at: datetime


class RoundOut(BaseModel):
    id: int
    number: int
    held_on: date
    venue: str
    host: str
    delegations: list[DelegationIn]
    outcome: Outcome
    summary: str
    recorded_by: str
    created_at: datetime
    positions: list[PositionOut]


class CommitmentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    title: str = Field(min_length=1, max_length=200)
    round_id: int | None = Field(None, ge=1)
    # The parties whose consent makes it bind; the rule may constrain only these.
    parties: list[str] = Field(min_length=1, max_length=32)
    rule: Rule

    @model_validator(mode="after")
    def named(self) -> CommitmentIn:
        check_party_codes(self.parties, "parties")
        outside = sorted(set(self.rule.applies_to) - set(self.parties))
        if outside:
            raise ValueError(
                f"rule.applies_to names {', '.join(outside)}, not among the commitment's parties"
            )
        return self


class ConsentOut(BaseModel):
    party: str
    consented_at: datetime | None
    consented_by: str | None


class CommitmentOut(BaseModel):
    id: int
    round_id: int | None
    title: str
    rule: dict[str, Any]
    status: CommitmentStatus
    proposed_by: str
    parties: list[ConsentOut]
    version: int
    created_at: datetime
    bound_at: datetime | None


class ViolationOut(BaseModel):
    id: int
    commitment_id: int
    rule_kind: str
    party: str
    at: datetime
    source: Literal["plan", "tracks"]
    description: str
    evidence: dict[str, Any]
    detected_at: datetime
