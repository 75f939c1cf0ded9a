"""Sending and reading hotline messages over HTTP: every type, in each reader's language, as
signed entries of the record, seen only by the parties involved and the mediator."""

from __future__ import annotations

import base64
import json
from datetime import timedelta
from typing import Any

from deconfliction.hotline import templates
from tests.builders import activity, iso, volume
from tests.conftest import T0
from tests.hotline.conftest import Hotline, notice

LANGUAGE_OF = {"tr-duty": "tr", "il-duty": "he", "sy-duty": "ar", "az-med": "az"}


def warning(to: list[str]) -> dict[str, Any]:
    return {
        "type": "warning",
        "priority": "FLASH",
        "subject": "Live firing",
        "to": to,
        "warning": {
            "hazard": "live_firing",
            "position": {"lat": 36.2, "lon": 37.1},
            "radius_m": 8000,
            "band": {"lower_m": 0, "upper_m": 4572},
            "window": {
                "start": iso(T0 + timedelta(hours=1)),
                "end": iso(T0 + timedelta(hours=3)),
            },
        },
        "text": "Atış bölgesinden uzak durun.",
        "language": "tr",
    }


def test_a_warning_reaches_each_reader_in_its_language(hot: Hotline) -> None:
    hot.as_("il-duty").put(
        "/v1/hotline/parties/IL",
        json={
            "time_zone": "Asia/Jerusalem",
            "ladder": [{"name": "duty_officer", "role": "officer"}],
        },
        headers={"If-Match": '"0"'},
    ).raise_for_status()
    sent = hot.as_("tr-duty").send(**warning(["IL", "SY"]))
    assert sent["to"] == ["IL", "SY"] and sent["copied"] == ["AZ"]
    assert sent["sender"] == {"party": "TR", "officer": "tr-duty"}
    assert sent["rendered"]["language"] == "tr"
    for officer, language in LANGUAGE_OF.items():
        got = hot.as_(officer).get(f"/v1/hotline/messages/{sent['id']}").json()
        rendered = got["rendered"]
        data = templates.catalog(language)
        assert rendered["language"] == language, officer
        assert rendered["dir"] == data["dir"]
        assert rendered["title"] == data["type"]["warning"]
        assert rendered["priority"] == data["priority"]["FLASH"]
        assert data["hazard"]["live_firing"] in rendered["body"]
        assert "{" not in rendered["body"]
        # Free text stays as written, marked with its language.
        assert rendered["text"] == {
            "content": "Atış bölgesinden uzak durun.",
            "language": "tr",
            "dir": "ltr",
        }
        labels = {f["name"]: f["label"] for f in rendered["fields"]}
        assert labels["position"] == data["label"]["position"]
    il = hot.as_("il-duty").get(f"/v1/hotline/messages/{sent['id']}").json()["rendered"]
    values = {f["name"]: f["value"] for f in il["fields"]}
    # Israel's officers read local times in Asia/Jerusalem: 01:00 UTC is 03:00 there.
    assert "1:00 UTC" in values["start"] and "3:00" in values["start"]
    assert "FL150" in values["band"] and "4,572" in values["band"]
    english = hot.as_("il-duty").get(f"/v1/hotline/messages/{sent['id']}?lang=en").json()
    assert english["rendered"]["body"].startswith("TR (tr-duty) warns: live firing at 36.2000° N")


def test_every_type_renders_in_every_language(hot: Hotline) -> None:
    tr, il = hot.as_("tr-duty"), hot.as_("il-duty")
    filed = tr.post("/v1/activities", json=activity(volume(36.0, 34.0), title="TR UAV"))
    assert filed.status_code == 201
    crossing = il.post("/v1/activities", json=activity(volume(36.1, 34.1), title="IL CAP")).json()
    [conflict] = crossing["conflicts"]
    query = il.send(
        type="query", subject="Tanker", to=["TR"], text="האם המתדלק פעיל הלילה?", language="he"
    )
    assert query["text"]["dir"] == "rtl"
    sent = [
        query,
        tr.send(
            type="reply",
            thread=query["thread"],
            in_reply_to=query["id"],
            text="Evet, 22:00'ye kadar.",
            language="tr",
        ),
        tr.send(**notice(["IL"])),
        tr.send(**warning(["IL"])),
        il.send(
            type="request_deconfliction",
            priority="URGENT",
            subject="Crossing",
            to=["TR"],
            deconfliction={
                "conflict": conflict["id"],
                "proposal": {
                    "action": "change_altitude",
                    "band": {"lower_m": 7000, "upper_m": 8000},
                },
            },
        ),
        il.send(
            type="request_deconfliction",
            subject="Shift",
            to=["TR"],
            deconfliction={
                "activity": filed.json()["id"],
                "proposal": {"action": "shift_time", "shift_s": 5400},
            },
        ),
        tr.send(type="comms_check", subject="Check", to=["IL"]),
        il.send(
            type="incident_notice",
            priority="URGENT",
            subject="Lock-on",
            to=["TR"],
            incident={
                "kind": "lock_on",
                "occurred_at": iso(T0 - timedelta(minutes=20)),
                "position": {"lat": 33.1, "lon": 35.8},
                "altitude_m": 6100,
            },
            text="Fire-control radar lock on our F-16 for 40 s.",
            language="en",
        ),
    ]
    assert [m["type"] for m in sent] == [
        "query",
        "reply",
        "notice",
        "warning",
        "request_deconfliction",
        "request_deconfliction",
        "comms_check",
        "incident_notice",
    ]
    for message in sent:
        for language in templates.LANGUAGES:
            got = tr.get(f"/v1/hotline/messages/{message['id']}?lang={language}").json()
            body = got["rendered"]["body"]
            assert body and "{" not in body, (message["type"], language)
            assert got["rendered"]["title"] == templates.catalog(language)["type"][message["type"]]
    english = {
        m["type"] + str(i): tr.get(f"/v1/hotline/messages/{m['id']}?lang=en").json()["rendered"]
        for i, m in enumerate(sent)
    }
    assert "conflict #" in english["request_deconfliction4"]["body"]
    assert (
        "change the altitude band to 7,000 m (22,966 ft, FL230)"
        in (english["request_deconfliction4"]["body"])
    )
    assert "move the activity 90 minutes later" in english["request_deconfliction5"]["body"]
    assert "radar lock-on" in english["incident_notice7"]["body"]
    assert english["reply1"]["body"] == f"Reply from TR (tr-duty) to message #{query['id']}."
    thread = tr.get(f"/v1/hotline/threads/{query['thread']}").json()
    assert [m["id"] for m in thread["messages"]] == [query["id"], sent[1]["id"]]
    assert thread["parties"] == ["IL", "TR"]


def test_messages_are_signed_entries_of_the_record(hot: Hotline) -> None:
    before = hot.entries()
    response = hot.as_("tr-duty").post("/v1/hotline/messages", json=notice(["IL"]))
    assert response.status_code == 201
    receipt = json.loads(base64.b64decode(response.headers["Deconfliction-Receipt"]))
    assert receipt["index"] == before  # the officer's statement comes first
    assert hot.entries() == before + 2  # the statement and the log's message.sent fact
    assert hot.entries("message.send") == 1
    [sent] = hot.facts("message.sent")
    assert sent["message"] == response.json()["id"]
    assert sent["to"] == ["IL"] and sent["copied"] == ["AZ"]
    assert sent["deadlines"] == {"IL": "2030-01-01T04:00:00.000000Z"}  # ROUTINE: 4 h
    assert [r["name"] for r in sent["ladders"]["IL"]] == [
        "duty_officer",
        "watch_commander",
        "mediator",
    ]
    assert sent["statement"] == before and sent["by"] == "TR/tr-duty"


def test_only_the_parties_and_the_mediator_see_a_message(hot: Hotline) -> None:
    sent = hot.as_("tr-duty").send(**notice(["IL"]))
    url = f"/v1/hotline/messages/{sent['id']}"
    for officer in ("tr-duty", "tr-watch", "il-duty", "az-med"):
        assert hot.as_(officer).get(url).status_code == 200, officer
    for officer in ("sy-duty", "un-obs"):
        missing = hot.as_(officer).get(url)
        assert missing.status_code == 404, officer
        assert missing.headers["content-type"] == "application/problem+json"
        assert hot.as_(officer).get("/v1/hotline/inbox").json() == []
        assert hot.as_(officer).get("/v1/hotline/threads").json() == []
    assert [m["id"] for m in hot.as_("az-med").get("/v1/hotline/inbox").json()] == [sent["id"]]
    assert hot.as_("tr-duty").get("/v1/hotline/inbox").json() == []  # the sender's inbox
    # The mediator reads every party's ladder on the message; the sender does not.
    il_view = hot.as_("az-med").get(url).json()["receipts"][0]
    assert il_view["ladder"][0]["officers"] == ["il-duty"]
    assert hot.as_("tr-duty").get(url).json()["receipts"][0]["ladder"] is None


def test_a_thread_takes_replies_and_defaults_its_recipients(hot: Hotline) -> None:
    first = hot.as_("tr-duty").send(**notice(["IL", "SY"]))
    thread = first["thread"]
    answer = hot.as_("sy-duty").send(
        type="notice", thread=thread, text="تم الاستلام", language="ar"
    )
    assert answer["to"] == ["IL", "TR"]
    assert answer["text"] == {"content": "تم الاستلام", "language": "ar", "dir": "rtl"}
    threads = hot.as_("il-duty").get("/v1/hotline/threads").json()
    assert [(t["id"], t["parties"]) for t in threads] == [(thread, ["IL", "SY", "TR"])]
    only_tr = hot.as_("il-duty").send(
        type="notice", thread=thread, to=["TR"], text="ok", language="en"
    )
    assert only_tr["to"] == ["TR"]
    seen_by_sy = hot.as_("sy-duty").get(f"/v1/hotline/threads/{thread}").json()["messages"]
    assert only_tr["id"] not in [m["id"] for m in seen_by_sy]
    # The mediator may write into a thread too: to every participant of it.
    mediated = hot.as_("az-med").send(type="notice", thread=thread, text="Noted.", language="en")
    assert mediated["to"] == ["IL", "SY", "TR"] and mediated["rendered"]["language"] == "az"
    assert hot.as_("az-med").post(f"/v1/hotline/messages/{mediated['id']}/read").status_code == 403
