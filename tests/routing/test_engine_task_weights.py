"""Per-task weight overrides (TaskSpec.weights) change the ranking for that task only."""

from __future__ import annotations

import time

import pydantic
import pytest

from worldpool.models import TaskSpec, Worker, WorkerState
from worldpool.routing import PoolSnapshot, Router, RoutingContext
from worldpool.testing import make_worker


def _pool() -> PoolSnapshot:
    cheap_busy = make_worker("cheap-busy", cost_per_hour=0.5, max_concurrency=4, handlers=["h"])
    dear_idle = make_worker("dear-idle", cost_per_hour=9.0, max_concurrency=4, handlers=["h"])
    return PoolSnapshot(
        [
            Worker(profile=cheap_busy, state=WorkerState(worker_id="cheap-busy", running=3)),
            Worker(profile=dear_idle, state=WorkerState(worker_id="dear-idle")),
        ]
    )


def test_task_weights_override_the_policy() -> None:
    router, pool, now = Router(), _pool(), time.time()
    plain = router.decide(RoutingContext(task=TaskSpec(handler="h"), now=now), pool)
    cheap = router.decide(
        RoutingContext(task=TaskSpec(handler="h", weights={"cost": 5.0, "load": 0.0}), now=now),
        pool,
    )
    assert plain.winner == "dear-idle"  # the default weights favour the idle worker
    assert cheap.winner == "cheap-busy"
    assert cheap.weights.get("cost") == 5.0 and "load" not in cheap.weights


def test_negative_task_weights_are_refused() -> None:
    with pytest.raises(pydantic.ValidationError, match="weights must be finite"):
        TaskSpec(handler="h", weights={"cost": -1.0})
