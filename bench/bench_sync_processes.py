"""What ``--sync-handlers process`` costs per task, in one process (no Redis).

    python -m bench.bench_sync_processes [--tasks 300] [--starts 3] [--rounds 3]

Prints, as medians:

* **child start**: starting one child process (a fresh interpreter that imports the
  worker and loads the handler spec) until it says it is ready: what the first task of a
  slot, and the first task after a kill, waits for;
* **call round trip**: one call of a no-op sync handler through a warm child
  (:meth:`ChildPool.call`: the task to JSON, over the socket, run, the outcome back and
  merged into the context) against the same call in a thread of the worker's pool: the
  per-task overhead of the mode;
* **task end to end**: a no-op sync task submitted to an embedded pool (orchestrator,
  memory backend, one worker with one slot) and waited for, thread mode against process
  mode, one at a time, in alternated rounds.

The figures are this machine's; run it where the worker runs.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from tests.worker.process_handlers import HANDLERS, quick

from worldpool.models import TaskSpec
from worldpool.testing import EmbeddedPool, make_worker
from worldpool.worker.handlers import TaskContext
from worldpool.worker.processes import ChildPool, SyncProcesses
from worldpool.worker.runtime import WorkerRuntime

SPEC = "tests.worker.process_handlers:HANDLERS"


def _ms(samples: list[float]) -> str:
    return f"{statistics.median(samples) * 1000:.3f} ms (p90 {_p90(samples) * 1000:.3f})"


def _p90(samples: list[float]) -> float:
    return sorted(samples)[int(len(samples) * 0.9)]


def child_start(starts: int) -> list[float]:
    samples = []
    for _ in range(starts):
        pool = ChildPool(SyncProcesses((SPEC,)), "bench")
        began = time.perf_counter()
        pool.warm()
        samples.append(time.perf_counter() - began)
        pool.close()
    return samples


def round_trips(tasks: int) -> tuple[list[float], list[float]]:
    worker = make_worker("bench")
    kill = threading.Event()

    def ctx() -> TaskContext:
        return TaskContext(task_id="t", attempt=1, handler="quick", payload={}, worker=worker)

    def timed(call: Callable[[], object]) -> list[float]:
        samples = []
        for _ in range(tasks):
            began = time.perf_counter()
            call()
            samples.append(time.perf_counter() - began)
        return samples

    with ThreadPoolExecutor(1) as threads:
        in_thread = timed(lambda: threads.submit(quick, ctx()).result())
    children = ChildPool(SyncProcesses((SPEC,)), "bench")
    children.warm()
    try:
        with ThreadPoolExecutor(1) as threads:
            in_child = timed(lambda: threads.submit(children.call, "quick", ctx(), kill).result())
    finally:
        children.close()
    return in_thread, in_child


async def end_to_end(tasks: int, processes: bool) -> list[float]:
    pool = EmbeddedPool(HANDLERS, [make_worker("w1", handlers=HANDLERS, max_concurrency=1)])
    if processes:
        plain = pool.workers["w1"]
        pool.workers["w1"] = WorkerRuntime(
            pool.backend,
            plain.profile,
            plain.handlers,
            pool.settings,
            artifacts=pool.artifacts,
            sync_processes=SyncProcesses((SPEC,)),
        )
    samples = []
    async with pool:
        for i in range(tasks):
            began = time.perf_counter()
            await pool.run_task(TaskSpec(id=f"b-{i}", handler="quick"))
            samples.append(time.perf_counter() - began)
    return samples


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=300)
    parser.add_argument("--starts", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3, help="end-to-end rounds per mode")
    args = parser.parse_args()
    print(f"child start:                {_ms(child_start(args.starts))}")
    in_thread, in_child = round_trips(args.tasks)
    print(f"call round trip, thread:    {_ms(in_thread)}")
    print(f"call round trip, process:   {_ms(in_child)}")
    overhead = statistics.median(in_child) - statistics.median(in_thread)
    print(f"  overhead per call:        {overhead * 1000:.3f} ms")
    threads: list[float] = []
    children: list[float] = []
    for _ in range(args.rounds):  # alternated: a shared machine's noise falls on both
        threads += asyncio.run(end_to_end(args.tasks, processes=False))
        children += asyncio.run(end_to_end(args.tasks, processes=True))
    print(f"task end to end, thread:    {_ms(threads)}")
    print(f"task end to end, process:   {_ms(children)}")
    overhead = statistics.median(children) - statistics.median(threads)
    print(f"  overhead per task:        {overhead * 1000:.3f} ms")


if __name__ == "__main__":
    main()
