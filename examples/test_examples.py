"""Every example runs as a test."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

import quickstart
from tests.bridges.fleet import celery_env, wait_ready
from tests.e2e.procs import Cluster, Proc, cluster, wait_serve_routes_to, wait_workers
from tests.helpers import free_port
from tests.redis_server import redis_server

from worldpool import Client
from worldpool.models import WorkflowState, WorkflowStatus

__all__ = ["cluster", "redis_server"]  # fixtures: a private redis-server, its processes


QUICKSTART = "examples.quickstart:HANDLERS"


def check_quickstart(status: WorkflowStatus) -> None:
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["count"].worker == steps["fetch"].worker, steps["count"].reason
    assert steps["report"].status == "succeeded"
    assert steps["report"].result == "9 words in 43 characters"


async def test_quickstart_runs_the_workflow() -> None:
    check_quickstart(await quickstart.main())


async def test_quickstart_against_serve_and_worker_processes(cluster: Cluster) -> None:
    port = free_port()
    cluster.serve(port=port)  # with its API: the routing dry run shows serve's pool view
    names = {"eu-1": "eu-west-1", "ap-1": "ap-northeast-1"}
    workers = [
        cluster.worker(name, "--region", region, "--no-builtin", "--handlers", QUICKSTART)
        for name, region in names.items()
    ]
    async with await Client.connect(cluster.redis_url, namespace=cluster.namespace) as client:
        await wait_workers(client.backend, workers)
        # Serve routes the sticky step: a worker that serve has not seen yet (its pool
        # view is refreshed every 0.25 s) could run `fetch` but never `count`.
        await wait_serve_routes_to(f"http://127.0.0.1:{port}", "count_words", names)
        check_quickstart(await quickstart.run(client))


def start_fleet(cluster: Cluster, env: dict[str, str]) -> Proc:
    """``celery -A examples.celery_fleet worker -Q summaries``, killed at teardown."""
    log_path = cluster.directory / "celery.log"
    with log_path.open("ab") as log:
        popen = subprocess.Popen(
            [sys.executable, "-m", "celery", "-A", "examples.celery_fleet", "worker",
             "-Q", "summaries", "-n", "fleet@localhost", "--pool=solo",
             "--without-mingle", "--without-gossip", "--loglevel=INFO"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            env={**celery_env(cluster.redis_url), **env}, cwd=cluster.directory,
        )  # fmt: skip
    fleet = Proc("celery", popen, log_path)
    cluster.procs.append(fleet)
    return fleet


def check_celery_fleet(status: WorkflowStatus) -> None:
    assert status.status is WorkflowState.SUCCEEDED
    steps = {s.step: s for s in status.steps}
    assert steps["summarize"].worker == "celery-fleet"
    assert steps["fetch"].worker == steps["publish"].worker == "native-1"
    assert steps["publish"].result == "published: Celery workers keep running ..."


async def test_celery_fleet_runs_its_step_of_the_workflow() -> None:
    import celery_fleet

    check_celery_fleet(await celery_fleet.main())


async def test_celery_fleet_against_serve_celery_and_worker_processes(cluster: Cluster) -> None:
    import celery_fleet

    env = {"CELERY_BROKER_URL": cluster.redis_url}  # Celery's broker: the same redis-server
    fleet = start_fleet(cluster, env)
    cluster.serve()
    workers = [
        cluster.worker(
            "celery-fleet", "--celery-app", "examples.celery_fleet:app", "--celery-queue",
            "summaries", "--region", "eu-west-1", "--no-builtin", "--no-verify-claims", env=env,
        ),
        cluster.worker(
            "native-1", "--handlers", "examples.celery_fleet:NATIVE", "--region", "eu-west-1",
            "--no-builtin", env=env,
        ),
    ]  # fmt: skip
    async with await Client.connect(cluster.redis_url, namespace=cluster.namespace) as client:
        await wait_workers(client.backend, workers)
        await asyncio.to_thread(wait_ready, [fleet])
        check_celery_fleet(await celery_fleet.run(client))


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
