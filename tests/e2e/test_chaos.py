"""Faults with real processes: orchestrator SIGKILL + restart, two replicas, worker SIGKILL,
a paused (zombie) worker, bad envelopes, and Redis restarting under a running deployment.

Workers run ``tests/e2e/handlers.py:COUNTING``: every execution is logged to a file, so
"no step lost, none run twice" is checked from what really ran, not from records.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from pathlib import Path

import orjson
import pytest

from tests.backends.builders import send_raw, worker_of
from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, Proc, wait_event, wait_log, wait_task, wait_workers
from tests.redis_server import RedisServer
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.envelope import encode_envelope
from worldpool.models import (
    Envelope,
    EventKind,
    ResultStatus,
    TaskResult,
    TaskSpec,
    TaskStatus,
    WorkerStatus,
    WorkflowSpec,
)
from worldpool.orchestrator.core import Orchestrator
from worldpool.workflow.builder import Workflow

COUNTING = "tests.e2e.handlers:COUNTING"
SETTINGS = Settings(namespace="e2e", heartbeat_s=0.5)


def counting_workers(cluster: Cluster, *ids: str, slots: int = 4) -> list[Proc]:
    cluster.env["WP_E2E_COUNT_FILE"] = str(cluster.directory / "count.log")
    return [
        cluster.worker(
            i,
            "--region",
            region,
            "--handlers",
            COUNTING,
            "--no-builtin",
            "--max-concurrency",
            str(slots),
        )
        for i, region in zip(ids, ("eu-west-1", "us-east-1", "ap-northeast-1"), strict=False)
    ]


def chain(name: str, steps: int, sleep_s: float) -> WorkflowSpec:
    wf = Workflow(name)
    previous = None
    for i in range(steps):
        previous = wf.step(
            f"s{i}",
            handler="count",
            payload={"sleep_s": sleep_s},
            after=[previous] if previous else [],
        )
    return wf.build()


def count_file(cluster: Cluster) -> Path:
    return cluster.directory / "count.log"


def runs_per_task(cluster: Cluster, phase: str) -> Counter[str]:
    return Counter(t for t, _, _, p in executions(count_file(cluster)) if p == phase)


async def wait_count(cluster: Cluster, phase: str, at_least: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while sum(runs_per_task(cluster, phase).values()) < at_least:
        assert time.monotonic() < deadline, f"fewer than {at_least} {phase}s\n{cluster.logs()}"
        await asyncio.sleep(0.05)


async def wait_all(
    client: Backend, task_ids: list[str], cluster: Cluster, timeout_s: float = 60
) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        records = await client.get_tasks(task_ids)
        if all(r is not None and r.status.terminal for r in records):
            return
        if time.monotonic() > deadline:
            stuck = [(r.id, r.status.value) for r in records if r and not r.status.terminal]
            raise AssertionError(f"stuck: {stuck[:10]}\n{cluster.logs()}")
        await asyncio.sleep(0.1)


# --------------------------------------------------------------------------- orchestrator


async def test_orchestrator_sigkill_and_restart_loses_nothing(
    cluster: Cluster, client: Backend
) -> None:
    serve = cluster.serve("orch-a")
    await wait_workers(client, counting_workers(cluster, "w1", "w2"))
    submitter = Orchestrator(client, SETTINGS)  # not started: submits only, like the CLI
    specs = [chain(f"restart-{i}", 3, 0.2) for i in range(8)]
    for spec in specs:
        await submitter.submit_workflow(spec)
    await wait_count(cluster, "end", 6)
    serve.signal(signal.SIGKILL)
    serve.popen.wait(timeout=10)
    await asyncio.sleep(1.0)  # workers finish what they hold; results wait in Redis
    cluster.serve("orch-a-again", "--name", "orch-a")  # same replica name: its backlog

    deadline = time.monotonic() + 60
    for spec in specs:
        while not (await submitter.get_workflow(spec.id)).status.terminal:
            if time.monotonic() > deadline:
                status = await submitter.workflow_status(spec.id)
                steps = [(s.step, s.status, s.worker, s.attempts) for s in status.steps]
                raise AssertionError(f"{spec.id} stuck: {steps}\n{cluster.logs()}")
            await asyncio.sleep(0.1)
        assert (await submitter.workflow_status(spec.id)).status.value == "succeeded"
    starts, ends = runs_per_task(cluster, "start"), runs_per_task(cluster, "end")
    expected = {f"{spec.id}.s{i}" for spec in specs for i in range(3)}
    assert set(starts) == expected and set(ends) == expected
    assert max(starts.values()) == 1 and max(ends.values()) == 1, starts


@pytest.mark.chaos
async def test_two_replicas_run_each_task_once_and_survive_a_kill(
    cluster: Cluster, client: Backend
) -> None:
    replicas = [cluster.serve("orch-1"), cluster.serve("orch-2")]
    await wait_workers(client, counting_workers(cluster, "w1", "w2", "w3", slots=8))
    submitter = Orchestrator(client, SETTINGS)
    ids = []
    for i in range(60):
        record = await submitter.submit(
            TaskSpec(id=f"t-{i:03d}", handler="count", payload={"sleep_s": 0.05})
        )
        ids.append(record.id)
    await wait_count(cluster, "end", 20)
    replicas[0].signal(signal.SIGKILL)
    for i in range(60, 90):  # the survivor takes new work alone
        ids.append((await submitter.submit(TaskSpec(id=f"t-{i:03d}", handler="count"))).id)
    await wait_all(client, ids, cluster)
    records = await client.get_tasks(ids)
    assert all(r is not None and r.status is TaskStatus.SUCCEEDED for r in records)
    starts = runs_per_task(cluster, "start")
    assert set(starts) == set(ids)
    assert max(starts.values()) == 1, [t for t, n in starts.items() if n > 1]


# --------------------------------------------------------------------------- workers


@pytest.mark.chaos  # the CI run covers worker SIGKILL in test_distributed.py
async def test_worker_sigkill_fails_over_after_missed_heartbeats(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    (victim,) = counting_workers(cluster, "victim")
    await wait_workers(client, [victim])
    submitter = Orchestrator(client, SETTINGS)
    await submitter.submit(
        TaskSpec(id="long", handler="count", payload={"sleep_s": 30, "first_attempt_only": True})
    )
    await wait_event(client, EventKind.TASK_STARTED, task_id="long", worker_id="victim")
    (rescuer,) = counting_workers(cluster, "rescuer")
    await wait_workers(client, [rescuer])
    victim.signal(signal.SIGKILL)

    offline = await wait_event(client, EventKind.WORKER_OFFLINE, worker_id="victim")
    assert "missed 3 heartbeats" in offline.message
    record = await wait_task(client, "long")
    assert record.status is TaskStatus.SUCCEEDED
    assert [(a.worker_id, a.attempt) for a in record.attempts] == [("victim", 1), ("rescuer", 2)]
    worker = await worker_of(client, "victim")
    assert worker is not None and worker.state.status is WorkerStatus.OFFLINE


async def test_paused_worker_comes_back_as_a_fenced_zombie(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    (zombie,) = counting_workers(cluster, "zombie")
    await wait_workers(client, [zombie])
    submitter = Orchestrator(client, SETTINGS)
    await submitter.submit(
        TaskSpec(id="z", handler="count", payload={"sleep_s": 20, "first_attempt_only": True})
    )
    await wait_event(client, EventKind.TASK_STARTED, task_id="z", worker_id="zombie")
    (other,) = counting_workers(cluster, "other")
    await wait_workers(client, [other])
    zombie.signal(signal.SIGSTOP)
    try:
        await wait_event(client, EventKind.WORKER_OFFLINE, worker_id="zombie")
        record = await wait_task(client, "z")
    finally:
        zombie.signal(signal.SIGCONT)
    assert record.status is TaskStatus.SUCCEEDED and record.worker_id == "other"

    # Back from the pause, it learns it was declared dead and drops the task.
    wait_log(zombie, "was declared offline; abandoning 1 tasks")
    await wait_count(cluster, "revoked", 1)
    rows = executions(count_file(cluster))
    assert ("z", 1, "zombie", "revoked") in rows and ("z", 1, "zombie", "end") not in rows
    # And a late report from it is fenced: the record keeps the other worker's result.
    late = TaskResult(
        task_id="z",
        attempt=1,
        worker_id="zombie",
        status=ResultStatus.SUCCEEDED,
        value={"worker": "zombie"},
    )
    assert await client.complete(late) is False
    await asyncio.sleep(0.5)
    final = await client.get_task("z")
    assert final is not None and final.status is TaskStatus.SUCCEEDED
    assert final.result == {"task": "z", "worker": "other"}
    assert zombie.alive


# --------------------------------------------------------------------------- bad input, Redis


async def test_bad_envelopes_are_dead_lettered_and_the_worker_keeps_running(
    cluster: Cluster, client: Backend
) -> None:
    cluster.env["WORLDPOOL_MAX_ENVELOPE_BYTES"] = "4096"
    cluster.serve()
    (worker,) = counting_workers(cluster, "w1")
    await wait_workers(client, [worker])
    unknown = encode_envelope(Envelope(task_id="bad-4", attempt=1, handler="no_such_handler"))
    bad = {
        "bad-1": b"{not json",
        "bad-2": orjson.dumps({"task_id": "bad-2", "attempt": "first"}),
        "bad-3": orjson.dumps(
            {"task_id": "bad-3", "attempt": 1, "handler": "count", "payload": {"blob": "x" * 8000}}
        ),
        "bad-4": unknown,
    }
    for task_id, data in bad.items():
        await send_raw(client, "w1", task_id, data)
    deadline = time.monotonic() + 20
    while len(letters := await client.list_dead_letters()) < len(bad):
        assert time.monotonic() < deadline, cluster.logs()
        await asyncio.sleep(0.05)
    codes = {letter.code for letter in letters if letter.worker_id == "w1"}
    assert codes == {"malformed_json", "bad_shape", "oversized", "unknown_handler"}
    assert worker.alive
    record = await Orchestrator(client, SETTINGS).submit(TaskSpec(id="ok", handler="count"))
    assert (await wait_task(client, record.id)).status is TaskStatus.SUCCEEDED
    assert "Traceback" not in worker.log()


async def test_redis_restart_under_a_running_deployment(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    serve = cluster.serve()
    (worker,) = counting_workers(cluster, "w1")
    await wait_workers(client, [worker])
    submitter = Orchestrator(client, SETTINGS)
    first = await submitter.submit(TaskSpec(id="before", handler="count"))
    assert (await wait_task(client, first.id)).status is TaskStatus.SUCCEEDED

    redis_server.restart()  # no persistence in tests: Redis comes back empty
    await asyncio.sleep(1.5)  # long enough for every loop to hit the lost connection
    await wait_workers(client, [worker])  # it re-registered by itself
    second = await submitter.submit(TaskSpec(id="after", handler="count"))
    assert (await wait_task(client, second.id, timeout_s=30)).status is TaskStatus.SUCCEEDED
    assert serve.alive and worker.alive
