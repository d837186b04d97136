"""Outcomes are types, not text; system fields are out of a handler's reach (real
orchestrator, real workers, memory backend)."""

from __future__ import annotations

from worldpool.errors import HandlerError
from worldpool.models import AttemptOutcome, JSONValue, RetryPolicy, TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool
from worldpool.tracing import current_traceparent, trace_id_of
from worldpool.worker.handlers import TaskContext
from worldpool.workflow.builder import Workflow

FAST_RETRY = RetryPolicy(max_retries=2, backoff_initial_s=0.01, backoff_max_s=0.02)


async def test_a_handler_error_that_reads_like_a_lost_worker_spends_the_retry_budget() -> None:
    # Given a handler whose error message starts like a lost worker's
    calls: list[int] = []

    def flaky_db(ctx: TaskContext) -> None:
        calls.append(ctx.attempt)
        raise HandlerError("lost connection to the database")

    async with EmbeddedPool({"flaky_db": flaky_db}) as pool:
        spec = TaskSpec(handler="flaky_db", retry=FAST_RETRY)
        await pool.submit(spec)
        # When it fails every attempt
        record = await pool.orchestrator.wait_task(spec.id, 20)

    # Then it is retried max_retries times, not forever, and each attempt says why
    assert record.status is TaskStatus.FAILED
    assert record.attempt == 3 and calls == [1, 2, 3]
    assert [a.outcome for a in record.attempts] == [AttemptOutcome.HANDLER_ERROR] * 3
    assert record.error == "lost connection to the database"


async def test_handler_metadata_cannot_overwrite_the_system_fields() -> None:
    # Given a workflow whose second step writes the system keys into its metadata, then
    # fails once, so its retry is built from what the record holds
    forged: dict[str, JSONValue] = {
        "traceparent": "00-0123456789abcdef0123456789abcdef-0123456789abcdef-01",
        "upstream": {"first": "forged"},
        "last_progress_at": 0.0,
    }
    second_saw: list[tuple[dict[str, JSONValue], str | None]] = []

    def first(ctx: TaskContext) -> str:
        return "real"

    def second(ctx: TaskContext) -> str:
        second_saw.append((dict(ctx.upstream), current_traceparent()))
        if ctx.attempt == 1:
            ctx.meta.update(forged)
            raise HandlerError("once")
        return "done"

    wf = Workflow("meta")
    a = wf.step("first", handler="first")
    wf.step("second", handler="second", after=[a], retry=FAST_RETRY)
    spec = wf.build()
    async with EmbeddedPool({"first": first, "second": second}) as pool:
        await pool.run_workflow(spec, timeout_s=20)
        record = await pool.orchestrator.get_task(spec.steps[1].task.id)

    # Then the retry got the real upstream values and stayed in the step's trace
    assert record.status is TaskStatus.SUCCEEDED and record.attempt == 2
    [(up1, trace1), (up2, trace2)] = second_saw
    assert up1 == up2 == {"first": "real"}
    assert trace_id_of(trace2) == trace_id_of(trace1) != trace_id_of(str(forged["traceparent"]))
    # and the record's system fields are its own, the forged keys only handler metadata
    assert record.upstream == {"first": "real"}
    assert trace_id_of(record.traceparent) == trace_id_of(trace1)
    assert record.last_progress_at is not None and record.last_progress_at > 0.0
    assert {k: record.meta[k] for k in forged} == forged
