"""Crash test: writes go to a real server that is SIGKILLed at random moments and restarted;
every write the client saw acknowledged is there once, the record verifies, and a hotline
escalation that fell due while the server was down fires after the restart.

The client retries every write whose answer it did not get with the same Idempotency-Key, as
a client of this API must. Bounded: a few kills, under 90 s a database, loopback only.
"""

from __future__ import annotations

import base64
import json
import random
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import PG_URL
from tests.reliability.server import Server, cli, init_area, pg_schema

KILLS = 3  # and one more for the escalation: each restart costs seconds of start-up
WRITERS = 3
SERVER_ENV = {"DECONFLICTION_LEASE_TTL_S": "2"}  # a restarted server leads again quickly


@dataclass
class Acknowledged:
    """What the client was told: per Idempotency-Key, the answer's body and receipt."""

    activities: dict[str, dict[str, Any]] = field(default_factory=dict)
    messages: dict[str, dict[str, Any]] = field(default_factory=dict)
    receipts: dict[str, int] = field(default_factory=dict)  # key: ledger index
    retries: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def activity_body(key: str, n: int) -> dict[str, Any]:
    start = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=1 + n % 24)
    lon, lat = 36.0 + (n % 10) * 0.3, 33.0 + (n // 10 % 10) * 0.3
    return {
        "kind": "air_patrol",
        "title": key,
        "volumes": [
            {
                "footprint": {
                    "type": "Polygon",
                    "coordinates": [
                        [
                            [lon, lat],
                            [lon + 0.1, lat],
                            [lon + 0.1, lat + 0.1],
                            [lon, lat + 0.1],
                            [lon, lat],
                        ]
                    ],
                },
                "altitude": {"lower_m": 3000, "upper_m": 6000, "reference": "W84"},
                "time": {"start": iso(start), "end": iso(start + timedelta(hours=1))},
            }
        ],
    }


def message_body(key: str, priority: str = "ROUTINE") -> dict[str, Any]:
    return {
        "type": "notice",
        "priority": priority,
        "subject": "Crash test",
        "to": ["IL"],
        "text": key,
        "language": "en",
    }


def until_acknowledged(
    client: httpx.Client,
    server: Server,
    token: str,
    path: str,
    body: dict[str, Any],
    key: str,
    seen: Acknowledged,
) -> dict[str, Any]:
    """POST until an answer comes back, always with the same key; the acknowledged body."""
    headers = {"Authorization": f"Bearer {token}", "Idempotency-Key": key}
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            answer = client.post(server.url + path, json=body, headers=headers)
        except httpx.HTTPError:  # refused, reset, cut off mid-answer: the server is down
            answer = None
        if answer is not None and answer.status_code == 201:
            receipt = json.loads(base64.b64decode(answer.headers["Deconfliction-Receipt"]))
            with seen.lock:
                seen.receipts[key] = int(receipt["index"])
            got: dict[str, Any] = answer.json()
            return got
        if answer is not None and answer.status_code < 500:
            raise AssertionError(f"{path} refused: {answer.status_code} {answer.text}")
        with seen.lock:
            seen.retries += 1
        time.sleep(0.1)
    raise AssertionError(f"{path} never acknowledged within 60 s")


def writer(server: Server, token: str, seen: Acknowledged, stop: threading.Event, n0: int) -> None:
    n = n0
    client = httpx.Client(timeout=10)
    while not stop.is_set():
        key = f"crash-{uuid.uuid4()}"
        if n % 2:
            got = until_acknowledged(
                client, server, token, "/v1/activities", activity_body(key, n), key, seen
            )
            with seen.lock:
                seen.activities[key] = got
        else:
            got = until_acknowledged(
                client, server, token, "/v1/hotline/messages", message_body(key), key, seen
            )
            with seen.lock:
                seen.messages[key] = got
        n += WRITERS
    client.close()


def as_officer(server: Server, token: str) -> httpx.Client:
    return httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {token}"})


def crash_and_check(db: str, workdir: Path) -> None:
    tokens = init_area(db, workdir)
    server = Server(db, workdir, SERVER_ENV)
    server.start()
    try:
        seen = Acknowledged()
        stop = threading.Event()
        failures: list[BaseException] = []

        def run(n0: int) -> None:
            try:
                writer(server, tokens["tr-duty"], seen, stop, n0)
            except BaseException as exc:  # reported by the test thread below
                failures.append(exc)

        due = configure_deadline(server, tokens)
        threads = [threading.Thread(target=run, args=(i,)) for i in range(WRITERS)]
        for thread in threads:
            thread.start()
        chance = random.Random(10)
        for _ in range(KILLS):
            time.sleep(chance.uniform(0.3, 1.5))  # a random moment, writes in flight
            server.kill()
            time.sleep(chance.uniform(0.0, 0.5))
            server.start()
        time.sleep(0.5)
        stop.set()
        for thread in threads:
            thread.join(timeout=70)
        assert not failures, failures
        assert server.kills == KILLS

        escalation_fires_after_an_outage(server, tokens, due)

        with as_officer(server, tokens["tr-duty"]) as tr:
            found = {a["title"]: a for a in tr.get("/v1/activities").json()}
        everything_acknowledged_is_there_once(server, tokens, seen, found)
    finally:
        server.stop()

    export = workdir / "export.jsonl"
    export.write_text(cli("ledger", "export", "--db", db), encoding="utf-8")
    trust = workdir / "trust.json"
    trust.write_text(cli("ledger", "trust", "--db", db), encoding="utf-8")
    assert cli("ledger", "verify", str(export), "--trust", str(trust)).startswith("ok:")
    indices = {
        json.loads(line)["index"]
        for line in export.read_text(encoding="utf-8").splitlines()
        if json.loads(line)["type"] == "entry"
    }
    missing = {k: i for k, i in seen.receipts.items() if i not in indices}
    assert not missing, f"acknowledged receipts not in the record: {missing}"
    print(
        f"\ncrash {db.split(':')[0]}: {len(seen.activities)} notifications and "
        f"{len(seen.messages)} messages acknowledged, all found once; {server.kills} kills, "
        f"{seen.retries} retries"
    )


def everything_acknowledged_is_there_once(
    server: Server, tokens: dict[str, str], seen: Acknowledged, found: dict[str, Any]
) -> None:
    assert len(seen.activities) > 0 and len(seen.messages) > 0
    # Every notification the client saw acknowledged, once, whole: its volume with it.
    for key, acknowledged in seen.activities.items():
        assert key in found, f"acknowledged notification {key} lost"
        assert found[key]["id"] == acknowledged["id"]
        assert len(found[key]["volumes"]) == 1
    assert set(found) == set(seen.activities), "a notification was written that nobody saw"
    with as_officer(server, tokens["il-duty"]) as il:
        inbox = il.get("/v1/hotline/inbox", params={"limit": 1000}).json()
    texts = [m["text"]["content"] for m in inbox if m["text"]["content"].startswith("crash-")]
    assert len(texts) == len(set(texts)), "a message was written twice"
    assert set(texts) == set(seen.messages), "an acknowledged message is missing"


def configure_deadline(server: Server, tokens: dict[str, str]) -> int:
    """FLASH messages between TR and IL must be acknowledged within 10 s; those seconds."""
    with as_officer(server, tokens["tr-duty"]) as tr:
        channel = tr.get("/v1/hotline/channels/IL-TR")
        assert channel.status_code == 200, channel.text
        tr.put(
            "/v1/hotline/channels/IL-TR",
            json={"deadlines": {"FLASH": 10}},
            headers={"If-Match": channel.headers["ETag"]},
        ).raise_for_status()
    return 10


def escalation_fires_after_an_outage(server: Server, tokens: dict[str, str], due_s: int) -> None:
    """A FLASH message; the server dies at once and comes back only after its deadline."""
    with as_officer(server, tokens["tr-duty"]) as tr:
        sent = tr.post("/v1/hotline/messages", json=message_body("flash", "FLASH"))
        assert sent.status_code == 201, sent.text
    sent_at = time.monotonic()
    server.kill()
    time.sleep(max(0.0, sent_at + due_s + 0.5 - time.monotonic()))
    server.start()
    deadline = time.monotonic() + 30
    with as_officer(server, tokens["tr-duty"]) as tr:
        while time.monotonic() < deadline:
            got = tr.get(f"/v1/hotline/messages/{sent.json()['id']}").json()
            [il] = [r for r in got["receipts"] if r["party"] == "IL"]
            if il["escalated_at"] is not None:
                assert il["rung"] == 1
                return
            time.sleep(0.2)
    raise AssertionError("the escalation due during the outage did not fire")


def test_crash_on_sqlite(tmp_path: Path) -> None:
    crash_and_check(f"sqlite:///{tmp_path / 'crash.db'}", tmp_path)


@pytest.fixture
def pg_db(pg_url: str) -> Iterator[str]:
    """A schema of its own (the server migrates it), on the server `pg_url` proved reachable."""
    with pg_schema(PG_URL) as url:
        yield url


@pytest.mark.postgres
def test_crash_on_postgresql(pg_db: str, tmp_path: Path) -> None:
    crash_and_check(pg_db, tmp_path)
