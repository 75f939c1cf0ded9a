"""The early cycles' engine (only the pairs of the tracks that reported) against the full
engine and the brute-force reference."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deconfliction.detect.tactical import (
    TacticalConflict,
    TacticalMinima,
    TrackBatch,
    detect_conflicts,
    detect_conflicts_of,
)

from .reference import reference_conflicts
from .support import CENTRE, syria_traffic
from .test_tactical_engine import assert_same, traffic


def touching(found: list[TacticalConflict], ids: set[str]) -> list[TacticalConflict]:
    return [c for c in found if c.a in ids or c.b in ids]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(traffic(), st.data())
def test_incremental_equals_reference_for_the_reported_tracks(
    case: tuple[TrackBatch, TacticalMinima, bool], data: st.DataObject
) -> None:
    b, minima, same_party = case
    rows = data.draw(st.sets(st.integers(0, len(b) - 1)))
    ids = {b.ids[k] for k in rows}
    got = detect_conflicts_of(
        b, np.array(sorted(rows), dtype=np.int64), minima, same_party=same_party
    )
    assert_same(got, touching(reference_conflicts(b, minima, same_party), ids))


def test_incremental_is_the_full_engine_restricted_on_dense_syria_traffic() -> None:
    b = syria_traffic(3000, seed=11)
    rows = np.random.default_rng(3).choice(len(b), 150, replace=False)
    ids = {b.ids[k] for k in rows.tolist()}
    want = touching(detect_conflicts(b, origin=CENTRE), ids)
    assert len(want) > 5
    # The same figures to the bit: the same plane, the same pair test.
    assert detect_conflicts_of(b, rows, origin=CENTRE) == want
    assert detect_conflicts_of(b, np.arange(len(b)), origin=CENTRE) == detect_conflicts(
        b, origin=CENTRE
    )
