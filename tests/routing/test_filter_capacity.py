from __future__ import annotations

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.models import WorkerState
from worldpool.routing.filters.capacity import CapacityFilter


def test_capacity_needs_a_free_slot_and_follows_state_updates() -> None:
    snap = pool(worker("idle", slots=2), worker("full", slots=2, running=2))
    f = CapacityFilter()
    c = ctx(task())
    assert f.mask(c, snap).tolist() == [True, False]
    assert_mask_matches_verdicts(f, c, snap)
    assert f.verdict(c, snap.workers[1]).reason == "has all slots busy (2/2 in use)"
    snap.update_state(WorkerState(worker_id="full", running=1))
    assert f.mask(c, snap).tolist() == [True, True]
