"""The UI in a real browser against a real server: two officers of two parties at once."""

from __future__ import annotations

import base64
import math
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Page
from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.ledger import merkle
from tests.web.conftest import RECORD_REFUSALS, Site, log_in

LANGUAGES = ["en", "tr", "he", "ar", "az"]
TABS = ["hotline", "conflicts", "notify", "alerts", "incidents", "agreements", "record", "officers"]
# Panels that fetch when opened: what shows they are filled in.
LOADED_ON_OPEN = {
    "incidents": "#incidents li",
    "agreements": "#agreements li",
    "record": "#consistency[data-state]",
    "officers": "#officers li",
}


def click_map(page: Page, lon: float, lat: float) -> None:
    """Click the map where a place is, as a person would."""
    x, y = page.evaluate("([lon, lat]) => window.dcf.toScreen(lon, lat)", [lon, lat])
    page.mouse.click(x, y)


def minute(iso: str, up: bool = False) -> str:
    """A UTC time as the UI's datetime-local input takes it (whole minutes, rounded up or down)."""
    at = datetime.fromisoformat(iso.replace("Z", "+00:00"))
    whole = at.replace(second=0, microsecond=0)
    if up and whole < at:
        whole += timedelta(minutes=1)
    return whole.strftime("%Y-%m-%dT%H:%M")


def a_tr_volume(site: Site) -> dict[str, Any]:
    """A volume of a TR air activity on the visible map, later today."""
    activities = httpx.get(
        f"{site.url}/v1/activities?party=TR",
        headers={"Authorization": f"Bearer {site.tokens['tr-duty']}"},
    ).json()
    for activity in activities:
        volume = activity["volumes"][0]
        if activity["kind"] == "uav" and volume["footprint"]:
            return dict(volume)
    raise AssertionError("the demo has no TR UAV activity with a footprint")


def test_il_notifies_across_tr_and_tr_sees_it_live_and_acknowledges_flash(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    tr = log_in(browser, site, "tr-duty")
    il = log_in(browser, site, "il-duty")
    # The language follows each officer's party: Turkish for TR, Hebrew (right to left) for IL.
    assert tr.page.evaluate("document.documentElement.lang") == "tr"
    assert il.page.evaluate("[document.documentElement.lang, document.documentElement.dir]") == [
        "he",
        "rtl",
    ]
    tr.page.screenshot(path=artifacts / "tr-map-hotline.png")

    # IL draws a square across a TR UAV transit, in its band and window, and checks it first.
    volume = a_tr_volume(site)
    ring = volume["footprint"]["coordinates"][0]
    lon, lat = ring[len(ring) // 4]
    d = 0.12
    il.page.click("#tab-notify")
    il.page.click("#draw-modes [data-mode=polygon]")
    for dx, dy in ((-d, -d), (d, -d), (d, d), (-d, d)):
        click_map(il.page, lon + dx, lat + dy)
    il.page.fill("#act-title", "IL browser-test patrol")
    il.page.select_option("#act-kind", "air_patrol")
    il.page.fill("#act-lower", str(math.floor(volume["altitude"]["lower_m"])))
    il.page.fill("#act-upper", str(math.ceil(volume["altitude"]["upper_m"])))
    il.page.fill("#act-start", minute(volume["time"]["start"]))
    il.page.fill("#act-end", minute(volume["time"]["end"], up=True))
    il.page.click("#notify-check")
    il.page.wait_for_selector(".check-summary")
    assert il.page.locator("#notify-result li.conflict.proposed").count() >= 1
    assert il.page.locator("#layer-draft path.overlap.proposed").count() >= 1
    il.page.screenshot(path=artifacts / "il-notify-check.png")
    il.page.click("#notify-send")
    notified = il.page.wait_for_selector("#notify-result .notified")
    assert notified is not None
    activity = int(notified.get_attribute("data-activity-id") or 0)
    assert activity > 0

    # TR's map and conflict list show it, without a reload (pushed by the stream).
    tr.page.wait_for_selector(
        f'#layer-activities [data-activity-id="{activity}"]', state="attached"
    )
    conflicts = httpx.get(
        f"{site.url}/v1/conflicts?activity={activity}",
        headers={"Authorization": f"Bearer {site.tokens['tr-duty']}"},
    ).json()
    assert conflicts, "the server found no conflict for the new activity"
    conflict = conflicts[0]["id"]
    tr.page.wait_for_selector(f'#layer-conflicts [data-conflict-id="{conflict}"]', state="attached")
    tr.page.click("#tab-conflicts")
    item = tr.page.wait_for_selector(f'#conflicts li[data-conflict-id="{conflict}"]')
    assert item is not None and "IL browser-test patrol" in item.inner_text()
    tr.page.screenshot(path=artifacts / "tr-conflicts.png")
    tr.page.click(f'#conflicts li[data-conflict-id="{conflict}"] button.ack')
    tr.page.wait_for_selector(f'#conflicts li[data-conflict-id="{conflict}"]:not(:has(button.ack))')

    # IL sends a FLASH message; TR sees it arrive, with its countdown, and acknowledges it.
    il.page.click("#tab-hotline")
    il.page.select_option("#msg-to", "TR")
    il.page.select_option("#msg-priority", "FLASH")
    il.page.fill("#msg-subject", "CAP near T4")
    il.page.fill("#msg-text", "Confirm you hold the UAV until our patrol leaves")
    il.page.click("#compose button[type=submit]")
    il.page.wait_for_selector('#thread-view .receipt[data-party="TR"]')
    flash = tr.page.locator("#inbox li.message.priority-FLASH", has_text="Confirm you hold the UAV")
    tr.page.click("#tab-hotline")
    flash.wait_for()
    assert flash.locator(".countdown").inner_text().strip() != ""
    tr.page.screenshot(path=artifacts / "tr-flash.png")
    flash.locator("button.ack").click()

    # IL sees TR's receipt, live.
    il.page.wait_for_selector('#thread-view .receipt[data-party="TR"][data-stage="acknowledged"]')
    il.page.screenshot(path=artifacts / "il-receipt.png")

    # TR's browser checks that the record it saw at login is a prefix of the grown one.
    tr.page.click("#tab-record")
    tr.page.click("#verify")
    tr.page.wait_for_selector("#consistency[data-state=verified]")
    tr.page.screenshot(path=artifacts / "tr-record.png")
    assert tr.errors == [] and il.errors == []


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_view_is_translated_and_he_ar_are_right_to_left(
    browser: Browser, site: Site, artifacts: Path, language: str
) -> None:
    screen = log_in(browser, site, "tr-duty", language)
    page = screen.page
    assert page.text_content("#who") == "tr-duty · TR"
    rtl = language in ("he", "ar")
    assert page.evaluate("document.documentElement.dir") == ("rtl" if rtl else "ltr")
    assert page.evaluate("getComputedStyle(document.body).direction") == ("rtl" if rtl else "ltr")
    # Right to left puts the panels on the left of the map, as the layout is mirrored.
    panels = page.locator("#panels").bounding_box()
    map_box = page.locator("#map").bounding_box()
    assert panels is not None and map_box is not None
    assert (panels["x"] < map_box["x"]) is rtl
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    for tab in TABS:
        page.click(f"#tab-{tab}")
        if tab in LOADED_ON_OPEN:
            page.wait_for_selector(LOADED_ON_OPEN[tab])
        text = page.evaluate("document.body.innerText")
        assert "⟦" not in text, f"{language}/{tab}: untranslated {text[text.index('⟦') :][:60]}"
        if language == "en" or tab in ("hotline", "notify"):
            page.screenshot(path=artifacts / f"{language}-{tab}.png")
    assert screen.errors == []
    assert screen.refused_by_policy() == []  # the page keeps to its own policy


def test_the_page_refuses_injected_script_and_style(browser: Browser, site: Site) -> None:
    # What a message text would do if it ever reached the page as markup.
    screen = log_in(browser, site, "tr-duty")
    page = screen.page
    assert page.evaluate("window.dcfRefused") == []
    page.evaluate(
        """() => {
          const box = document.createElement("div");
          box.innerHTML = '<img src="http://198.51.100.7/x.png" onerror="window.ran = 1">'
            + '<span style="color: red">x</span>';
          document.body.append(box);
          const script = document.createElement("script");
          script.textContent = "window.ran = 2";
          document.body.append(script);
        }"""
    )
    page.wait_for_function("window.dcfRefused.length >= 3")
    assert page.evaluate("window.ran") is None
    refused = {line.split(" ")[0] for line in screen.refused_by_policy()}
    assert {"img-src", "script-src-attr", "style-src-attr", "script-src-elem"} <= refused
    headers = httpx.get(site.url + "/").headers
    assert "frame-ancestors 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"


def test_browser_consistency_check_agrees_with_the_ledger(browser: Browser, site: Site) -> None:
    """The page's SubtleCrypto verifier against proofs made by the Python ledger, and tampered."""
    # The verifier is a module of the page: no need to log in to load it.
    context = browser.new_context()
    page = context.new_page()
    page.goto(site.url + "/")
    leaves = [merkle.leaf_hash(f"entry {i}".encode()) for i in range(40)]
    store = merkle.NodeStore()
    state = merkle.TreeState()
    roots = [merkle.EMPTY_ROOT]
    for leaf in leaves:
        store.put(state.append(leaf))
        roots.append(state.root())
    cases: list[tuple[int, int, bytes, bytes, list[str], bool]] = []
    for old in range(1, 41, 3):
        for new in range(old, 41, 5):
            proof = merkle.consistency_proof(old, new, store.get)
            b64 = [base64.b64encode(p).decode() for p in proof]
            cases.append((old, new, roots[old], roots[new], b64, True))
            if proof:
                bad = bytearray(proof[0])
                bad[0] ^= 1
                tampered = [base64.b64encode(bytes(bad)).decode(), *b64[1:]]
                cases.append((old, new, roots[old], roots[new], tampered, False))
            if old < new:
                cases.append((old, new, roots[old], roots[new - 1], b64, False))
    payload = [
        [o, n, base64.b64encode(a).decode(), base64.b64encode(b).decode(), p, want]
        for o, n, a, b, p, want in cases
    ]
    got = page.evaluate(
        """async (cases) => {
            const m = await import('/ui/merkle.js');
            const out = [];
            for (const [o, n, a, b, p] of cases)
                out.push(await m.verifyConsistency(
                    o, n, m.fromBase64(a), m.fromBase64(b), p.map(m.fromBase64)));
            return out;
        }""",
        payload,
    )
    assert got == [c[5] for c in cases]
    context.close()


def test_incidents_and_agreements_panels_show_what_the_api_lists(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    page = log_in(browser, site, "tr-duty", "en").page
    auth = {"Authorization": f"Bearer {site.tokens['tr-duty']}"}
    listed = {
        "incident": httpx.get(f"{site.url}/v1/incidents", headers=auth).json(),
        "round": httpx.get(f"{site.url}/v1/agreements/rounds", headers=auth).json(),
        "commitment": httpx.get(f"{site.url}/v1/agreements/commitments", headers=auth).json(),
    }
    page.click("#tab-incidents")
    page.wait_for_selector("#incidents li")
    page.click("#tab-agreements")
    page.wait_for_selector("#agreements li")
    for name, items in listed.items():
        shown = page.locator(f"[data-{name}-id]").evaluate_all(
            f"nodes => nodes.map(n => Number(n.getAttribute('data-{name}-id')))"
        )
        assert sorted(shown) == sorted(item["id"] for item in items), name
    page.screenshot(path=artifacts / "en-agreements.png")


def test_a_tablet_gets_the_panels_under_the_map_and_draws_by_keyboard(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    size = (768, 1024)
    page = log_in(browser, site, "il-duty", "en", size=size).page
    # Nothing sticks out sideways, and the panels go under the map.
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    map_box = page.locator("#map").bounding_box()
    panels = page.locator("#panels").bounding_box()
    assert map_box is not None and panels is not None
    assert panels["y"] >= map_box["y"] + map_box["height"] - 1
    # Keyboard only: the Notify tab, the Circle tool, then Enter on the map twice (the centre,
    # then the edge after panning with an arrow key) gives a circle.
    page.focus("#tab-hotline")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("ArrowRight")
    assert page.evaluate("document.activeElement.id") == "tab-notify"
    page.focus("#draw-modes [data-mode=circle]")
    page.keyboard.press("Enter")
    page.focus("#map")
    page.keyboard.press("Enter")
    page.keyboard.press("ArrowRight")
    page.keyboard.press("Enter")
    assert page.locator("#layer-draft path.draft").count() == 1
    assert "km" in page.inner_text("#draw-state")
    page.screenshot(path=artifacts / f"keyboard-{size[0]}x{size[1]}.png")


def test_a_revoked_token_signs_the_officer_out_saying_why(browser: Browser, site: Site) -> None:
    screen = log_in(browser, site, "tr-watch")  # no other test logs in as tr-watch
    revoked = CliRunner().invoke(app, ["tokens", "revoke", "tr-watch", "--db", site.db])
    assert revoked.exit_code == 0, revoked.output
    page = screen.page
    page.wait_for_selector("#login:not([hidden])", timeout=15_000)
    assert page.is_hidden("#app")
    assert page.text_content("#login-error") == "Signed out: token revoked"
    assert page.evaluate("sessionStorage.getItem('dcf.token')") is None
    assert screen.errors == []


def test_a_commander_cuts_off_an_officers_devices_from_the_officers_tab(
    browser: Browser, site: Site
) -> None:
    # il-watch and il-hq log in nowhere else: revoking il-hq's tokens leaves the other tests be.
    def buttons(page: Page) -> dict[str, bool]:
        rows = page.locator("#officers li[data-officer-id]")
        return {
            str(row.get_attribute("data-officer-id")): row.locator("button.revoke").count() == 1
            for row in rows.all()
        }

    duty = log_in(browser, site, "il-duty", language="en")
    duty.page.click("#tab-officers")
    duty.page.wait_for_selector("#officers li[data-officer-id]")
    # A duty officer may cut off only their own devices; and sees only their own party.
    assert buttons(duty.page) == {"il-duty": True, "il-hq": False, "il-watch": False}

    screen = log_in(browser, site, "il-watch", language="en")
    page = screen.page
    page.click("#tab-officers")
    page.wait_for_selector("#officers li[data-officer-id]")
    assert buttons(page) == {"il-duty": True, "il-hq": True, "il-watch": True}
    asked: list[str] = []

    def answer(dialog: Any) -> None:
        asked.append(dialog.message)
        dialog.accept()

    page.on("dialog", answer)
    page.click("#officers li[data-officer-id=il-hq] button.revoke")
    page.wait_for_selector("#officers li[data-officer-id=il-hq] >> text=Active tokens: 0")
    name = officer_name(page, "il-hq")
    assert asked == [
        f"Revoke every token of {name}? Every device logged in as them is signed out at once."
    ]
    assert page.text_content("#officers-result") == f"{name}: tokens revoked: 1"
    assert buttons(page)["il-hq"] is False
    refused = httpx.get(
        site.url + "/v1/me", headers={"Authorization": f"Bearer {site.tokens['il-hq']}"}
    )
    assert refused.status_code == 401
    assert screen.errors == [] and duty.errors == []


def officer_name(page: Page, officer: str) -> str:
    return str(page.text_content(f"#officers li[data-officer-id={officer}] strong"))


def test_the_api_docs_render_from_the_package_alone(browser: Browser, site: Site) -> None:
    # An operations centre may have no internet: /docs asks nothing of another origin, and its
    # policy refuses nothing it needs (the bundle, its inline start, the OpenAPI document).
    page = browser.new_page()
    asked: list[str] = []
    page.on("request", lambda r: asked.append(r.url))
    page.add_init_script(RECORD_REFUSALS)
    page.goto(site.url + "/docs")
    page.wait_for_selector(".opblock-summary-path[data-path='/v1/activities']")
    assert page.evaluate("window.dcfRefused") == []
    assert asked and all(url.startswith(site.url) for url in asked), asked
    page.close()


def test_a_waiting_flash_is_in_the_header_the_title_and_sounds_until_acknowledged(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    # Other tests and the demo's live alerts may leave FLASH messages of their own waiting for
    # IL, at any moment: the count shown is read, not assumed.
    screen = log_in(browser, site, "il-duty", language="en")
    page = screen.page
    box = page.locator("#attention")
    message = tr_tells_il(
        site,
        "bell",
        "Hold at FL240",
        "Hold your patrol north of T4 until we confirm",
        priority="FLASH",
    )
    page.wait_for_selector(f"#inbox li[data-message-id='{message}']", state="attached")
    flashes = box.get_attribute("data-flash")
    assert box.is_visible() and int(flashes or 0) >= 1
    assert page.text_content("#attention-text") == f"Flash — waiting for acknowledgement: {flashes}"
    assert "Flash — Deconfliction" in page.title()
    # The inbox puts what is most pressing first.
    assert "priority-FLASH" in str(page.locator("#inbox li.message").first.get_attribute("class"))
    page.screenshot(path=artifacts / "il-attention.png")
    # The alarm sounds at once and again every 5 s while it waits (login was a click: unlocked).
    assert page.get_attribute("#sound", "data-state") == "on"
    page.wait_for_function("window.dcf.sound.played >= 2", timeout=15_000)

    page.click("#tab-record")  # elsewhere; Show brings the message into view, Acknowledge first
    page.click("#attention-show")
    item = page.locator(f"#inbox li[data-message-id='{message}']")
    assert item.is_visible()
    item.locator("button.ack").click()
    page.wait_for_selector(f"#inbox li[data-message-id='{message}']", state="detached")
    # Once no FLASH waits (the others acknowledged too, over the API), the alarm stops; URGENT
    # messages may still wait, in amber, silent.
    deadline = time.monotonic() + 20
    while box.get_attribute("data-flash") != "0" and time.monotonic() < deadline:
        for waiting in pending_flashes(site, "il-duty"):
            httpx.post(
                f"{site.url}/v1/hotline/messages/{waiting}/acknowledge",
                headers={"Authorization": f"Bearer {site.tokens['il-duty']}"},
            )
        page.wait_for_timeout(500)
    assert box.get_attribute("data-flash") == "0"
    assert page.evaluate("window.dcf.sound.alarm") is None
    assert box.get_attribute("class") != "priority-FLASH"
    assert "Flash" not in page.title()

    # Sound off is remembered; the header still says what waits.
    page.click("#sound")
    assert page.get_attribute("#sound", "data-state") == "off"
    assert page.evaluate("localStorage.getItem('dcf.sound')") == "off"
    assert screen.errors == [] and screen.refused_by_policy() == []


def pending_flashes(site: Site, officer: str) -> list[int]:
    inbox = httpx.get(
        f"{site.url}/v1/hotline/inbox?pending=true&limit=200",
        headers={"Authorization": f"Bearer {site.tokens[officer]}"},
    ).json()
    return [int(m["id"]) for m in inbox if m["priority"] == "FLASH"]


def test_a_channel_not_open_shows_in_the_header_and_resumes_from_the_hotline_tab(
    browser: Browser, site: Site, artifacts: Path
) -> None:
    # The AZ-IL channel: no other test sends over it.
    screen = log_in(browser, site, "il-duty", language="en")
    page = screen.page
    badge = page.locator("#channel-alarm")
    assert badge.is_hidden()
    suspended = httpx.post(
        f"{site.url}/v1/hotline/channels/AZ-IL/suspend",
        headers={"Authorization": f"Bearer {site.tokens['il-duty']}", "Idempotency-Key": "cut"},
        json={"reason": "radio room moving"},
    )
    assert suspended.status_code == 200, suspended.text
    page.wait_for_selector("#channel-alarm:not([hidden])")  # pushed: no reload
    assert badge.text_content() == "Hotline AZ–IL: suspended"
    assert badge.get_attribute("data-state") == "suspended"
    item = page.locator("#channels li[data-channel-id='AZ-IL']")
    assert item.get_attribute("data-state") == "suspended"
    assert "radio room moving" in item.inner_text()
    page.screenshot(path=artifacts / "il-channel-suspended.png")
    item.locator("button.resume").click()
    page.wait_for_selector("#channels li[data-channel-id='AZ-IL'][data-state='open']")
    assert badge.is_hidden()
    assert screen.errors == [] and screen.refused_by_policy() == []


def test_a_lost_stream_turns_red_chimes_and_resumes_without_losing_a_message(
    browser: Browser, site: Site
) -> None:
    screen = log_in(browser, site, "il-duty", language="en")
    page = screen.page
    played = int(page.evaluate("window.dcf.sound.played"))
    # The connection drops (a proxy restart) before any event came since login, so there is no
    # last id to resume from; a message is sent while it is down.
    page.evaluate(
        """() => {
          window.dcf.state.lastEvent = null;
          const s = window.dcf.state.socket;
          s.onclose();
          s.onclose = null;
          s.close();
        }"""
    )
    assert page.get_attribute("#stream-state", "data-state") == "reconnecting"
    assert int(page.evaluate("window.dcf.sound.played")) == played + 1
    message = tr_tells_il(site, "gap", "While you were away", "Sent while your stream was down")
    page.wait_for_selector("#stream-state[data-state=live]", timeout=15_000)
    # Read afresh as the stream opens: there at once, not at some later refresh.
    page.wait_for_selector(f"#inbox li[data-message-id='{message}']", timeout=3_000)
    assert screen.errors == []


def test_a_steady_flow_of_events_does_not_hold_back_the_inbox(browser: Browser, site: Site) -> None:
    # A busy channel: an event every 100 ms for 6 s (receipts, escalations). Each asks for the
    # inbox to be read again; a new message must still show within the second, not after the
    # flow stops.
    screen = log_in(browser, site, "il-duty", language="en")
    page = screen.page
    page.evaluate(
        """() => {
          let n = 0;
          const id = window.dcf.state.lastEvent;
          const flow = setInterval(() => {
            window.dcf.onEvent({ id, kind: "message.read", payload: {} });
            if (++n === 60) clearInterval(flow);
          }, 100);
        }"""
    )
    page.wait_for_timeout(1000)
    message = tr_tells_il(site, "busy", "Busy evening", "Sent while events kept coming")
    page.wait_for_selector(f"#inbox li[data-message-id='{message}']", timeout=2_000)
    assert screen.errors == []


def tr_tells_il(site: Site, key: str, subject: str, text: str, priority: str = "ROUTINE") -> int:
    """TR's duty officer sends IL a notice over the API; its id."""
    sent = httpx.post(
        site.url + "/v1/hotline/messages",
        headers={"Authorization": f"Bearer {site.tokens['tr-duty']}", "Idempotency-Key": key},
        json={
            "type": "notice",
            "subject": subject,
            "to": ["IL"],
            "text": text,
            "language": "en",
            "priority": priority,
        },
    )
    assert sent.status_code == 201, sent.text
    return int(sent.json()["id"])
