"""Redis outages and bad connections with real processes.

* Redis SIGKILLed with tasks in flight and brought back on the same port from its
  append-only file: live workers must not be failed over (no WORKER_OFFLINE, no second
  execution in the side-effect ledger the handlers write).
* A saturated pool: a dead worker's tasks restart first, not behind the queue.
* A worker whose open connections go half-open (a fault proxy freezes them): its stalled
  connections are replaced within seconds and its work goes on.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from tests.e2e.fault_proxy import FaultProxy
from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, wait_workers
from tests.e2e.test_chaos import (
    COUNTING,
    SETTINGS,
    count_file,
    counting_workers,
    runs_per_task,
    wait_all,
    wait_count,
)
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


async def test_failed_over_tasks_restart_first_when_the_pool_is_saturated(
    cluster: Cluster, client: Backend
) -> None:
    cluster.serve()
    (victim,) = counting_workers(cluster, "victim", slots=2)
    await wait_workers(client, [victim])
    submitter = Orchestrator(client, SETTINGS)
    doomed = ["doomed-0", "doomed-1"]
    for task_id in doomed:
        payload = {"sleep_s": 30, "first_attempt_only": True}
        await submitter.submit(TaskSpec(id=task_id, handler="count", payload=payload))
    await wait_count(cluster, "start", 2)
    (rescuer,) = counting_workers(cluster, "rescuer", slots=2)
    await wait_workers(client, [rescuer])
    backlog = [
        (await submitter.submit(TaskSpec(id=f"b-{i:03d}", handler="count", payload={"sleep_s": 0.3})))
        .id
        for i in range(60)
    ]  # fmt: skip  # 60 x 0.3 s on 2 slots: 9 s of queue
    await wait_count(cluster, "start", 4)  # the rescuer is busy

    victim.kill()
    killed = time.monotonic()
    while sum(1 for t, a, _, p in executions(count_file(cluster)) if t in doomed and a == 2) < 2:
        assert time.monotonic() - killed < 30, cluster.logs()
        await asyncio.sleep(0.02)
    restart_s = time.monotonic() - killed
    # 3 heartbeats (1.5 s) + one sweep (0.25 s) + one backlog task ending (0.3 s) + slack
    assert restart_s < 4.0, f"failed-over tasks restarted {restart_s:.1f}s after the kill"
    print(f"failed-over tasks restarted {restart_s:.2f}s after SIGKILL, behind a 9 s queue")
    await wait_all(client, [*doomed, *backlog], cluster, timeout_s=60)


async def test_a_half_open_connection_is_replaced_within_seconds(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    cluster.serve()
    with FaultProxy(redis_server.port) as proxy:
        via_proxy = {"WORLDPOOL_REDIS_URL": f"redis://127.0.0.1:{proxy.port}/0"}
        cluster.env["WP_E2E_COUNT_FILE"] = str(count_file(cluster))
        worker = cluster.worker(
            "w1",
            "--region",
            "eu-west-1",
            "--handlers",
            COUNTING,
            "--no-builtin",
            "--max-concurrency",
            "4",
            env=via_proxy,
        )
        await wait_workers(client, [worker])
        submitter = Orchestrator(client, SETTINGS)
        warm = await submitter.submit(TaskSpec(id="warm", handler="count"))
        await wait_all(client, [warm.id], cluster)
        assert proxy.freeze() >= 1  # the worker's open connections go silent
        frozen = time.monotonic()
        ids = [
            (await submitter.submit(TaskSpec(id=f"h-{i}", handler="count"))).id for i in range(5)
        ]
        await wait_all(client, ids, cluster, timeout_s=30)
        done_s = time.monotonic() - frozen
    print(f"5 tasks for a worker with frozen connections done {done_s:.2f}s after the freeze")
    assert done_s < 12.0, cluster.logs()  # the freeze never ends: without this, never
    records = await client.get_tasks(ids)
    assert all(r is not None and r.status is TaskStatus.SUCCEEDED for r in records)


async def test_a_redis_that_comes_back_empty_is_reported_loudly(
    cluster: Cluster, client: Backend, redis_server: RedisServer
) -> None:
    redis_server.stop()  # this test wants the plain, non-persistent server
    redis_server.extra_args = []
    redis_server.start()
    serve = cluster.serve()
    (worker,) = counting_workers(cluster, "w1")
    await wait_workers(client, [worker])
    submitter = Orchestrator(client, SETTINGS)
    before = await submitter.submit(TaskSpec(id="before", handler="count"))
    await wait_all(client, [before.id], cluster)

    redis_server.restart()  # SIGKILL, and back empty
    deadline = time.monotonic() + 20
    while "lost its state" not in serve.log():
        assert time.monotonic() < deadline, cluster.logs()
        await asyncio.sleep(0.1)
    await wait_workers(client, [worker])  # the worker registered again by itself
    events = [e for e in await client.read_events() if e.kind is EventKind.DEPLOYMENT_STATE_LOST]
    assert len(events) == 1, [e.message for e in events]
    status = cluster.cli("status", "before")
    assert status.returncode != 0 and "lost its state" in status.stdout + status.stderr
    after = await submitter.submit(TaskSpec(id="after", handler="count"))
    await wait_all(client, [after.id], cluster)  # and it goes on, having said so
    assert serve.alive and worker.alive
