"""The peer in the end-to-end bench: the same no-op task on saq (optional; ``pip install saq``).

The worker side is ``python -m saq bench.e2e_saq.settings`` with ``WORLDPOOL_BENCH_REDIS``
set to the bench's Redis URL; the client side is :func:`measure`.
"""

from __future__ import annotations

import asyncio
import os
import statistics
import subprocess
import sys
import time
from typing import Any

Queue: Any
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
    return subprocess.Popen(
        [sys.executable, "-m", "saq", "bench.e2e_saq.settings"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def measure(url: str, tasks: int, round_trips: int) -> tuple[float, float, float]:
    """(tasks/s end to end, p50 ms, p99 ms) for saq on the same Redis."""
    assert Queue is not None
    queue = Queue.from_url(url, name=QUEUE_NAME)
    await queue.connect()
    # saq's apply()/map() poll every 0.5 s; a user after latency waits on its pub/sub
    # notifications instead (Job.refresh), with the subscriber kept alive between calls.
    keep = asyncio.create_task(queue.listen(["bench-keepalive"], lambda *_: False, timeout=None))
    try:
        await asyncio.sleep(0.1)
        for _ in range(20):  # warm up, and wait until the worker is there
            await _one(queue)
        samples = []
        for _ in range(round_trips):
            start = time.perf_counter()
            await _one(queue)
            samples.append((time.perf_counter() - start) * 1000)
        start = time.perf_counter()
        for lo in range(0, tasks, 200):
            await asyncio.gather(*(queue.enqueue("noop") for _ in range(lo, min(tasks, lo + 200))))
        while await queue.count("incomplete"):  # noqa: ASYNC110 - saq exposes no event
            await asyncio.sleep(0.01)
        rate = tasks / (time.perf_counter() - start)
    finally:
        keep.cancel()
        await queue.disconnect()
    samples.sort()
    return rate, statistics.median(samples), samples[max(0, int(len(samples) * 0.99) - 1)]


MISSED = [0]  # round trips where saq's completion notification never came


async def _one(queue: Any) -> None:
    job = await queue.enqueue("noop")
    for _ in range(15):
        try:
            await job.refresh(until_complete=2)
            return
        except TimeoutError:
            # saq can publish the completion before refresh() subscribes (seen about once
            # in a few thousand): the job is done, the wait missed it. Count it, move on.
            await job.refresh()
            if job.status == "complete":
                MISSED[0] += 1
                return
    raise TimeoutError(f"saq job {job.key} did not complete in 30 s")
