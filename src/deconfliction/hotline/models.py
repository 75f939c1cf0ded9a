"""The hotline: typed messages between parties in threads, with receipts, deadlines and an
escalation ladder; the channel between each pair of parties and its comms checks."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator, model_validator

from deconfliction.parties.models import check_party_codes

Priority = Literal["ROUTINE", "URGENT", "FLASH"]
PRIORITIES: tuple[Priority, ...] = ("FLASH", "URGENT", "ROUTINE")
MessageType = Literal[
    "notice",
    "query",
    "reply",
    "warning",
    "request_deconfliction",
    "comms_check",
    "incident_notice",
]
ChannelState = Literal["open", "degraded", "suspended"]
Hazard = Literal[
    "live_firing",
    "air_defence_active",
    "uav_operations",
    "gps_jamming",
    "missile_launch",
    "airspace_closure",
    "other",
]
IncidentKind = Literal[
    "unsafe_proximity", "zone_infringement", "lock_on", "strike_near_forces", "other"
]
ProposalAction = Literal["change_altitude", "shift_time", "reroute", "hold", "cancel"]
LadderRole = Literal["officer", "commander", "mediator"]

# Acknowledgement deadlines by priority, unless the party pair's channel says otherwise.
DEFAULT_DEADLINES_S: dict[str, int] = {"FLASH": 120, "URGENT": 900, "ROUTINE": 4 * 3600}
# How long each higher rung of a ladder has before the next is told, by priority.
DEFAULT_RUNG_WAIT_S: dict[str, int] = {"FLASH": 120, "URGENT": 600, "ROUTINE": 3600}
DEFAULT_COMMS_CHECK_EVERY_S = 6 * 3600
MAX_TEXT = 4000
LANGUAGE_PATTERN = r"^[a-z]{2,3}(-[A-Za-z0-9]{2,8})*$"
NAME_PATTERN = r"^[a-z][a-z0-9_]{0,63}$"


def _check_zone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(
            f"unknown time zone {name!r} (use an IANA name such as Asia/Baku)"
        ) from exc
    return name


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class PositionIn(Strict):
    lat: float = Field(ge=-90, le=90, allow_inf_nan=False)
    lon: float = Field(ge=-180, le=180, allow_inf_nan=False)


class BandIn(Strict):
    """An altitude band in metres (MSL)."""

    lower_m: float = Field(ge=-500, le=100_000, allow_inf_nan=False)
    upper_m: float = Field(ge=-500, le=100_000, allow_inf_nan=False)

    @model_validator(mode="after")
    def ordered(self) -> BandIn:
        if self.lower_m > self.upper_m:
            raise ValueError("altitude band upside down: lower_m is above upper_m")
        return self


class WindowIn(Strict):
    start: AwareDatetime
    end: AwareDatetime

    @model_validator(mode="after")
    def ordered(self) -> WindowIn:
        if self.end <= self.start:
            raise ValueError("time window inverted or empty: end must be after start")
        return self


class WarningIn(Strict):
    hazard: Hazard
    position: PositionIn
    radius_m: float | None = Field(None, gt=0, le=500_000, allow_inf_nan=False)
    band: BandIn
    window: WindowIn


class ProposalIn(Strict):
    """The amendment a request for deconfliction proposes."""

    action: ProposalAction
    band: BandIn | None = None  # change_altitude: the new band
    shift_s: int | None = Field(None, ge=-7 * 86400, le=7 * 86400)  # shift_time
    via: list[PositionIn] | None = Field(None, min_length=1, max_length=50)  # reroute

    @model_validator(mode="after")
    def complete(self) -> ProposalIn:
        if self.action == "change_altitude" and self.band is None:
            raise ValueError("change_altitude needs the new 'band'")
        if self.action == "shift_time" and not self.shift_s:
            raise ValueError("shift_time needs a non-zero 'shift_s'")
        if self.action == "reroute" and not self.via:
            raise ValueError("reroute needs 'via' positions")
        return self


class DeconflictionIn(Strict):
    conflict: int | None = Field(None, ge=1)
    activity: int | None = Field(None, ge=1)
    proposal: ProposalIn | None = None
    # The overlap, as the conflict carries it (filled in when the system opens the thread).
    severity: Literal["high", "medium", "advisory"] | None = None
    band: BandIn | None = None
    window: WindowIn | None = None

    @model_validator(mode="after")
    def refers(self) -> DeconflictionIn:
        if self.conflict is None and self.activity is None:
            raise ValueError("a request for deconfliction names a 'conflict' or an 'activity'")
        return self


class IncidentIn(Strict):
    kind: IncidentKind
    occurred_at: AwareDatetime
    position: PositionIn
    altitude_m: float | None = Field(None, ge=-500, le=100_000, allow_inf_nan=False)


# Which structured section each type carries (the others must be absent).
SECTION_OF_TYPE: dict[str, str | None] = {
    "notice": None,
    "query": None,
    "reply": None,
    "warning": "warning",
    "request_deconfliction": "deconfliction",
    "comms_check": None,
    "incident_notice": "incident",
}
TEXT_REQUIRED = ("notice", "query", "reply")
SECTIONS = ("warning", "deconfliction", "incident")


class MessageIn(Strict):
    """A message to send: into an existing `thread`, or a new thread with `subject` and `to`."""

    type: MessageType
    priority: Priority = "ROUTINE"
    thread: int | None = Field(None, ge=1)
    subject: str | None = Field(None, min_length=1, max_length=200)
    to: list[str] | None = Field(None, min_length=1, max_length=16)
    text: str | None = Field(None, min_length=1, max_length=MAX_TEXT)
    language: str | None = Field(None, pattern=LANGUAGE_PATTERN)
    in_reply_to: int | None = Field(None, ge=1)
    warning: WarningIn | None = None
    deconfliction: DeconflictionIn | None = None
    incident: IncidentIn | None = None

    @field_validator("text")
    @classmethod
    def not_blank(cls, text: str | None) -> str | None:
        if text is not None and not text.strip():
            raise ValueError("text is blank")
        if text is not None and re.search(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", text):
            raise ValueError("text holds control characters")
        return text

    @model_validator(mode="after")
    def consistent(self) -> MessageIn:
        if self.to is not None:
            check_party_codes(self.to, "to")
        if self.thread is None and self.subject is None:
            raise ValueError("a new thread needs a 'subject' (or send into a 'thread')")
        if self.thread is None and self.to is None:
            raise ValueError("a new thread needs 'to': the parties to send to")
        if self.text is not None and self.language is None:
            raise ValueError("free text needs its 'language' (e.g. 'en', 'he')")
        if self.text is None and self.language is not None:
            raise ValueError("'language' is the language of 'text', which is missing")
        if self.type in TEXT_REQUIRED and self.text is None:
            raise ValueError(f"a {self.type} needs 'text'")
        if self.type == "reply" and self.in_reply_to is None:
            raise ValueError("a reply needs 'in_reply_to': the query it answers")
        if self.type != "reply" and self.in_reply_to is not None:
            raise ValueError("only a reply has 'in_reply_to'")
        wanted = SECTION_OF_TYPE[self.type]
        for section in SECTIONS:
            given = getattr(self, section) is not None
            if section == wanted and not given:
                raise ValueError(f"a {self.type} needs '{section}'")
            if section != wanted and given:
                raise ValueError(f"'{section}' does not belong in a {self.type}")
        return self

    def content(self) -> dict[str, Any]:
        """The structured fields, as stored."""
        section = SECTION_OF_TYPE[self.type]
        if section is None:
            return {}
        value = getattr(self, section)
        assert value is not None
        dumped: dict[str, Any] = value.model_dump(mode="json", exclude_none=True)
        return dumped


def _default_waits(given: dict[Priority, int]) -> dict[Priority, int]:
    waits: dict[Priority, int] = {p: DEFAULT_RUNG_WAIT_S[p] for p in PRIORITIES}
    waits.update(given)
    return waits


class RungIn(Strict):
    """One rung of a ladder: who is told (by role in the party, and/or named officers), and how
    long they have, by priority, before the next rung is told. The first rung is told when the
    message arrives and has the channel's acknowledgement deadline."""

    name: str = Field(pattern=NAME_PATTERN)
    role: LadderRole | None = None
    officers: list[str] = Field(default_factory=list, max_length=32)
    wait_s: dict[Priority, int] = Field(default_factory=lambda: _default_waits({}))

    @field_validator("wait_s")
    @classmethod
    def sane_waits(cls, waits: dict[Priority, int]) -> dict[Priority, int]:
        for priority, seconds in waits.items():
            if not 10 <= seconds <= 7 * 86400:
                raise ValueError(f"wait_s.{priority} must be 10 s to 7 days")
        return _default_waits(waits)

    @model_validator(mode="after")
    def someone(self) -> RungIn:
        if self.role is None and not self.officers:
            raise ValueError(f"rung {self.name} names no 'role' and no 'officers'")
        return self


DEFAULT_LADDER: list[dict[str, Any]] = [
    {"name": "duty_officer", "role": "officer"},
    {"name": "watch_commander", "role": "commander"},
    {"name": "mediator", "role": "mediator"},
]


class PartyConfigIn(Strict):
    time_zone: str = Field(min_length=1, max_length=64)
    ladder: list[RungIn] = Field(min_length=1, max_length=8)

    @field_validator("time_zone")
    @classmethod
    def known_zone(cls, name: str) -> str:
        return _check_zone(name)

    @field_validator("ladder")
    @classmethod
    def unique_names(cls, ladder: list[RungIn]) -> list[RungIn]:
        names = [r.name for r in ladder]
        if len(set(names)) != len(names):
            raise ValueError("ladder rung names must be unique")
        return ladder


class PartyConfigOut(BaseModel):
    id: str  # the party code
    party: str
    time_zone: str
    ladder: list[RungIn]
    version: int  # 0: the defaults, never set
    updated_at: datetime | None


class ChannelSettingsIn(Strict):
    deadlines: dict[Priority, int] | None = None
    comms_check_every_s: int | None = Field(None, ge=0, le=7 * 86400)

    @field_validator("deadlines")
    @classmethod
    def sane(cls, deadlines: dict[str, int] | None) -> dict[str, int] | None:
        for priority, seconds in (deadlines or {}).items():
            if not 10 <= seconds <= 7 * 86400:
                raise ValueError(f"deadlines.{priority} must be 10 s to 7 days")
        return deadlines

    @model_validator(mode="after")
    def something(self) -> ChannelSettingsIn:
        if self.deadlines is None and self.comms_check_every_s is None:
            raise ValueError("give 'deadlines' and/or 'comms_check_every_s'")
        if self.comms_check_every_s is not None and 0 < self.comms_check_every_s < 60:
            raise ValueError("comms_check_every_s is 0 (off) or at least 60 s")
        return self


class ChannelChangeIn(Strict):
    reason: str | None = Field(None, min_length=1, max_length=500)


class ChannelOut(BaseModel):
    id: str  # "IL-TR"
    parties: list[str]
    state: ChannelState
    reason: str | None
    state_since: datetime
    deadlines: dict[str, int]
    comms_check_every_s: int
    next_comms_check_at: datetime | None
    checks_sent: int
    version: int
    updated_at: datetime


class SenderOut(BaseModel):
    party: str | None  # null: the system
    officer: str | None


class RungOut(BaseModel):
    name: str
    officers: list[str]
    wait_s: int


class ReceiptOut(BaseModel):
    """One recipient party's receipts and escalation state."""

    party: str
    delivered_at: datetime | None
    delivered_by: str | None
    read_at: datetime | None
    read_by: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    deadline_at: datetime
    overdue: bool  # the deadline passed without acknowledgement (as of the answer)
    rung: int
    rung_name: str
    next_escalation_at: datetime | None
    escalated_at: datetime | None
    # The copied ladder: shown to the recipient party itself and the mediator only.
    ladder: list[RungOut] | None = None


class FreeTextOut(BaseModel):
    content: str
    language: str
    dir: Literal["ltr", "rtl"]


class FieldOut(BaseModel):
    name: str
    label: str
    value: str


class RenderedOut(BaseModel):
    """The message as the reader reads it: its template in the reader's language."""

    language: str
    dir: Literal["ltr", "rtl"]
    title: str
    priority: str
    body: str
    fields: list[FieldOut]
    text: FreeTextOut | None  # free text, as written, in its own language


class MessageOut(BaseModel):
    id: int
    thread: int
    type: MessageType
    priority: Priority
    sender: SenderOut
    to: list[str]
    copied: list[str]
    created_at: datetime
    content: dict[str, Any]
    text: FreeTextOut | None
    in_reply_to: int | None
    conflict: int | None
    activity: int | None
    receipts: list[ReceiptOut]
    rendered: RenderedOut | None = None


class ThreadOut(BaseModel):
    id: int
    subject: str
    parties: list[str]
    conflict: int | None
    opened_by: str | None
    created_at: datetime
    updated_at: datetime
    messages: list[MessageOut] | None = None
