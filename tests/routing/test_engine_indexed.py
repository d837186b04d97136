"""The lean decision's indexed walk against the full pass over every worker.

``decide(explain=False)`` starts from the smallest candidate set a filter's index offers
(the workers running the handler, holding a capability or label, in the allowed
regions, the pinned worker) and asks each filter about the rows still in; the full
explanation (``explain=True``) runs every filter over the whole pool. On random pools
and tasks both must find the same feasible workers, the same winner and runner-up, the
same backlog count and the same affinity wait; every filter's ``check_rows`` must agree
with its full mask, and every index must hold every passing row.
"""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import examples
from tests.routing.builders import ctx, pool, task, worker
from tests.routing.test_properties import CAPS, REGIONS
from worldpool.models import Affinity, AffinityMode, TaskSpec, Worker, WorkerStatus
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
from worldpool.routing.engine import WAITING_FOR_SLOT

PROFILE = settings(
    max_examples=examples(50), deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
HANDLERS = ["run", "other", "render"]


@st.composite
def members(draw: st.DrawFn) -> list[Worker]:
    out = []
    for i in range(draw(st.integers(0, 30))):
        gpus = draw(st.lists(st.sampled_from([("A100-40GB", 40.0), ("H100", 80.0)]), max_size=2))
        slots = draw(st.integers(1, 3))
        out.append(
            worker(
                f"w{i:02d}",
                region=draw(st.sampled_from(REGIONS)),
                caps=tuple(draw(st.sets(st.sampled_from(CAPS), max_size=4))),
                handlers=tuple(draw(st.sets(st.sampled_from(HANDLERS), min_size=1))),
                gpus=tuple(gpus),
                memory_gb=draw(st.sampled_from([4.0, 16.0, 64.0])),
                cpus=draw(st.sampled_from([2, 8, 32])),
                tools=tuple(draw(st.sets(st.sampled_from(["chromium", "git"])))),
                models=tuple(draw(st.sets(st.sampled_from(["llama", "qwen"]), max_size=1))),
                cost=draw(st.sampled_from([0.0, 0.5, 1.0, 3.0, 12.0])),
                slots=slots,
                running=draw(st.integers(0, slots)),
                status=draw(st.sampled_from([WorkerStatus.ONLINE] * 3 + list(WorkerStatus))),
                heartbeat_age_s=draw(st.sampled_from([0.0, 0.0, 1.0, 10.0])),
                latency_ms=draw(st.none() | st.sampled_from([5.0, 50.0, 400.0])),
                labels=draw(st.sampled_from([{}, {"tier": "gold"}, {"tier": "silver"}])),
            )
        )
    return out


@st.composite
def tasks(draw: st.DrawFn, n: int) -> TaskSpec:
    requirements = {
        "gpu": draw(st.booleans()),
        "gpu_count": draw(st.sampled_from([0, 0, 2])),
        "gpu_model": draw(st.sampled_from([None, None, "h100"])),
        "min_vram_gb": draw(st.sampled_from([0.0, 40.0, 80.0])),
        "min_memory_gb": draw(st.sampled_from([0.0, 16.0])),
        "min_cpus": draw(st.sampled_from([0, 8])),
        "model": draw(st.sampled_from([None, None, "llama"])),
        "tools": draw(st.sets(st.sampled_from(["chromium", "git"]), max_size=1)),
        "regions": draw(st.sampled_from([[], [], ["eu-*"], ["asia-pacific", "us-*"], ["mars"]])),
        "exclude_regions": draw(st.sampled_from([[], ["on-prem"]])),
        "labels": draw(st.sampled_from([{}, {"tier": "gold"}])),
    }
    affinity = None
    if n and draw(st.booleans()):
        mode = draw(st.sampled_from(list(AffinityMode)))
        affinity = Affinity(key="k", mode=mode, wait_s=5.0)
    return task(
        id=f"t{draw(st.integers(0, 999))}",
        handler=draw(st.sampled_from([*HANDLERS, "nobody"])),
        capabilities=sorted(draw(st.sets(st.sampled_from([*CAPS, "x-rare"]), max_size=2))),
        requirements=requirements,
        interactive=draw(st.booleans()),
        user_location=draw(st.sampled_from([None, "london", "tokyo"])),
        heavy=draw(st.booleans()),
        affinity=affinity,
        weights=draw(st.sampled_from([{}, {"cost": 2.0}])),
    )


@st.composite
def cases(draw: st.DrawFn) -> tuple[PoolSnapshot, RoutingContext, float]:
    workers = draw(members())
    spec = draw(tasks(len(workers)))
    ids = [w.id for w in workers]
    target = draw(st.sampled_from([*ids, "gone"])) if spec.affinity and ids else None
    avoid = frozenset(draw(st.sets(st.sampled_from(ids), max_size=3))) if ids else frozenset()
    context = ctx(
        spec,
        affinity_worker=target,
        waited_s=draw(st.sampled_from([0.0, 9.0])),
        avoid_workers=avoid,
    )
    return pool(*workers), context, draw(st.sampled_from([0.0, 0.02]))


def full_feasible(router: Router, c: RoutingContext, snapshot: PoolSnapshot) -> np.ndarray:
    alive = np.ones(len(snapshot), dtype=np.bool_)
    for p in router.run_filters(c, snapshot):
        alive &= p.mask
    return alive


@PROFILE
@given(case=cases())
def test_the_lean_decision_matches_the_full_scan(
    case: tuple[PoolSnapshot, RoutingContext, float],
) -> None:
    snapshot, c, near_tie = case
    router = Router(RoutingPolicy(near_tie=near_tie, report_candidates_max=5))
    lean = router.decide(c, snapshot, explain=False)
    full = router.decide(c, snapshot, explain=True)
    assert not lean.explained and full.explained
    assert lean.winner == full.winner
    assert lean.runner_up == full.runner_up
    assert lean.feasible_count == full.feasible_count
    assert lean.waiting_for_affinity == full.waiting_for_affinity
    if lean.waiting_for_affinity:
        assert lean.reasons == full.reasons
    # The listed winner and runner-up carry the same scores either way.
    assert [(r.worker_id, r.scores, r.total) for r in lean.candidates] == [
        (r.worker_id, r.scores, r.total) for r in full.candidates[: len(lean.candidates)]
    ]
    rows, busy = router.feasible_rows(c, snapshot)
    assert rows.tolist() == np.flatnonzero(full_feasible(router, c, snapshot)).tolist()
    if lean.winner is None and not lean.waiting_for_affinity:
        all_but_capacity = Router(
            RoutingPolicy(filters=tuple(f for f in router.policy.filters if f != "capacity"))
        ).decide(c, snapshot)
        assert busy == all_but_capacity.feasible_count
        said = bool(lean.reasons) and lean.reasons[0].startswith(WAITING_FOR_SLOT)
        assert said == (busy > 0)


@PROFILE
@given(case=cases(), data=st.data())
def test_each_filter_asked_about_some_rows_agrees_with_its_full_mask(
    case: tuple[PoolSnapshot, RoutingContext, float], data: st.DataObject
) -> None:
    snapshot, c, _ = case
    router = Router()
    n = len(snapshot)
    picked = sorted(data.draw(st.sets(st.integers(0, max(n - 1, 0)), max_size=n)) if n else [])
    rows = np.array(picked, dtype=np.intp)
    for hooks, p in zip(router.filter_hooks, router.run_filters(c, snapshot), strict=True):
        assert hooks.check_rows(c, snapshot, rows).tolist() == p.mask[rows].tolist(), hooks.name
        if hooks.candidates is not None:
            offered = hooks.candidates(c, snapshot)
            if offered is not None:
                listed = offered.tolist()
                assert listed == sorted(set(listed)), hooks.name  # ascending, no repeats
                assert set(np.flatnonzero(p.mask).tolist()) <= set(listed), hooks.name


def test_the_walk_starts_from_the_handler_index_not_the_pool() -> None:
    """A pool where one worker in a hundred runs the handler: the lean walk asks the
    filters about that one worker only."""
    workers = [
        worker(f"w{i:03d}", handlers=("run",) if i == 42 else ("other",)) for i in range(100)
    ]
    snapshot = pool(*workers)
    asked: list[int] = []
    router = Router()
    health = next(h for h in router.filter_hooks if h.name == "health")
    real = health.check_rows

    def counting(c: RoutingContext, s: PoolSnapshot, rows: np.ndarray) -> np.ndarray:
        asked.append(len(rows))
        return real(c, s, rows)

    object.__setattr__(health, "check_rows", counting)
    decision = router.decide(ctx(task()), snapshot, explain=False)
    assert decision.winner == "w042"
    assert asked == [1]
