"""CoT parsing, stream splitting and the alert drawing, without sockets."""

from __future__ import annotations

from datetime import timedelta

import defusedxml.ElementTree as SafeET
import pytest

from deconfliction.feeds.cot import CotSplitter, Dropped, alert_cot, event_state
from deconfliction.feeds.servers import FeedConfig, parse_offset
from deconfliction.tracks.models import AlertOut, AlertState
from deconfliction.tracks.picture import IntakeRules
from tests.conftest import T0
from tests.feeds.support import BILLION_LAUGHS, EXTERNAL_ENTITY, cot_event

RULES = IntakeRules()


def test_an_event_becomes_a_state_of_the_feeds_party() -> None:
    state = event_state(cot_event("ANDROID-1", 34.5, 38.25, 5500, speed=100), "IL", RULES)
    assert (state.party, state.id, state.key) == ("IL", "ANDROID-1", "IL/ANDROID-1")
    assert (state.lat, state.lon, state.alt_m) == (34.5, 38.25, 5500)
    assert (state.gs_mps, state.course_deg, state.vs_mps) == (100, 90, 0)
    assert state.time == T0 and state.stale_at == T0 + timedelta(seconds=60)
    assert (state.callsign, state.type, state.source) == ("VIPER 1", "a-f-A-M-F", "cot")


def test_slope_splits_speed_and_stale_defaults_and_caps() -> None:
    raw = cot_event("u", speed=200).replace(b'speed="200"', b'speed="200" slope="30"')
    state = event_state(raw, "TR", RULES)
    assert state.gs_mps == pytest.approx(173.205, abs=1e-3)
    assert state.vs_mps == pytest.approx(100.0)
    no_stale = cot_event("u").replace(b'stale="', b'x-stale="')
    assert event_state(no_stale, "TR", RULES).stale_at == T0 + timedelta(seconds=30)
    long_stale = cot_event("u", stale_s=86_400)
    assert event_state(long_stale, "TR", RULES).stale_at == T0 + timedelta(seconds=600)


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        (b"<event><point></event>", "malformed"),
        (cot_event("u")[:-10], "malformed"),
        (BILLION_LAUGHS, "forbidden_xml"),
        (EXTERNAL_ENTITY, "forbidden_xml"),
        (cot_event("u", 95.0), "out_of_range"),
        (cot_event("u", hae=9999999.0), "no_altitude"),
        (cot_event("u", kind="b-m-p-s-m"), "not_a_track"),
        (cot_event("u").replace(b"<point", b"<pt"), "missing_field"),
        (cot_event("u").replace(b'lat="34.8"', b'lat="north"'), "bad_value"),
        (cot_event("u").replace(b'Z" start', b'" start'), "bad_value"),
        (b"<notevent/>", "malformed"),
        (b"\xbf\x01\x02 protobuf", "malformed"),
        (b"x" * (64 * 1024 + 1), "oversized"),
    ],
)
def test_bad_events_are_dropped_with_a_reason(raw: bytes, reason: str) -> None:
    with pytest.raises(Dropped) as caught:
        event_state(raw, "IL", RULES)
    assert caught.value.reason == reason


def test_splitter_cuts_on_end_tag_across_writes() -> None:
    stream = cot_event("a") + b"\n" + cot_event("b") + cot_event("c")
    cut = stream.index(b"</event>") + 4  # in the middle of the closing tag
    splitter = CotSplitter()
    found = splitter.feed(stream[:cut]) + splitter.feed(stream[cut : cut + 50])
    found += splitter.feed(stream[cut + 50 :])
    assert [event_state(e, "IL", RULES).id for e in found if isinstance(e, bytes)] == [
        "a",
        "b",
        "c",
    ]
    assert splitter.close() is None


def test_splitter_drops_an_oversized_event_once_and_goes_on() -> None:
    splitter = CotSplitter(max_event=1000)
    big = cot_event("big", extra="<remarks>" + "x" * 5000 + "</remarks>")
    found: list[bytes | str] = []
    for k in range(0, len(big), 700):
        found += splitter.feed(big[k : k + 700])
    found += splitter.feed(cot_event("after"))
    assert found[0] == "oversized" and len(found) == 2
    assert isinstance(found[1], bytes) and b'uid="after"' in found[1]
    assert splitter.feed(b"<event uid='cut'") == []
    assert splitter.close() == "truncated"


def _alert(state: AlertState = "raised") -> AlertOut:
    return AlertOut(
        id=7,
        kind="pair",
        a="IL/sufa-71",
        b="TR/akinci-31",
        zone=None,
        parties=["IL", "TR"],
        tcpa_s=95.0,
        dcpa_m=4100.0,
        t_in_s=60.0,
        t_out_s=130.0,
        segment={"type": "LineString", "coordinates": [[37.1, 34.8], [37.15, 34.82]]},
        altitudes_m=[6000.0, 6100.0],
        state=state,
        raised_at=T0,
        updated_at=T0,
        cleared_at=None,
    )


def test_alert_cot_is_a_drawing_of_the_cpa_segment() -> None:
    root = SafeET.fromstring(alert_cot(_alert(), T0).encode(), forbid_dtd=True)
    assert root.tag == "event"
    assert root.get("uid") == "deconfliction.alert.7"
    assert root.get("type") == "u-d-f"
    assert root.get("time") == "2030-01-01T00:00:00.000Z"
    assert root.get("stale") == "2030-01-01T00:05:00.000Z"
    point = root.find("point")
    assert float(point.get("lat")) == pytest.approx(34.81)
    assert float(point.get("lon")) == pytest.approx(37.125)
    links = [link.get("point") for link in root.find("detail").findall("link")]
    assert links == ["34.8000000,37.1000000", "34.8200000,37.1500000"]
    figures = root.find("detail/__deconfliction")
    assert figures.get("a") == "IL/sufa-71" and figures.get("dcpa_m") == "4100"
    assert "IL/sufa-71" in root.find("detail/contact").get("callsign")


def test_a_cleared_alert_is_a_delete_of_its_drawing() -> None:
    root = SafeET.fromstring(alert_cot(_alert("cleared"), T0).encode(), forbid_dtd=True)
    assert root.get("type") == "t-x-d-d"
    assert root.find("detail/link").get("uid") == "deconfliction.alert.7"


def test_feed_config_from_text() -> None:
    cot = FeedConfig.parse("cot:8087:IL")
    assert (cot.kind, cot.port, cot.party, cot.host, cot.connect) == (
        "cot",
        8087,
        "IL",
        "127.0.0.1",
        None,
    )
    sbs = FeedConfig.parse("sbs1@10.0.0.5:30003:TR:+03:00")
    assert (sbs.connect, sbs.utc_offset) == ("10.0.0.5", timedelta(hours=3))
    assert FeedConfig.parse("cot-udp/0.0.0.0:6969:TR").host == "0.0.0.0"
    assert parse_offset("-0530") == -timedelta(hours=5, minutes=30)
    for bad in ("cot:8087", "xml:1:IL", "cot:99999:IL", "cot:1:il", "cot@h:1:IL", "sbs1:1:TR:x"):
        with pytest.raises(ValueError):
            FeedConfig.parse(bad)
