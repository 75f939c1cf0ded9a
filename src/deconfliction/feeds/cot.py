"""Cursor-on-Target (CoT) XML in and out (pure: no sockets, no clock).

In: one ``<event>`` (TAK "protocol version 0", the XML form) becomes a :class:`TrackState`;
:class:`CotSplitter` cuts a TCP stream into events on ``</event>``. Every event is parsed with
``defusedxml`` refusing any DTD, entity declaration or external reference, so billion-laughs,
quadratic-blowup and XXE payloads are dropped before anything expands; an event is capped at
64 KiB. Anything wrong raises :class:`Dropped` with a short reason that the feed counts.

What is read: ``uid``, ``type`` (atoms only, ``a-...``), ``time``, ``start``, ``stale``;
``point`` ``lat``/``lon``/``hae``; ``detail/track`` ``course``/``speed`` (and ``slope``, degrees
above the horizon, when present: ground speed ``speed cos(slope)``, vertical speed
``speed sin(slope)``); ``detail/contact`` ``callsign``. ``hae`` 9999999 (CoT's "unknown") is
dropped: a track without altitude cannot be deconflicted vertically.

Out: :func:`alert_cot` draws an alert for TAK clients as a ``u-d-f`` line, see its docstring.
"""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from deconfliction.tracks.picture import (
    BAD_VALUE,
    FORBIDDEN_XML,
    MALFORMED,
    MISSING_FIELD,
    NO_ALTITUDE,
    NOT_A_TRACK,
    OUT_OF_RANGE,
    OVERSIZED,
    TRUNCATED,
    IntakeRules,
    TrackState,
)

if TYPE_CHECKING:  # the feed process parses events and never draws alerts: no pydantic there
    from deconfliction.tracks.models import AlertOut

MAX_EVENT_BYTES = 64 * 1024
END_TAG = b"</event>"
UNKNOWN_HAE = 9_999_999.0
ALERT_UID_PREFIX = "deconfliction.alert."
_MAX_ATTR = 200


class Dropped(Exception):
    """Input that does not become a track state, with the reason counted for it."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class CotSplitter:
    """Cuts a byte stream into CoT events on ``</event>``, holding at most ``max_event`` bytes.

    :meth:`feed` returns the complete events found (bytes) and, in their place, the reason
    :data:`OVERSIZED` for an event over the cap: its bytes are discarded as they arrive, up to
    its ``</event>``, so one bad event costs one count and the stream goes on."""

    def __init__(self, max_event: int = MAX_EVENT_BYTES) -> None:
        self.max_event = max_event
        self._buf = bytearray()
        self._scanned = 0  # bytes of _buf already searched for END_TAG
        self._discarding = False

    def feed(self, data: bytes) -> list[bytes | str]:
        out: list[bytes | str] = []
        self._buf += data
        while True:
            at = self._buf.find(END_TAG, max(0, self._scanned - len(END_TAG) + 1))
            if at < 0:
                self._scanned = len(self._buf)
                if len(self._buf) > self.max_event:
                    if not self._discarding:
                        out.append(OVERSIZED)
                        self._discarding = True
                    # Keep only what could be the start of an END_TAG cut by the write.
                    keep = len(END_TAG) - 1
                    del self._buf[:-keep]
                    self._scanned = 0
                return out
            end = at + len(END_TAG)
            event = bytes(self._buf[:end])
            del self._buf[:end]
            self._scanned = 0
            if self._discarding:
                self._discarding = False
                continue
            if len(event) > self.max_event:
                out.append(OVERSIZED)
                continue
            out.append(event.strip())

    def close(self) -> str | None:
        """At the end of the stream: :data:`TRUNCATED` if an event was left unfinished."""
        pending = bytes(self._buf).strip()
        self._buf.clear()
        self._scanned = 0
        if self._discarding:
            self._discarding = False
            return None  # already counted as oversized
        return TRUNCATED if pending else None


def parse_xml(data: bytes) -> Any:
    """The root element of one event, parsed safely; raises :class:`Dropped`."""
    if len(data) > MAX_EVENT_BYTES:
        raise Dropped(OVERSIZED, f"{len(data)} bytes")
    try:
        return SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise Dropped(FORBIDDEN_XML, type(exc).__name__) from None
    except ET.ParseError as exc:
        raise Dropped(MALFORMED, str(exc)) from None
    except (ValueError, LookupError, UnicodeError, RecursionError) as exc:
        raise Dropped(MALFORMED, type(exc).__name__) from None


def _attr(element: Any, name: str, required: bool = True) -> str | None:
    value = element.get(name)
    if value is None or not value.strip():
        if required:
            raise Dropped(MISSING_FIELD, name)
        return None
    if len(value) > _MAX_ATTR:
        raise Dropped(BAD_VALUE, f"{name} too long")
    return str(value).strip()


def _number(element: Any, name: str, required: bool = True) -> float | None:
    raw = _attr(element, name, required)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        raise Dropped(BAD_VALUE, f"{name}={raw!r}") from None
    if not math.isfinite(value):
        raise Dropped(BAD_VALUE, f"{name}={raw!r}")
    return value


def parse_time(raw: str) -> datetime:
    """A CoT time (xs:dateTime, e.g. 2030-01-01T00:00:00.000Z) as an aware UTC datetime."""
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Dropped(BAD_VALUE, f"time {raw!r}") from None
    if moment.tzinfo is None:
        raise Dropped(BAD_VALUE, f"time {raw!r} has no time zone")
    return moment.astimezone(UTC)


def _time(element: Any, name: str, required: bool = True) -> datetime | None:
    raw = _attr(element, name, required)
    return None if raw is None else parse_time(raw)


def event_state(data: bytes, party: str, rules: IntakeRules) -> TrackState:
    """One CoT event as the state of a track of ``party`` (the feed's binding, never the
    data's). Raises :class:`Dropped`; range checks against the clock are the caller's
    (:meth:`IntakeRules.check`)."""
    root = parse_xml(data)
    if root.tag != "event":
        raise Dropped(MALFORMED, f"root element <{root.tag}>")
    uid = _attr(root, "uid")
    kind = _attr(root, "type")
    assert uid is not None and kind is not None
    if not kind.startswith("a-"):
        raise Dropped(NOT_A_TRACK, kind)
    if any(not ("!" <= ch <= "~") for ch in uid) or len(uid) > 128:
        raise Dropped(BAD_VALUE, "uid must be 1-128 printable ASCII characters")
    time = _time(root, "time")
    assert time is not None
    _time(root, "start", required=False)  # read so that a bad one is dropped; time is the fix
    stale = _time(root, "stale", required=False)
    point = root.find("point")
    if point is None:
        raise Dropped(MISSING_FIELD, "point")
    lat = _number(point, "lat")
    lon = _number(point, "lon")
    hae = _number(point, "hae")
    assert lat is not None and lon is not None and hae is not None
    if hae >= UNKNOWN_HAE:
        raise Dropped(NO_ALTITUDE)
    if not (-90.0 <= lat <= 90.0 and -180.0 <= lon <= 180.0):
        raise Dropped(OUT_OF_RANGE, f"lat {lat} lon {lon}")
    gs = course = vs = 0.0
    callsign = None
    detail = root.find("detail")
    if detail is not None:
        track = detail.find("track")
        if track is not None:
            speed = _number(track, "speed", required=False) or 0.0
            course = _number(track, "course", required=False) or 0.0
            slope = _number(track, "slope", required=False) or 0.0
            if speed < 0.0 or not -90.0 <= slope <= 90.0:
                raise Dropped(OUT_OF_RANGE, f"speed {speed} slope {slope}")
            gs = speed * math.cos(math.radians(slope))
            vs = speed * math.sin(math.radians(slope))
            if course == 360.0:
                course = 0.0
        contact = detail.find("contact")
        if contact is not None:
            callsign = _attr(contact, "callsign", required=False)
    return TrackState(
        party=party,
        id=uid,
        lat=lat,
        lon=lon,
        alt_m=hae,
        gs_mps=gs,
        course_deg=course,
        vs_mps=vs,
        time=time,
        stale_at=rules.stale_at(time, stale),
        source="cot",
        callsign=callsign[:64] if callsign else None,
        type=kind[:64],
    )


def cot_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.") + (
        f"{moment.astimezone(UTC).microsecond // 1000:03d}Z"
    )


def alert_uid(alert_id: int) -> str:
    return f"{ALERT_UID_PREFIX}{alert_id}"


def _event(uid: str, kind: str, now: datetime, stale: datetime, lat: float, lon: float) -> Any:
    root = ET.Element(
        "event",
        {
            "version": "2.0",
            "uid": uid,
            "type": kind,
            "how": "m-f",
            "time": cot_time(now),
            "start": cot_time(now),
            "stale": cot_time(stale),
        },
    )
    ET.SubElement(
        root,
        "point",
        {
            "lat": f"{lat:.7f}",
            "lon": f"{lon:.7f}",
            "hae": "9999999.0",
            "ce": "9999999.0",
            "le": "9999999.0",
        },
    )
    return root


def alert_cot(alert: AlertOut, now: datetime, stale_s: float = 300.0) -> str:
    """The alert as one CoT event (XML text) for TAK clients.

    A live alert is a ``u-d-f`` drawing (a two-point polyline, ``<link point="lat,lon"/>``): the
    segment between the two tracks at their predicted closest approach, or, for a zone alert,
    from the track now to its predicted entry point; red (``strokeColor`` -65536), labelled
    with the tracks and the time to conflict, with the figures in ``remarks`` and in a
    ``<__deconfliction>`` element for machines. A drawing shows *where* the loss of
    separation is predicted and how close it gets, on every TAK client, without claiming to be
    something else: ``b-a-o-tbl`` is ATAK's "911" emergency of the sending unit (it sounds the
    alarm on every device and marks the sender as in distress) and ``b-r-f-h-c`` a CASEVAC
    request; both would tell the TAK user a falsehood. The drawing is stale after ``stale_s``
    (it is sent again on every update). A cleared alert is a ``t-x-d-d`` delete of that uid.
    """
    uid = alert_uid(alert.id)
    coords = alert.segment.get("coordinates") or []
    (lon_a, lat_a), (lon_b, lat_b) = (coords[0][:2], coords[-1][:2]) if coords else ((0, 0), (0, 0))
    if alert.state == "cleared":
        root = _event(f"{uid}.delete", "t-x-d-d", now, now + timedelta(seconds=20), lat_a, lon_a)
        detail = ET.SubElement(root, "detail")
        ET.SubElement(detail, "link", {"uid": uid, "relation": "none", "type": "none"})
        ET.SubElement(detail, "__forcedelete")
        return _document(root)
    mid_lat, mid_lon = (lat_a + lat_b) / 2.0, (lon_a + lon_b) / 2.0
    root = _event(uid, "u-d-f", now, now + timedelta(seconds=stale_s), mid_lat, mid_lon)
    detail = ET.SubElement(root, "detail")
    for lon, lat in ((lon_a, lat_a), (lon_b, lat_b)):
        ET.SubElement(detail, "link", {"point": f"{lat:.7f},{lon:.7f}"})
    ET.SubElement(detail, "strokeColor", {"value": "-65536"})
    ET.SubElement(detail, "strokeWeight", {"value": "4.0"})
    ET.SubElement(detail, "labels_on", {"value": "true"})
    other = alert.b if alert.kind == "pair" else f"zone {alert.zone}"
    ET.SubElement(
        detail, "contact", {"callsign": f"ALERT {alert.a} x {other} in {alert.t_in_s:.0f}s"}
    )
    remarks = ET.SubElement(detail, "remarks")
    if alert.kind == "pair":
        remarks.text = (
            f"Predicted loss of separation {alert.a} / {alert.b} in {alert.t_in_s:.0f} s; "
            f"closest {alert.dcpa_m or 0.0:.0f} m in {alert.tcpa_s or 0.0:.0f} s"
        )
    else:
        remarks.text = f"{alert.a} predicted to enter zone {alert.zone} in {alert.t_in_s:.0f} s"
    figures = {
        "alert": str(alert.id),
        "kind": alert.kind,
        "state": alert.state,
        "parties": " ".join(alert.parties),
        "a": alert.a,
        "t_in_s": f"{alert.t_in_s:.1f}",
    }
    if alert.b is not None:
        figures["b"] = alert.b
    if alert.zone is not None:
        figures["zone"] = str(alert.zone)
    if alert.tcpa_s is not None and alert.dcpa_m is not None:
        figures["tcpa_s"] = f"{alert.tcpa_s:.1f}"
        figures["dcpa_m"] = f"{alert.dcpa_m:.0f}"
    ET.SubElement(detail, "__deconfliction", figures)
    return _document(root)


def _document(root: Any) -> str:
    return '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>' + ET.tostring(
        root, encoding="unicode"
    )
