"""Real processes end to end: ``worldpool worker --celery-app`` bridges, a native
``worldpool worker``, real ``celery worker`` processes, an orchestrator in this process,
one redis-server as worldpool's backend and Celery's broker and result backend.

* one workflow whose steps run partly on the native worker and partly on the Celery fleet;
* a bridge SIGKILLed mid-task: the task fails over to the other bridge and completes once
  (the Celery task of the superseded attempt is revoked; the ledger, written by the
  Celery task outside worldpool, shows one completed run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.bridges.fleet import CELERY_APP, celery_env, start_celery_worker, wait_ready
from tests.e2e.procs import Cluster, Proc, wait_workers
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.models import AttemptOutcome, TaskSpec, TaskStatus, WorkflowState
from worldpool.orchestrator.core import Orchestrator
from worldpool.workflow.builder import Workflow


@pytest.fixture
async def orchestrator(cluster: Cluster, client: Backend) -> AsyncIterator[Orchestrator]:
    orch = Orchestrator(client, Settings(namespace=cluster.namespace, heartbeat_s=0.5))
    await orch.start()
    try:
        yield orch
    finally:
        await orch.stop()


def bridge(cluster: Cluster, worker_id: str, queue: str, region: str = "eu-west-1") -> Proc:
    return cluster.worker(
        worker_id, "--celery-app", CELERY_APP, "--celery-queue", queue, "--region", region,
        "--no-builtin", "--no-verify-claims", "--max-concurrency", "4",
        env={"WP_CELERY_URL": cluster.redis_url},
    )  # fmt: skip


async def test_one_workflow_runs_on_native_workers_and_a_celery_fleet(
    cluster: Cluster, client: Backend, orchestrator: Orchestrator
) -> None:
    fleet = start_celery_worker(
        "wf-fleet", ["wf"], cluster.directory, celery_env(cluster.redis_url), pool="threads"
    )
    cluster.procs.append(fleet)
    bridges = [bridge(cluster, "celery-bridge", "wf")]
    native = cluster.worker(
        "native", "--handlers", "tests.bridges.native:HANDLERS", "--region", "eu-west-1",
        "--no-builtin", "--no-verify-claims",
    )  # fmt: skip
    await wait_workers(client, [*bridges, native])
    await asyncio.to_thread(wait_ready, [fleet])

    wf = Workflow("mixed")
    words = wf.step("words", handler="words")
    shout = wf.step("shout", handler="wp_tests.shout", after=[words], payload={"suffix": "!"})
    wf.step("count", handler="count", after=[shout])
    record = await orchestrator.submit_workflow(wf.build())
    status = await orchestrator.wait_workflow(record.spec.id, 60)

    assert status.status is WorkflowState.SUCCEEDED, cluster.logs()
    steps = {s.step: s for s in status.steps}
    assert steps["words"].worker == "native" and steps["count"].worker == "native"
    assert steps["shout"].worker == "celery-bridge"  # ran on the Celery fleet
    results = {
        name: (await orchestrator.get_task(f"{record.spec.id}.{name}")).result
        for name in ("shout", "count")
    }
    assert results["shout"] == {"text": "HELLO FROM WORLDPOOL!", "attempt": 1}
    assert results["count"] == {"chars": 21, "text": "HELLO FROM WORLDPOOL!"}


async def test_a_bridge_killed_mid_task_fails_over_and_the_task_completes_once(
    cluster: Cluster, client: Backend, orchestrator: Orchestrator
) -> None:
    ledger = cluster.directory / "ledger.txt"
    fleet = start_celery_worker(
        "fo-fleet", ["fo"], cluster.directory, celery_env(cluster.redis_url, ledger),
        pool="prefork", concurrency=2,
    )  # fmt: skip
    cluster.procs.append(fleet)
    bridges = {
        p.name: p for p in (bridge(cluster, "bridge-a", "fo"), bridge(cluster, "bridge-b", "fo"))
    }
    await wait_workers(client, bridges.values())
    await asyncio.to_thread(wait_ready, [fleet])

    spec = TaskSpec(handler="wp_tests.slow", payload={"seconds": 5, "tag": "fo"})
    await orchestrator.submit(spec)
    first = f"{spec.id}.a1"
    deadline = time.monotonic() + 30
    while f"start fo {first}" not in _read(ledger):
        assert time.monotonic() < deadline, cluster.logs()
        await asyncio.sleep(0.05)
    holder = (await client.get_task(spec.id)).attempts[-1].worker_id
    bridges[holder].kill()  # SIGKILL: no report, no revoke from it

    record = await orchestrator.wait_task(spec.id, 40)
    assert record.status is TaskStatus.SUCCEEDED, cluster.logs()
    survivor = next(name for name in bridges if name != holder)
    assert [(a.worker_id, a.outcome) for a in record.attempts] == [
        (holder, AttemptOutcome.WORKER_LOST),
        (survivor, AttemptOutcome.SUCCEEDED),
    ]
    assert record.result == {"tag": "fo", "celery_id": f"{spec.id}.a2", "attempt": 2}
    ends = [line.split()[2] for line in _read(ledger).splitlines() if line.startswith("end")]
    assert ends == [f"{spec.id}.a2"]  # attempt 1's Celery task was revoked: it never ended


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except FileNotFoundError:
        return ""
