"""The orchestrator and workers together on the embedded backend."""

from __future__ import annotations

import asyncio
import threading

import pytest

from worldpool.errors import HandlerError, NotFoundError, TaskFailedError, WorkflowError
from worldpool.models import (
    AttemptOutcome,
    EventKind,
    Requirements,
    RetryPolicy,
    TaskSpec,
    TaskStatus,
    WorkflowState,
)
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow

FAST_RETRY = RetryPolicy(max_retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)


def double(ctx: TaskContext) -> int:
    return int(ctx.payload["x"]) * 2


async def test_task_runs_and_records_its_routing_decision() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        record = await pool.run_task(TaskSpec(handler="double", payload={"x": 21}))
    assert record.status is TaskStatus.SUCCEEDED
    assert record.result == 42
    assert record.attempt == 1
    assert record.decision is not None and record.decision.winner == "worker-1"


async def test_handler_errors_retry_on_another_worker_then_succeed() -> None:
    calls: list[str] = []

    def flaky(ctx: TaskContext) -> str:
        calls.append(ctx.worker.id)
        if len(calls) == 1:
            raise RuntimeError("transient")
        return ctx.worker.id

    workers = [make_worker("w-a", handlers=["flaky"]), make_worker("w-b", handlers=["flaky"])]
    async with EmbeddedPool({"flaky": flaky}, workers) as pool:
        record = await pool.run_task(TaskSpec(handler="flaky", retry=FAST_RETRY))
    assert record.status is TaskStatus.SUCCEEDED
    assert record.attempt == 2
    assert calls[0] != calls[1], "the retry should prefer a different worker"
    assert record.attempts[0].error and "transient" in record.attempts[0].error


async def test_retries_exhausted_fail_and_dead_letter() -> None:
    def broken(ctx: TaskContext) -> None:
        raise ValueError("always")

    async with EmbeddedPool({"broken": broken}) as pool:
        with pytest.raises(TaskFailedError, match="always"):
            await pool.run_task(TaskSpec(handler="broken", retry=FAST_RETRY))
        record = await pool.orchestrator.get_task((await pool.backend.list_tasks())[0].id)
        letters = await pool.backend.list_dead_letters()
    assert record.status is TaskStatus.FAILED
    assert len(record.attempts) == 3  # first try + max_retries
    assert any("always" in letter.reason for letter in letters)


async def test_non_retryable_error_fails_at_once() -> None:
    def refuse(ctx: TaskContext) -> None:
        raise HandlerError("bad input", retryable=False)

    async with EmbeddedPool({"refuse": refuse}) as pool:
        with pytest.raises(TaskFailedError):
            await pool.run_task(TaskSpec(handler="refuse", retry=FAST_RETRY))
        (record,) = await pool.backend.list_tasks()
    assert len(record.attempts) == 1


async def test_a_raising_handler_never_takes_the_worker_down() -> None:
    def boom(ctx: TaskContext) -> None:
        raise SystemError("crash")

    async with EmbeddedPool({"boom": boom, "double": double}) as pool:
        with pytest.raises(TaskFailedError):
            await pool.run_task(TaskSpec(handler="boom", retry=RetryPolicy(max_retries=0)))
        record = await pool.run_task(TaskSpec(handler="double", payload={"x": 1}))
    assert record.result == 2


async def test_unplaceable_task_stays_pending_with_reason_then_runs_when_pool_changes() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        spec = TaskSpec(handler="double", payload={"x": 1}, capabilities={"x-gpu-render"})
        await pool.submit(spec)
        await asyncio.sleep(0.3)
        pending = await pool.orchestrator.get_task(spec.id)
        assert pending.status is TaskStatus.PENDING
        assert pending.pending_reason and "x-gpu-render" in pending.pending_reason
        # When a worker with the capability joins, the task is re-routed.
        from worldpool.worker.runtime import WorkerRuntime

        extra = WorkerRuntime(
            pool.backend,
            make_worker("renderer", capabilities=["x-gpu-render"], handlers=["double"]),
            {"double": double},
            pool.settings,
            artifacts=pool.artifacts,
        )
        await extra.start()
        try:
            done = await pool.orchestrator.wait_task(spec.id, 10)
        finally:
            await extra.stop(drain=False)
    assert done.status is TaskStatus.SUCCEEDED and done.result == 2
    assert done.attempts[-1].worker_id == "renderer"


async def test_failover_when_a_worker_dies_mid_task() -> None:
    started = threading.Event()
    release = threading.Event()

    def slow(ctx: TaskContext) -> str:
        started.set()
        release.wait(5)
        return ctx.worker.id

    workers = [
        make_worker("w-a", handlers=["slow"], cost_per_hour=0.1),
        make_worker("w-b", handlers=["slow"], cost_per_hour=5.0),
    ]
    async with EmbeddedPool({"slow": slow}, workers) as pool:
        spec = TaskSpec(handler="slow")
        await pool.submit(spec)
        await asyncio.to_thread(started.wait, 5)
        first = (await pool.orchestrator.get_task(spec.id)).worker_id
        assert first is not None
        await pool.kill_worker(first)
        release.set()
        record = await pool.orchestrator.wait_task(spec.id, 20)
        events = [e.kind for e in await pool.backend.read_events(None, 1000)]
    assert record.status is TaskStatus.SUCCEEDED
    assert record.attempt == 2
    assert record.result != first, "never re-routed to the dead worker"
    assert record.attempts[0].outcome is AttemptOutcome.WORKER_LOST
    assert record.attempts[0].error and record.attempts[0].error.startswith("lost")
    assert EventKind.WORKER_OFFLINE in events and EventKind.TASK_FAILOVER in events


async def test_stale_result_from_an_old_attempt_is_ignored() -> None:
    from worldpool.models import ResultStatus, TaskResult

    async with EmbeddedPool({"double": double}) as pool:
        record = await pool.run_task(TaskSpec(handler="double", payload={"x": 2}))
        stale = TaskResult(
            task_id=record.id,
            attempt=1,
            worker_id="worker-1",
            status=ResultStatus.FAILED,
            error="zombie",
        )
        assert await pool.backend.complete(stale) is False
        await pool.orchestrator.apply_result(stale)
        after = await pool.orchestrator.get_task(record.id)
    assert after.status is TaskStatus.SUCCEEDED and after.result == 4


async def test_idempotency_key_returns_the_first_task() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        first = await pool.submit(
            TaskSpec(handler="double", payload={"x": 1}, idempotency_key="k1")
        )
        second = await pool.submit(
            TaskSpec(handler="double", payload={"x": 9}, idempotency_key="k1")
        )
        await pool.run_until_idle()
    assert second.id == first.id


async def test_cancel_a_pending_task() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        spec = TaskSpec(handler="double", capabilities={"x-nobody"})
        await pool.submit(spec)
        assert await pool.orchestrator.cancel(spec.id) is True
        assert await pool.orchestrator.cancel(spec.id) is False
        record = await pool.orchestrator.get_task(spec.id)
    assert record.status is TaskStatus.CANCELLED


async def test_unknown_ids_raise_not_found() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        with pytest.raises(NotFoundError):
            await pool.orchestrator.get_task("nope")
        with pytest.raises(NotFoundError):
            await pool.orchestrator.cancel("nope")


async def test_execution_timeout_fails_the_attempt() -> None:
    async def sleepy(ctx: TaskContext) -> None:
        await asyncio.sleep(30)

    async with EmbeddedPool({"sleepy": sleepy}) as pool:
        with pytest.raises(TaskFailedError, match="timeout"):
            await pool.run_task(
                TaskSpec(
                    handler="sleepy", execution_timeout_s=0.2, retry=RetryPolicy(max_retries=0)
                )
            )


async def test_schedule_to_start_timeout_fails_an_unplaceable_task() -> None:
    async with EmbeddedPool({"double": double}) as pool:
        with pytest.raises(TaskFailedError, match="schedule-to-start"):
            await pool.run_task(
                TaskSpec(
                    handler="double", capabilities={"x-none"}, schedule_to_start_timeout_s=0.3
                ),
                timeout_s=10,
            )


async def test_workflow_dag_with_join_and_sticky_step() -> None:
    def produce(ctx: TaskContext) -> str:
        ctx.store("out.txt", f"from {ctx.step}")
        return ctx.step or ""

    def join(ctx: TaskContext) -> list[str]:
        return sorted(ctx.input_data)

    workers = [make_worker(f"w-{i}", handlers=["produce", "join"]) for i in range(3)]
    wf = Workflow("diamond")
    a = wf.step("a", handler="produce")
    b = wf.step("b", handler="produce", after=[a])
    c = wf.step("c", handler="produce", after=[a], sticky_to=a)
    wf.step("d", handler="join", after=[b, c])
    spec = wf.build()
    async with EmbeddedPool({"produce": produce, "join": join}, workers) as pool:
        status = await pool.run_workflow(spec)
        tasks = {r.spec.step: r for r in await pool.backend.list_tasks()}
    assert status.status is WorkflowState.SUCCEEDED
    assert tasks["d"].result == ["b/out.txt", "c/out.txt"]
    assert tasks["c"].attempts[-1].worker_id == tasks["a"].attempts[-1].worker_id
    assert status.steps[0].step == "a"


async def test_workflow_with_a_failing_step_fails_and_blocks_the_rest() -> None:
    def bad(ctx: TaskContext) -> None:
        raise HandlerError("nope", retryable=False)

    wf = Workflow("fails")
    first = wf.step("first", handler="bad")
    wf.step("second", handler="double", after=[first])
    async with EmbeddedPool({"bad": bad, "double": double}) as pool:
        await pool.orchestrator.submit_workflow(wf.build())
        status = await pool.orchestrator.wait_workflow(wf.build().id, 20)
    assert status.status is WorkflowState.FAILED
    assert "nope" in (status.error or "")


async def test_workflow_with_unknown_step_is_rejected_at_submit() -> None:
    from worldpool.models import StepSpec, WorkflowSpec

    spec = WorkflowSpec(
        name="bad", steps=[StepSpec(name="a", task=TaskSpec(handler="double"), after=["ghost"])]
    )
    async with EmbeddedPool({"double": double}) as pool:
        with pytest.raises(WorkflowError, match="ghost"):
            await pool.orchestrator.submit_workflow(spec)
        assert await pool.backend.list_workflows() == []


async def test_explain_is_a_dry_run() -> None:
    gpu_task = TaskSpec(handler="double", requirements=Requirements(gpu=True))
    async with EmbeddedPool({"double": double}) as pool:
        decision = await pool.orchestrator.explain(gpu_task)
        assert await pool.backend.list_tasks() == []
    assert decision.winner is None
    assert decision.suggestion and "GPU" in decision.suggestion.upper()


async def test_one_trace_spans_submit_and_the_run_on_the_worker() -> None:
    from worldpool.tracing import trace_id_of

    seen: list[str | None] = []

    def traced(ctx: TaskContext) -> None:
        from worldpool.tracing import current_traceparent

        seen.append(current_traceparent())

    async with EmbeddedPool({"traced": traced}) as pool:
        spec = TaskSpec(handler="traced")
        submitted = await pool.submit(spec)
        record = await pool.orchestrator.wait_task(spec.id, 10)
    root = trace_id_of(submitted.traceparent)
    assert root is not None
    assert trace_id_of(seen[0]) == root  # the handler ran inside the task's trace
    assert trace_id_of(record.traceparent) == root
    assert record.traceparent != submitted.traceparent  # a child span
