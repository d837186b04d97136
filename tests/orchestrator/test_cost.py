"""Cost from worker time: every attempt, however it ends, is charged the worker's
``cost_per_hour`` times the time it held the slot, plus what its handler reported; the
status document and the metrics show it per attempt, per step and per workflow."""

from __future__ import annotations

import asyncio

import pytest

from worldpool.api.metrics import Metrics
from worldpool.models import RetryPolicy
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow

FAST_RETRY = RetryPolicy(max_retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)


async def test_a_workflow_is_charged_for_every_attempt_with_the_split() -> None:
    calls: list[str] = []

    async def flaky(ctx: TaskContext) -> str:
        calls.append(ctx.worker.id)
        await asyncio.sleep(0.2)
        ctx.add_usage(tokens=100, cost_usd=0.002)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return "ok"

    # $3,600/h is $1/s: 0.2 s of slot time must cost about $0.20, never $0.0.
    workers = [
        make_worker("dear", handlers=["flaky"], cost_per_hour=3600.0),
        make_worker("cheap", handlers=["flaky"], cost_per_hour=36.0),
    ]
    wf = Workflow("costed")
    wf.step("only", handler="flaky", retry=FAST_RETRY)
    async with EmbeddedPool({"flaky": flaky}, workers) as pool:
        spec = wf.build()
        await pool.orchestrator.submit_workflow(spec)
        status = await pool.orchestrator.wait_workflow(spec.id, timeout_s=20)
        events = await pool.backend.read_events(after=0, limit=1000)
    [step] = status.steps
    assert step.status == "succeeded" and len(step.attempt_costs) == 2
    failed, ok = step.attempt_costs
    assert failed.outcome == "handler_error" and ok.outcome == "succeeded"
    for a in (failed, ok):
        held_s = a.held_ms / 1000
        assert held_s >= 0.2
        assert a.compute_cost_usd == pytest.approx(a.cost_per_hour * held_s / 3600, rel=0.05)
        assert a.token_cost_usd == pytest.approx(0.002)
    assert {failed.worker, ok.worker} == {"dear", "cheap"}
    assert step.compute_cost_usd == pytest.approx(failed.compute_cost_usd + ok.compute_cost_usd)
    assert step.token_cost_usd == pytest.approx(0.004)
    assert step.cost_usd == pytest.approx(step.compute_cost_usd + step.token_cost_usd)
    assert status.total_cost_usd == pytest.approx(step.cost_usd) and status.total_cost_usd > 0.2
    assert status.total_compute_cost_usd == pytest.approx(step.compute_cost_usd)

    metrics = Metrics()
    for event in events:
        metrics.observe(event)

    def charged(worker: str, part: str) -> float:
        labels = {"handler": "flaky", "worker": worker, "part": part}
        return metrics.registry.get_sample_value("worldpool_cost_part_usd_total", labels) or 0.0

    by_worker = {a.worker: a for a in step.attempt_costs}
    for worker, attempt in by_worker.items():
        assert charged(worker, "compute") == pytest.approx(attempt.compute_cost_usd)
        assert charged(worker, "tokens") == pytest.approx(0.002)
        total = metrics.registry.get_sample_value(
            "worldpool_cost_usd_total", {"handler": "flaky", "worker": worker}
        )
        assert total == pytest.approx(attempt.cost_usd)
