"""The in-memory index on SQLite catches up with the volumes table before every check. A write
whose transaction rolls back after the index took in its volumes (in a group commit, the next
write of the batch reads them; then the commit fails) leaves ids that SQLite hands out again:
the index must forget those volumes and take in the new ones under the same ids."""

from __future__ import annotations

import pytest

from deconfliction.activities import service
from deconfliction.activities.models import ActivityIn
from deconfliction.conflicts.detection import MemoryIndex
from deconfliction.detect.strategic import SeparationMinima
from deconfliction.parties.models import Actor
from deconfliction.store.db import transaction
from tests.api.conftest import Api
from tests.builders import activity, volume
from tests.conftest import FakeClock

IL = Actor("il-duty", "IL", "officer", "participant")
REACH = SeparationMinima(10_000.0, 300.0, 600.0)


class RolledBack(Exception):
    """Raised inside a write to make its group commit roll back."""


def test_volumes_of_a_rolled_back_write_are_forgotten_and_their_ids_read_again(
    sqlite_api: Api, clock: FakeClock
) -> None:
    api, engine = sqlite_api, sqlite_api.engine
    index = api.client.app.state.services.index  # type: ignore[attr-defined]
    assert isinstance(index, MemoryIndex)
    there = ActivityIn.model_validate(activity(volume(38.0, 35.0)))
    with pytest.raises(RolledBack), transaction(engine, write=True) as conn:
        service.notify(conn, IL, there, clock(), index)
        # What the next write of a batch does first: the index takes the volume in.
        taken = index.candidates(conn, "TR", there.to_volumes(), REACH, clock())
        assert [c.party for c in taken] == ["IL"]
        raise RolledBack  # the batch's commit fails: none of it is written

    # The same ids again, for a plan somewhere else: a crossing plan must meet it.
    assert api.as_("il-duty").post("/v1/activities", json=activity(volume())).status_code == 201
    crossing = api.as_("tr-duty").post("/v1/activities", json=activity(volume(36.05, 34.05)))
    assert crossing.status_code == 201, crossing.text
    assert len(crossing.json()["conflicts"]) == 1
    # And nothing meets the place of the plan that was never written.
    away = api.as_("tr-duty").post("/v1/activities", json=activity(volume(38.0, 35.0)))
    assert away.json()["conflicts"] == []
