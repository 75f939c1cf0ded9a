"""Zone use cases: declare, consent (for agreed zones), withdraw, list, get.

Zones are declarations to every party of the area, so every party reads all of them. A withdrawn
zone stays on record with its history in the events.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Row, insert, select, update

from deconfliction import geo
from deconfliction.errors import Conflict, Forbidden, Invalid, NotFound
from deconfliction.geo.schedule import DailyPeriod, schedule_from_json
from deconfliction.parties.models import Actor
from deconfliction.parties.service import party_kinds, require_acting
from deconfliction.record.service import record
from deconfliction.store import tables as t
from deconfliction.store.db import fetch_rows
from deconfliction.volumes import footprint_from_json, footprint_json
from deconfliction.zones.models import ConsentOut, ZoneIn, ZoneOut

# A zone without an end of validity lasts until withdrawn; detection needs a finite window.
OPEN_END = datetime(9999, 1, 1, tzinfo=UTC)


def declare(
    conn: Connection,
    actor: Actor,
    zone: ZoneIn,
    now: datetime,
    source: tuple[str, str] | None = None,
) -> ZoneOut:
    """Declare ``zone``; an import passes ``source`` (its id and the record's hash)."""
    require_acting(actor)
    if zone.valid_to is not None and zone.valid_to <= now:
        raise Invalid(f"validity window already over: valid_to {zone.valid_to} is in the past")
    kinds = party_kinds(conn)
    for code in zone.agreed_with:
        if code not in kinds:
            raise Invalid(f"unknown party {code} in agreed_with")
        if code == actor.party:
            raise Invalid("agreed_with lists the declaring party itself")
    zone_id = conn.execute(
        insert(t.zones).values(
            owner=actor.party,
            name=zone.name,
            rule=zone.rule,
            lead_time_s=zone.lead_time_s,
            geometry=footprint_json(zone.shape()),
            lower_m=zone.altitude.lower_m,
            upper_m=zone.altitude.upper_m,
            altitude_ref=zone.altitude.reference,
            valid_from=zone.valid_from,
            valid_to=zone.valid_to,
            minima=zone.minima.model_dump() if zone.minima else None,
            status="proposed" if zone.agreed_with else "declared",
            version=1,
            created_at=now,
            schedule=[p.model_dump() for p in zone.schedule] or None,
            altitude_unit=zone.altitude.unit,
            source_id=source[0] if source else None,
            source_hash=source[1] if source else None,
        )
    ).inserted_primary_key
    assert zone_id is not None
    if zone.agreed_with:
        conn.execute(
            insert(t.zone_parties),
            [
                {
                    "zone_id": zone_id[0],
                    "party": actor.party,
                    "consented_at": now,
                    "consented_by": actor.officer,
                },
                *(
                    {
                        "zone_id": zone_id[0],
                        "party": code,
                        "consented_at": None,
                        "consented_by": None,
                    }
                    for code in zone.agreed_with
                ),
            ],
        )
    record(conn, actor, "zone.declared", f"zone/{zone_id[0]}", {"zone": zone_id[0]}, now)
    declared = get(conn, actor, int(zone_id[0]))
    # Imported here: conflict detection reads zones through this module.
    from deconfliction.conflicts.service import detect_for_zone

    detect_for_zone(conn, actor, declared, now)  # activities already filed meet the new zone
    return declared


def consent(conn: Connection, actor: Actor, zone_id: int, now: datetime) -> ZoneOut:
    if actor.role == "observer":
        raise Forbidden("an observer cannot consent to a zone")
    zone = _row(conn, zone_id)
    if zone.status == "withdrawn":
        raise Conflict(f"zone {zone_id} was withdrawn")
    named = conn.execute(
        select(t.zone_parties).where(
            t.zone_parties.c.zone_id == zone_id,
            t.zone_parties.c.party == actor.party,
        )
    ).first()
    if named is None:
        raise Forbidden(f"party {actor.party} is not named in zone {zone_id}'s agreement")
    if named.consented_at is not None:
        raise Conflict(f"party {actor.party} already consented to zone {zone_id}")
    conn.execute(
        update(t.zone_parties)
        .where(
            t.zone_parties.c.zone_id == zone_id,
            t.zone_parties.c.party == actor.party,
        )
        .values(consented_at=now, consented_by=actor.officer)
    )
    pending = conn.execute(
        select(t.zone_parties.c.party).where(
            t.zone_parties.c.zone_id == zone_id,
            t.zone_parties.c.consented_at.is_(None),
        )
    ).first()
    if pending is None:
        conn.execute(
            update(t.zones)
            .where(t.zones.c.id == zone_id)
            .values(status="agreed", version=zone.version + 1)
        )
    record(conn, actor, "zone.consented", f"zone/{zone_id}", {"zone": zone_id}, now)
    return get(conn, actor, zone_id)


def withdraw(
    conn: Connection, actor: Actor, zone_id: int, expected_version: int, now: datetime
) -> ZoneOut:
    require_acting(actor)
    zone = _row(conn, zone_id)
    if zone.owner != actor.party:
        raise Forbidden(f"zone {zone_id} belongs to {zone.owner}; only its owner withdraws it")
    if zone.status == "withdrawn":
        raise Conflict(f"zone {zone_id} is already withdrawn")
    _check_version(zone.version, expected_version, f"zone {zone_id}")
    conn.execute(
        update(t.zones)
        .where(t.zones.c.id == zone_id)
        .values(status="withdrawn", version=zone.version + 1, withdrawn_at=now)
    )
    record(conn, actor, "zone.withdrawn", f"zone/{zone_id}", {"zone": zone_id}, now)
    return get(conn, actor, zone_id)


def _check_version(current: int, expected: int, what: str) -> None:
    if current != expected:
        raise Conflict(
            f"{what} is at version {current}, not {expected}: someone changed it first",
            current_version=current,
        )


def _row(conn: Connection, zone_id: int) -> Row[Any]:
    row = conn.execute(select(t.zones).where(t.zones.c.id == zone_id)).first()
    if row is None:
        raise NotFound(f"no zone {zone_id}")
    return row


def get(conn: Connection, actor: Actor, zone_id: int) -> ZoneOut:
    _row(conn, zone_id)
    return list_zones(conn, actor, zone_ids=[zone_id], include_withdrawn=True)[0]


# Built once: every filed plan lists the zones in force.
_ZONES = select(t.zones).order_by(t.zones.c.id)
_ZONES_IN_FORCE = _ZONES.where(t.zones.c.status != "withdrawn")


def list_zones(
    conn: Connection,
    actor: Actor,
    *,
    zone_ids: list[int] | None = None,
    include_withdrawn: bool = False,
    owner: str | None = None,
    active_at: datetime | None = None,
) -> list[ZoneOut]:
    query = _ZONES_IN_FORCE if not include_withdrawn else _ZONES
    if zone_ids is not None:
        query = query.where(t.zones.c.id.in_(zone_ids))
    if owner is not None:
        query = query.where(t.zones.c.owner == owner)
    if active_at is not None:
        query = query.where(t.zones.c.valid_from <= active_at).where(
            (t.zones.c.valid_to.is_(None)) | (t.zones.c.valid_to > active_at)
        )
    # The zones in force, read on every filing, by way of the driver; a filtered query is
    # built anew each time, which SQLAlchemy's cache of compiled statements serves better.
    rows = fetch_rows(conn, query) if query is _ZONES_IN_FORCE else conn.execute(query).all()
    consents: dict[int, list[ConsentOut]] = {}
    if rows:
        for c in conn.execute(
            select(t.zone_parties)
            .where(t.zone_parties.c.zone_id.in_([r.id for r in rows]))
            .order_by(t.zone_parties.c.party)
        ):
            consents.setdefault(c.zone_id, []).append(
                ConsentOut(party=c.party, consented_at=c.consented_at, consented_by=c.consented_by)
            )
    return [_out(r, consents.get(r.id, [])) for r in rows]


def _out(row: Any, consents: list[ConsentOut]) -> ZoneOut:
    return ZoneOut(
        id=row.id,
        owner=row.owner,
        name=row.name,
        rule=row.rule,
        lead_time_s=row.lead_time_s,
        **row.geometry,
        altitude=_altitude_out(row),
        valid_from=row.valid_from,
        valid_to=row.valid_to,
        minima=row.minima,
        schedule=row.schedule or [],
        source=row.source_id,
        status=row.status,
        version=row.version,
        parties=consents,
        created_at=row.created_at,
        withdrawn_at=row.withdrawn_at,
    )


def _altitude_out(row: Row[Any]) -> dict[str, Any]:
    altitude: dict[str, Any] = {
        "lower_m": row.lower_m,
        "upper_m": row.upper_m,
        "reference": row.altitude_ref,
        "unit": row.altitude_unit or "m",
    }
    compared = geo.comparable_band(geo.AltitudeBand(row.lower_m, row.upper_m, row.altitude_ref))
    if compared.margin_note is not None:
        # Said wherever the zone is shown: detection used this wider band, and why.
        altitude["compared_as"] = {
            "lower_m": compared.band.lower_m,
            "upper_m": compared.band.upper_m,
            "reference": compared.band.reference,
            "note": compared.margin_note,
        }
    return altitude


def zone_volume(zone: ZoneOut) -> geo.Volume4D:
    """The zone as a Volume4D for detection: its footprint, its band converted to one detection
    compares (flight levels and AGL widened, see `geo.comparable_band`) and its validity; its
    schedule, if any, is `zone_schedule`."""
    return geo.Volume4D(
        footprint_from_json(
            {"footprint": zone.footprint} if zone.footprint else {"circle": zone.circle}
        ),
        geo.comparable_band(
            geo.AltitudeBand(
                zone.altitude["lower_m"], zone.altitude["upper_m"], zone.altitude["reference"]
            )
        ).band,
        zone.valid_from,
        zone.valid_to or OPEN_END,
    )


def zone_schedule(zone: ZoneOut) -> tuple[DailyPeriod, ...]:
    """The daily periods the zone is active in (empty: all its validity)."""
    return schedule_from_json([p.model_dump() for p in zone.schedule])
