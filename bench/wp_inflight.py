"""The memory run's producer: many tasks in flight at once, through the public client.

    python -m bench.wp_inflight --redis URL --namespace NS --tasks 10000 --hold-s 15

Submits ``--tasks`` ``hold`` tasks (each stays in flight ``--hold-s`` seconds on its
worker) and waits for them all. Prints one JSON line: the submit and total wall times and
the most tasks in flight at once, counted from the handlers' own start and end times (so
the figure is measured, not assumed).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from typing import Any

from worldpool import Client

SUBMIT_CONCURRENCY = 200


def peak_in_flight(spans: list[tuple[float, float]]) -> int:
    """The most intervals that overlap at one instant (an end before a start at a tie)."""
    edges = sorted([(s, 1) for s, _ in spans] + [(e, -1) for _, e in spans])
    most = now = 0
    for _, step in edges:
        now += step
        most = max(most, now)
    return most


async def run(url: str, namespace: str, tasks: int, hold_s: float) -> dict[str, Any]:
    cpu0 = time.process_time()
    async with await Client.connect(url, namespace=namespace) as client:
        start = time.perf_counter()
        handles = []
        for _ in range(0, tasks, SUBMIT_CONCURRENCY):
            n = min(SUBMIT_CONCURRENCY, tasks - len(handles))
            handles += await asyncio.gather(
                *(client.submit("hold", {"s": hold_s}) for _ in range(n))
            )
        submitted = time.perf_counter() - start
        values = await asyncio.gather(*(h.result(timeout_s=900.0) for h in handles))
        wall = time.perf_counter() - start
    spans = []
    for value in values:
        if not isinstance(value, dict):
            raise SystemExit(f"a hold task returned {value!r}, not its start and end times")
        spans.append((float(value["start"]), float(value["end"])))
    return {
        "client_cpu_s": time.process_time() - cpu0,
        "tasks": tasks,
        "hold_s": hold_s,
        "submit_s": submitted,
        "wall_s": wall,
        "peak_in_flight": peak_in_flight(spans),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True)
    parser.add_argument("--namespace", default="bench")
    parser.add_argument("--tasks", type=int, default=10_000)
    parser.add_argument("--hold-s", type=float, default=15.0)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.redis, args.namespace, args.tasks, args.hold_s))))


if __name__ == "__main__":
    main()
