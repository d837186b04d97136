"""A Celery fleet as a worldpool worker: an orchestrator and a bridge in this process, a
real prefork ``celery worker`` process, Redis as broker, result backend and worldpool's
backend. Outcomes of Celery tasks as worldpool outcomes; cancellation revokes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import ModuleType

from tests.bridges.conftest import BridgedPool
from worldpool.models import AttemptOutcome, RetryPolicy, TaskSpec, TaskStatus


async def run(pool: BridgedPool, spec: TaskSpec, timeout_s: float = 30.0) -> object:
    await pool.orchestrator.submit(spec)
    return await pool.orchestrator.wait_task(spec.id, timeout_s)


async def test_a_celery_task_runs_as_a_worldpool_task(pool: BridgedPool) -> None:
    spec = TaskSpec(handler="wp_tests.add", payload={"x": 2, "y": 40})
    record = await run(pool, spec)
    assert record.status is TaskStatus.SUCCEEDED, record.error
    assert record.result == 42
    assert record.attempts[-1].worker_id == "bridge-1"
    positional = TaskSpec(handler="wp_tests.add", payload={"args": [1], "kwargs": {"y": 2}})
    assert (await run(pool, positional)).result == 3


async def test_a_celery_error_is_a_handler_error_with_its_message(pool: BridgedPool) -> None:
    spec = TaskSpec(
        handler="wp_tests.boom",
        payload={"message": "disk full"},
        retry=RetryPolicy(max_retries=1, backoff_initial_s=0.05),
    )
    record = await run(pool, spec)
    assert record.status is TaskStatus.FAILED
    assert "ValueError" in (record.error or "") and "disk full" in (record.error or "")
    assert [a.outcome for a in record.attempts] == [AttemptOutcome.HANDLER_ERROR] * 2


async def test_spent_celery_retries_are_not_retried_again(pool: BridgedPool) -> None:
    spec = TaskSpec(handler="wp_tests.flaky", retry=RetryPolicy(max_retries=3))
    record = await run(pool, spec)
    assert record.status is TaskStatus.FAILED
    assert "still broken" in (record.error or "")
    assert len(record.attempts) == 1  # Celery retried on its own; worldpool does not add 3


async def test_cancel_revokes_and_terminates_the_celery_task(
    pool: BridgedPool, ledger: Path, celery_tasks: ModuleType
) -> None:
    spec = TaskSpec(handler="wp_tests.slow", payload={"seconds": 20, "tag": "cancel-me"})
    await pool.orchestrator.submit(spec)
    celery_id = f"{spec.id}.a1"
    deadline = time.monotonic() + 20
    while f"start cancel-me {celery_id}" not in _read(ledger):
        assert time.monotonic() < deadline, "the Celery task never started"
        await asyncio.sleep(0.05)
    assert await pool.orchestrator.cancel(spec.id)
    record = await pool.orchestrator.wait_task(spec.id, 10)
    assert record.status is TaskStatus.CANCELLED
    result = celery_tasks.app.AsyncResult(celery_id)
    while result.state != "REVOKED":  # the prefork child running it was terminated
        assert time.monotonic() < deadline, result.state
        await asyncio.sleep(0.05)
    assert f"end cancel-me {celery_id}" not in _read(ledger)


async def test_past_its_deadline_the_task_times_out_and_celery_stops_it(
    pool: BridgedPool, ledger: Path, celery_tasks: ModuleType
) -> None:
    spec = TaskSpec(
        handler="wp_tests.slow",
        payload={"seconds": 20, "tag": "too-slow"},
        execution_timeout_s=1.5,
        retry=RetryPolicy(max_retries=0),
    )
    started = time.monotonic()
    record = await run(pool, spec)
    assert time.monotonic() - started < 10
    assert record.status is TaskStatus.FAILED
    # as for a native handler that overruns: the worker reports the execution timeout
    assert "execution timeout" in (record.error or ""), record.attempts
    assert f"end too-slow {spec.id}.a1" not in _read(ledger)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""


async def test_a_task_revoked_in_celery_fails_without_retries(
    pool: BridgedPool, ledger: Path, celery_tasks: ModuleType
) -> None:
    spec = TaskSpec(handler="wp_tests.slow", payload={"seconds": 20, "tag": "revoked"})
    await pool.orchestrator.submit(spec)
    celery_id = f"{spec.id}.a1"
    deadline = time.monotonic() + 20
    while f"start revoked {celery_id}" not in _read(ledger):
        assert time.monotonic() < deadline, "the Celery task never started"
        await asyncio.sleep(0.05)
    await asyncio.to_thread(celery_tasks.app.control.revoke, celery_id, terminate=True)
    record = await pool.orchestrator.wait_task(spec.id, 15)
    assert record.status is TaskStatus.FAILED
    assert "revoked" in (record.error or "") and len(record.attempts) == 1
