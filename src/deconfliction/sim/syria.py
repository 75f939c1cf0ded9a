"""The bundled demo scenario: Türkiye and Israel sharing Syrian airspace, Azerbaijan hosting.

Pure data and pure functions: the day's start is a parameter (no clock read) and the only I/O is
reading the parties config shipped as package data. Coordinates are [lon, lat]. Every altitude is
metres MSL, the zones' reference, so that no geoid correction hides inside a comparison.
"""

from __future__ import annotations

import math
import random
from copy import deepcopy
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Any

Json = dict[str, Any]
Point = tuple[float, float]

PARTIES_CONFIG: Traversable = files("deconfliction.sim") / "data" / "syria-parties.toml"


def parties_config_text() -> str:
    """The parties config for `deconfliction init --config` (TR, IL, AZ, UNDOF)."""
    return PARTIES_CONFIG.read_text(encoding="utf-8")


# fmt: off
# Quneitra, Daraa and Suwayda governorates, simplified: the 1974 line (west), the Jordan border
# (south), Suwayda's desert edge (east), the southern edge of Rif Dimashq (north).
SOUTHERN_SYRIA: list[Point] = [
    (35.79, 33.33), (35.81, 33.15), (35.84, 32.95), (35.86, 32.80), (35.87, 32.71),
    (36.00, 32.66), (36.10, 32.62), (36.21, 32.54), (36.50, 32.40), (36.84, 32.31),
    (37.10, 32.46), (37.20, 32.75), (37.05, 33.00), (36.70, 33.10), (36.38, 33.25),
    (36.05, 33.30), (35.90, 33.37),
]
# The 1974 Area of Separation: the Alpha line (its western edge, shared with SOUTHERN_SYRIA)
# from Mount Hermon to the Yarmouk, back north along a simplified Bravo-side edge.
AREA_OF_SEPARATION: list[Point] = [
    (35.79, 33.33), (35.81, 33.15), (35.84, 32.95), (35.86, 32.80), (35.87, 32.71),
    (35.91, 32.72), (35.90, 32.81), (35.88, 32.95), (35.86, 33.15), (35.84, 33.33),
]
# fmt: on
T4, PALMYRA, HAMA = (37.63, 34.52), (38.32, 34.56), (36.71, 35.12)
INCIRLIK, RAMAT_DAVID, SUKHNAH = (35.43, 37.00), (35.18, 32.67), (38.87, 34.88)
GOLAN_WEST, SHAYRAT_APPROACH = (35.90, 33.00), (36.55, 33.75)
ALEPPO_AIRPORT = (37.22, 36.18)

ZONE_SOUTH = "Southern Syria: Quneitra, Daraa, Suwayda"
ZONE_PALMYRA = "Palmyra air base"
ZONE_AOS = "Golan Area of Separation (1974 line)"
ZONE_ALEPPO = "Aleppo International approach: civil traffic"
TR_UAV_T4 = "Akıncı UAV transit Hama – T4"
IL_PATROL_HOMS = "Air patrol east of Homs"
TR_INTO_SOUTH = "ANKA ISR flight T4 – Suwayda"
IL_INTO_PALMYRA = "Heron TP ISR orbit near Palmyra"
# Crosses in plan and in time, 1,000 m apart in altitude: clear of the 300 m minimum even when a
# detector widens both bands by it.
NEAR_MISS = ("Akıncı ISR sweep Sukhnah – Tanf road", "Strike-package transit toward Abu Kamal")


def expected_conflicts() -> list[tuple[str, str]]:
    """The conflicts `day` is built to contain: (activity, other party's activity or zone)."""
    return [
        (TR_UAV_T4, IL_PATROL_HOMS),
        (TR_INTO_SOUTH, ZONE_SOUTH),
        (IL_INTO_PALMYRA, ZONE_PALMYRA),  # late: notified at day_start, less than 24 h ahead
    ]


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _band(lower_m: int, upper_m: int) -> Json:
    return {"lower_m": lower_m, "upper_m": upper_m, "reference": "MSL"}


def _polygon(ring: list[Point]) -> Json:
    # RFC 7946 shells are counter-clockwise: orient by the shoelace sign, not by the author's care.
    twice_area = sum(
        x0 * y1 - x1 * y0 for (x0, y0), (x1, y1) in zip(ring, ring[1:] + ring[:1], strict=True)
    )
    shell = ring if twice_area > 0 else ring[::-1]
    return {
        "footprint": {"type": "Polygon", "coordinates": [[list(p) for p in [*shell, shell[0]]]]}
    }


def _box(west: float, south: float, east: float, north: float) -> Json:
    return _polygon([(west, south), (east, south), (east, north), (west, north)])


def _circle(centre: Point, radius_m: int) -> Json:
    return {"circle": {"center": list(centre), "radius_m": radius_m}}


def _metres(a: Point, b: Point) -> float:
    # Equirectangular: well under 1 % off over a leg, enough to time a flight.
    k = math.cos(math.radians((a[1] + b[1]) / 2))
    return 6_371_000.0 * math.radians(math.hypot((b[0] - a[0]) * k, b[1] - a[1]))


def _utc(day_start: datetime) -> datetime:
    if day_start.utcoffset() is None:
        raise ValueError("day_start must carry a time zone")
    return day_start.astimezone(UTC)


def zones(day_start: datetime) -> list[tuple[str, Json]]:
    """(owner party code, zone JSON) declared from `day_start`, open-ended."""
    start = _iso(_utc(day_start))

    def zone(name: str, rule: str, shape: Json, top_m: int, lead_s: int | None = None) -> Json:
        return {
            "name": name,
            "rule": rule,
            "lead_time_s": lead_s,
            **shape,
            "altitude": _band(0, top_m),
            "valid_from": start,
            "valid_to": None,
            "agreed_with": [],
        }

    return [
        ("IL", zone(ZONE_SOUTH, "no_entry", _polygon(SOUTHERN_SYRIA), 20_000)),
        # Declared by Israel, not agreed: the strip comes from the 1974 Israel-Syria agreement, to
        # which Türkiye is no party, and UNDOF, which supervises it, is an observer and observers
        # cannot consent to zones (zones/service.py); UNDOF sees Golan activity via notified_to.
        ("IL", zone(ZONE_AOS, "no_entry", _polygon(AREA_OF_SEPARATION), 20_000)),
        ("TR", zone("T4 (Tiyas) air base", "notify", _circle(T4, 25_000), 20_000, 86_400)),
        ("TR", zone(ZONE_PALMYRA, "notify", _circle(PALMYRA, 25_000), 20_000, 86_400)),
        ("TR", zone("Hama air base", "notify", _circle(HAMA, 25_000), 20_000, 86_400)),
        ("TR", zone(ZONE_ALEPPO, "caution", _circle(ALEPPO_AIRPORT, 20_000), 3_000)),
    ]


# fmt: off
# Routes: party, kind, title, callsign (a stem gets a seeded number), start hour (UTC),
# ground speed m/s, half-width m, altitude band m MSL, waypoints. Times follow from the distances.
_ROUTES: list[tuple[str, str, str, str, float, int, int, tuple[int, int], list[Point]]] = [
    # The designed conflicts and near miss (fixed for every seed).
    ("TR", "uav", TR_UAV_T4, "AKINCI 31", 8, 60, 3_000, (5_500, 7_000), [HAMA, (37.17, 34.82), T4]),
    ("IL", "air_patrol", IL_PATROL_HOMS, "SUFA 71", 8.1, 220, 5_000, (6_000, 9_000),
     [(36.95, 34.45), (37.35, 35.05), (36.95, 34.45), (37.35, 35.05), (36.95, 34.45)]),
    ("TR", "uav", TR_INTO_SOUTH, "ANKA 12", 13, 55, 3_000, (4_000, 5_500),
     [T4, (36.74, 33.61), (36.63, 32.86), (36.57, 32.71)]),
    ("TR", "uav", NEAR_MISS[0], "AKINCI 44", 19.75, 60, 3_000, (5_000, 6_500),
     [SUKHNAH, (39.05, 33.70), SUKHNAH]),
    ("IL", "transit", NEAR_MISS[1], "RAAM 61", 20, 250, 5_000, (7_500, 10_500),
     [(35.75, 32.95), (37.5, 33.3), (39.5, 34.0), (40.9, 34.45)]),
    # Türkiye: flights in from Turkish bases, the Euphrates, convoys to Aleppo, Idlib and T4.
    ("TR", "uav", "Bayraktar TB2 border patrol Tal Abyad – Ras al-Ayn", "BAYRAKTAR", 12, 36,
     3_000, (4_000, 5_000), [(38.95, 36.70), (40.05, 36.85), (38.95, 36.70)]),
    ("TR", "uav", "Akıncı transit Batman – Deir ez-Zor", "AKINCI", 5, 60, 3_000, (6_000, 7_500),
     [(41.12, 37.93), (40.60, 36.60), (40.14, 35.34)]),
    ("TR", "transit", "C-130 logistics flight Incirlik – Hama", "TURKAF", 7, 150, 5_000,
     (6_000, 7_000), [INCIRLIK, (36.25, 36.15), HAMA]),
    ("TR", "transit", "A400M logistics flight Incirlik – T4", "TURKAF", 10.5, 170, 5_000,
     (7_000, 8_500), [INCIRLIK, (36.55, 36.05), (37.05, 35.25), T4]),
    # Ground bands run from 0 to the terrain's top plus 100 m: MSL, so they contain the ground.
    ("TR", "ground_movement", "Convoy Kilis – Aleppo", "KONVOY", 6, 10, 1_000, (0, 800),
     [(37.12, 36.72), (37.08, 36.45), (37.16, 36.20)]),
    ("TR", "ground_movement", "Site-survey convoy Homs – T4", "KONVOY", 6, 12, 1_000, (0, 700),
     [(36.72, 34.73), (37.10, 34.62), T4]),
    ("TR", "ground_movement", "Convoy Reyhanlı – Idlib", "KONVOY", 14, 10, 1_000, (0, 600),
     [(36.57, 36.27), (36.63, 35.93)]),
    # Israel: night strike-package transits, ground patrols on the 1974 line.
    ("IL", "transit", "Strike-package transit toward Kiswah", "RAAM", 1, 250, 5_000,
     (8_000, 11_000), [RAMAT_DAVID, GOLAN_WEST, (36.22, 33.36), (35.70, 33.05)]),
    ("IL", "transit", "Strike-package transit toward Shayrat", "SUFA", 2.5, 250, 5_000,
     (8_500, 11_500), [RAMAT_DAVID, GOLAN_WEST, SHAYRAT_APPROACH, (36.94, 34.40),
                       SHAYRAT_APPROACH, GOLAN_WEST]),
    ("IL", "ground_movement", "Ground patrol, Hermon posts", "HERMON", 4, 3, 1_000, (0, 2_300),
     [(35.85, 33.33), (35.87, 33.27), (35.89, 33.22)]),
    ("IL", "ground_movement", "Ground patrol Quneitra – Rafid", "GOLAN", 9, 5, 1_000, (0, 1_200),
     [(35.83, 33.12), (35.86, 33.03), (35.90, 32.96)]),
    ("IL", "ground_movement", "Engineering convoy, Yarmouk basin", "GOLAN", 13, 3, 1_000,
     (0, 600), [(35.88, 32.74), (35.95, 32.72)]),
]
# Areas: party, kind, title, callsign, start hours (one sortie each), hours long, band, footprint.
_AREAS: list[tuple[str, str, str, str, tuple[float, ...], float, tuple[int, int], Json]] = [
    ("IL", "uav", IL_INTO_PALMYRA, "EITAN 52", (10,), 4, (6_000, 7_500),
     _circle((38.20, 34.40), 15_000)),
    ("TR", "air_patrol", "Air patrol north of Aleppo", "ASENA", (5.5, 11.5, 17.5), 2,
     (7_500, 9_500), _box(36.95, 36.30, 37.65, 36.65)),
    ("TR", "air_patrol", "Air patrol along the Hatay border", "KURT", (8, 15), 2, (6_000, 8_500),
     _box(36.15, 35.90, 36.60, 36.30)),
    ("TR", "air_patrol", "KC-135R tanker track over Gaziantep", "TANKER", (6,), 3, (7_000, 8_000),
     _box(37.0, 36.95, 37.8, 37.2)),
    ("TR", "uav", "Bayraktar TB2 orbit over Idlib", "BAYRAKTAR", (5,), 6, (4_000, 5_500),
     _circle((36.63, 35.93), 12_000)),
    ("TR", "uav", "Bayraktar TB2 orbit over Manbij", "BAYRAKTAR", (9,), 8, (4_000, 5_500),
     _circle((37.95, 36.53), 12_000)),
    ("TR", "uav", "Akıncı ISR orbit over Deir ez-Zor", "AKINCI", (6.5,), 7.5, (6_000, 7_500),
     _circle((40.14, 35.34), 20_000)),
    ("TR", "exercise", "Joint Turkish–Syrian training, Hama air base", "EGITIM", (9,), 6,
     (0, 3_000), _circle(HAMA, 15_000)),
    ("IL", "air_patrol", "Air patrol over the Golan and Quneitra", "ADIR", (0.5, 6.5, 12.5, 18.5),
     2, (6_500, 9_000), _box(35.70, 32.85, 36.10, 33.35)),
    ("IL", "air_patrol", "Air patrol over the Hauran", "BARAK", (3, 15), 2, (7_000, 9_500),
     _polygon([(36.0, 32.55), (36.6, 32.45), (36.7, 33.0), (36.05, 33.1)])),
    ("IL", "air_patrol", "Tanker track over the Galilee", "KARNAF", (0.5,), 3.5, (6_000, 7_500),
     _box(35.25, 32.80, 35.60, 33.05)),
    ("IL", "uav", "Hermes 900 orbit over Quneitra", "KOCHAV", (0.5,), 7.5, (3_500, 5_000),
     _circle((35.95, 33.10), 10_000)),
    ("IL", "uav", "Heron orbit over Suwayda", "SHOVAL", (2,), 6, (4_000, 5_500),
     _circle((36.57, 32.71), 12_000)),
    ("IL", "uav", "Hermes 450 orbit over Daraa", "ZIK", (15.5,), 5.5, (3_500, 5_000),
     _circle((36.10, 32.62), 8_000)),
    ("IL", "uav", "Heron TP orbit south of Damascus", "EITAN", (16,), 6, (6_500, 7_500),
     _circle((36.30, 33.30), 10_000)),
]
# fmt: on
# Israeli activity on or near the 1974 line is shared with UNDOF as well as with Türkiye.
_WITH_UNDOF = {
    "Air patrol over the Golan and Quneitra",
    "Hermes 900 orbit over Quneitra",
    "Strike-package transit toward Kiswah",
    "Ground patrol, Hermon posts",
    "Ground patrol Quneitra – Rafid",
    "Engineering convoy, Yarmouk basin",
}
_DESIGNED = {TR_UAV_T4, IL_PATROL_HOMS, TR_INTO_SOUTH, IL_INTO_PALMYRA, *NEAR_MISS}


def day(day_start: datetime, seed: int = 2025) -> list[tuple[str, Json]]:
    """(party code, activity JSON) for the 24 h from `day_start`; the same seed gives the same day.

    The designed activities (`expected_conflicts`, `NEAR_MISS`) are fixed. The seed moves the rest
    by up to 30 min and 3 km, numbers their callsigns and drops the last sortie of some patrols;
    the tables keep that slack clear of the other party's activities and zones.
    """
    t0, rng = _utc(day_start), random.Random(seed)
    out: list[tuple[str, Json]] = []

    def add(party: str, kind: str, title: str, callsign: str, plan: Json, undof: bool) -> None:
        if title not in _DESIGNED:
            callsign = f"{callsign} {rng.randint(1, 4)}{rng.randint(1, 4)}"
        body = {"kind": kind, "title": title, "callsign": callsign, **deepcopy(plan)}
        if undof:
            body["notified_to"] = ["TR", "UNDOF"]
        out.append((party, body))

    def at(hours: float, title: str) -> datetime:
        jitter = 0 if title in _DESIGNED else 5 * rng.randint(-6, 6)
        return t0 + timedelta(hours=hours, minutes=jitter)

    for party, kind, title, callsign, hour, speed, half_width, band, points in _ROUTES:
        moment, waypoints = at(hour, title), []
        for i, p in enumerate(points):
            if i:
                moment += timedelta(seconds=round(_metres(points[i - 1], p) / speed))
            waypoints.append({"lon": p[0], "lat": p[1], "time": _iso(moment)})
        route = {"waypoints": waypoints, "half_width_m": half_width, "altitude": _band(*band)}
        add(party, kind, title, callsign, {"route": route}, title in _WITH_UNDOF)
    for party, kind, title, callsign, starts, hours, band, shape in _AREAS:
        if len(starts) > 1:
            starts = starts[: rng.randint(len(starts) - 1, len(starts))]
        for n, hour in enumerate(starts, 1):
            named = f"{title}, sortie {n}" if len(starts) > 1 else title
            start = at(hour, named)
            footprint = shape
            if "circle" in shape and named not in _DESIGNED:  # orbits drift a few km day to day
                centre = [round(v + rng.uniform(-0.03, 0.03), 3) for v in shape["circle"]["center"]]
                footprint = {"circle": {**shape["circle"], "center": centre}}
            time = {"start": _iso(start), "end": _iso(start + timedelta(hours=hours))}
            volume = {**footprint, "altitude": _band(*band), "time": time}
            add(party, kind, named, callsign, {"volumes": [volume]}, title in _WITH_UNDOF)
    return out


@dataclass(frozen=True)
class Position:
    """A party's stated position: short English, the source's own words, the seed file."""

    party: str
    text: str
    wording: str
    source: str


@dataclass(frozen=True)
class Round:
    """A round of talks as the sources report it; `date_basis` says how the date is known."""

    number: int
    venue: str
    host: str
    date: date
    date_basis: str
    outcome: str
    positions: tuple[Position, ...]


_S = "shared/seeds/"  # the source articles, /work/shared/seeds/ (four Arabic, one Persian)
ROUNDS: tuple[Round, ...] = (
    Round(
        1,
        "Baku, Azerbaijan",
        "AZ",
        date(2025, 4, 9),
        "Turkish MoD on Thursday: 'أمس الأربعاء' (000, 001); 003 is dated Friday 22 Farvardin 1404"
        " = 11 April 2025",
        "No agreement on Syria (Kan, 003: 'هیچ توافقی در خصوص وضعیت سوریه حاصل نشده'); both sides"
        " set out their interests and agreed to keep a direct channel (004: 'اتفقا على استمرارية"
        " الحوار عبر قناة تواصل مباشرة'); a new meeting after Passover (003).",
        (
            Position(
                "TR",
                "Israel must stop at once the attacks that threaten Syria's unity",
                "الوقف الفوري للهجمات التي «تهدد وحدة أراضي سوريا وتزعزع أمنها»",
                _S + "000_f2f6ebe8d385f8b6.txt",
            ),
            Position(
                "TR",
                "Israel must give up its expansionist, occupying approach",
                "التخلي عن نهجها «التوسعي والاحتلالي»",
                _S + "000_f2f6ebe8d385f8b6.txt",
            ),
            Position(
                "TR",
                "A base for joint Turkish-Syrian training is being assessed, under"
                " international law and targeting no third country",
                "التقييمات جارية لإنشاء قاعدة من أجل التدريب التركي-السوري المشترك"
                " ... «من دون استهداف دول ثالثة»",
                _S + "000_f2f6ebe8d385f8b6.txt",
            ),
            Position(
                "TR",
                "Technical teams talk when needed; a mechanism like those with the"
                " United States and Russia (Fidan)",
                "على غرار الآليات الموجودة مع الولايات المتحدة وروسيا",
                _S + "001_dc9577c4c91bdc76.txt",
            ),
            Position(
                "TR",
                "Turkish forces are in Syria at the Syrian government's request",
                "وجودها العسكري في سوريا يأتي بطلب من الحكومة السورية",
                _S + "002_cbdbe7018b112b7d.txt",
            ),
            Position(
                "IL",
                "Any change in the distribution of foreign forces in Syria is a red"
                " line (Army Radio)",
                'أي محاولة لتغيير توزيع القوات الأجنبية في سوريا ستكون "خطًا أحمر"',
                _S + "002_cbdbe7018b112b7d.txt",
            ),
            Position(
                "IL",
                "Talks to continue regularly; ready to accept a limited Turkish base"
                " in Syria (Prime Minister's Office)",
                "أبدت إسرائيل استعدادًا لقبول وجود قاعدة عسكرية تركية محدودة في سوريا",
                _S + "004_a4a0228e5689bc48.txt",
            ),
        ),
    ),
    # Round 2's day: turkiyetoday.com/region/turkiye-israel-to-hold-direct-talks-in-baku-on-may-8-
    # israeli-media-3201133 and today.lorientlejour.com/article/1459555; the seed gives the weekday.
    Round(
        2,
        "Baku, Azerbaijan",
        "AZ",
        date(2025, 5, 8),
        "004: 'اليوم الخميس', round 1 'في نيسان الماضي'; the day, 8 May, from Türkiye Today and"
        " L'Orient-Le Jour (10 May 2025), not from the seeds",
        "Not reported in the seeds: 004 previews the round.",
        # The seeds state no Turkish position for this round, only Israel's two demands.
        (
            Position(
                "IL",
                "No military forces near Israel's border with Syria",
                "ضمان عدم وجود أي قوى عسكرية بالقرب من حدودها مع سوريا",
                _S + "004_a4a0228e5689bc48.txt",
            ),
            Position(
                "IL",
                "Syria free of strategic weapons",
                "خلو سوريا من الأسلحة الاستراتيجية",
                _S + "004_a4a0228e5689bc48.txt",
            ),
        ),
    ),
)


# The rounds' outcomes as the register codes them: round 1 ended without agreement (003, Kan);
# no seed reports round 2's outcome.
ROUND_OUTCOMES = {1: "no_agreement", 2: "not_reported"}


@dataclass(frozen=True)
class Proposal:
    """A commitment under negotiation in the demo (simulated, not reported in the sources): who
    proposed it, which parties have consented so far, its rule with the zone named."""

    round: int
    proposer: str
    consented: tuple[str, ...]
    title: str
    basis: str
    rule: Json


# fmt: off
PROPOSALS: tuple[Proposal, ...] = (
    Proposal(2, "IL", ("IL",), "No Turkish forces in southern Syria",
             "IL: no military forces near its border (004)",
             {"kind": "zone", "applies_to": ["TR"], "zone": ZONE_SOUTH}),
    Proposal(2, "IL", ("IL",), "No Turkish forces within 40 km of the 1974 line",
             "IL: no military forces near its border (004)",
             {"kind": "force_posture", "applies_to": ["TR"], "within_km": 40, "zone": ZONE_AOS}),
    Proposal(2, "IL", ("IL", "TR"), "At most 4 Turkish aircraft at T4 at once",
             "IL: ready to accept a limited Turkish base (004)",
             {"kind": "force_posture", "applies_to": ["TR"], "max_aircraft": 4,
              "zone": "T4 (Tiyas) air base"}),
    Proposal(2, "TR", ("TR", "IL"), "Flights near Palmyra notified 24 hours ahead",
             "TR: an end to strikes on the bases it assesses (000, 003)",
             {"kind": "lead_time", "applies_to": ["IL"], "hours": 24, "zone": ZONE_PALMYRA}),
    Proposal(2, "TR", ("TR", "IL"), "5 NM / 300 m between the parties' aircraft at T4",
             "Fidan: a mechanism like those with the US and Russia (001)",
             {"kind": "separation", "applies_to": ["IL", "TR"], "horizontal_m": 9260,
              "vertical_m": 300, "zone": "T4 (Tiyas) air base"}),
    Proposal(2, "TR", ("TR",), "UAV flights in southern Syria are notified",
             "both: technical teams in contact to prevent misunderstanding (001)",
             {"kind": "notification_required", "applies_to": ["IL", "TR"],
              "activity_kinds": ["uav"], "zone": ZONE_SOUTH}),
)
# fmt: on

# The simulated day's incident: Türkiye reports the T4 crossing as unsafe proximity. The crossing
# is this long after the day's start (the CLI's demo replay centres on the same moment).
T4_CROSSING_AFTER_START = timedelta(hours=8, minutes=11, seconds=30)
INCIDENT = {
    "kind": "unsafe_proximity",
    "other_party": "IL",
    "place": {"lon": 37.17, "lat": 34.82, "name": "between Hama and T4"},
    "description": "An Israeli air patrol crossed the notified track of AKINCI 31 with less "
    "than 5 NM and 300 m of separation; no hotline call before the crossing.",
}


def notams(day_start: datetime) -> str:
    """A Turkish firing-range NOTAM over al-Bab for the day, as an AIS office would issue it: the
    demo imports it rather than drawing the zone by hand (daily 06-18 UTC, surface to FL100)."""
    start = _utc(day_start)
    end = start + timedelta(days=1)
    return (
        f"(A0417/{start:%y} NOTAMN\n"
        "Q) OSTT/QRTCA/IV/BO/W/000/100/3622N03731E008\n"
        f"A) OSTT B) {start:%y%m%d%H%M} C) {end:%y%m%d%H%M}\n"
        "D) DAILY 0600-1800\n"
        "E) TEMPORARY RESTRICTED AREA ACTIVATED FOR LIVE FIRING WI AREA 362600N 0372400E - "
        "362600N 0373800E - 361800N 0373800E - 361800N 0372400E - 362600N 0372400E.\n"
        "F) SFC G) FL100)\n"
    )
