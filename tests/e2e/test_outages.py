"""Redis outages with real processes: Redis SIGKILLed with tasks in flight and brought back
on the same port from its append-only file. Live workers must not be failed over (no
WORKER_OFFLINE, no second execution in the side-effect ledger the handlers write)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from tests.e2e.procs import Cluster, wait_workers
from tests.e2e.test_chaos import SETTINGS, counting_workers, runs_per_task, wait_all, wait_count
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.base import Backend
from worldpool.models import EventKind, TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator

OUTAGE_S = 3.0


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    """A server that writes every command to its append-only file (it loses nothing)."""
    yield from start_redis(extra_args=["--appendonly", "yes", "--appendfsync", "always"])


async def test_redis_outage_fails_no_live_worker_over(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    cluster.serve()
    await wait_workers(client, counting_workers(cluster, "w1", "w2", slots=4))
    submitter = Orchestrator(client, SETTINGS)
    ids = [
        (await submitter.submit(TaskSpec(id=f"o-{i}", handler="count", payload={"sleep_s": 2})))
        .id
        for i in range(8)
    ]  # fmt: skip
    await wait_count(cluster, "start", len(ids))

    redis_server.kill()
    await asyncio.sleep(OUTAGE_S)
    redis_server.start()  # same port, same directory: the AOF is replayed

    await wait_all(client, ids, cluster, timeout_s=60)
    await asyncio.sleep(2.0)  # a false failover would come right after the return
    records = await client.get_tasks(ids)
    assert all(r is not None and r.status is TaskStatus.SUCCEEDED for r in records), records
    assert all(r is not None and len(r.attempts) == 1 for r in records), records
    starts = runs_per_task(cluster, "start")
    assert set(starts) == set(ids) and max(starts.values()) == 1, starts
    offline = [
        e for e in await client.read_events(None, 10_000) if e.kind is EventKind.WORKER_OFFLINE
    ]
    assert offline == [], [e.message for e in offline]
    assert "grace" in cluster.procs[0].log(), cluster.logs()
