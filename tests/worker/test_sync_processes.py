"""``--sync-handlers process`` with real child processes: a stopped handler deaf to
``ctx.cancelled`` is killed (its process gone, nothing of it applied afterwards, its slot
free for the next task), ``ctx.once`` and the rest of the context work from a child, and
a child that dies fails its attempt (retried)."""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

import psutil
import pytest

from tests.worker.process_handlers import HANDLERS
from worldpool.cli.worker import SyncMode, WorkerOptions, sync_processes
from worldpool.errors import ConfigError
from worldpool.models import AttemptOutcome, TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.processes import CHILD_MAIN, SyncProcesses
from worldpool.worker.runtime import WorkerRuntime

SPEC = "tests.worker.process_handlers:HANDLERS"


def process_pool(slots: int = 1, grace_s: float = 0.3) -> EmbeddedPool:
    """An embedded pool whose one worker runs its sync handlers in child processes."""
    pool = EmbeddedPool(HANDLERS, [make_worker("w1", handlers=HANDLERS, max_concurrency=slots)])
    plain = pool.workers["w1"]
    pool.workers["w1"] = WorkerRuntime(
        pool.backend,
        plain.profile,
        plain.handlers,
        pool.settings,
        artifacts=pool.artifacts,
        sync_processes=SyncProcesses((SPEC,), cancel_grace_s=grace_s),
    )
    return pool


def lines(ledger: Path) -> list[list[str]]:
    return [line.split() for line in ledger.read_text().splitlines()] if ledger.exists() else []


async def started_pid(ledger: Path, task_id: str) -> int:
    for _ in range(500):
        for row in lines(ledger):
            if row[0] == task_id and row[3] == "start":
                return int(row[2])
        await asyncio.sleep(0.02)
    raise AssertionError(f"{task_id} never started: {lines(ledger)}")


def handler_processes() -> list[int]:
    """This process's children that are handler processes (not, say, a redis-server)."""
    return [c.pid for c in psutil.Process().children() if CHILD_MAIN in " ".join(c.cmdline())]


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def gone_after(pid: int, since: float) -> float:
    for _ in range(500):
        if not alive(pid):
            return time.monotonic() - since
        await asyncio.sleep(0.01)
    raise AssertionError(f"process {pid} still alive")


async def test_a_cancelled_handler_deaf_to_its_stop_is_killed_and_its_slot_freed(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    sleep_s = 3.0
    async with process_pool(slots=1, grace_s=0.3) as pool:
        spec = TaskSpec(
            id="deaf-1", handler="deaf", payload={"ledger": str(ledger), "sleep_s": sleep_s}
        )
        await pool.submit(spec)
        pid = await started_pid(ledger, spec.id)
        began = time.monotonic()
        assert await pool.orchestrator.cancel(spec.id)
        gone_s = await gone_after(pid, began)
        # The one slot is free again: the next task runs now, in a new child.
        after = await pool.run_task(TaskSpec(handler="quick", payload={"ledger": str(ledger)}))
        assert after.result["pid"] != pid  # type: ignore[index]
        assert handler_processes() == [after.result["pid"]]  # type: ignore[index]  # one slot
        await asyncio.sleep(max(0.0, began + sleep_s + 0.5 - time.monotonic()))
        record = await pool.orchestrator.get_task(spec.id)
    print(f"cancelled deaf handler: its process gone {gone_s:.2f}s after the cancel (grace 0.3s)")
    assert gone_s < sleep_s  # killed, not waited for
    assert [row[3] for row in lines(ledger) if row[0] == spec.id] == ["start"]  # no end, no effect
    assert record.status is TaskStatus.CANCELLED and record.result is None


async def test_a_handler_that_heeds_its_stop_returns_and_its_process_is_kept(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    async with process_pool(slots=1, grace_s=10.0) as pool:
        spec = TaskSpec(id="polite-1", handler="polite", payload={"ledger": str(ledger)})
        await pool.submit(spec)
        pid = await started_pid(ledger, spec.id)
        assert await pool.orchestrator.cancel(spec.id)
        after = await pool.run_task(TaskSpec(handler="quick", payload={"ledger": str(ledger)}))
    assert [row[2:] for row in lines(ledger) if row[0] == spec.id] == [
        [str(pid), "start"],
        [str(pid), "stopped"],  # ctx.cancelled reached the child
    ]
    assert after.result == {"pid": pid}  # not killed: the same child took the next task


async def test_a_timed_out_handler_deaf_to_sigterm_too_is_killed(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    payload = {"ledger": str(ledger), "sleep_s": 3.0, "ignore_term": True}
    async with process_pool(slots=1, grace_s=0.2) as pool:
        spec = TaskSpec(handler="deaf", payload=payload, execution_timeout_s=0.5)
        spec.retry.max_retries = 0
        await pool.submit(spec)
        pid = await started_pid(ledger, spec.id)
        began = time.monotonic()
        record = await pool.orchestrator.wait_task(spec.id, 20)
        await gone_after(pid, began)
        assert (
            await pool.run_task(TaskSpec(handler="quick", payload={"ledger": str(ledger)}))
        ).result
        await asyncio.sleep(max(0.0, began + 3.5 - time.monotonic()))
    assert record.status is TaskStatus.FAILED and "timeout" in (record.error or "")
    assert [row[3] for row in lines(ledger) if row[0] == spec.id] == ["start"]


async def test_a_drain_kills_a_deaf_handler_after_its_grace_and_hands_it_back(
    tmp_path: Path,
) -> None:
    ledger = tmp_path / "ledger"
    async with process_pool(slots=2, grace_s=5.0) as pool:
        worker = pool.workers["w1"]
        spec = TaskSpec(
            id="deaf-d", handler="deaf", payload={"ledger": str(ledger), "sleep_s": 3.0}
        )
        await pool.submit(spec)
        pid = await started_pid(ledger, spec.id)
        began = time.monotonic()
        await worker.stop(drain=True, grace_s=0.3)  # the hand-back kills at once
        gone_s = await gone_after(pid, began)
        assert worker.busy_threads == 0  # the thread that served it ended with it
        record = await pool.orchestrator.get_task(spec.id)
        await asyncio.sleep(max(0.0, began + 3.5 - time.monotonic()))
    print(f"drained deaf handler: its process gone {gone_s:.2f}s after stop() (grace 0.3s)")
    assert gone_s < 3.0  # not the 5 s cancel grace, nor the handler's own 3 s
    assert record.attempts[0].outcome is AttemptOutcome.HANDED_BACK
    assert [row[3] for row in lines(ledger) if row[0] == spec.id] == ["start"]


async def test_once_from_a_child_applies_its_effect_once_across_attempts(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    async with process_pool() as pool:
        spec = TaskSpec(handler="charge", payload={"ledger": str(ledger)})
        spec.retry.backoff_initial_s = 0.01
        record = await pool.run_task(spec)
    assert record.attempt == 2 and record.result == {"charged": 1}
    assert [row[3:] for row in lines(ledger)] == [["charge", "1"]]  # once, by attempt 1


async def test_a_child_that_dies_fails_its_attempt_which_is_retried(tmp_path: Path) -> None:
    ledger = tmp_path / "ledger"
    async with process_pool() as pool:
        spec = TaskSpec(handler="crash", payload={"ledger": str(ledger)})
        spec.retry.backoff_initial_s = 0.01
        record = await pool.run_task(spec)
    first = record.attempts[0]
    assert first.status is TaskStatus.FAILED and "exited with code 3" in (first.error or "")
    assert record.status is TaskStatus.SUCCEEDED and record.result["attempt"] == 2  # type: ignore[index]
    dead = int(lines(ledger)[0][2])
    assert record.result["pid"] != dead  # type: ignore[index]


async def test_the_context_works_from_a_child(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("WP_TEST_TOKEN", "s3cret-value")
    async with process_pool() as pool:
        spec = TaskSpec(
            handler="context", payload={"n": 41}, secrets={"TOKEN": "env:WP_TEST_TOKEN"}
        )
        record = await pool.run_task(spec)
        blob = await pool.artifacts.get(record.outputs["out.txt"])
        parent = await pool.run_task(TaskSpec(handler="in_parent"))
    result = record.result
    assert isinstance(result, dict) and result["pid"] != os.getpid()
    assert result["secret_length"] == len("s3cret-value") and result["payload"] == 41
    assert result["fencing_token"] == 1 and result["idempotency_key"] == spec.id
    assert any("hello from the child" in line for line in record.logs)
    assert record.meta.get("where") == "child" and record.tokens_used == 7
    assert blob == b"made in a child"
    assert parent.result == {"pid": os.getpid()}  # async handlers stay on the worker's loop


async def test_a_spec_that_does_not_load_stops_the_worker_at_its_start() -> None:
    pool = EmbeddedPool(HANDLERS, [make_worker("w1", handlers=HANDLERS)])
    plain = pool.workers["w1"]
    worker = WorkerRuntime(
        pool.backend,
        plain.profile,
        plain.handlers,
        pool.settings,
        sync_processes=SyncProcesses(("tests.worker.no_such_module:HANDLERS",)),
    )
    with pytest.raises(Exception, match="could not load --handlers"):
        await worker.start()


def test_process_mode_needs_handler_specs() -> None:
    options = WorkerOptions(sync_handlers=SyncMode.PROCESS, builtin=False)
    with pytest.raises(ConfigError, match="add --handlers"):
        sync_processes(options)
    options.handler_specs = [SPEC]
    options.cancel_grace_s = 0.5
    assert sync_processes(options) == SyncProcesses((SPEC,), cancel_grace_s=0.5)
    assert sync_processes(WorkerOptions(handler_specs=[SPEC])) is None  # threads by default
