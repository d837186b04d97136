"""The worldpool producer of the deployment-shape benchmark: a client process of its own.

    python -m bench.wp_producer --redis URL --namespace NS --tasks 10000 --round-trips 200

# COORDINATOR: swap to ``worldpool.Client`` after merging the client issue. This module is
# the ONE place the benchmark submits to worldpool from another process; today it does what
# ``worldpool submit`` does (an Orchestrator without loops, submitting through the backend;
# the running ``worldpool serve`` dispatches), and waits by following the event stream. With
# the client it becomes ``client = await Client.connect(url, prefix=...)``,
# ``handle = await client.submit("noop", {})``, ``await handle.result(timeout_s=...)``,
# ``await client.aclose()``.

Prints one JSON line: throughput of ``--tasks`` no-op tasks submitted at once (wall time
from the first submit to the last success) and the single-task round trip (p50/p99 of
``--round-trips`` one-after-another submit-and-wait).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time

from worldpool.backends.redis import RedisBackend
from worldpool.config import Settings
from worldpool.models import EventKind, TaskSpec
from worldpool.orchestrator.core import Orchestrator

DONE = frozenset({EventKind.TASK_SUCCEEDED, EventKind.TASK_FAILED})
SUBMIT_CONCURRENCY = 200


async def _tail(backend: RedisBackend) -> str | None:
    cursor: str | None = None
    while True:
        page = await backend.read_events_of(frozenset(), cursor, 5000)
        if page.cursor == cursor:
            return cursor
        cursor = page.cursor


async def _wait_done(
    backend: RedisBackend, ids: set[str], cursor: str | None, timeout_s: float
) -> str | None:
    deadline = time.monotonic() + timeout_s
    while ids:
        if time.monotonic() > deadline:
            raise SystemExit(f"{len(ids)} tasks did not finish within {timeout_s:g} s")
        page = await backend.read_events_of(DONE, cursor, 5000, block_s=1.0)
        cursor = page.cursor
        for event in page.events:
            ids.discard(event.task_id or "")
    return cursor


async def run(url: str, namespace: str, tasks: int, round_trips: int) -> dict[str, float]:
    cpu0 = time.process_time()  # imports and start-up are not the producer's work
    settings = Settings(redis_url=url, namespace=namespace)
    async with RedisBackend.from_url(url, settings) as backend:
        orch = Orchestrator(backend, settings, name="bench-producer")  # submit only
        cursor = await _tail(backend)
        times = []
        for _ in range(round_trips):
            start = time.perf_counter()
            spec = TaskSpec(handler="noop")
            await orch.submit(spec)
            cursor = await _wait_done(backend, {spec.id}, cursor, 30.0)
            times.append((time.perf_counter() - start) * 1e3)
        specs = [TaskSpec(handler="noop") for _ in range(tasks)]
        start = time.perf_counter()
        for i in range(0, tasks, SUBMIT_CONCURRENCY):
            await asyncio.gather(*(orch.submit(s) for s in specs[i : i + SUBMIT_CONCURRENCY]))
        await _wait_done(backend, {s.id for s in specs}, cursor, 600.0)
        wall = time.perf_counter() - start
    times.sort()
    return {
        "client_cpu_s": time.process_time() - cpu0,
        "rate": tasks / wall if tasks else 0.0,
        "wall_s": wall,
        "p50_ms": statistics.median(times) if times else 0.0,
        "p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] if times else 0.0,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--round-trips", type=int, default=200)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.redis, args.namespace, args.tasks, args.round_trips))))


if __name__ == "__main__":
    main()
