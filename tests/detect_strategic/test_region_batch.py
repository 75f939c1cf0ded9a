"""The overlap regions of a check are drawn in one batch per first volume: each must be the very
region (vertex for vertex) that drawing its pair alone gives."""

from __future__ import annotations

import shapely
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.detect.strategic import SeparationMinima, overlap_region, pairwise_conflicts
from deconfliction.geo import AltitudeBand, Footprint, Volume4D
from deconfliction.geo.projection import LocalProjection, snapped_centre
from tests.detect_strategic.reference import T0, footprints

BAND = AltitudeBand(0.0, 1_000.0)
END = T0.replace(hour=T0.hour + 2)


@settings(max_examples=100, deadline=None)
@given(
    firsts=st.lists(footprints, min_size=1, max_size=2),
    seconds=st.lists(footprints, min_size=1, max_size=6),
    horizontal=st.sampled_from([0.0, 500.0, 3_000.0]),
)
def test_regions_drawn_together_equal_regions_drawn_alone(
    firsts: list[Footprint], seconds: list[Footprint], horizontal: float
) -> None:
    minima = SeparationMinima(horizontal, 0.0, 0.0)
    pairs = [
        (Volume4D(a, BAND, T0, END), Volume4D(b, BAND, T0, END)) for a in firsts for b in seconds
    ]
    found = pairwise_conflicts(pairs, minima)
    # Asked for in reverse: the first region asked for draws its whole batch.
    for (a, b), overlap in reversed(list(zip(pairs, found, strict=True))):
        if overlap is None:
            continue
        alone = overlap_region(
            a.footprint, b.footprint, horizontal, LocalProjection(*snapped_centre(a.footprint))
        )
        assert shapely.equals_exact(overlap.region, alone, tolerance=0.0)
