"""``decide(..., explain=False)``: the dispatch hot path ranks exactly as the full decision
does, but lists the winner and runner-up only and looks at no rejected candidate."""

from __future__ import annotations

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing import PoolSnapshot, Router
from worldpool.routing.engine import WAITING_FOR_SLOT


def _pool_with_misses() -> PoolSnapshot:
    fits = [worker(f"fit-{i}", cost=1.0 + i) for i in range(3)]
    misses = [worker(f"miss-{i:02d}", handlers=("other",)) for i in range(40)]
    return pool(*fits, *misses)


def test_lean_and_full_decisions_agree_on_the_ranking() -> None:
    snapshot = _pool_with_misses()
    router = Router()
    spec = task(handler="run")

    lean = router.decide(ctx(spec), snapshot, explain=False)
    full = router.decide(ctx(spec), snapshot)

    assert (lean.winner, lean.runner_up) == (full.winner, full.runner_up)
    assert lean.feasible_count == full.feasible_count == 3
    assert [c.worker_id for c in lean.candidates] == [c.worker_id for c in full.candidates[:2]]
    assert not lean.explained and full.explained
    assert lean.excluded_by == {}
    assert full.excluded_by == {"capabilities:no_handler": 40}
    assert any(not c.feasible for c in full.candidates)
    assert all(c.feasible for c in lean.candidates)


def test_a_lean_decision_without_a_winner_is_not_diagnosed() -> None:
    snapshot = _pool_with_misses()
    router = Router()
    spec = task(handler="nobody")

    lean = router.decide(ctx(spec), snapshot, explain=False)
    full = router.decide(ctx(spec), snapshot)

    assert lean.winner is None and full.winner is None
    assert lean.candidates == [] and lean.reasons == [] and lean.suggestion is None
    assert full.reasons and full.suggestion


def test_a_lean_decision_says_in_one_line_when_only_slots_are_missing() -> None:
    snapshot = pool(worker("busy", slots=1, running=1), worker("other", handlers=("x",)))
    router = Router()

    lean = router.decide(ctx(task(handler="run")), snapshot, explain=False)

    assert lean.winner is None
    assert lean.reasons == [f"{WAITING_FOR_SLOT}: 1 worker fits but all are busy"]
    assert lean.suggestion is None
