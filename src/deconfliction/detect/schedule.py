"""Strategic detection against a zone that is active only in its scheduled periods."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta

from deconfliction.detect.strategic import Overlap, SeparationMinima, conflict
from deconfliction.geo.model import Volume4D
from deconfliction.geo.schedule import DailyPeriod, active_windows


def conflict_in_schedule(
    volume: Volume4D,
    zone: Volume4D,
    periods: Sequence[DailyPeriod],
    minima: SeparationMinima,
) -> Overlap | None:
    """The first overlap of ``volume`` with ``zone`` (whose start/end is its validity) during
    one of its active windows; without periods, the plain test over the whole validity."""
    if not periods:
        return conflict(volume, zone, minima)
    buffer = timedelta(seconds=minima.time_buffer_s)
    for begin, finish in active_windows(
        periods, zone.start, zone.end, volume.start - buffer, volume.end + buffer
    ):
        overlap = conflict(volume, replace(zone, start=begin, end=finish), minima)
        if overlap is not None:
            return overlap
    return None
