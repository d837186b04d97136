"""Metrics derived from events: names, labels, histograms, gauges; one registry per app."""

from __future__ import annotations

from prometheus_client import REGISTRY

from worldpool.api.metrics import Metrics
from worldpool.models import Event, EventKind, Worker, WorkerState, WorkerStatus
from worldpool.testing import make_worker


def ev(kind: EventKind, at: float, **kw: object) -> Event:
    return Event(kind=kind, at=at, task_id="t1", **kw)  # type: ignore[arg-type]


def sample(m: Metrics, name: str, labels: dict[str, str] | None = None) -> float | None:
    return m.registry.get_sample_value(name, labels or {})


def test_a_task_story_becomes_counters_and_histograms() -> None:
    m = Metrics()
    m.observe(ev(EventKind.TASK_SUBMITTED, 100.0, data={"handler": "llm"}))
    m.observe(ev(EventKind.TASK_ROUTED, 100.1))
    m.observe(ev(EventKind.TASK_STARTED, 100.5, worker_id="w1"))
    m.observe(ev(EventKind.TASK_RETRYING, 101.0, worker_id="w1", data={"not_before": 101.5}))
    m.observe(ev(EventKind.TASK_STARTED, 102.0, worker_id="w2"))
    m.observe(
        ev(
            EventKind.TASK_SUCCEEDED,
            104.0,
            worker_id="w2",
            data={
                "tokens_used": 300,
                "cost_usd": 0.25,
                "model": "llama-3",
                "input_tokens": 200,
                "output_tokens": 100,
            },
        )
    )
    hw = {"handler": "llm", "worker": "w2"}
    assert sample(m, "worldpool_tasks_submitted_total", {"handler": "llm"}) == 1
    assert sample(m, "worldpool_tasks_started_total", {"handler": "llm", "worker": "w1"}) == 1
    assert sample(m, "worldpool_tasks_retried_total", {"handler": "llm", "worker": "w1"}) == 1
    assert sample(m, "worldpool_tasks_succeeded_total", hw) == 1
    assert sample(m, "worldpool_cost_usd_total", hw) == 0.25
    assert sample(m, "worldpool_llm_tokens_total", hw) == 300
    assert (
        sample(m, "worldpool_routing_decisions_total", {"handler": "llm", "outcome": "placed"}) == 1
    )
    # schedule-to-start: 0.5 s the first time, then 0.5 s after the retry's backoff ended
    assert sample(m, "worldpool_task_schedule_to_start_seconds_count", {"handler": "llm"}) == 2
    assert sample(m, "worldpool_task_schedule_to_start_seconds_sum", {"handler": "llm"}) == 1.0
    assert sample(m, "worldpool_task_run_seconds_sum", {"handler": "llm"}) == 2.0
    genai = {"gen_ai_operation_name": "chat", "gen_ai_request_model": "llama-3"}
    assert (
        sample(m, "gen_ai_client_token_usage_sum", {**genai, "gen_ai_token_type": "input"}) == 200
    )
    assert (
        sample(m, "gen_ai_client_token_usage_sum", {**genai, "gen_ai_token_type": "output"}) == 100
    )


def test_failover_failure_and_unschedulable() -> None:
    m = Metrics()
    m.remember_handler("t1", "shell")
    m.observe(ev(EventKind.TASK_UNSCHEDULABLE, 1.0))
    m.observe_pool([], 3)
    assert sample(m, "worldpool_tasks_pending_unschedulable") == 1
    assert sample(m, "worldpool_queue_length") == 3
    m.observe(ev(EventKind.TASK_DISPATCHED, 2.0, worker_id="w1"))
    m.observe(ev(EventKind.TASK_FAILOVER, 3.0, worker_id="w1"))
    m.observe(ev(EventKind.TASK_FAILED, 4.0, worker_id="w2"))
    m.observe_pool([], 0)
    assert sample(m, "worldpool_tasks_pending_unschedulable") == 0
    assert sample(m, "worldpool_failovers_total", {"handler": "shell", "worker": "w1"}) == 1
    assert sample(m, "worldpool_tasks_failed_total", {"handler": "shell", "worker": "w2"}) == 1
    assert sample(m, "worldpool_events_total", {"kind": "task.failover"}) == 1


def test_worker_gauges_follow_the_pool_and_forget_departed_workers() -> None:
    m = Metrics()
    profile = make_worker("w1", region="eu-west-1", max_concurrency=4)
    busy = Worker(profile=profile, state=WorkerState(worker_id="w1", running=3))
    m.observe_pool([busy], 0)
    labels = {"worker": "w1", "region": "eu-west-1"}
    assert sample(m, "worldpool_worker_up", labels) == 1
    assert sample(m, "worldpool_worker_slots_used", labels) == 3
    assert sample(m, "worldpool_worker_slots", labels) == 4
    dead = busy.model_copy(
        update={"state": WorkerState(worker_id="w1", status=WorkerStatus.OFFLINE)}
    )
    m.observe_pool([dead], 0)
    assert sample(m, "worldpool_worker_up", labels) == 0
    m.observe_pool([], 0)
    assert sample(m, "worldpool_worker_up", labels) is None


def test_each_metrics_has_its_own_registry() -> None:
    a, b = Metrics(), Metrics()
    a.observe(ev(EventKind.TASK_SUBMITTED, 1.0, data={"handler": "x"}))
    assert sample(b, "worldpool_tasks_submitted_total", {"handler": "x"}) is None
    assert REGISTRY.get_sample_value("worldpool_tasks_submitted_total", {"handler": "x"}) is None
    assert b"worldpool_tasks_submitted_total" in a.render()
