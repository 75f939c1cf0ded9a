"""The picture's batch from its rows against the batch of its states."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from deconfliction.tracks.picture import TrackPicture, TrackState, batch_at

T0 = datetime(2030, 6, 1, 8, 0, tzinfo=UTC)

report = st.tuples(
    st.sampled_from(["TR", "IL"]),
    st.integers(0, 15),  # track
    st.floats(32.0, 37.5),
    st.floats(35.5, 42.5),
    st.floats(0.0, 12_000.0),
    st.sampled_from([0.0, 250.0]) | st.floats(0.0, 300.0),
    st.floats(0.0, 360.0),
    st.floats(-20.0, 20.0),
    st.integers(-5_000_000, 5_000_000),  # time, microseconds from T0
    st.sampled_from([1, 30]),  # stale after, seconds
    st.sampled_from(["update", "load", "expire"]),
)


@settings(max_examples=200, deadline=None)
@given(st.lists(report, max_size=60), st.integers(-2_000_000, 40_000_000))
def test_batch_is_the_batch_of_the_snapshot(
    reports: list[tuple[str, int, float, float, float, float, float, float, int, int, str]],
    at_us: int,
) -> None:
    picture = TrackPicture()
    for party, track, lat, lon, alt, gs, course, vs, us, stale_s, how in reports:
        time = T0 + timedelta(microseconds=us)
        state = TrackState(
            party, f"t{track}", lat, lon, alt, gs, course, vs, time,
            time + timedelta(seconds=stale_s), "api",
        )  # fmt: skip
        if how == "update":
            picture.update(state)
        elif how == "load":
            picture.load([state])
        else:
            picture.expire(time)
    now = T0 + timedelta(microseconds=at_us)
    want = batch_at(picture.snapshot(now), now)
    got = picture.batch(now)
    order = np.argsort(np.array(got.ids, dtype=object))
    assert [got.ids[k] for k in order] == want.ids
    assert [got.party[k] for k in order] == want.party
    for name, tolerance in (
        # Times as float seconds: rounding of ~1e-7 s, under a millimetre at these speeds.
        ("lat", 1e-8),
        ("lon", 1e-8),
        ("alt_m", 1e-5),
        ("gs_mps", 0.0),
        ("course_deg", 1e-6),
        ("vs_mps", 0.0),
    ):
        np.testing.assert_allclose(
            getattr(got, name)[order], getattr(want, name), rtol=0, atol=tolerance, err_msg=name
        )
