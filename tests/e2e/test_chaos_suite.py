"""The chaos suite: real ``serve`` and ``worker`` processes, real faults, and the checker
(``checker.py``: the submitter's journal, the handlers' side-effect ledger, the final
records) saying 0 lost, 0 stuck, 0 effects applied twice.

The fast tier (no marker) runs in CI; the long tier is marked ``chaos`` (``make chaos``).
Every workload is ``effect`` tasks: each sleeps, then applies one effect through
``ctx.once``.
"""

from __future__ import annotations

import asyncio
import random
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.checker import Journal, Verdict, check
from tests.e2e.fault_proxy import FaultProxy
from tests.e2e.procs import Cluster, Proc, wait_workers
from tests.e2e.test_chaos import COUNTING, SETTINGS, count_file
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.base import Backend
from worldpool.models import EventKind, TaskSpec
from worldpool.orchestrator.core import Orchestrator

REGIONS = ("eu-west-1", "us-east-1", "ap-northeast-1")


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """Every command in the append-only file: a killed Redis loses nothing."""
    yield from start_redis(extra_args=["--appendonly", "yes", "--appendfsync", "always"])


def effects_file(cluster: Cluster) -> Path:
    return cluster.directory / "effects.log"


def workers(
    cluster: Cluster, *ids: str, slots: int = 4, env: dict[str, str] | None = None
) -> list[Proc]:
    cluster.env["WP_E2E_COUNT_FILE"] = str(count_file(cluster))
    cluster.env["WP_E2E_EFFECT_FILE"] = str(effects_file(cluster))
    return [
        cluster.worker(
            worker_id, "--region", REGIONS[i % 3], "--handlers", COUNTING, "--no-builtin",
            "--max-concurrency", str(slots), env=env,
        )
        for i, worker_id in enumerate(ids)
    ]  # fmt: skip


async def submit_load(
    journal: Journal, submitter: Orchestrator, count: int, prefix: str, sleep_s: float = 0.2
) -> list[str]:
    return [
        await journal.submit(
            submitter,
            TaskSpec(id=f"{prefix}-{i:04d}", handler="effect", payload={"sleep_s": sleep_s}),
        )
        for i in range(count)
    ]


async def verdict(cluster: Cluster, client: Backend, journal: Journal) -> Verdict:
    result = await check(client, journal, effects_file(cluster), timeout_s=90)
    print(f"chaos verdict: {result}")
    assert result.clean, f"{result}\n{cluster.logs()}"
    return result


# --------------------------------------------------------------------------- fast tier


async def test_worker_sigkill_under_load(cluster: Cluster, client: Backend) -> None:
    cluster.serve()
    procs = workers(cluster, "w1", "w2", "w3")
    await wait_workers(client, procs)
    journal = Journal(cluster.directory / "journal.log")
    submitter = Orchestrator(client, SETTINGS)
    await submit_load(journal, submitter, 40, "load", sleep_s=0.3)
    await asyncio.sleep(1.0)
    procs[0].kill()
    await submit_load(journal, submitter, 20, "after")
    await verdict(cluster, client, journal)


# --------------------------------------------------------------------------- long tier


@pytest.mark.chaos
@pytest.mark.parametrize("replicas", [1, 2])
async def test_orchestrator_sigkill_loop(cluster: Cluster, client: Backend, replicas: int) -> None:
    serves = [cluster.serve(f"orch-{i}") for i in range(replicas)]
    await wait_workers(client, workers(cluster, "w1", "w2", "w3"))
    journal = Journal(cluster.directory / "journal.log")
    submitter = Orchestrator(client, SETTINGS)
    for round_ in range(4):
        await submit_load(journal, submitter, 25, f"r{round_}")
        victim = serves[round_ % replicas]
        victim.signal(signal.SIGKILL)
        victim.popen.wait(timeout=10)
        await asyncio.sleep(0.5)
        name = f"orch-{round_ % replicas}"
        serves[round_ % replicas] = cluster.serve(f"{name}-{round_}", "--name", name)
    await verdict(cluster, client, journal)


@pytest.mark.chaos
async def test_redis_kill_loop_with_aof(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    cluster.serve()
    await wait_workers(client, workers(cluster, "w1", "w2"))
    journal = Journal(cluster.directory / "journal.log")
    submitter = Orchestrator(client, SETTINGS)
    for round_ in range(3):
        await submit_load(journal, submitter, 20, f"r{round_}", sleep_s=1.0)
        await asyncio.sleep(0.5)
        redis_server.kill()
        await asyncio.sleep(2.0 + round_)
        redis_server.start()
        await asyncio.sleep(1.0)
    await verdict(cluster, client, journal)
    offline = [
        e for e in await client.read_events(None, 100_000) if e.kind is EventKind.WORKER_OFFLINE
    ]
    assert offline == [], [e.message for e in offline]


@pytest.mark.chaos
async def test_fault_proxy_latency_resets_and_freezes(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    cluster.serve()
    with FaultProxy(redis_server.port) as proxy:
        via = {"WORLDPOOL_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        await wait_workers(client, workers(cluster, "p1", "p2", env=via))
        journal = Journal(cluster.directory / "journal.log")
        submitter = Orchestrator(client, SETTINGS)
        rng = random.Random(14)
        for round_ in range(6):
            await submit_load(journal, submitter, 15, f"r{round_}")
            proxy.latency_s = rng.choice([0.0, 0.005, 0.05])
            fault = rng.choice(["reset", "freeze", "none"])
            if fault == "reset":
                proxy.reset()
            elif fault == "freeze":
                proxy.freeze()
            await asyncio.sleep(2.0)
        proxy.latency_s = 0.0
        await verdict(cluster, client, journal)


@pytest.mark.chaos
async def test_worker_sigkill_and_pause_loop(cluster: Cluster, client: Backend) -> None:
    cluster.serve()
    procs = workers(cluster, "w1", "w2", "w3", "w4")
    await wait_workers(client, procs)
    journal = Journal(cluster.directory / "journal.log")
    submitter = Orchestrator(client, SETTINGS)
    for round_ in range(4):
        await submit_load(journal, submitter, 25, f"r{round_}", sleep_s=0.5)
        await asyncio.sleep(0.7)
        victim = procs[round_ % len(procs)]
        if round_ % 2:
            victim.signal(signal.SIGSTOP)  # a zombie: paused past its lease, then back
            await asyncio.sleep(3.0)
            victim.signal(signal.SIGCONT)
        else:
            victim.kill()
            (procs[round_ % len(procs)],) = workers(cluster, f"{victim.name}-again")
    await verdict(cluster, client, journal)
