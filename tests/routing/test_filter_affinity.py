from __future__ import annotations

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.routing.filters.affinity import AffinityFilter


def test_hard_affinity_pins_to_the_known_worker() -> None:
    snap = pool(worker("a"), worker("b"), worker("c"))
    f = AffinityFilter()
    c = ctx(task(affinity={"key": "wf-1", "mode": "hard"}), affinity_worker="b")
    assert f.mask(c, snap).tolist() == [False, True, False]
    assert_mask_matches_verdicts(f, c, snap)
    assert f.verdict(c, snap.workers[0]).reason == (
        "is not b, the worker hard affinity 'wf-1' pins this task to"
    )


def test_no_pin_without_hard_mode_or_known_worker() -> None:
    snap = pool(worker("a"), worker("b"))
    f = AffinityFilter()
    soft = ctx(task(affinity={"key": "k", "mode": "soft"}), affinity_worker="b")
    first = ctx(task(affinity={"key": "k", "mode": "hard"}))
    assert f.mask(soft, snap).tolist() == [True, True]
    assert f.mask(first, snap).tolist() == [True, True]


def test_hard_affinity_to_a_worker_that_left_excludes_everyone() -> None:
    snap = pool(worker("a"))
    c = ctx(task(affinity={"key": "k", "mode": "hard"}), affinity_worker="gone")
    assert AffinityFilter().mask(c, snap).tolist() == [False]
