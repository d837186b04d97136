"""The worldpool producer of the deployment-shape benchmark: a client process of its own.

    python -m bench.wp_producer --redis URL --namespace NS --tasks 10000 --round-trips 200

It uses the public client, as a user's program would: ``Client.connect``,
``client.submit``, ``handle.result``.

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

from worldpool import Client

SUBMIT_CONCURRENCY = 200


async def run(url: str, namespace: str, tasks: int, round_trips: int) -> dict[str, float]:
    cpu0 = time.process_time()  # imports and start-up are not the producer's work
    async with await Client.connect(url, namespace=namespace) as client:
        times = []
        for _ in range(round_trips):
            start = time.perf_counter()
            await client.run("noop", timeout_s=30.0)
            times.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        handles = []
        for _ in range(0, tasks, SUBMIT_CONCURRENCY):
            n = min(SUBMIT_CONCURRENCY, tasks - len(handles))
            handles += await asyncio.gather(*(client.submit("noop") for _ in range(n)))
        await asyncio.gather(*(h.result(timeout_s=600.0) for h in handles))
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
