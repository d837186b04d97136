"""Raw Redis backend fast-path figures, no orchestrator or router: ``python -m bench.bench_redis``.

Starts its own ``redis-server`` on a free loopback port (no persistence) and measures:

* single-task round trip, one task at a time: put the record, dispatch it (compare-and-set
  and reserve + send in one script), the worker's receive + ack, complete, the
  orchestrator's receive_results + ack_results (p50 / p99), and the Redis round trips that
  took (counted at the client);
* batched throughput: N tasks moving at once through the same calls, with the worker and
  the results reader each taking up to 100 messages per read.

Options: ``--tasks 20000 --round-trips 2000``.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from worldpool.backends.base import Dispatch
from worldpool.backends.redis import RedisBackend
from worldpool.config import Settings
from worldpool.models import (
    Event,
    EventKind,
    Location,
    ResultStatus,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
    WorkerProfile,
)


@contextmanager
def redis_server() -> Iterator[str]:
    binary = shutil.which("redis-server")
    if binary is None:
        raise SystemExit("redis-server not found: apt-get install redis-server")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    directory = tempfile.mkdtemp(prefix="wp-bench-")
    args = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", directory]  # fmt: skip
    process = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        for _ in range(500):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                time.sleep(0.01)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        process.wait(10)
        shutil.rmtree(directory, ignore_errors=True)


class RoundTrips:
    """Counts client round trips: each command, and each pipeline as one."""

    def __init__(self, backend: RedisBackend) -> None:
        self.count = 0
        client: Any = backend.client
        execute_command = client.execute_command
        make_pipeline = client.pipeline

        async def counted_command(*args: Any, **kwargs: Any) -> Any:
            self.count += 1
            return await execute_command(*args, **kwargs)

        def counted_pipeline(*args: Any, **kwargs: Any) -> Any:
            pipe = make_pipeline(*args, **kwargs)
            execute = pipe.execute

            async def counted_execute(*a: Any, **k: Any) -> Any:
                self.count += 1
                return await execute(*a, **k)

            pipe.execute = counted_execute
            return pipe

        client.execute_command = counted_command
        client.pipeline = counted_pipeline


def record(task_id: str, worker_id: str) -> TaskRecord:
    return TaskRecord(
        spec=TaskSpec(id=task_id, handler="noop"),
        status=TaskStatus.DISPATCHED,
        attempt=1,
        worker_id=worker_id,
    )


def done(task_id: str, worker_id: str) -> TaskResult:
    return TaskResult(
        task_id=task_id, attempt=1, worker_id=worker_id, status=ResultStatus.SUCCEEDED
    )


def dispatch(stored: TaskRecord, envelope: bytes) -> Dispatch:
    event = Event(kind=EventKind.TASK_DISPATCHED, task_id=stored.id, worker_id="w1", attempt=1)
    return Dispatch(stored, stored.version, "w1", envelope, event)


async def put_and_dispatch(
    backend: RedisBackend, task_ids: list[str], envelopes: list[bytes]
) -> None:
    """Store each record, then dispatch them (one dispatch script each, pipelined)."""
    stored = [record(t, "w1") for t in task_ids]
    await asyncio.gather(*(backend.put_task(r) for r in stored))
    await backend.dispatch_many([dispatch(r, e) for r, e in zip(stored, envelopes, strict=True)])


async def one_task(backend: RedisBackend, task_id: str) -> None:
    await put_and_dispatch(backend, [task_id], [b'{"noop":1}'])
    [delivery] = await backend.receive("w1", max_count=1, block_s=1.0)
    await backend.ack("w1", delivery.id)
    await backend.complete(done(task_id, "w1"))
    [message] = await backend.receive_results("orch", max_count=1, block_s=1.0)
    await backend.ack_results([message.id])


async def round_trip(url: str, n: int) -> None:
    backend = RedisBackend.from_url(url, Settings(namespace=f"bench-{uuid.uuid4().hex[:8]}"))
    await backend.register(WorkerProfile(id="w1", location=Location(region="local")))
    for i in range(50):  # warm up connections and script caches
        await one_task(backend, f"warm-{i}")
    counter = RoundTrips(backend)
    samples = []
    for i in range(n):
        start = time.perf_counter()
        await one_task(backend, f"t-{i}")
        samples.append((time.perf_counter() - start) * 1000)
    samples.sort()
    p50 = statistics.median(samples)
    p99 = samples[int(len(samples) * 0.99) - 1]
    print(f"single-task round trip ({n} tasks, one at a time): p50 {p50:.3f} ms, p99 {p99:.3f} ms")
    print(f"redis round trips per task: {counter.count / n:.1f} "
          "(put, dispatch, receive, ack, complete, receive_results, ack_results)")  # fmt: skip
    await backend.aclose()


async def throughput(url: str, n: int) -> None:
    settings = Settings(namespace=f"bench-{uuid.uuid4().hex[:8]}")
    backend = RedisBackend.from_url(url, settings)
    await backend.register(
        WorkerProfile(id="w1", location=Location(region="local"), max_concurrency=n)
    )
    counter = RoundTrips(backend)
    batch = 100
    start = time.perf_counter()

    async def produce() -> None:
        for lo in range(0, n, batch):
            ids = [f"t-{i}" for i in range(lo, min(n, lo + batch))]
            await put_and_dispatch(backend, ids, [t.encode() for t in ids])

    async def work() -> None:
        handled = 0
        while handled < n:
            deliveries = await backend.receive("w1", max_count=batch, block_s=1.0)
            task_ids = [d.data.decode() for d in deliveries]  # the envelope is the task id
            await asyncio.gather(*(backend.complete(done(t, "w1")) for t in task_ids))
            await asyncio.gather(*(backend.ack("w1", d.id) for d in deliveries))
            handled += len(deliveries)

    async def collect() -> None:
        seen = 0
        while seen < n:
            messages = await backend.receive_results("orch", max_count=batch, block_s=1.0)
            await backend.ack_results([m.id for m in messages])
            seen += len(messages)

    await asyncio.gather(produce(), work(), collect())
    elapsed = time.perf_counter() - start
    print(f"batched throughput ({n} tasks, batches of {batch}): {n / elapsed:,.0f} tasks/s "
          f"({elapsed:.2f} s), {counter.count / n:.1f} round trips per task")  # fmt: skip
    await backend.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=2_000)
    options = parser.parse_args()
    with redis_server() as url:
        asyncio.run(round_trip(url, options.round_trips))
        asyncio.run(throughput(url, options.tasks))


if __name__ == "__main__":
    main()
