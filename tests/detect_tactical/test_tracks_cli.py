"""`deconfliction tracks detect FILE --json` prints exactly the reference's conflict pairs, and a
bad file is one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from deconfliction.cli import app
from deconfliction.detect.tactical import TacticalMinima
from tests.detect_tactical.reference import reference_conflicts
from tests.detect_tactical.support import syria_traffic


def test_cli_matches_the_all_pairs_reference(tmp_path: Path) -> None:
    traffic = syria_traffic(600, seed=7)
    lines = ["id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps"] + [
        f"{traffic.ids[i]},{traffic.party[i]},{traffic.lat[i]},{traffic.lon[i]},"
        f"{traffic.alt_m[i]},{traffic.gs_mps[i]},{traffic.course_deg[i]},"
        f"{traffic.vs_mps[i]}"
        for i in range(len(traffic.ids))
    ]
    path = tmp_path / "tracks.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, ["tracks", "detect", str(path), "--json"])
    assert result.exit_code == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    expected = reference_conflicts(traffic, TacticalMinima(), same_party=False)
    assert expected, "the traffic should hold some conflicts"
    assert [(p["a"], p["b"]) for p in printed] == [(c.a, c.b) for c in expected]
    assert set(printed[0]) == {"a", "b", "tcpa_s", "dcpa_m", "t_in_s", "t_out_s"}


def test_bad_tracks_file(tmp_path: Path) -> None:
    path = tmp_path / "tracks.csv"
    path.write_text(
        "id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps\na,TR,95,36,1,1,1,0\n", encoding="utf-8"
    )
    result = CliRunner().invoke(app, ["tracks", "detect", str(path)])
    assert result.exit_code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "line 2" in result.stderr
