"""Every example runs as a test."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import quickstart
from tests.e2e.procs import Cluster, cluster, wait_workers
from tests.redis_server import redis_server

from worldpool import Client
from worldpool.models import WorkflowState

__all__ = ["cluster", "redis_server"]  # fixtures: a private redis-server, its processes


async def test_quickstart_runs_the_workflow() -> None:
    status = await quickstart.main()
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["count"].worker == steps["fetch"].worker  # sticky
    assert steps["report"].status == "succeeded"


async def test_celery_fleet_runs_its_step_of_the_workflow() -> None:
    import celery_fleet

    status = await celery_fleet.main()
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["summarize"].worker == "celery-fleet"
    assert steps["fetch"].worker == steps["publish"].worker == "native-1"


async def test_typed_client_embedded() -> None:
    import typed_client

    first, status = await typed_client.main()
    assert first == typed_client.Answer(words=["the", "quick", "brown"], count=5)
    assert status.status is WorkflowState.SUCCEEDED
    results = {s.step: s.result for s in status.steps}
    assert results["shout"] == {"words": ["THE", "QUICK", "BROWN"], "count": 5}


async def test_typed_client_against_serve_and_a_worker_process(cluster: Cluster) -> None:
    import typed_client

    cluster.serve()
    worker = cluster.worker(
        "w1", "--region", "us-east-1", "--capabilities", "research", "--no-builtin",
        "--handlers", "examples.typed_client:HANDLERS",
    )  # fmt: skip
    async with await Client.connect(cluster.redis_url, namespace=cluster.namespace) as client:
        await wait_workers(client.backend, [worker])
        first, status = await typed_client.ask(client)
    assert first.count == 5 and status.status is WorkflowState.SUCCEEDED
    assert {s.step: s.worker for s in status.steps} == {"answer": "w1", "shout": "w1"}
