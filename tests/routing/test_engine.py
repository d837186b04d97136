from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from tests.routing.builders import ctx, pool, task, worker
from tests.routing.fakes import FixedScores, NotApplicable, Raw, RejectIds
from worldpool.errors import ConfigError
from worldpool.models import WorkerStatus
from worldpool.routing import Router, RoutingPolicy, explain_table, register_filter, register_scorer
from worldpool.routing.registry import FILTERS, SCORERS


@pytest.fixture
def fakes() -> Iterator[None]:
    """Register fake plugins for one test and remove them afterwards."""
    register_filter("reject", lambda p: RejectIds("reject", {"b"}))
    register_scorer("fav", lambda p: FixedScores("fav", {"a": 0.2, "b": 1.0, "c": 0.6}))
    register_scorer("never", lambda p: NotApplicable("never"))
    register_scorer("wild", lambda p: Raw("wild", lambda rows: np.full(len(rows), 7.0)))
    register_scorer("short", lambda p: Raw("short", lambda rows: np.zeros(1)))
    yield
    for name in ("fav", "never", "wild", "short"):
        SCORERS.unregister(name)
    FILTERS.unregister("reject")


def _fake_router(scorers: tuple[str, ...], weights: dict[str, float]) -> Router:
    return Router(RoutingPolicy(filters=("reject",), scorers=scorers, weights=weights))


def test_engine_combines_filters_and_weights(fakes: None) -> None:
    router = _fake_router(("fav", "never"), {"fav": 1.0, "never": 5.0})
    d = router.decide(ctx(task()), pool(worker("a"), worker("b"), worker("c")))
    # b is rejected; 'never' does not apply so its weight is left out of the sum
    assert (d.winner, d.runner_up) == ("c", "a")
    assert d.weights == {"fav": 1.0}
    assert d.excluded_by == {"reject:excluded": 1}
    assert [c.total for c in d.candidates[:2]] == pytest.approx([0.6, 0.2])
    excluded = d.candidates[2]
    assert excluded.worker_id == "b" and not excluded.feasible
    assert excluded.verdicts[0].reason == "b is on the reject list"
    assert (d.pool_size, d.feasible_count, d.sampled) == (3, 2, False)


def test_scores_are_clipped_and_bad_shapes_rejected(fakes: None) -> None:
    d = _fake_router(("wild",), {"wild": 1.0}).decide(ctx(task()), pool(worker("a")))
    assert d.candidates[0].scores == {"wild": 1.0}
    with pytest.raises(ConfigError, match="one score per row"):
        _fake_router(("short",), {"short": 1.0}).decide(ctx(task()), pool(worker("a"), worker("c")))


def test_ties_break_by_worker_id_when_near_ties_are_off() -> None:
    snap = pool(*(worker(w) for w in ("w3", "w1", "w2")))
    d = Router(RoutingPolicy(near_tie=0.0)).decide(ctx(task()), snap)
    assert [c.worker_id for c in d.candidates] == ["w1", "w2", "w3"]


def test_by_default_ties_break_by_a_per_task_hash() -> None:
    snap = pool(*(worker(w) for w in ("w3", "w1", "w2")))
    orders = {
        tuple(c.worker_id for c in Router().decide(ctx(task(id=f"t{i}")), snap).candidates)
        for i in range(30)
    }
    assert len(orders) > 1  # different tasks, different orders (herding protection)
    assert all(sorted(o) == ["w1", "w2", "w3"] for o in orders)


def test_seed_weights_rank_a_realistic_pool() -> None:
    snap = pool(
        worker("busy-cheap", caps=("coding",), cost=0.5, slots=4, running=3),
        worker("idle-dear", caps=("coding",), cost=8.0),
        worker("generalist", caps=("coding", "planning", "testing", "research"), cost=0.5),
    )
    d = Router().decide(ctx(task(capabilities=["coding"])), snap)
    # capability match (0.4) and load (0.3) dominate cost (0.1)
    assert d.winner == "idle-dear"
    by_id = {c.worker_id: c for c in d.candidates}
    assert by_id["generalist"].scores["capability_match"] == 0.25
    assert by_id["busy-cheap"].scores["load"] == 0.25
    cheaper = Router(RoutingPolicy().with_weights(cost=5.0)).decide(
        ctx(task(capabilities=["coding"])), snap
    )
    assert cheaper.winner == "busy-cheap"


def test_avoided_workers_rank_after_all_others_but_still_serve() -> None:
    snap = pool(worker("best", cost=0), worker("ok", cost=5))
    d = Router().decide(ctx(task(), avoid_workers=frozenset({"best"})), snap)
    assert [c.worker_id for c in d.candidates] == ["ok", "best"]
    only = Router().decide(ctx(task(), avoid_workers=frozenset({"best"})), pool(worker("best")))
    assert only.winner == "best"


def test_soft_affinity_waits_within_budget_then_takes_the_best_equivalent() -> None:
    snap = pool(worker("warm", slots=1, running=1), worker("other"))
    spec = task(affinity={"key": "wf:1", "wait_s": 5})
    waiting = Router().decide(ctx(spec, affinity_worker="warm", waited_s=1.0), snap)
    assert waiting.winner is None and waiting.waiting_for_affinity
    assert "waiting for warm" in waiting.reasons[0] and "1/1 in use" in waiting.reasons[0]
    later = Router().decide(ctx(spec, affinity_worker="warm", waited_s=5.0), snap)
    assert later.winner == "other" and not later.waiting_for_affinity


def test_soft_affinity_does_not_wait_for_a_worker_that_cannot_run_it() -> None:
    snap = pool(worker("warm", status=WorkerStatus.OFFLINE), worker("other"))
    spec = task(affinity={"key": "wf:1", "wait_s": 5})
    d = Router().decide(ctx(spec, affinity_worker="warm"), snap)
    assert d.winner == "other"


def test_soft_affinity_prefers_the_warm_worker_when_free() -> None:
    snap = pool(worker("warm", cost=9, running=1), worker("other", cost=0))
    d = Router().decide(ctx(task(affinity={"key": "k"}), affinity_worker="warm"), snap)
    assert d.winner == "warm"
    assert d.candidates[0].scores["soft_affinity"] == 1.0


def test_hard_filters_explain_unschedulable_tasks() -> None:
    snap = pool(
        worker("browser-us", region="us-east-1", caps=("browser_operations",)),
        worker("gpu-eu", region="eu-west-1", caps=("coding",)),
        worker("sandbox-eu", region="eu-central-1", caps=("shell_operations",)),
    )
    spec = task(capabilities=["browser_operations"], requirements={"regions": ["eu-*"]})
    d = Router().decide(ctx(spec), snap)
    assert d.winner is None and not d.placeable
    assert d.reasons[0] == (
        "no online worker has capability browser_operations and is in region eu-*"
    )
    assert (
        "2 workers excluded by capabilities: e.g. gpu-eu lacks browser_operations" in d.reasons[1]
    )
    assert d.excluded_by == {"capabilities:missing_capability": 2, "region:region_not_allowed": 1}
    assert d.suggestion is not None and d.suggestion.startswith(
        "add a worker with the capabilities"
    )


def test_suggestion_names_the_single_blocking_requirement() -> None:
    snap = pool(
        worker("dgx-london-02", region="europe-west2", gpus=(("A100-40GB", 40),)),
        worker("cpu-london", region="europe-west2"),
    )
    d = Router().decide(ctx(task(requirements={"min_vram_gb": 80})), snap)
    assert d.suggestion == (
        "relax the hardware requirements: dgx-london-02 passes every other filter "
        "but has 40 GB VRAM, task needs 80 GB"
    )


def test_capacity_alone_means_wait_for_a_slot() -> None:
    snap = pool(worker("a", slots=1, running=1), worker("b", slots=2, running=2))
    d = Router().decide(ctx(task()), snap)
    assert d.winner is None
    assert d.suggestion is not None
    assert d.suggestion.startswith("wait for a free slot: 2 workers fit but all are busy")
    assert d.excluded_by == {"capacity:full": 2}


def test_two_blocking_filters_suggest_relaxing_both() -> None:
    # Given: no single constraint is to blame; each worker misses two of them
    snap = pool(
        worker("cpu-us", region="us-east-1", caps=("research",)),
        worker("gpu-us", region="us-east-1", gpus=(("H100", 80),)),
    )
    spec = task(capabilities=["research"], requirements={"gpu": True, "regions": ["europe"]})
    d = Router().decide(ctx(spec), snap)
    # Then: the headline states the whole conflict and the suggestion relaxes a pair
    assert d.reasons[0] == (
        "no online worker has capability research, has a GPU and is in region europe"
    )
    assert d.suggestion == (
        "add a worker with the capabilities and widen the region constraints: gpu-us passes "
        "every other filter but lacks research (has coding) and is in region us-east-1, "
        "outside the allowed europe"
    )


def test_empty_pool() -> None:
    d = Router().decide(ctx(task()), pool())
    assert d.winner is None and d.reasons == ["no workers are registered"]
    assert d.suggestion is not None and "start a worker" in d.suggestion


def test_report_cap_and_omitted_count() -> None:
    snap = pool(
        *(worker(f"w{i:02d}") for i in range(10)), worker("off", status=WorkerStatus.OFFLINE)
    )
    d = Router(RoutingPolicy(report_candidates_max=4)).decide(ctx(task()), snap)
    assert len(d.candidates) == 4 and all(c.feasible for c in d.candidates)
    assert d.omitted_candidates == 7
    assert d.feasible_count == 10 and d.excluded_by == {"health:offline": 1}
    assert d.duration_us > 0


def test_explain_table_is_readable() -> None:
    snap = pool(worker("gpu", gpus=(("H100", 80),)), worker("cpu"))
    text = explain_table(Router().decide(ctx(task(requirements={"gpu": True})), snap))
    assert text.splitlines()[0].startswith("task t1: -> gpu;")
    assert "capability_match (0.4)" in text
    assert "hardware: has no GPU, task needs 1" in text
    assert "excluded: hardware:no_gpu=1" in text
    text = explain_table(Router().decide(ctx(task(requirements={"min_vram_gb": 100})), snap))
    assert "unschedulable" in text and "suggestion: relax the hardware" in text
