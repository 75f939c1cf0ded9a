"""Messages as their reader reads them: the type's template in the reader's language, structured
fields formatted with Babel for that locale, times in UTC and in the reader's party's time zone.

Translations are data files (`i18n/<lang>.json`), written by hand: no offline machine translation
is good enough for these. Free text is never translated; it is shown as written, marked with its
language and direction. In right-to-left templates every inserted value is wrapped in Unicode
first-strong isolates (U+2068 ... U+2069) so that codes, numbers and Latin names keep their order.
"""

from __future__ import annotations

import json
import string
from datetime import UTC, datetime, timedelta
from functools import cache, lru_cache
from importlib import resources
from typing import Any, Literal, cast
from zoneinfo import ZoneInfo

from babel import Locale, UnknownLocaleError
from babel.dates import format_skeleton, format_timedelta, get_timezone_location
from babel.lists import format_list
from babel.numbers import format_decimal
from babel.units import format_unit

from deconfliction.hotline.models import FieldOut, FreeTextOut, MessageOut, RenderedOut

LANGUAGES = ("en", "tr", "he", "ar", "az")
FALLBACK = "en"
FEET_PER_METRE = 1 / 0.3048
FSI, PDI = "\u2068", "\u2069"


@cache
def catalog(language: str) -> dict[str, Any]:
    """The template data of a language (one of LANGUAGES)."""
    path = resources.files("deconfliction.hotline") / "i18n" / f"{language}.json"
    loaded: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return loaded


def reader_language(requested: str | None, party_language: str | None) -> str:
    """The language to render in: the one asked for, else the party's, else English."""
    for candidate in (requested, party_language):
        if candidate:
            base = candidate.replace("_", "-").split("-")[0].lower()
            if base in LANGUAGES:
                return base
    return FALLBACK


@lru_cache(maxsize=1024)  # parsing the locale costs more than the rest of a message's text
def text_direction(language: str) -> Literal["ltr", "rtl"]:
    """The direction a language is written in, from the locale data (ltr when unknown)."""
    try:
        direction = Locale.parse(language.replace("-", "_")).text_direction
    except (UnknownLocaleError, ValueError):
        return "ltr"
    return "rtl" if direction == "rtl" else "ltr"


@cache
def _locale(language: str) -> Locale:
    """One Locale per language, shared: Babel parses a locale name at every call given one,
    ~16 times a message."""
    return Locale.parse(language)


@lru_cache(maxsize=1024)
def _zone_location(zone: str, language: str) -> str:
    return get_timezone_location(ZoneInfo(zone), locale=_locale(language))


@lru_cache(maxsize=4096)  # by the minute (no seconds shown): a busy minute's messages share it
def _date_time(language: str, minute: datetime) -> str:
    day = format_skeleton("yMMMd", minute, locale=_locale(language))
    clock = format_skeleton("Hm", minute, locale=_locale(language))
    return f"{day} {clock}"


def load_languages() -> None:
    """Load every language's templates and locale data now (a server does at start), not when
    a message is first rendered in it."""
    for language in LANGUAGES:
        catalog(language)
        text_direction(language)


def placeholders(template: str) -> set[str]:
    return {name for _, name, _, _ in string.Formatter().parse(template) if name}


class Formatter:
    """Formats the structured fields of messages for one language and time zone."""

    def __init__(self, language: str, time_zone: str = "UTC") -> None:
        self.language = language
        self.locale = _locale(language)
        self.data = catalog(language)
        self.rtl = self.data["dir"] == "rtl"
        self.zone = ZoneInfo(time_zone)
        self.zone_is_utc = time_zone in ("UTC", "Etc/UTC", "Etc/GMT", "GMT")

    def fill(self, template: str, **values: str) -> str:
        """A sentence: in a right-to-left language each value is isolated (FSI ... PDI)."""
        if self.rtl:
            values = {k: f"{FSI}{v}{PDI}" if v else v for k, v in values.items()}
        return template.format(**values)

    def fmt(self, key: str, **values: str) -> str:
        """A value (a time, a position, an altitude): isolated as a whole where it is used."""
        return str(self.data["format"][key]).format(**values)

    def number(self, value: float, pattern: str = "#,##0") -> str:
        return format_decimal(value, pattern, locale=self.locale)

    def time(self, moment: datetime) -> str:
        utc = moment.astimezone(UTC)
        at_utc = self._date_time(utc)
        if self.zone_is_utc:
            return f"{at_utc} UTC"
        here = utc.astimezone(self.zone)
        zone_name = _zone_location(self.zone.key, self.language)
        return self.fmt("time", utc=at_utc, local=f"{self._date_time(here)} {zone_name}")

    def _date_time(self, moment: datetime) -> str:
        return _date_time(self.language, moment.replace(tzinfo=None, second=0, microsecond=0))

    def coordinate(self, value: float, positive: str, negative: str) -> str:
        hemisphere = self.data["compass"][positive if value >= 0 else negative]
        return str(self.data["format"]["coordinate"]).format(
            value=self.number(abs(value), "0.0000"), hemisphere=hemisphere
        )

    def position(self, position: dict[str, float]) -> str:
        return self.fmt(
            "position",
            lat=self.coordinate(position["lat"], "N", "S"),
            lon=self.coordinate(position["lon"], "E", "W"),
        )

    def altitude(self, metres: float) -> str:
        feet = metres * FEET_PER_METRE
        flight_level = max(0, round(feet / 100))
        return self.fmt(
            "altitude",
            m=format_unit(round(metres), "length-meter", "short", locale=self.locale),
            ft=format_unit(round(feet), "length-foot", "short", locale=self.locale),
            fl=f"FL{flight_level:03d}",
        )

    def band(self, band: dict[str, float]) -> str:
        return self.fmt(
            "band", lower=self.altitude(band["lower_m"]), upper=self.altitude(band["upper_m"])
        )

    def distance(self, metres: float) -> str:
        if metres >= 1000:
            return format_unit(
                round(metres / 1000, 1), "length-kilometer", "short", locale=self.locale
            )
        return format_unit(round(metres), "length-meter", "short", locale=self.locale)

    def duration(self, seconds: int) -> str:
        return format_timedelta(timedelta(seconds=abs(seconds)), threshold=2.0, locale=self.locale)

    def ref(self, kind: str, ident: int) -> str:
        return str(self.data["ref"][kind]).format(id=self.number(ident, "0"))

    def parties(self, codes: list[str]) -> str:
        return format_list(codes, locale=self.locale) if codes else ""

    def rung(self, name: str) -> str:
        return str(self.data["rung"].get(name, name))


def render(
    message: MessageOut, language: str, time_zone: str, reader_party: str | None
) -> RenderedOut:
    """The message in `language`, local times in `time_zone`, the deadline of `reader_party`."""
    f = Formatter(language, time_zone)
    data = f.data
    content = message.content
    if message.sender.party is None:
        sender = str(data["system"])
    else:
        sender = f.fmt("sender", party=message.sender.party, officer=message.sender.officer or "")
    fields: list[FieldOut] = []

    def field(name: str, value: str) -> str:
        fields.append(FieldOut(name=name, label=data["label"][name], value=value))
        return value

    field("sender", sender)
    field("to", f.parties(message.to))
    field("priority", data["priority"][message.priority])
    values: dict[str, str] = {"sender": sender}
    extra: list[str] = []
    kind = message.type
    if kind == "reply" and message.in_reply_to is not None:
        values["in_reply_to"] = field("reference", f.ref("message", message.in_reply_to))
    elif kind == "warning":
        values["hazard"] = field("hazard", data["hazard"][content["hazard"]])
        values["position"] = field("position", f.position(content["position"]))
        radius = content.get("radius_m")
        values["radius"] = (
            f.fmt("radius", radius=field("radius", f.distance(radius))) if radius else ""
        )
        values["band"] = field("band", f.band(content["band"]))
        values["start"] = field("start", f.time(_dt(content["window"]["start"])))
        values["end"] = field("end", f.time(_dt(content["window"]["end"])))
    elif kind == "request_deconfliction":
        refs = []
        if content.get("conflict"):
            refs.append(f.ref("conflict", content["conflict"]))
        if content.get("activity"):
            refs.append(f.ref("activity", content["activity"]))
        values["reference"] = field("reference", f.parties(refs))
        if content.get("severity"):
            extra.append(
                f.fill(
                    data["body"]["severity"],
                    severity=field("severity", data["severity"][content["severity"]]),
                )
            )
        if content.get("band") and content.get("window"):
            extra.append(
                f.fill(
                    data["body"]["overlap"],
                    band=field("band", f.band(content["band"])),
                    start=field("start", f.time(_dt(content["window"]["start"]))),
                    end=field("end", f.time(_dt(content["window"]["end"]))),
                )
            )
        if content.get("proposal"):
            extra.append(field("proposal", _proposal(f, content["proposal"])))
    elif kind == "comms_check":
        sequence = content.get("sequence") or message.id
        values["sequence"] = field("sequence", f.number(sequence, "0"))
    elif kind == "incident_notice":
        values["incident"] = field("incident", data["incident"][content["kind"]])
        values["position"] = field("position", f.position(content["position"]))
        altitude = content.get("altitude_m")
        values["altitude"] = (
            f.fmt("at_altitude", altitude=field("altitude", f.altitude(altitude)))
            if altitude is not None
            else ""
        )
        values["time"] = field("time", f.time(_dt(content["occurred_at"])))
    sentences = [f.fill(data["body"][kind], **values), *extra]
    mine = next((r for r in message.receipts if r.party == reader_party), None)
    if mine is not None and mine.acknowledged_at is None:
        deadline = field("deadline", f.time(mine.deadline_at))
        sentences.append(f.fill(data["body"]["acknowledge_by"], deadline=deadline))
    return RenderedOut(
        language=language,
        dir=cast(Literal["ltr", "rtl"], data["dir"]),
        title=data["type"][kind],
        priority=data["priority"][message.priority],
        body=" ".join(sentences),
        fields=fields,
        text=message.text,
    )


def _proposal(f: Formatter, proposal: dict[str, Any]) -> str:
    templates = f.data["proposal"]
    action = proposal["action"]
    if action == "change_altitude":
        return f.fill(templates[action], band=f.band(proposal["band"]))
    if action == "shift_time":
        shift = int(proposal["shift_s"])
        key = "shift_later" if shift > 0 else "shift_earlier"
        return f.fill(templates[key], shift=f.duration(shift))
    if action == "reroute":
        return f.fill(templates[action], via=f.parties([f.position(p) for p in proposal["via"]]))
    return str(templates[action])


def _dt(value: str | datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


def free_text(content: str | None, language: str | None) -> FreeTextOut | None:
    if content is None or language is None:
        return None
    return FreeTextOut(content=content, language=language, dir=text_direction(language))
