"""Tracks and alerts as the API shows them.

A state posted by an officer names no party: the party is the token's. A body that carries
``party`` (on the batch or on a state) is refused with the reason.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

AlertKind = Literal["pair", "zone"]
AlertState = Literal["raised", "updated", "cleared"]
AlertEvent = Literal["raised", "updated", "cleared"]

MAX_STATES_PER_POST = 5_000
TRACK_ID = r"^[!-~]{1,128}$"  # printable ASCII, no space: CoT uids, ICAO addresses, callsigns


def _no_party(data: Any, where: str) -> Any:
    if isinstance(data, dict) and "party" in data:
        raise ValueError(
            f"{where} names a party: the party is the one of your token; remove 'party'"
        )
    return data


class TrackStateIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    id: str = Field(pattern=TRACK_ID)
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)
    alt_m: float = Field(ge=-1_000, le=40_000, allow_inf_nan=False)
    gs_mps: float = Field(0.0, ge=0, le=1_500, allow_inf_nan=False)
    course_deg: float = Field(0.0, ge=0, le=360, allow_inf_nan=False)
    vs_mps: float = Field(0.0, ge=-500, le=500, allow_inf_nan=False)
    time: AwareDatetime
    stale: AwareDatetime | None = None  # default: time + 30 s
    callsign: str | None = Field(None, max_length=64)
    type: str | None = Field(None, max_length=64)  # a CoT type such as a-f-A-M-F, if known

    @model_validator(mode="before")
    @classmethod
    def party_from_token(cls, data: Any) -> Any:
        return _no_party(data, "a track state")


class TracksIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    states: list[TrackStateIn] = Field(min_length=1, max_length=MAX_STATES_PER_POST)

    @model_validator(mode="before")
    @classmethod
    def party_from_token(cls, data: Any) -> Any:
        return _no_party(data, "the body")


class DroppedOut(BaseModel):
    index: int
    id: str
    reason: str


class IngestOut(BaseModel):
    accepted: int
    dropped: list[DroppedOut]


class TrackOut(BaseModel):
    key: str  # PARTY/id
    party: str
    id: str
    lat: float
    lon: float
    alt_m: float
    gs_mps: float
    course_deg: float
    vs_mps: float
    time: datetime
    stale: datetime
    source: str
    callsign: str | None
    type: str | None


class FeedOut(BaseModel):
    name: str
    kind: str
    port: int | None
    party: str
    listening: bool
    connections: int
    received: int
    accepted: int
    ignored: int  # well-formed input that is not a track state (SBS-1 MSG 1, 5-8 ...)
    dropped: dict[str, int]  # reason: count
    last_received_at: datetime | None


class AlertOut(BaseModel):
    """A predicted loss of separation between tracks of two parties (``pair``: ``a`` and ``b``),
    or a predicted infringement of another party's zone by track ``a`` (``zone``).

    Figures are those of the last update: ``t_in_s`` the time to conflict (to zone entry),
    ``tcpa_s``/``dcpa_m`` the closest approach (pairs only, dcpa on the WGS-84 geodesic).
    ``segment`` is a GeoJSON LineString (lon, lat): the two tracks at the closest approach, or
    the track now and its predicted entry point; ``altitudes_m`` the altitudes at its two ends.
    """

    id: int
    kind: AlertKind
    a: str
    b: str | None
    zone: int | None
    parties: list[str]
    tcpa_s: float | None
    dcpa_m: float | None
    t_in_s: float
    t_out_s: float | None
    segment: dict[str, Any]
    altitudes_m: list[float]
    state: AlertState
    raised_at: datetime
    updated_at: datetime
    cleared_at: datetime | None
