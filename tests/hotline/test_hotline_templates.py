"""The translations are complete and consistent, and fields are formatted per locale (no
database: these run once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from babel.dates import format_skeleton, get_timezone_location
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.hotline import templates
from deconfliction.hotline.models import MessageOut, ReceiptOut, SenderOut

FSI, PDI = "\u2068", "\u2069"


def keys(data: Any, prefix: str = "") -> set[str]:
    if isinstance(data, dict):
        found: set[str] = set()
        for k, v in data.items():
            found |= keys(v, f"{prefix}.{k}" if prefix else k)
        return found
    return {prefix}


def leaf(data: dict[str, Any], path: str) -> Any:
    for part in path.split("."):
        data = data[part]
    return data


@pytest.mark.parametrize("language", templates.LANGUAGES)
def test_every_language_has_every_string_with_the_same_placeholders(language: str) -> None:
    english = templates.catalog("en")
    other = templates.catalog(language)
    assert keys(other) == keys(english)
    for path in keys(english):
        en_value, value = leaf(english, path), leaf(other, path)
        assert isinstance(value, str) and value.strip(), path
        assert templates.placeholders(value) == templates.placeholders(en_value), path
    assert other["language"] == language
    assert other["dir"] == ("rtl" if language in ("he", "ar") else "ltr")


def test_reader_language_falls_back_to_english() -> None:
    assert templates.reader_language(None, "he") == "he"
    assert templates.reader_language("ar", "he") == "ar"
    assert templates.reader_language(None, "tr-TR") == "tr"
    assert templates.reader_language(None, "fr") == "en"
    assert templates.text_direction("he") == "rtl"
    assert templates.text_direction("ar") == "rtl"
    assert templates.text_direction("az") == "ltr"
    assert templates.text_direction("xx") == "ltr"


def warning_message() -> MessageOut:
    at = datetime(2030, 1, 1, 12, 5, tzinfo=UTC)
    return MessageOut(
        id=7,
        thread=1,
        type="warning",
        priority="FLASH",
        sender=SenderOut(party="TR", officer="tr-duty"),
        to=["IL"],
        copied=["AZ"],
        created_at=at,
        content={
            "hazard": "live_firing",
            "position": {"lat": 33.5, "lon": -35.25},
            "radius_m": 5000,
            "band": {"lower_m": 3048, "upper_m": 6000},
            "window": {"start": "2030-01-01T13:00:00Z", "end": "2030-01-01T15:30:00Z"},
        },
        text=templates.free_text("אש חיה באזור", "he"),
        in_reply_to=None,
        conflict=None,
        activity=None,
        receipts=[
            ReceiptOut(
                party="IL",
                delivered_at=None,
                delivered_by=None,
                read_at=None,
                read_by=None,
                acknowledged_at=None,
                acknowledged_by=None,
                deadline_at=at,
                overdue=False,
                rung=0,
                rung_name="duty_officer",
                next_escalation_at=at,
                escalated_at=None,
            )
        ],
    )


def test_fields_are_formatted_by_babel_per_locale() -> None:
    message = warning_message()
    en = templates.render(message, "en", "Asia/Jerusalem", "IL")
    fields = {f.name: f.value for f in en.fields}
    assert fields["position"] == "33.5000° N, 35.2500° W"
    assert fields["band"] == "3,048 m (10,000 ft, FL100) to 6,000 m (19,685 ft, FL197)"
    assert fields["radius"] == "5 km"
    # UTC, then the reader's local time in its party's time zone (Israel: UTC+2 in January)
    assert fields["start"] == "Jan 1, 2030 13:00 UTC (Jan 1, 2030 15:00 Israel Time)"
    assert fields["deadline"].startswith("Jan 1, 2030 12:05 UTC")
    assert en.body.startswith(
        "TR (tr-duty) warns: live firing at 33.5000° N, 35.2500° W, within 5 km"
    )
    assert en.dir == "ltr" and en.title == "Warning" and en.priority == "FLASH"
    assert en.text is not None and (en.text.language, en.text.dir) == ("he", "rtl")
    assert en.text.content == "אש חיה באזור"  # free text is never translated

    tr = templates.render(message, "tr", "Europe/Istanbul", "IL")
    fields = {f.name: f.value for f in tr.fields}
    assert fields["position"] == "33,5000° K, 35,2500° B"  # Turkish decimal comma
    assert fields["band"].startswith("3.048 m (10.000 fit, FL100) ile 6.000 m")
    assert "16:00 Türkiye Saati" in fields["start"]
    assert tr.title == "Uyarı" and tr.priority == "FLAŞ" and tr.dir == "ltr"

    he = templates.render(message, "he", "UTC", "IL")
    assert he.dir == "rtl" and he.title == "אזהרה"
    assert f"{FSI}ירי חי{PDI}" in he.body
    assert {f.name: f.value for f in he.fields}["start"] == "1 בינו׳ 2030 13:00 UTC"

    ar = templates.render(message, "ar", "Asia/Damascus", "IL")
    assert ar.dir == "rtl" and ar.title == "تحذير"
    assert "توقيت" in {f.name: f.value for f in ar.fields}["start"]
    assert "قدم" in {f.name: f.value for f in ar.fields}["band"]

    az = templates.render(message, "az", "Asia/Baku", "IL")
    assert az.title == "Xəbərdarlıq" and az.priority == "ÇOX TƏCİLİ"
    assert "17:00" in {f.name: f.value for f in az.fields}["start"]  # Baku is UTC+4


def test_the_deadline_line_is_for_the_readers_party_only() -> None:
    message = warning_message()
    assert "deadline" in {f.name for f in templates.render(message, "en", "UTC", "IL").fields}
    assert "deadline" not in {f.name for f in templates.render(message, "en", "UTC", "TR").fields}


@settings(max_examples=200, deadline=None)
@given(
    moment=st.datetimes(
        min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(UTC)
    ),
    language=st.sampled_from(templates.LANGUAGES),
    zone=st.sampled_from(["UTC", "Asia/Damascus", "Europe/Istanbul", "Asia/Jerusalem"]),
    later_s=st.integers(min_value=0, max_value=7200),
)
def test_a_time_reads_as_babel_formats_it_whatever_the_caches_hold(
    moment: datetime, language: str, zone: str, later_s: int
) -> None:
    # The formatter keeps each minute's text and each zone's name: the reference asks Babel.
    def babel(at: datetime) -> str:
        naive = at.replace(tzinfo=None)
        day = format_skeleton("yMMMd", naive, locale=language)
        return f"{day} {format_skeleton('Hm', naive, locale=language)}"

    formatter = templates.Formatter(language, zone)
    # Two times close together: a cache keyed too coarsely would give the second the first's.
    for at in (moment, moment + timedelta(seconds=later_s)):
        if zone == "UTC":
            expected = f"{babel(at)} UTC"
        else:
            local = at.astimezone(ZoneInfo(zone))
            place = get_timezone_location(ZoneInfo(zone), locale=language)
            expected = formatter.fmt("time", utc=babel(at), local=f"{babel(local)} {place}")
        assert formatter.time(at) == expected
