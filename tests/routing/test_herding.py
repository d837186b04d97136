"""Herding: many decisions taken on one pool snapshot must not all pick one box."""

from __future__ import annotations

from collections import Counter

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing import PoolSnapshot, Router, RoutingPolicy

BOXES = 8
SLOTS = 8
DECISIONS = 64


def fleet() -> PoolSnapshot:
    return pool(*(worker(f"w{i:02d}", slots=SLOTS, cost=1.0) for i in range(BOXES)))


def placements(router: Router, snap: PoolSnapshot, *, reserve: bool) -> Counter[str]:
    """Where 64 tasks go; ``reserve`` takes each slot on the snapshot as the dispatcher
    does within a pass (``PoolView.adjust_running``), else the snapshot stays as read
    (another replica's view, or decisions taken between refreshes)."""
    where: Counter[str] = Counter()
    for i in range(DECISIONS):
        decision = router.decide(ctx(task(id=f"t{i}")), snap)
        assert decision.winner is not None
        where[decision.winner] += 1
        if reserve:
            w = snap.workers[snap.row_of(decision.winner)]
            snap.update_state(w.state.model_copy(update={"running": w.state.running + 1}))
    return where


def test_one_stale_snapshot_sends_every_task_to_one_box_without_near_ties() -> None:
    where = placements(Router(RoutingPolicy(near_tie=0.0)), fleet(), reserve=False)
    assert where == Counter({"w00": DECISIONS})  # the herd: 64 tasks on one 8-slot box


def test_near_ties_spread_decisions_taken_on_one_snapshot() -> None:
    where = placements(Router(RoutingPolicy()), fleet(), reserve=False)
    assert RoutingPolicy().near_tie > 0  # on by default
    assert len(where) == BOXES  # every box gets some
    assert max(where.values()) <= 2 * SLOTS  # no box gets more than twice its slots


def test_reservations_counted_in_a_pass_fill_each_box_to_its_slots() -> None:
    where = placements(Router(RoutingPolicy()), fleet(), reserve=True)
    assert where == Counter({f"w{i:02d}": SLOTS for i in range(BOXES)})


def test_near_tie_choice_is_reproducible_per_task() -> None:
    router = Router(RoutingPolicy())
    first = [router.decide(ctx(task(id=f"t{i}")), fleet()).winner for i in range(16)]
    again = [router.decide(ctx(task(id=f"t{i}")), fleet()).winner for i in range(16)]
    assert first == again


def test_a_clearly_better_worker_still_wins_every_time() -> None:
    snap = pool(
        *(worker(f"w{i:02d}", slots=SLOTS, cost=5.0) for i in range(BOXES - 1)),
        worker("cheap", slots=SLOTS, cost=0.0),
    )
    where = placements(Router(RoutingPolicy()), snap, reserve=False)
    assert where == Counter({"cheap": DECISIONS})  # 0.05 ahead on cost: outside the band
