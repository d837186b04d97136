"""End-to-end figures with real processes: ``python -m bench.bench_e2e``.

Starts its own ``redis-server`` (free loopback port, no persistence), one orchestrator in
this process (with what ``worldpool serve`` runs beside it: the submission watcher and the
GC tuning; not the HTTP API) and ONE worker process (``worldpool worker --no-builtin --handlers
bench.noop_handlers:HANDLERS --max-concurrency 64``, run through :mod:`bench.e2e_worker`
so its Redis round trips can be counted), then measures:

* single-task round trip: submit one no-op task, wait until the orchestrator has applied
  its SUCCEEDED result; ``--round-trips`` times, one after another (p50 / p99);
* end-to-end throughput: submit ``--tasks`` no-op tasks, wait until all are SUCCEEDED;
* Redis round trips per task on both sides (each command or pipeline is one).

If saq is installed (``pip install saq``; never a worldpool dependency) the same two
figures are measured for it on the same redis-server, for a same-machine ratio.
Options: ``--tasks 20000 --round-trips 500 --no-peer``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench import e2e_saq, roundtrip_counter
from bench.bench_redis import redis_server
from worldpool.backends.redis import RedisBackend
from worldpool.cli.serve import watch_submissions
from worldpool.config import Settings
from worldpool.models import TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator
from worldpool.service import tune_gc

ROOT = Path(__file__).resolve().parents[1]
WORKER_ID = "bench-worker"
SUBMIT_CONCURRENCY = 200
# The reference from issue 3 item 8: the best Python task queues on this kind of machine.
REF_RATE = (1300.0, 1600.0)
REF_P50_MS = (1.4, 2.3)


@dataclass
class Figures:
    rate: float = 0.0
    p50_ms: float = 0.0
    p99_ms: float = 0.0
    trips: dict[str, float] = field(default_factory=dict)


def start_worker(url: str, namespace: str, count_file: str) -> subprocess.Popen[bytes]:
    args = [sys.executable, "-m", "bench.e2e_worker", "worker", "--redis", url,
            "--namespace", namespace, "--id", WORKER_ID, "--region", "us-east-1",
            "--no-builtin", "--handlers", "bench.noop_handlers:HANDLERS",
            "--max-concurrency", "64"]  # fmt: skip
    env = {**os.environ, "WORLDPOOL_BENCH_COUNT_FILE": count_file}
    return subprocess.Popen(args, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def server_commands(backend: RedisBackend) -> int:
    """Commands the server ran so far, including those inside scripts."""
    info = await backend.client.info("stats")
    return int(info["total_commands_processed"])


class Trips:
    """Round trips of this process and of the worker process between two points."""

    def __init__(self, count_file: str, backend: RedisBackend) -> None:
        self.count_file = count_file
        self.backend = backend
        self.own = 0  # the bench's own calls (waiting, counting), not the orchestrator's

    async def mark(self) -> tuple[int, int, int]:
        await asyncio.sleep(0.15)  # let the worker publish its count
        commands = await server_commands(self.backend)
        self.own += 1
        return (
            roundtrip_counter.COUNT[0] - self.own,
            roundtrip_counter.read(self.count_file),
            commands,
        )

    async def per_task(self, before: tuple[int, int, int], n: int) -> dict[str, float]:
        after = await self.mark()
        return {
            "orchestrator": (after[0] - before[0]) / n,
            "worker": (after[1] - before[1]) / n,
            "server commands": (after[2] - before[2]) / n,
        }


async def wait_pool(orch: Orchestrator, worker: subprocess.Popen[bytes]) -> None:
    for _ in range(300):
        if any(w.id == WORKER_ID for w in await orch.pool()):
            return
        if worker.poll() is not None:
            raise SystemExit(f"the worker exited with {worker.returncode}")
        await asyncio.sleep(0.1)
    raise SystemExit("the worker did not register within 30 s")


async def round_trip(orch: Orchestrator, trips: Trips, n: int, figures: Figures) -> None:
    samples = []
    before = await trips.mark()
    for _ in range(n):
        start = time.perf_counter()
        record = await orch.submit(TaskSpec(handler="noop"))
        done = await orch.wait_task(record.id, timeout_s=30)
        samples.append((time.perf_counter() - start) * 1000)
        if done.status is not TaskStatus.SUCCEEDED:
            raise SystemExit(f"task {done.id} ended {done.status.value}: {done.error}")
    figures.trips.update(
        {f"{k} (one at a time)": v for k, v in (await trips.per_task(before, n)).items()}
    )
    samples.sort()
    figures.p50_ms = statistics.median(samples)
    figures.p99_ms = samples[max(0, int(len(samples) * 0.99) - 1)]


async def throughput(orch: Orchestrator, url: str, trips: Trips, n: int, figures: Figures) -> None:
    watcher = RedisBackend.from_url(url, orch.settings)
    raw: Any = watcher.client  # raw stream replies, parsed below
    events = watcher.keys.events
    last = await raw.xrevrange(events, count=1)
    cursor: bytes = last[0][0] if last else b"0-0"
    before = await trips.mark()
    start = time.perf_counter()

    async def watch() -> None:  # counts SUCCEEDED events without decoding them
        nonlocal cursor
        seen = 0
        while seen < n:
            reply = await raw.xread({events: cursor}, count=20_000, block=1000)
            trips.own += 1
            for _, entries in reply or []:
                cursor = entries[-1][0]
                seen += sum(1 for _, f in entries if b'"task.succeeded"' in f[b"e"])

    async def submit() -> list[str]:
        ids: list[str] = []
        for lo in range(0, n, SUBMIT_CONCURRENCY):
            batch = [TaskSpec(handler="noop") for _ in range(lo, min(n, lo + SUBMIT_CONCURRENCY))]
            ids += [r.id for r in await asyncio.gather(*(orch.submit(s) for s in batch))]
        return ids

    ids, _ = await asyncio.gather(submit(), asyncio.wait_for(watch(), 600))
    figures.rate = n / (time.perf_counter() - start)
    figures.trips.update(
        {f"{k} (throughput run)": v for k, v in (await trips.per_task(before, n)).items()}
    )
    records = await watcher.get_tasks(ids)
    ok = sum(1 for r in records if r is not None and r.status is TaskStatus.SUCCEEDED)
    await watcher.aclose()
    if ok != n:
        raise SystemExit(f"only {ok} of {n} tasks SUCCEEDED")


async def measure_worldpool(url: str, tasks: int, round_trips: int) -> Figures:
    roundtrip_counter.install()
    namespace = f"bench-{uuid.uuid4().hex[:8]}"
    settings = Settings(redis_url=url, namespace=namespace, event_log_max=max(100_000, tasks * 8))
    figures = Figures()
    with tempfile.TemporaryDirectory(prefix="wp-e2e-") as tmp:
        count_file = str(Path(tmp) / "worker-trips")
        worker = start_worker(url, namespace, count_file)
        backend = RedisBackend.from_url(url, settings)
        try:
            async with Orchestrator(backend, settings, name="bench-orchestrator") as orch:
                await wait_pool(orch, worker)
                # What `worldpool serve` runs beside the orchestrator (its API aside).
                watcher = asyncio.create_task(watch_submissions(backend, orch))
                tune_gc()
                trips = Trips(count_file, backend)
                for _ in range(50):  # warm up connections, script caches, the worker
                    record = await orch.submit(TaskSpec(handler="noop"))
                    await orch.wait_task(record.id, timeout_s=30)
                await round_trip(orch, trips, round_trips, figures)
                await throughput(orch, url, trips, tasks, figures)
                watcher.cancel()
        finally:
            worker.terminate()
            with contextlib.suppress(subprocess.TimeoutExpired):
                worker.wait(20)
            if worker.poll() is None:
                worker.kill()
            await backend.aclose()
    return figures


def measure_peer(url: str, tasks: int, round_trips: int) -> tuple[float, float, float] | None:
    if not e2e_saq.available():
        print("peer: saq is not installed, skipped (pip install saq for a same-machine ratio)")
        return None
    worker = e2e_saq.start_worker(url)
    try:
        return asyncio.run(e2e_saq.measure(url, tasks, round_trips))
    finally:
        worker.terminate()
        worker.wait(20)


def report(ours: Figures, tasks: int, n: int) -> None:
    lo, hi = REF_RATE
    print(
        f"end-to-end throughput ({tasks} no-op tasks, 1 worker process, 64 slots): "
        f"{ours.rate:,.0f} tasks/s  (reference {lo:,.0f}-{hi:,.0f}: "
        f"x{ours.rate / hi:.2f}-x{ours.rate / lo:.2f})"
    )
    lo, hi = REF_P50_MS
    print(
        f"single-task round trip ({n} sequential): p50 {ours.p50_ms:.2f} ms, "
        f"p99 {ours.p99_ms:.2f} ms  (reference p50 {lo}-{hi} ms: "
        f"x{lo / ours.p50_ms:.2f}-x{hi / ours.p50_ms:.2f} as fast)"
    )
    print("redis round trips per task (each command or pipeline counts one):")
    for name, value in ours.trips.items():
        print(f"  {name:42s} {value:6.2f}")


def report_peer(ours: Figures, peer: tuple[float, float, float]) -> None:
    rate, p50, p99 = peer
    print(f"peer saq, same redis-server: {rate:,.0f} tasks/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms")
    print(
        f"worldpool / saq: throughput x{ours.rate / rate:.2f}, p50 x{p50 / ours.p50_ms:.2f} as fast"
    )
    if e2e_saq.MISSED[0]:
        print(
            f"  (saq missed {e2e_saq.MISSED[0]} completion notification(s); each of those "
            "round trips took 2 s and counts in its p99)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--tasks", type=int, default=20_000)
    parser.add_argument("--round-trips", type=int, default=500)
    parser.add_argument("--no-peer", action="store_true", help="skip the saq comparison")
    options = parser.parse_args()
    with redis_server() as url:
        ours = asyncio.run(measure_worldpool(url, options.tasks, options.round_trips))
        report(ours, options.tasks, options.round_trips)  # printed before the peer runs
        if not options.no_peer:
            peer = measure_peer(url, options.tasks, options.round_trips)
            if peer is not None:
                report_peer(ours, peer)


if __name__ == "__main__":
    main()
