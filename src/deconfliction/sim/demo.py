"""Load the Syria scenario into a database: parties, zones, and the next 24 hours of activity.

The day starts at the next full hour, so every notification is in the future when it is made,
as a real one would be; the duty officer of each party files its party's part.
"""

from __future__ import annotations

import tomllib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import partial
from typing import Any

from sqlalchemy import Connection, Engine

from deconfliction.activities import service as activities
from deconfliction.activities.models import ActivityIn
from deconfliction.agreements.scenario import record_talks, the_day
from deconfliction.hotline import service as hotline
from deconfliction.parties.models import Actor, AreaConfig
from deconfliction.parties.service import authenticate, init_area
from deconfliction.record.service import Statement, run_statement, say
from deconfliction.sim import syria
from deconfliction.store.db import transaction
from deconfliction.zones import service as zones
from deconfliction.zones import transfer
from deconfliction.zones.models import ZoneIn


@dataclass
class DemoSummary:
    area: str
    day_start: datetime
    tokens: dict[str, tuple[str, str, str]] = field(
        default_factory=dict
    )  # officer: party, role, token
    zones: Counter[tuple[str, str]] = field(default_factory=Counter)
    activities: Counter[str] = field(default_factory=Counter)
    late: list[str] = field(default_factory=list)
    conflicts: list[tuple[str, str, str]] = field(default_factory=list)  # severity, a, b
    hotline: list[str] = field(default_factory=list)
    talks: list[str] = field(default_factory=list)  # rounds, commitments, the incident

    def render(self) -> str:
        lines = [f"{self.area}: the day from {self.day_start:%Y-%m-%d %H:%M}Z", "", "Zones:"]
        lines += [f"  {owner} {rule}: {n}" for (owner, rule), n in sorted(self.zones.items())]
        lines += ["", "Activities notified:"]
        lines += [f"  {party}: {n}" for party, n in sorted(self.activities.items())]
        lines += ["", f"Late notifications into notify zones: {len(self.late)}"]
        lines += [f"  {title}" for title in self.late]
        lines += ["", f"Conflicts detected: {len(self.conflicts)}"]
        lines += [f"  {severity:<8} {a}  x  {b}" for severity, a, b in self.conflicts]
        lines += [
            "",
            "Hotline (detection opens threads to the parties; unanswered ones escalate on time):",
        ]
        lines += [f"  {line}" for line in self.hotline]
        lines += [
            "",
            "Live picture (when served): the replayed tracks cross near T4 a minute after start:",
            "  a tactical alert on the stream, and a FLASH hotline thread to IL and TR.",
        ]
        lines += ["", "Talks, commitments under negotiation, the day's incident:"]
        lines += [f"  {line}" for line in self.talks]
        lines += ["", "Tokens (log in with one; shown once):"]
        lines += [
            f"  {officer:<14} {party:<6} {role:<10} {token}"
            for officer, (party, role, token) in self.tokens.items()
        ]
        return "\n".join(lines)


def load_demo(engine: Engine, now: datetime) -> DemoSummary:
    day_start = now.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    config = AreaConfig.model_validate(tomllib.loads(syria.parties_config_text()))
    summary = DemoSummary(area=config.area, day_start=day_start)
    with transaction(engine, write=True) as conn:
        tokens = init_area(conn, config, now, server_held_keys=True).tokens
        actors: dict[str, Actor] = {}
        for officer, token in tokens.items():
            actor = authenticate(conn, token, now)
            summary.tokens[officer] = (actor.party, actor.role, token)
            if actor.role == "officer":
                actors.setdefault(actor.party, actor)
        for owner, body in syria.zones(day_start):
            actor = actors[owner]
            zone, _ = say(
                conn,
                actor,
                Statement("zone.declare", body=body),
                partial(zones.declare, conn, actor, ZoneIn.model_validate(body), now),
                "zone",
                now,
            )
            summary.zones[(zone.owner, zone.rule)] += 1
        # Türkiye's firing range comes in as the NOTAM its AIS office issued, not redrawn.
        notam = transfer.ImportIn(format="notam", content=syria.notams(day_start))
        done: list[transfer.ImportOut] = []

        def import_notam(c: Connection) -> tuple[int, dict[str, Any]]:
            done.append(transfer.import_zones(c, actors["TR"], notam, now))
            return 200, done[0].model_dump(mode="json")

        run_statement(
            conn,
            actors["TR"],
            Statement("zone.import", body=notam.model_dump(mode="json")),
            import_notam,
            lambda _: "zone/import",
            now,
        )
        imported = done[0]
        for line in imported.imported:
            if line.zone is not None:
                rule = zones.get(conn, actors["TR"], line.zone).rule
                summary.zones[("TR", f"{rule} (imported NOTAM {line.source})")] += 1
        host = next(
            authenticate(conn, token, now)
            for _party, role, token in summary.tokens.values()
            if role == "mediator"
        )
        summary.talks += record_talks(conn, host, actors, now)
        for party, body in syria.day(day_start):
            actor = actors[party]
            activity, _ = say(
                conn,
                actor,
                Statement("activity.notify", body=body),
                partial(activities.notify, conn, actor, ActivityIn.model_validate(body), now),
                "activity",
                now,
            )
            summary.activities[party] += 1
            if activity.late:
                summary.late.append(f"{party} {activity.title}")
            for found in activity.conflicts:
                summary.conflicts.append(
                    (found.severity, activity.title, found.b.title or f"{found.b.party} activity")
                )
        summary.talks += the_day(conn, actors, day_start + syria.T4_CROSSING_AFTER_START, now)
        # The duty officers answer the hotline: TR reads and acknowledges the first thread the
        # detection opened; IL only reads its first one, so its deadline runs and escalates
        # while the server runs.
        for party, acknowledge in (("TR", True), ("IL", False)):
            actor = actors[party]
            waiting = hotline.inbox(conn, actor, now, pending=True)
            if not waiting:
                continue
            message = waiting[0].id
            say(
                conn,
                actor,
                Statement("message.mark_read", target=message),
                partial(hotline.read, conn, actor, message, now),
                "message",
                now,
            )
            if acknowledge:
                say(
                    conn,
                    actor,
                    Statement("message.acknowledge", target=message),
                    partial(hotline.acknowledge, conn, actor, message, now),
                    "message",
                    now,
                )
            summary.hotline.append(
                f"{party} {'acknowledged' if acknowledge else 'read'} "
                f"message {message} ({waiting[0].priority} {waiting[0].type})"
            )
    return summary
