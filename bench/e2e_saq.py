"""The peer in the end-to-end bench: the same no-op task on saq (optional; ``pip install saq``).

The worker side is ``python -m saq bench.e2e_saq.settings`` with ``WORLDPOOL_BENCH_REDIS``
set to the bench's Redis URL; the client side is :func:`measure`.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from typing import Any

try:
    from saq import Queue
except ImportError:  # the bench skips the peer with a note
    Queue = None

QUEUE_NAME = "wp-bench-peer"


async def noop(ctx: dict[str, Any]) -> None:
    """The same no-op as :mod:`bench.noop_handlers`."""
    return None


settings: dict[str, Any] = {}
if Queue is not None and os.environ.get("WORLDPOOL_BENCH_REDIS"):
    settings = {
        "queue": Queue.from_url(os.environ["WORLDPOOL_BENCH_REDIS"], name=QUEUE_NAME),
        "functions": [noop],
        "concurrency": 64,
    }


def available() -> bool:
    return Queue is not None


def start_worker(url: str) -> subprocess.Popen[bytes]:
    env = {**os.environ, "WORLDPOOL_BENCH_REDIS": url}
    return subprocess.Popen([sys.executable, "-m", "saq", "bench.e2e_saq.settings"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


async def measure(url: str, tasks: int, round_trips: int) -> tuple[float, float, float]:
    """(tasks/s end to end, p50 ms, p99 ms) for saq on the same Redis."""
    assert Queue is not None
    queue = Queue.from_url(url, name=QUEUE_NAME)
    await queue.connect()
    try:
        for _ in range(20):  # warm up, and wait until the worker is there
            await queue.apply("noop", timeout=30)
        samples = []
        for _ in range(round_trips):
            start = time.perf_counter()
            await queue.apply("noop", timeout=30)
            samples.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        await queue.map("noop", [{} for _ in range(tasks)], timeout=600)
        rate = tasks / (time.perf_counter() - start)
    finally:
        await queue.disconnect()
    samples.sort()
    return rate, statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]
