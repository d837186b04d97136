"""Failover time with real processes: SIGKILL a worker mid-task, time until the task
restarts elsewhere (the STARTED event of its next attempt).

    python -m bench.bench_failover [--rounds 5] [--heartbeat-s 1.0]

Each round: a ``worldpool serve``, a victim worker that takes a long task, a rescuer
worker, SIGKILL of the victim right after its STARTED event. Prints, per round and as
median / max, the seconds from the kill to WORKER_OFFLINE and to the restart. Needs
``redis-server`` on PATH. Event times are Redis server time; the kill time is this host's
clock, which on loopback is the same clock.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import signal
import statistics
import tempfile
import time
from pathlib import Path

from tests.e2e.procs import Cluster, wait_event, wait_workers
from tests.redis_server import RedisServer

from worldpool.backends import backend_from_url
from worldpool.config import Settings
from worldpool.models import EventKind, TaskSpec
from worldpool.orchestrator.core import Orchestrator

COUNTING = "tests.e2e.handlers:COUNTING"


async def one_round(cluster: Cluster, settings: Settings, n: int) -> tuple[float, float]:
    args = ("--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin")
    async with backend_from_url(cluster.redis_url, settings) as client:
        victim = cluster.worker(f"victim-{n}", *args)
        await wait_workers(client, [victim])
        task_id = f"failover-{n}"
        await Orchestrator(client, settings).submit(
            TaskSpec(
                id=task_id, handler="count", payload={"sleep_s": 60, "first_attempt_only": True}
            )
        )
        await wait_event(client, EventKind.TASK_STARTED, task_id=task_id, timeout_s=60)
        rescuer = cluster.worker(f"rescuer-{n}", *args)
        await wait_workers(client, [rescuer])
        seen = await client.read_events(None, 1_000_000)
        cursor = seen[-1].seq if seen else None
        await asyncio.sleep(settings.heartbeat_s * (n % 4) / 4)  # kill at varied phases
        killed_at = time.time()
        victim.signal(signal.SIGKILL)
        offline = await wait_event(
            client, EventKind.WORKER_OFFLINE, cursor=cursor, worker_id=victim.name, timeout_s=60
        )
        restarted = await wait_event(
            client, EventKind.TASK_STARTED, cursor=cursor, task_id=task_id, timeout_s=60
        )
        assert restarted.worker_id == rescuer.name and restarted.attempt == 2
        rescuer.terminate()  # drains and goes offline at once: next round starts clean
        return offline.at - killed_at, restarted.at - killed_at


async def main(rounds: int, heartbeat_s: float) -> None:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: install the Debian package 'redis-server'")
    directory = Path(tempfile.mkdtemp(prefix="wp-bench-failover-"))
    server = RedisServer(binary, directory)
    server.start()
    cluster = Cluster(
        server.url,
        directory,
        namespace="bench-failover",
        env={
            "WORLDPOOL_HEARTBEAT_S": str(heartbeat_s),
            "WP_E2E_COUNT_FILE": str(directory / "count.log"),
        },
    )
    settings = Settings(namespace="bench-failover", heartbeat_s=heartbeat_s)
    try:
        cluster.serve()
        results = []
        for n in range(rounds):
            offline_s, restart_s = await one_round(cluster, settings, n)
            results.append((offline_s, restart_s))
            print(
                f"round {n + 1}: offline after {offline_s:.2f} s, task restarted "
                f"elsewhere after {restart_s:.2f} s"
            )
        restarts = [r for _, r in results]
        print(
            f"heartbeat {heartbeat_s:g} s (offline after 3 missed): SIGKILL -> restart "
            f"elsewhere median {statistics.median(restarts):.2f} s, max {max(restarts):.2f} s "
            f"over {rounds} rounds"
        )
    finally:
        cluster.close()
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--heartbeat-s", type=float, default=1.0)
    ns = parser.parse_args()
    asyncio.run(main(ns.rounds, ns.heartbeat_s))
