"""SBS-1 (BaseStation) CSV, as dump1090 serves it on port 30003 (pure: no sockets, no clock).

One message per line, 22 comma-separated fields::

    MSG,3,1,1,4CA2D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,37000,,,51.45735,-1.02826,,,0,0,0,0
    MSG,4,1,1,4CA2D6,1,2008/11/28,23:48:18.611,2008/11/28,23:53:19.161,,,420,179,,,-64,,0,0,0,0

MSG 3 (airborne position: altitude in feet, lat, lon) and MSG 4 (airborne velocity: ground
speed in knots, track, vertical rate in ft/min) are merged per ICAO address; a state is made
when both are known (the velocity no older than 30 s) and is stamped with the time of the
position. MSG 1 gives the callsign; other messages are ignored. The date and time are the
receiver's LOCAL time: the feed's ``utc_offset`` (local minus UTC) turns them into UTC.
Altitudes are pressure altitudes (1013.25 hPa), converted to metres as they are.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from deconfliction.feeds.cot import Dropped
from deconfliction.tracks.picture import (
    BAD_VALUE,
    MALFORMED,
    OUT_OF_RANGE,
    TOO_MANY,
    IntakeRules,
    TrackState,
)

FT = 0.3048
KT = 1852.0 / 3600.0
FPM = FT / 60.0
MAX_LINE_BYTES = 1024
FIELDS = 22
_HEX = frozenset("0123456789ABCDEF")


@dataclass
class _Aircraft:
    seen: datetime
    callsign: str | None = None
    position: tuple[float, float, float] | None = None  # lat, lon, alt_m
    position_at: datetime | None = None
    velocity: tuple[float, float, float] | None = None  # gs m/s, course, vs m/s
    velocity_at: datetime | None = None


def _float(raw: str, what: str) -> float | None:
    raw = raw.strip()
    if not raw:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Dropped(BAD_VALUE, f"{what}={raw!r}") from None
    if not math.isfinite(value):
        raise Dropped(BAD_VALUE, f"{what}={raw!r}")
    return value


class Sbs1Decoder:
    """Turns SBS-1 lines of one receiver into track states of ``party``.

    :meth:`line` returns a state, or None for a message that makes none (ignored), and raises
    :class:`Dropped` for a bad one. At most ``max_aircraft`` addresses are remembered; one
    not heard of for ``forget_s`` is forgotten."""

    def __init__(
        self,
        party: str,
        rules: IntakeRules,
        utc_offset: timedelta = timedelta(0),
        max_aircraft: int = 20_000,
        velocity_max_age_s: float = 30.0,
        forget_s: float = 300.0,
    ) -> None:
        self.party = party
        self.rules = rules
        self.utc_offset = utc_offset
        self.max_aircraft = max_aircraft
        self.velocity_max_age = timedelta(seconds=velocity_max_age_s)
        self.forget = timedelta(seconds=forget_s)
        self._aircraft: dict[str, _Aircraft] = {}
        self._lines = 0

    def __len__(self) -> int:
        return len(self._aircraft)

    def _time(self, day: str, clock: str) -> datetime:
        text = f"{day.strip()} {clock.strip()}"
        for fmt in ("%Y/%m/%d %H:%M:%S.%f", "%Y/%m/%d %H:%M:%S"):
            try:
                local = datetime.strptime(text, fmt)
            except ValueError:
                continue
            return (local - self.utc_offset).replace(tzinfo=UTC)
        raise Dropped(BAD_VALUE, f"time {text!r}")

    def line(self, raw: bytes | str) -> TrackState | None:
        try:
            text = raw.decode("ascii") if isinstance(raw, bytes) else raw
        except UnicodeDecodeError:
            raise Dropped(MALFORMED, "not ASCII") from None
        text = text.strip()
        if not text:
            return None
        fields = text.split(",")
        if fields[0] != "MSG":
            if fields[0] in ("SEL", "ID", "AIR", "STA", "CLK"):
                return None
            raise Dropped(MALFORMED, f"message {fields[0][:10]!r}")
        if len(fields) != FIELDS:
            raise Dropped(MALFORMED, f"{len(fields)} fields, expected {FIELDS}")
        kind = fields[1].strip()
        if kind not in ("1", "3", "4"):
            return None
        icao = fields[4].strip().upper()
        if len(icao) != 6 or not set(icao) <= _HEX:
            raise Dropped(MALFORMED, f"ICAO address {icao[:10]!r}")
        at = self._time(fields[6], fields[7])
        self._lines += 1
        if self._lines % 1000 == 0:
            self._forget(at)
        plane = self._aircraft.get(icao)
        if plane is None:
            if len(self._aircraft) >= self.max_aircraft:
                self._forget(at)
                if len(self._aircraft) >= self.max_aircraft:
                    raise Dropped(TOO_MANY, icao)
            plane = self._aircraft[icao] = _Aircraft(seen=at)
        plane.seen = max(plane.seen, at)
        if kind == "1":
            callsign = fields[10].strip()
            plane.callsign = callsign[:64] or plane.callsign
            return None
        if kind == "3":
            alt_ft = _float(fields[11], "altitude")
            lat = _float(fields[14], "lat")
            lon = _float(fields[15], "lon")
            if alt_ft is None or lat is None or lon is None:
                return None  # a position message without a position: nothing to merge
            if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
                raise Dropped(OUT_OF_RANGE, f"lat {lat} lon {lon}")
            if plane.position_at is None or at >= plane.position_at:
                plane.position = (lat, lon, alt_ft * FT)
                plane.position_at = at
        else:
            gs_kt = _float(fields[12], "ground speed")
            track = _float(fields[13], "track")
            rate = _float(fields[16], "vertical rate") or 0.0
            if gs_kt is None or track is None:
                return None
            if gs_kt < 0.0 or not 0.0 <= track <= 360.0:
                raise Dropped(OUT_OF_RANGE, f"speed {gs_kt} track {track}")
            if plane.velocity_at is None or at >= plane.velocity_at:
                plane.velocity = (gs_kt * KT, track % 360.0, rate * FPM)
                plane.velocity_at = at
        return self._state(icao, plane)

    def _state(self, icao: str, plane: _Aircraft) -> TrackState | None:
        if plane.position is None or plane.velocity is None:
            return None
        assert plane.position_at is not None and plane.velocity_at is not None
        if abs(plane.position_at - plane.velocity_at) > self.velocity_max_age:
            return None
        lat, lon, alt = plane.position
        gs, course, vs = plane.velocity
        return TrackState(
            party=self.party,
            id=icao,
            lat=lat,
            lon=lon,
            alt_m=alt,
            gs_mps=gs,
            course_deg=course,
            vs_mps=vs,
            time=plane.position_at,
            stale_at=self.rules.stale_at(plane.position_at, None),
            source="sbs1",
            callsign=plane.callsign,
        )

    def _forget(self, now: datetime) -> None:
        cutoff = now - self.forget
        for icao in [k for k, p in self._aircraft.items() if p.seen < cutoff]:
            del self._aircraft[icao]


class LineSplitter:
    """Cuts a byte stream into lines, holding at most ``max_line`` bytes: a longer line is
    reported once as ``None`` in the output and discarded up to its end."""

    def __init__(self, max_line: int = MAX_LINE_BYTES) -> None:
        self.max_line = max_line
        self._buf = bytearray()
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | None]:
        out: list[bytes | None] = []
        self._buf += data
        while True:
            at = self._buf.find(b"\n")
            if at < 0:
                if len(self._buf) > self.max_line:
                    if not self._discarding:
                        out.append(None)
                        self._discarding = True
                    self._buf.clear()
                return out
            line = bytes(self._buf[:at])
            del self._buf[: at + 1]
            if self._discarding:
                self._discarding = False
                continue
            if len(line) > self.max_line:
                out.append(None)
                continue
            out.append(line.rstrip(b"\r"))

    def close(self) -> bytes | None:
        """What is left at the end of the stream (a last line without newline), if anything."""
        rest = bytes(self._buf).strip()
        self._buf.clear()
        discarding, self._discarding = self._discarding, False
        return rest if rest and not discarding else None
