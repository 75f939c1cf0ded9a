"""read_tracks: the offline command's parser, and TrackBatch's own checks."""

from __future__ import annotations

import numpy as np
import pytest

from deconfliction.detect.tactical import TrackBatch, read_tracks

from .support import batch

HEADER = "id,party,lat,lon,alt_m,gs_mps,course_deg,vs_mps"
GOOD = "A1,TR,34.5,38.2,6000,200,90,0"


def test_csv_any_column_order_and_extra_columns() -> None:
    text = (
        "party , id,lat,lon,alt_m,gs_mps,course_deg,vs_mps,note\n"
        "TR,A1,34.5,38.2,6000,200,90,0,x\n"
        "\n"
        "IL,B2,34.6,38.3,6100.5,180,270,-5,\n"
    )
    b = read_tracks(text, "csv")
    assert b.ids == ["A1", "B2"]
    assert b.party == ["TR", "IL"]
    assert b.alt_m.tolist() == [6000.0, 6100.5]
    assert b.vs_mps.tolist() == [0.0, -5.0]
    assert b.lat.dtype == np.float64


def test_jsonl() -> None:
    text = (
        '{"id": "A1", "party": "TR", "lat": 34.5, "lon": 38.2, "alt_m": 6000, "gs_mps": 200,'
        ' "course_deg": 90, "vs_mps": 0, "extra": true}\n\n'
        '{"id": "B2", "party": "IL", "lat": 34.6, "lon": 38.3, "alt_m": 6100, "gs_mps": 180,'
        ' "course_deg": 270, "vs_mps": -5}\n'
    )
    b = read_tracks(text, "jsonl")
    assert b.ids == ["A1", "B2"]
    assert b.gs_mps.tolist() == [200.0, 180.0]


def test_header_only_and_empty_jsonl_are_empty_batches() -> None:
    assert len(read_tracks(HEADER + "\n", "csv")) == 0
    assert len(read_tracks("", "jsonl")) == 0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "line 1: missing header"),
        ("id,party,lat,lon,alt_m,gs_mps,course_deg\n", "line 1: header lacks column vs_mps"),
        (f"{HEADER}\n{GOOD}\nB,TR,34,38,6000,200,90\n", "line 3: 7 fields, header has 8"),
        (f"{HEADER}\n{GOOD}\nB,TR,nan,38,6000,200,90,0\n", "line 3: lat is not a finite number"),
        (f"{HEADER}\nB,TR,34,38,inf,200,90,0\n", "line 2: alt_m is not a finite number"),
        (f"{HEADER}\nB,TR,34,38,6000,fast,90,0\n", "line 2: gs_mps must be a number, got 'fast'"),
        (f"{HEADER}\nB,TR,34,38,6000,200,90,\n", "line 2: vs_mps must be a number, got ''"),
        (f"{HEADER}\nB,TR,91,38,6000,200,90,0\n", "line 2: lat 91 is outside -90..90"),
        (f"{HEADER}\nB,TR,34,-180.5,6000,200,90,0\n", "line 2: lon -180.5 is outside -180..180"),
        (f"{HEADER}\nB,TR,34,38,6000,-1,90,0\n", "line 2: gs_mps -1 is negative"),
        (f"{HEADER}\nB,TR,34,38,6000,1,361,0\n", "line 2: course_deg 361 is outside 0..360"),
        (f"{HEADER}\n,TR,34,38,6000,1,1,0\n", "line 2: id must be a non-empty string"),
        (f"{HEADER}\nB,,34,38,6000,1,1,0\n", "line 2: party must be a non-empty string"),
        (f"{HEADER}\n{GOOD}\n\n{GOOD}\n", "line 4: duplicate id 'A1' \\(first on line 2\\)"),
    ],
)
def test_bad_csv(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        read_tracks(text, "csv")


ROW = '"id": "A", "party": "TR", "lat": 34, "lon": 38, "alt_m": 6000, "gs_mps": 1, "course_deg": 1'


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{" + ROW + "}\n", "line 1: missing vs_mps"),
        ("{" + ROW + ', "vs_mps": NaN}\n', "line 1: vs_mps is not a finite number"),
        ("{" + ROW + ', "vs_mps": "0"}\n', None),
        ("{" + ROW + ', "vs_mps": true}\n', "line 1: vs_mps must be a number, got True"),
        ("{" + ROW + ', "vs_mps": null}\n', "line 1: missing vs_mps"),
        ("\n[1, 2]\n", "line 2: expected a JSON object"),
        ('{"id": 1\n', "line 1: not valid JSON"),
        (
            "{" + ROW.replace('"A"', "7") + ', "vs_mps": 0}\n',
            "line 1: id must be a non-empty string",
        ),
        (
            "{" + ROW + ', "vs_mps": 0}\n' + "{" + ROW + ', "vs_mps": 0}\n',
            "line 2: duplicate id 'A' \\(first on line 1\\)",
        ),
    ],
)
def test_bad_jsonl(text: str, message: str | None) -> None:
    if message is None:  # numbers given as strings are read as numbers
        assert read_tracks(text, "jsonl").vs_mps.tolist() == [0.0]
        return
    with pytest.raises(ValueError, match=message):
        read_tracks(text, "jsonl")


def test_unknown_format() -> None:
    with pytest.raises(ValueError, match="unknown track format 'xml'"):
        read_tracks("", "xml")  # type: ignore[arg-type]


def one_track(**change: object) -> dict[str, object]:
    base: dict[str, object] = {
        "ids": ["A"],
        "party": ["TR"],
        "lat": np.array([34.0]),
        "lon": np.array([38.0]),
        "alt_m": np.array([100.0]),
        "gs_mps": np.array([1.0]),
        "course_deg": np.array([0.0]),
        "vs_mps": np.array([0.0]),
    }
    base.update(change)
    return base


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"party": []}, "party has 0 entries for 1 ids"),
        ({"lat": np.array([1.0, 2.0])}, r"lat has shape \(2,\), expected \(1,\)"),
        ({"vs_mps": np.array([np.nan])}, "track 'A': vs_mps is not a finite number"),
        ({"lon": np.array([200.0])}, "track 'A': lon outside -180..180"),
        ({"gs_mps": np.array([-2.0])}, "track 'A': gs_mps is negative"),
    ],
)
def test_batch_checks(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackBatch(**one_track(**change))  # type: ignore[arg-type]


def test_batch_rejects_duplicate_ids() -> None:
    row = ("A", "TR", 34.0, 38.0, 100.0, 1.0, 0.0, 0.0)
    with pytest.raises(ValueError, match="duplicate track id 'A'"):
        batch([row, row])


def test_csv_with_byte_order_mark() -> None:
    assert read_tracks("\ufeff" + HEADER + "\n" + GOOD + "\n", "csv").ids == ["A1"]
