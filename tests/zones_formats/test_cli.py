"""`deconfliction zones import` and `zones export`, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path

import defusedxml.ElementTree as SafeET
from sqlalchemy import Engine

from tests.test_cli import area, key, run, url_of
from tests.zones_formats.support import SAMPLES

__all__ = ["area"]


def test_import_dry_run_then_import_then_again(
    engine: Engine, area: dict[str, str], tmp_path: Path
) -> None:
    db = url_of(engine)
    token = area["il-duty"]
    sample = str(SAMPLES / "openair.txt")
    code, out, _ = run(
        "zones", "import", sample, "--format", "openair", "--dry-run", "--db", db, "--token", token
    )
    assert code == 0
    assert [line.split("\t")[:3] for line in out.splitlines()] == [
        ["declared", "-", "openair:LLR-QUNEITRA TEST"],
        ["declared", "-", "openair:LLD-SECTOR"],
        ["declared", "-", "openair:T4 CIRCLE"],
    ]
    code, out, _ = run("zones", "list", "--db", db, "--token", token)
    assert out == ""
    code, out, err = run(
        "zones",
        "import",
        sample,
        "--format",
        "openair",
        "--db",
        db,
        "--token",
        token,
        "--key",
        key(tmp_path, "il-duty"),
    )
    assert code == 0, err
    assert "recorded as entry" in err
    assert [line.split("\t")[0] for line in out.splitlines()] == ["declared"] * 3
    code, out, _ = run(
        "zones",
        "import",
        sample,
        "--format",
        "openair",
        "--db",
        db,
        "--token",
        token,
        "--key",
        key(tmp_path, "il-duty"),
        "--json",
    )
    assert {i["action"] for i in json.loads(out)["imported"]} == {"unchanged"}


def test_refused_records_exit_1_and_nothing_importable_exits_2(
    engine: Engine, area: dict[str, str], tmp_path: Path
) -> None:
    db = url_of(engine)
    token = area["il-duty"]
    code, out, err = run(
        "zones",
        "import",
        str(SAMPLES / "openair_bad.txt"),
        "--format",
        "openair",
        "--db",
        db,
        "--token",
        token,
        "--key",
        key(tmp_path, "il-duty"),
    )
    assert code == 1
    assert out.startswith("declared\t")
    assert err.splitlines()[1:] == [
        "refused: line 1 (NO LIMITS): AL and AH (lower and upper limits) are both needed",
        "refused: line 7 (BAD COORDINATE): line 11: minutes or seconds of 33 70 00 are 60 or more",
    ]
    code, _, err = run(
        "zones",
        "import",
        str(SAMPLES / "ed269.json"),
        "--format",
        "kml",
        "--db",
        db,
        "--token",
        token,
    )
    assert code == 2 and err.startswith("error: format:")
    code, _, err = run(
        "zones",
        "import",
        str(SAMPLES / "openair.txt"),
        "--format",
        "notam",
        "--db",
        db,
        "--token",
        token,
        "--key",
        key(tmp_path, "il-duty"),
    )
    assert (code, err) == (
        2,
        "error: not a notam file: no NOTAM found: expected a line such as 'A1234/30 NOTAMN'\n",
    )


def test_export_formats(engine: Engine, area: dict[str, str], tmp_path: Path) -> None:
    db = url_of(engine)
    token = area["tr-duty"]
    code, _, err = run(
        "zones",
        "import",
        str(SAMPLES / "ed269.json"),
        "--format",
        "ed269",
        "--db",
        db,
        "--token",
        token,
        "--key",
        key(tmp_path, "tr-duty"),
    )
    assert code == 1, err  # ILU004 is upside down
    code, out, _ = run("zones", "export", "--format", "geojson", "--db", db, "--token", token)
    assert code == 0
    assert [f["properties"]["source"] for f in json.loads(out)["features"]] == [
        "ed269:ILU001",
        "ed269:ILU002",
        "ed269:ILU003#0",
        "ed269:ILU003#1",
    ]
    target = tmp_path / "zones.kml"
    code, _, _ = run(
        "zones", "export", "--format", "kml", "-o", str(target), "--db", db, "--token", token
    )
    assert code == 0
    root = SafeET.fromstring(target.read_bytes())
    names = [p.text for p in root.iter("{http://www.opengis.net/kml/2.2}name")]
    assert "Golan UAS prohibited zone" in names
    code, out, _ = run("zones", "export", "--format", "cot", "--db", db, "--token", token)
    assert len(out.splitlines()) == 4
    code, _, err = run("zones", "export", "--format", "shp", "--db", db, "--token", token)
    assert (code, err) == (2, "error: --format 'shp' is not one of geojson, kml, cot\n")
