"""The tactical loop over the picture and the zones: alerts raised once, updated, cleared after
three cycles out of conflict without flapping, zone entries honouring the altitude band, facts
in the record, and a restart that resumes instead of raising again."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, select

from deconfliction.store import tables as t
from deconfliction.store.db import transaction
from deconfliction.tracks import service
from deconfliction.tracks.loop import LoopConfig, TacticalLoop
from deconfliction.tracks.models import AlertOut
from deconfliction.tracks.picture import TrackPicture, TrackState, reckoned
from deconfliction.tracks.service import flush_picture, load_picture
from tests.conftest import FakeClock
from tests.tracks.conftest import declare_zone, state


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[int, str]] = []
        self.in_tx: list[tuple[int, str]] = []

    def __call__(self, alert: AlertOut, event: str) -> None:
        self.events.append((alert.id, event))

    def tx(self, conn: Connection, alert: AlertOut, event: str) -> None:
        assert conn.in_transaction()
        self.in_tx.append((alert.id, event))


def _report(picture: TrackPicture, states: list[TrackState], now: Any) -> list[TrackState]:
    """Each track reports where it is now (1 Hz reports)."""
    fresh = [
        replace(reckoned(s, now), time=now, stale_at=now + timedelta(seconds=30)) for s in states
    ]
    for s in fresh:
        assert picture.update(s) is None
    return fresh


def _facts(engine: Engine) -> list[tuple[str, str]]:
    with transaction(engine, write=False) as conn:
        rows = conn.execute(
            select(t.entries.c.kind, t.entries.c.subject)
            .where(t.entries.c.kind.startswith("alert."))
            .order_by(t.entries.c.idx)
        ).all()
    return [(r.kind, r.subject) for r in rows]


def test_a_converging_pair_is_raised_once_updated_and_cleared(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    seen = Recorder()
    loop = TacticalLoop(engine, picture, on_alert=seen, on_alert_in_tx=seen.tx)
    tracks = [
        state("IL", "sufa", 34.8, 38.3, 6000, 200, 90, clock.now),
        state("TR", "akinci", 34.8, 38.9, 6100, 200, 270, clock.now),
    ]
    for _ in range(6):
        tracks = _report(picture, tracks, clock.now)
        result = loop.step(clock.now)
        assert result.tracks == 2
        clock.advance(seconds=1)
    ((alert_id, _),) = seen.events[:1]
    assert seen.events == [(alert_id, "raised"), (alert_id, "updated")]
    assert seen.in_tx == seen.events
    with transaction(engine, write=False) as conn:
        row = conn.execute(select(t.alerts)).one()
    assert (row.kind, row.a, row.b, row.parties, row.state) == (
        "pair",
        "IL/sufa",
        "TR/akinci",
        ["IL", "TR"],
        "updated",
    )
    assert 90 < row.t_in_s < 120 and 0 <= row.dcpa_m < 9260
    # Both turn away: out of conflict from now; cleared on the third cycle without it.
    tracks = [replace(s, course_deg=(s.course_deg + 180) % 360) for s in tracks]
    for cycle in range(3):
        tracks = _report(picture, tracks, clock.now)
        loop.step(clock.now)
        clock.advance(seconds=1)
        expected = 2 if cycle < 2 else 3
        assert len(seen.events) == expected
    assert seen.events[-1] == (alert_id, "cleared")
    assert _facts(engine) == [
        ("alert.raised", f"alert/{alert_id}"),
        ("alert.cleared", f"alert/{alert_id}"),
    ]
    with transaction(engine, write=False) as conn:
        row = conn.execute(select(t.alerts)).one()
    assert row.state == "cleared" and row.cleared_at is not None


def test_a_pair_hovering_at_the_boundary_does_not_flap(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    seen = Recorder()
    loop = TacticalLoop(engine, picture, LoopConfig(update_every=100), on_alert=seen)
    # Flying together 5 km apart; the vertical gap goes 200 m (inside 304.8 m) / 400 m (outside).
    pattern = [True, False, False, True, False, True, False, False, True, True, False]
    for inside in pattern:
        gap = 200.0 if inside else 400.0
        _report(
            picture,
            [
                state("IL", "a", 34.8, 38.9, 6000, 150, 0, clock.now),
                state("TR", "b", 34.8, 38.955, 6000 + gap, 150, 0, clock.now),
            ],
            clock.now,
        )
        loop.step(clock.now)
        clock.advance(seconds=1)
    assert [e for _, e in seen.events] == ["raised"]
    for _ in range(3):
        _report(
            picture,
            [
                state("IL", "a", 34.8, 38.9, 6000, 150, 0, clock.now),
                state("TR", "b", 34.8, 38.955, 6400, 150, 0, clock.now),
            ],
            clock.now,
        )
        loop.step(clock.now)
        clock.advance(seconds=1)
    assert [e for _, e in seen.events] == ["raised", "cleared"]


def _box(lon0: float, lat0: float, lon1: float, lat1: float) -> dict[str, Any]:
    ring = [[lon0, lat0], [lon1, lat0], [lon1, lat1], [lon0, lat1], [lon0, lat0]]
    return {"type": "Polygon", "coordinates": [ring]}


def _zone(name: str, rule: str, box: dict[str, Any], top: float, now: Any) -> dict[str, Any]:
    return {
        "name": name,
        "rule": rule,
        "lead_time_s": 3600 if rule == "notify" else None,
        "footprint": box,
        "altitude": {"lower_m": 0, "upper_m": top, "reference": "MSL"},
        "valid_from": now.isoformat(),
    }


def test_zone_entry_honours_the_altitude_band_and_the_owner(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    box = _box(38.8, 34.7, 39.0, 34.9)
    no_entry = declare_zone(
        engine, tokens, "il-duty", _zone("South", "no_entry", box, 3000, clock.now), clock.now
    )
    declare_zone(
        engine,
        tokens,
        "il-duty",
        _zone("Notify", "notify", _box(38.0, 34.7, 38.2, 34.9), 20000, clock.now),
        clock.now,
    )
    caution = declare_zone(
        engine,
        tokens,
        "tr-duty",
        _zone("Caution", "caution", _box(39.3, 34.7, 39.5, 34.9), 20000, clock.now),
        clock.now,
    )
    picture = TrackPicture()
    seen = Recorder()
    loop = TacticalLoop(engine, picture, on_alert=seen)
    _report(
        picture,
        [
            # West of the no-entry box, flying into it: above its band, in it, descending into it.
            state("TR", "high", 34.80, 38.6, 5000, 100, 90, clock.now),
            state("TR", "low", 34.75, 38.6, 2000, 100, 90, clock.now),
            state("TR", "descending", 34.85, 38.6, 3500, 100, 90, clock.now, vs_mps=-10),
            state("TR", "climbing-away", 34.72, 38.6, 2900, 100, 90, clock.now, vs_mps=20),
            # The owner's own track, and a track into the notify zone: no alert.
            state("IL", "own", 34.78, 38.6, 2000, 100, 90, clock.now),
            state("TR", "notify", 34.8, 37.9, 2000, 100, 90, clock.now),
            # An IL track into TR's caution zone.
            state("IL", "into-caution", 34.8, 39.2, 8000, 100, 90, clock.now),
        ],
        clock.now,
    )
    result = loop.step(clock.now)
    found = sorted((f.a, f.zone) for f in result.findings if f.kind == "zone")
    assert found == [
        ("IL/into-caution", caution),
        ("TR/descending", no_entry),
        ("TR/low", no_entry),
    ]
    by_track = {f.a: f for f in result.findings}
    # Descending at 10 m/s from 3,500 m: in the band after 50 s, at the box's edge later.
    assert by_track["TR/descending"].t_in_s > 50
    assert by_track["TR/low"].parties == ["IL", "TR"]
    # Every finding (the zone entries, and pairs among these close tracks) is raised once.
    assert [e for _, e in seen.events] == ["raised"] * len(result.findings)


def test_a_restart_resumes_open_alerts_and_the_picture(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    picture = TrackPicture()
    seen = Recorder()
    loop = TacticalLoop(engine, picture, on_alert=seen)
    tracks = [
        state("IL", "a", 34.8, 38.3, 6000, 200, 90, clock.now),
        state("TR", "b", 34.8, 38.9, 6000, 200, 270, clock.now),
    ]
    _report(picture, tracks, clock.now)
    loop.step(clock.now)  # raises, and writes the picture to track_states
    assert [e for _, e in seen.events] == ["raised"]
    clock.advance(seconds=1)

    restarted = TrackPicture()
    assert load_picture(engine, restarted, clock.now) == 2
    again = Recorder()
    loop2 = TacticalLoop(engine, restarted, on_alert=again)
    result = loop2.step(clock.now)
    assert len(result.findings) == 1 and again.events == []
    # The tracks stop reporting: stale after 30 s, then three cycles without them.
    clock.advance(seconds=40)
    for _ in range(3):
        loop2.step(clock.now)
        clock.advance(seconds=1)
    assert [e for _, e in again.events] == ["cleared"]
    with transaction(engine, write=False) as conn:
        assert conn.execute(select(t.track_states)).all() == []


def test_a_failing_hook_does_not_stop_the_loop(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    def broken(alert: AlertOut, event: str) -> None:
        raise RuntimeError("push failed")

    picture = TrackPicture()
    loop = TacticalLoop(engine, picture, on_alert=broken)
    _report(
        picture,
        [
            state("IL", "a", 34.8, 38.3, 6000, 200, 90, clock.now),
            state("TR", "b", 34.8, 38.9, 6000, 200, 270, clock.now),
        ],
        clock.now,
    )
    assert len(loop.step(clock.now).events) == 1
    clock.advance(seconds=1)
    assert loop.step(clock.now).events == []


def test_an_early_cycle_looks_only_at_the_tracks_that_reported(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    box = _box(38.8, 34.7, 39.0, 34.9)
    zone = declare_zone(
        engine, tokens, "il-duty", _zone("South", "no_entry", box, 3000, clock.now), clock.now
    )
    picture = TrackPicture()
    seen = Recorder()
    loop = TacticalLoop(engine, picture, on_alert=seen)
    background = [state("IL", "far", 33.0, 36.0, 9000, 200, 0, clock.now)]
    _report(picture, background, clock.now)
    loop.step(clock.now)  # counted: the whole picture, nothing to raise
    assert seen.events == [] and picture.take_reported() == set()
    # A converging pair and a track into the zone enter the picture but are taken off the
    # reported set: an early cycle does not look at them ...
    clock.advance(seconds=0.2)
    pair = [
        state("IL", "sufa", 34.8, 38.3, 6000, 200, 90, clock.now),
        state("TR", "akinci", 34.8, 38.9, 6100, 200, 270, clock.now),
    ]
    intruder = [state("TR", "low", 34.75, 38.6, 2000, 100, 90, clock.now)]
    _report(picture, pair + intruder, clock.now)
    picture.take_reported()
    assert loop.step(clock.now, counted=False).findings == []
    # ... until one of the pair reports: the pair is found from that side alone, the
    # intruder (silent) is not.
    clock.advance(seconds=0.2)
    _report(picture, pair[1:], clock.now)
    result = loop.step(clock.now, counted=False)
    assert [(f.kind, f.a, f.b) for f in result.findings] == [("pair", "IL/sufa", "TR/akinci")]
    assert [e for _, e in seen.events] == ["raised"]
    # The intruder reports: its zone entry (and no other pair) comes from the next early cycle.
    clock.advance(seconds=0.2)
    _report(picture, intruder, clock.now)
    found = loop.step(clock.now, counted=False).findings
    assert [(f.kind, f.a, f.zone) for f in found if f.kind == "zone"] == [("zone", "TR/low", zone)]
    # A counted cycle sees everything again, and the alert held by the early cycle stays one.
    clock.advance(seconds=0.4)
    full = loop.step(clock.now).findings
    assert {(f.kind, f.a) for f in full} >= {("pair", "IL/sufa"), ("zone", "TR/low")}
    with transaction(engine, write=False) as conn:
        kinds = sorted(r.kind for r in conn.execute(select(t.alerts)))
    assert kinds.count("pair") == sum(1 for f in full if f.kind == "pair")


def test_the_picture_is_written_in_pieces_and_a_failed_piece_is_retried(
    engine: Engine, clock: FakeClock, tokens: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    picture = TrackPicture()
    for k in range(7):
        picture.update(state("TR", f"t{k}", 34.0 + k / 10, 38.0, 5000, 100, 90, clock.now))
    with transaction(engine, write=False) as conn:
        before = conn.execute(select(t.track_states)).all()
    assert before == []
    assert flush_picture(engine, picture, piece=3) == 7
    with transaction(engine, write=False) as conn:
        stored = {r.track_id for r in conn.execute(select(t.track_states))}
    assert stored == {f"t{k}" for k in range(7)}

    # The third piece fails: the two pieces written stay, the rest goes back to the picture.
    clock.advance(seconds=1)
    for k in range(7):
        picture.update(state("TR", f"t{k}", 35.0, 38.0 + k / 10, 5000, 100, 90, clock.now))
    calls = 0
    real = service.write_changes

    def failing(conn: Connection, upserts: list[TrackState], deletes: list[str]) -> None:
        nonlocal calls
        calls += 1
        if calls == 3:
            raise RuntimeError("disk full")
        real(conn, upserts, deletes)

    monkeypatch.setattr(service, "write_changes", failing)
    with pytest.raises(RuntimeError):
        flush_picture(engine, picture, piece=3)
    upserts, _ = picture.take_changes()
    assert [s.id for s in upserts] == ["t6"]
    with transaction(engine, write=False) as conn:
        lat = {r.track_id: r.lat for r in conn.execute(select(t.track_states))}
    assert [lat[f"t{k}"] for k in range(7)] == [35.0] * 6 + [pytest.approx(34.6)]


def test_new_alerts_commit_first_and_stay_held_when_the_updates_fail(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    failing = {"updated": 1}
    committed: list[tuple[int, str]] = []

    def in_tx(conn: Connection, alert: AlertOut, event: str) -> None:
        if failing.get(event):
            failing[event] -= 1
            raise RuntimeError("stream write failed")

    picture = TrackPicture()
    loop = TacticalLoop(
        engine,
        picture,
        LoopConfig(update_every=1),
        on_alert=lambda alert, event: committed.append((alert.id, event)),
        on_alert_in_tx=in_tx,
    )
    first = [
        state("IL", "a", 34.8, 38.3, 6000, 200, 90, clock.now),
        state("TR", "b", 34.8, 38.9, 6000, 200, 270, clock.now),
    ]
    first = _report(picture, first, clock.now)
    loop.step(clock.now)
    ((first_id, _),) = committed
    clock.advance(seconds=1)
    second = [
        state("IL", "c", 33.8, 37.3, 9000, 200, 90, clock.now),
        state("TR", "d", 33.8, 37.9, 9000, 200, 270, clock.now),
    ]
    _report(picture, first + second, clock.now)
    # The cycle raises c/d and updates a/b; the update's transaction fails.
    with pytest.raises(RuntimeError):
        loop.step(clock.now)
    ((second_id, event),) = committed[1:]
    assert event == "raised" and second_id != first_id
    with transaction(engine, write=False) as conn:
        assert conn.execute(select(t.alerts.c.id)).scalars().all() == [first_id, second_id]
    # The next cycle does not raise c/d again; it updates both.
    clock.advance(seconds=1)
    _report(picture, first + second, clock.now)
    loop.step(clock.now)
    assert sorted(committed[2:]) == [(first_id, "updated"), (second_id, "updated")]


def _converging(picture: TrackPicture, clock: FakeClock) -> list[TrackState]:
    return _report(
        picture,
        [
            state("IL", "a", 34.8, 38.3, 6000, 200, 90, clock.now),
            state("TR", "b", 34.8, 38.9, 6000, 200, 270, clock.now),
        ],
        clock.now,
    )


def test_deferred_updates_are_stored_after_the_cycle_and_never_undo_a_newer_one(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    told = Recorder()
    picture = TrackPicture()
    loop = TacticalLoop(engine, picture, LoopConfig(update_every=1), on_alert=told)
    pair = _converging(picture, clock)
    loop.step(clock.now)
    ((alert_id, _),) = told.events
    clock.advance(seconds=1)
    pair = _report(picture, pair, clock.now)
    late = loop.step(clock.now, defer=True).deferred
    assert late is not None and [a for a, _ in late.updated] == [alert_id]
    assert told.events[1:] == []  # left to the caller
    clock.advance(seconds=1)
    _report(picture, pair, clock.now)
    loop.step(clock.now)  # its own update, newer
    assert loop.write_alerts(late) is None  # nothing failed, and the late one changed nothing
    assert told.events[1:] == [(alert_id, "updated")]
    with transaction(engine, write=False) as conn:
        stored = conn.execute(select(t.alerts.c.updated_at)).scalar_one()
    assert stored == clock.now


def test_a_deferred_update_that_fails_is_planned_again(
    engine: Engine, clock: FakeClock, tokens: dict[str, str]
) -> None:
    failing = {"updated": 1}
    told = Recorder()

    def in_tx(conn: Connection, alert: AlertOut, event: str) -> None:
        if failing.get(event):
            failing[event] -= 1
            raise RuntimeError("stream write failed")

    picture = TrackPicture()
    loop = TacticalLoop(
        engine, picture, LoopConfig(update_every=3), on_alert=told, on_alert_in_tx=in_tx
    )
    pair = _converging(picture, clock)
    loop.step(clock.now)
    deferred = []
    for _ in range(3):
        clock.advance(seconds=1)
        pair = _report(picture, pair, clock.now)
        deferred.append(loop.step(clock.now, defer=True).deferred)
    assert [bool(d) for d in deferred] == [False, False, True]
    assert deferred[-1] is not None
    unwritten = loop.write_alerts(deferred[-1])
    assert unwritten is not None and unwritten.updated == deferred[-1].updated
    loop.give_back(unwritten)
    clock.advance(seconds=1)
    _report(picture, pair, clock.now)
    loop.step(clock.now)  # without the give-back, the next update would be two cycles away
    assert [event for _, event in told.events] == ["raised", "updated"]
