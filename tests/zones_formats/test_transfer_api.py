"""Import and export over the API, on SQLite and PostgreSQL: one signed statement per import and
a fact per zone, replacements and cancellations, nothing changed by a re-import, bad records
reported, dry runs, exports that round-trip, and schedules honoured by detection."""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import defusedxml.ElementTree as SafeET
from sqlalchemy import select

from deconfliction.store import tables as t
from deconfliction.tracks.loop import TacticalLoop
from deconfliction.tracks.picture import TrackPicture
from tests.api.conftest import Api, OfficerClient
from tests.builders import activity, volume
from tests.conftest import T0
from tests.zones_formats.support import sample

KML = "{http://www.opengis.net/kml/2.2}"


def import_file(
    client: OfficerClient, fmt: str, text: str, dry_run: bool = False
) -> dict[str, Any]:
    r = client.post("/v1/zones/import", json={"format": fmt, "content": text, "dry_run": dry_run})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def actions(body: dict[str, Any]) -> list[tuple[str, str]]:
    return [(i["action"], i["source"]) for i in body["imported"]]


def active_sources(client: OfficerClient) -> list[str]:
    return [z["source"] for z in client.get("/v1/zones").json()]


def test_notam_import_replace_cancel_and_reimport_changes_nothing(api: Api) -> None:
    il = api.as_("il-duty")
    before = api.event_count()
    first = import_file(il, "notam", sample("notam_first.txt"))
    assert actions(first) == [
        ("declared", "notam:LLLL:A0101/30"),
        ("declared", "notam:LLLL:A0102/30"),
        ("declared", "notam:LLLL:A0103/30"),
    ]
    # One statement for the import, one fact per zone.
    assert api.event_count() == before + 4
    zones = il.get("/v1/zones").json()
    assert {z["owner"] for z in zones} == {"IL"}
    assert zones[0]["schedule"] == [
        {"days": ["MON", "TUE", "WED", "THU", "FRI"], "start": "06:00", "end": "18:00"}
    ]
    assert zones[0]["altitude"]["unit"] == "FL"
    assert "QNH unknown" in zones[0]["altitude"]["compared_as"]["note"]

    again = import_file(il, "notam", sample("notam_first.txt"))
    assert {a for a, _ in actions(again)} == {"unchanged"}
    assert [i["zone"] for i in again["imported"]] == [i["zone"] for i in first["imported"]]
    assert il.get("/v1/zones").json() == zones

    update = import_file(il, "notam", sample("notam_update.txt"))
    assert actions(update) == [
        ("withdrawn", "notam:LLLL:A0101/30"),
        ("withdrawn", "notam:LLLL:A0103/30"),
        ("declared", "notam:LLLL:A0104/30"),
    ]
    assert update["imported"][0]["reason"] == "replaced by notam:LLLL:A0104/30"
    assert update["imported"][1]["reason"] == "cancelled by notam:LLLL:A0105/30"
    assert active_sources(il) == ["notam:LLLL:A0102/30", "notam:LLLL:A0104/30"]
    entries = api.event_count()
    assert actions(import_file(il, "notam", sample("notam_update.txt"))) == [
        ("unchanged", "notam:LLLL:A0104/30")
    ]
    # Even the first file again does not bring back what was replaced or cancelled.
    import_file(il, "notam", sample("notam_first.txt"))
    assert active_sources(il) == ["notam:LLLL:A0102/30", "notam:LLLL:A0104/30"]
    assert api.event_count() == entries + 2  # two statements, no fact


def test_replacement_and_cancellation_in_one_file(api: Api) -> None:
    il = api.as_("il-duty")
    both = sample("notam_first.txt") + "\n" + sample("notam_update.txt")
    body = import_file(il, "notam", both)
    assert actions(body) == [
        ("declared", "notam:LLLL:A0102/30"),
        ("declared", "notam:LLLL:A0104/30"),
    ]


def test_bad_records_are_reported_and_the_good_ones_imported(api: Api) -> None:
    il = api.as_("il-duty")
    body = import_file(il, "notam", sample("notam_bad.txt"))
    assert actions(body) == [("declared", "notam:LLLL:A0204/30")]
    assert [r["where"] for r in body["rejected"]] == [
        "line 1 (A0201/30)",
        "line 6 (A0202/30)",
        "line 11 (A0203/30)",
    ]


def test_nothing_importable_is_a_422_and_writes_nothing(api: Api) -> None:
    il = api.as_("il-duty")
    before = api.event_count()
    bad = sample("notam_bad.txt").split("(A0204/30")[0]
    r = il.post("/v1/zones/import", json={"format": "notam", "content": bad})
    assert r.status_code == 422
    assert r.headers["content-type"] == "application/problem+json"
    assert "3 record(s) refused; first: line 1 (A0201/30)" in r.json()["detail"]
    assert len(r.json()["rejected"]) == 3
    r = il.post("/v1/zones/import", json={"format": "openair", "content": "no airspace"})
    assert r.status_code == 422
    assert "not a openair file" in r.json()["detail"]
    assert il.post("/v1/zones/import", json={"format": "kml", "content": ""}).status_code == 422
    assert api.event_count() == before
    assert il.get("/v1/zones").json() == []


def test_expired_record_is_refused(api: Api) -> None:
    # A0101 and A0103 ended in 2029, before the tests' clock (2030-01-01).
    text = (
        sample("notam_first.txt")
        .replace("B) 3001010600 C) 3006302359 EST", "B) 2911010600 C) 2911302359")
        .replace("B) 3001010000 C) 3012312359", "B) 2901010000 C) 2912312359")
    )
    body = import_file(api.as_("il-duty"), "notam", text)
    assert actions(body) == [("declared", "notam:LLLL:A0102/30")]
    assert [r["reason"] for r in body["rejected"]] == [
        "validity already over: valid_to 2029-11-30T23:59:00+00:00",
        "validity already over: valid_to 2029-12-31T23:59:00+00:00",
    ]


def test_dry_run_shows_and_writes_nothing(api: Api) -> None:
    il = api.as_("il-duty")
    before = api.event_count()
    body = import_file(il, "ed269", sample("ed269.json"), dry_run=True)
    assert body["dry_run"] is True
    assert [(i["action"], i["zone"]) for i in body["imported"]] == [("declared", None)] * 4
    assert body["rejected"] == [
        {
            "where": "features[3] (ILU004)",
            "reason": "geometry[0]: altitude band upside down: lower 500 m >= upper 100 m",
        }
    ]
    assert api.event_count() == before
    assert il.get("/v1/zones").json() == []


def test_changed_record_replaces_its_zone(api: Api) -> None:
    il = api.as_("il-duty")
    import_file(il, "openair", sample("openair.txt"))
    changed = sample("openair.txt").replace("AH 9500ft MSL", "AH 12000ft MSL")
    body = import_file(il, "openair", changed)
    assert sorted(actions(body)) == [
        ("unchanged", "openair:LLR-QUNEITRA TEST"),
        ("unchanged", "openair:T4 CIRCLE"),
        ("updated", "openair:LLD-SECTOR"),
        ("withdrawn", "openair:LLD-SECTOR"),
    ]
    sector = [z for z in il.get("/v1/zones").json() if z["source"] == "openair:LLD-SECTOR"]
    assert [round(z["altitude"]["upper_m"], 1) for z in sector] == [3657.6]


def test_observer_cannot_import(api: Api) -> None:
    r = api.as_("un-obs").post(
        "/v1/zones/import", json={"format": "openair", "content": sample("openair.txt")}
    )
    assert r.status_code == 403


def test_exports_round_trip_and_draw(api: Api) -> None:
    il = api.as_("il-duty")
    for fmt, name in (
        ("notam", "notam_first.txt"),
        ("openair", "openair.txt"),
        ("ed269", "ed269.json"),
        ("geojson", "zones.geojson"),
    ):
        import_file(il, fmt, sample(name))
    mine = il.get("/v1/zones").json()
    assert len(mine) == 3 + 3 + 4 + 2

    exported = il.get("/v1/zones/export", params={"format": "geojson"})
    assert exported.headers["content-type"].startswith("application/geo+json")
    # Another party imports the export: the same zones, now as its own.
    tr = api.as_("tr-duty")
    back = import_file(tr, "geojson", exported.text)
    assert back["rejected"] == []
    theirs = tr.get("/v1/zones", params={"owner": "TR"}).json()
    keys = ("name", "rule", "lead_time_s", "footprint", "circle", "altitude", "schedule")
    assert [{k: z[k] for k in keys} for z in theirs] == [{k: z[k] for k in keys} for z in mine]
    assert [(z["valid_from"], z["valid_to"]) for z in theirs] == [
        (z["valid_from"], z["valid_to"]) for z in mine
    ]
    assert [z["source"] for z in theirs] == [z["source"] for z in mine]

    kml = il.get("/v1/zones/export", params={"format": "kml", "owner": "IL"})
    assert kml.headers["content-type"].startswith("application/vnd.google-earth.kml+xml")
    root = SafeET.fromstring(kml.content)
    placemarks = root.findall(f"{KML}Document/{KML}Placemark")
    assert [p.findtext(f"{KML}name") for p in placemarks] == [z["name"] for z in mine]
    assert [p.findtext(f"{KML}styleUrl") for p in placemarks] == [f"#{z['rule']}" for z in mine]

    cot = il.get("/v1/zones/export", params={"format": "cot", "owner": "IL"})
    events = [SafeET.fromstring(line.encode()) for line in cot.text.splitlines()]
    assert [e.get("uid") for e in events] == [f"deconfliction.zone.{z['id']}" for z in mine]
    assert [e.get("type") for e in events] == ["u-d-c-c" if z["circle"] else "u-d-f" for z in mine]
    assert il.get("/v1/zones/export", params={"format": "shp"}).status_code == 422


def test_schedule_is_honoured_by_strategic_detection(api: Api) -> None:
    import_file(api.as_("il-duty"), "ed269", sample("ed269.json"))
    golan = [z for z in api.as_("il-duty").get("/v1/zones").json() if z["source"] == "ed269:ILU001"]
    tr = api.as_("tr-duty")
    assert T0.strftime("%a") == "Tue"

    def zone_conflicts(start_h: float) -> list[int]:
        plan = activity(
            volume(35.72, 33.02, start_h=start_h, hours=1, size=0.05, lower=500, upper=900)
        )
        r = tr.post("/v1/activities/check", json=plan)
        assert r.status_code == 200, r.text
        return [c["b"]["zone"] for c in r.json() if c["kind"] == "zone"]

    # MON-FRI 06:00-18:00 and SAT 08:00-12:00 UTC; the time buffer is 600 s.
    assert zone_conflicts(10) == [golan[0]["id"]]  # Tuesday morning
    assert zone_conflicts(20) == []  # Tuesday evening
    assert zone_conflicts(4 * 24 + 9) == [golan[0]["id"]]  # Saturday 09:00
    assert zone_conflicts(4 * 24 + 14) == []  # Saturday afternoon
    assert zone_conflicts(5 * 24 + 10) == []  # Sunday
    assert zone_conflicts(17.95) == [golan[0]["id"]]  # ends at 18:57, began before 18:00
    assert zone_conflicts(18 + 9 / 60) == [golan[0]["id"]]  # 9 min after: within the buffer
    assert zone_conflicts(18 + 11 / 60) == []


def test_schedule_is_honoured_by_tactical_zone_entry(api: Api) -> None:
    import_file(api.as_("il-duty"), "ed269", sample("ed269.json"))
    with api.engine.connect() as conn:
        golan = conn.execute(
            select(t.zones.c.id).where(t.zones.c.source_id == "ed269:ILU001")
        ).scalar_one()

    def loaded(at: Any) -> bool:
        return str(golan) in {z.id for z in TacticalLoop(api.engine, TrackPicture()).zones(at)}

    assert loaded(T0 + timedelta(hours=10))  # Tuesday 10:00
    assert not loaded(T0 + timedelta(hours=20))  # Tuesday 20:00
    assert loaded(T0 + timedelta(hours=5, minutes=58))  # active within the look-ahead
    assert not loaded(T0 + timedelta(days=5, hours=10))  # Sunday


def test_import_statement_carries_the_file(api: Api) -> None:
    il = api.as_("il-duty")
    import_file(il, "openair", sample("openair.txt"))
    with api.engine.connect() as conn:
        kinds = [
            (row.kind, row.subject)
            for row in conn.execute(
                select(t.entries.c.kind, t.entries.c.subject)
                .where(~t.entries.c.kind.startswith("key."))
                .order_by(t.entries.c.idx)
            )
        ]
        payload = conn.execute(
            select(t.entries.c.payload).where(t.entries.c.kind == "zone.import")
        ).scalar_one()
    assert kinds[0] == ("zone.import", "zone/import")
    assert [k for k, _ in kinds[1:]] == ["zone.declared"] * 3
    body = payload if isinstance(payload, dict) else json.loads(payload)
    assert body["body"]["content"] == sample("openair.txt")


def test_imported_zone_meets_filed_activities_only_in_its_schedule(api: Api) -> None:
    tr = api.as_("tr-duty")
    filed = {}
    for label, start_h in (("tuesday", 10.0), ("sunday", 5 * 24 + 10.0)):
        plan = activity(
            volume(35.72, 33.02, start_h=start_h, hours=1, size=0.05, lower=500, upper=900),
            title=label,
        )
        r = tr.post("/v1/activities", json=plan)
        assert r.status_code == 201, r.text
        filed[r.json()["id"]] = label
    import_file(api.as_("il-duty"), "ed269", sample("ed269.json"))
    found = tr.get("/v1/conflicts").json()
    assert [(c["kind"], filed[c["a"]["activity"]]) for c in found] == [("zone", "tuesday")]
