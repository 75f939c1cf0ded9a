"""Parties, officers and the configuration file that creates them."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Role = Literal["officer", "commander", "mediator", "observer"]
PartyKind = Literal["participant", "mediator", "observer"]

CODE_PATTERN = r"^[A-Z][A-Z0-9_]{1,15}$"


def check_party_codes(codes: list[str], field: str) -> None:
    """Raise ValueError (a 422 in the API) for a malformed or repeated party code."""
    for code in codes:
        if re.fullmatch(CODE_PATTERN, code) is None:
            raise ValueError(f"{field}: not a party code: {code!r}")
    if len(set(codes)) != len(codes):
        raise ValueError(f"{field} names a party twice")


# Which officer roles a party of each kind may have: a mediator party's officers mediate,
# an observer party's officers observe, a participant's officers act for it.
ROLES_OF_KIND: dict[str, frozenset[str]] = {
    "participant": frozenset({"officer", "commander"}),
    "mediator": frozenset({"mediator"}),
    "observer": frozenset({"observer"}),
}


class MinimaConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    horizontal_m: float = Field(9260.0, ge=0, le=200_000)
    vertical_m: float = Field(300.0, ge=0, le=10_000)
    time_buffer_s: float = Field(600.0, ge=0, le=86_400)


class OfficerConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9._-]{1,63}$")
    name: str = Field(min_length=1, max_length=200)
    role: Role


class PartyConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")
    code: str = Field(pattern=CODE_PATTERN)
    name: str = Field(min_length=1, max_length=200)
    language: str = Field(pattern=r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})?$")
    kind: PartyKind = "participant"
    officer: list[OfficerConfig] = Field(default_factory=list)

    @model_validator(mode="after")
    def roles_fit_kind(self) -> PartyConfig:
        allowed = ROLES_OF_KIND[self.kind]
        for officer in self.officer:
            if officer.role not in allowed:
                raise ValueError(
                    f"officer {officer.id} of {self.kind} party {self.code} cannot have role "
                    f"{officer.role} (allowed: {', '.join(sorted(allowed))})"
                )
        return self


class AreaConfig(BaseModel):
    """The whole `parties.toml`: the operating area, its default minima, the parties."""

    model_config = ConfigDict(extra="forbid")
    area: str = Field(min_length=1, max_length=200)
    minima: MinimaConfig = Field(default_factory=MinimaConfig)
    party: list[PartyConfig] = Field(min_length=2)

    @field_validator("party")
    @classmethod
    def unique(cls, parties: list[PartyConfig]) -> list[PartyConfig]:
        codes = [p.code for p in parties]
        if len(set(codes)) != len(codes):
            raise ValueError("party codes must be unique")
        ids = [o.id for p in parties for o in p.officer]
        if len(set(ids)) != len(ids):
            raise ValueError("officer ids must be unique across parties")
        return parties


@dataclass(frozen=True, slots=True)
class Actor:
    """Who makes a request: always taken from credentials, never from a request body."""

    officer: str
    party: str
    role: str
    party_kind: str

    @property
    def acts_for_party(self) -> bool:
        """Officers and commanders of a participant may notify, declare and acknowledge."""
        return self.role in ("officer", "commander")

    @property
    def sees_all_shared(self) -> bool:
        """The mediator sees every item a party shared with another party."""
        return self.role == "mediator"


class PartyOut(BaseModel):
    code: str
    name: str
    language: str
    kind: str


class OfficerOut(BaseModel):
    id: str
    party: str
    name: str
    role: str


class OfficerTokensOut(OfficerOut):
    active_tokens: int  # neither revoked nor expired: the devices that can still act as them
