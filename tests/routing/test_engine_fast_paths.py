"""The router's caches and shortcuts give the same answers as computing afresh."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.routing.builders import ctx, pool, task, worker
from worldpool.routing import Router, RoutingPolicy
from worldpool.routing.engine import Scored, _kth_largest
from worldpool.routing.filters.capacity import CapacityFilter
from worldpool.routing.hooks import FilterHooks
from worldpool.routing.passes import FilterPass, nearest_misses


def test_static_filter_cache_is_dropped_when_profiles_change() -> None:
    snap = pool(worker("coder", caps=("coding",)))
    router = Router()
    wants_browser = ctx(task(capabilities={"browser_operations"}))
    assert router.decide(wants_browser, snap).winner is None  # cached: nobody has it
    snap.upsert(worker("browser", caps=("browser_operations",)))
    d = router.decide(wants_browser, snap)
    assert d.winner == "browser" and d.excluded_by == {"capabilities:missing_capability": 1}


def test_cached_masks_are_read_only_and_state_changes_still_count() -> None:
    snap = pool(worker("a", slots=1), worker("b", slots=1))
    router = Router()
    c = ctx(task())
    assert router.decide(c, snap).winner == "a"
    failures, mask = router.filters[1].check(c, snap)  # type: ignore[attr-defined]
    assert not any(m.flags.writeable for m in failures.values())
    assert not mask.flags.writeable
    snap.upsert(worker("a", slots=1, running=1))  # same profile: only the state row moves
    d = router.decide(c, snap)
    assert d.winner == "b" and d.excluded_by == {"capacity:full": 1}


def test_near_miss_verdicts_match_fresh_ones_across_decisions() -> None:
    snap = pool(worker("ok"), worker("no-gpu"), worker("gpu", gpus=(("L4", 24.0),)))
    router = Router(RoutingPolicy(report_candidates_max=5))
    c = ctx(task(requirements={"gpu": True, "min_vram_gb": 40}))
    first = router.decide(c, snap)
    second = router.decide(c, snap)
    assert first.candidates == second.candidates
    reasons = {r.worker_id: r.verdicts[0].reason for r in second.candidates}
    assert reasons["gpu"] == "has 24 GB VRAM, task needs 40 GB"


def test_kth_largest_matches_a_sort() -> None:
    rng = np.random.default_rng(3)
    for size in (2, 5, 40, 300):
        values = rng.integers(0, 4, size).astype(np.float64)  # many ties
        for k in range(1, min(size, 30)):
            assert _kth_largest(values, k) == np.sort(values)[::-1][k - 1]


def test_rank_breaks_ties_by_id_for_any_k() -> None:
    snap = pool(*(worker(f"w{i:02d}") for i in range(12)))
    router = Router(RoutingPolicy(near_tie=0.0))  # the per-task hash is off
    totals = np.array([0.5, 0.9, 0.5, 0.9, 0.1, 0.5, 0.9, 0.2, 0.5, 0.5, 0.9, 0.3])
    scored = Scored(np.arange(12), {}, {}, totals)
    expected = sorted(range(12), key=lambda r: (-totals[r], f"w{r:02d}"))
    for k in (1, 2, 3, 4, 5, 7, 12, 20):
        got = router.rank(ctx(task()), snap, scored, k).tolist()
        assert got == expected[:k]


@settings(max_examples=200, deadline=None)
@given(
    n=st.integers(0, 60),
    filters=st.integers(0, 4),
    room=st.integers(1, 30),
    data=st.data(),
)
def test_nearest_misses_are_the_full_sorts_first_rows(
    n: int, filters: int, room: int, data: st.DataObject
) -> None:
    """Fewest failing filters first, then by id rank: as a full lexsort of every missed
    row gives them (the partial selection must not change the order)."""
    masks = [np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)), bool)
             for _ in range(filters)]  # fmt: skip
    id_rank = np.array(data.draw(st.permutations(list(range(n)))), dtype=np.int64)
    hooks = FilterHooks.of(CapacityFilter())
    passes = [FilterPass(hooks, {"x": ~m} if not m.all() else {}, m) for m in masks]
    feasible = np.ones(n, dtype=np.bool_)
    for m in masks:
        feasible &= m
    missed = np.flatnonzero(~feasible)
    failing = np.zeros(len(missed), dtype=np.int64)
    for p in passes:
        if p.failures:
            failing += ~p.mask[missed]
    expected = missed[np.lexsort((id_rank[missed], failing))][:room]
    assert nearest_misses(passes, feasible, id_rank, room).tolist() == expected.tolist()
