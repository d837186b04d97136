"""The peers of the deployment-shape benchmark: the same no-op task on taskiq, dramatiq, saq
and celery. Runs in the benchmark's own virtual environment (``bench/.peers-venv``, see
:mod:`bench.peers_venv`), never in worldpool's; worldpool is not imported here.

    BENCH_REDIS=URL python -m bench.peers_app produce SYSTEM TASKS ROUND_TRIPS

prints one JSON line like :mod:`bench.wp_producer`. The worker side of each system is its
own CLI, started by :func:`worker_command` (``W`` worker processes).
"""

from __future__ import annotations

import asyncio
import json
import os
import statistics
import sys
import time
from typing import Any

URL = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/0")
THREADS = 8  # per worker process, for the systems that take threads or coroutines
SYSTEMS = ("taskiq", "dramatiq", "saq", "celery")


def worker_command(system: str, python: str, processes: int) -> list[str]:
    """The command line that runs ``processes`` worker processes of ``system``."""
    if system == "taskiq":
        return [python, "-m", "taskiq", "worker", "bench.peers_app:taskiq_broker",
                "--workers", str(processes), "--max-async-tasks", "64"]  # fmt: skip
    if system == "dramatiq":
        return [python, "-m", "dramatiq", "bench.peers_app:dramatiq_broker",
                "--processes", str(processes), "--threads", str(THREADS)]  # fmt: skip
    if system == "saq":  # saq: one process per --workers
        return [python, "-m", "saq", "bench.peers_app.saq_settings",
                "--workers", str(processes)]  # fmt: skip
    if system == "celery":
        return [python, "-m", "celery", "-A", "bench.peers_app:celery_app", "worker",
                "--concurrency", str(processes), "--pool", "prefork", "--loglevel", "WARNING",
                "--without-gossip", "--without-mingle", "--without-heartbeat"]  # fmt: skip
    raise SystemExit(f"unknown peer {system!r}: one of {', '.join(SYSTEMS)}")


# --------------------------------------------------------------------------- the apps
# Built on import only for the system named in BENCH_PEER, so one venv serves all four.
PEER = os.environ.get("BENCH_PEER", "")
taskiq_broker: Any = None
dramatiq_broker: Any = None
saq_settings: dict[str, Any] = {}
celery_app: Any = None
noop: Any = None

if PEER == "taskiq":
    from taskiq_redis import ListQueueBroker, RedisAsyncResultBackend

    taskiq_broker = ListQueueBroker(URL).with_result_backend(RedisAsyncResultBackend(URL))

    @taskiq_broker.task(task_name="noop")
    async def _taskiq_noop() -> None:
        return None

    noop = _taskiq_noop
elif PEER == "dramatiq":
    import dramatiq
    from dramatiq.brokers.redis import RedisBroker
    from dramatiq.results import Results
    from dramatiq.results.backends.redis import RedisBackend

    dramatiq_broker = RedisBroker(url=URL)
    dramatiq_broker.add_middleware(Results(backend=RedisBackend(url=URL)))
    dramatiq.set_broker(dramatiq_broker)

    @dramatiq.actor(store_results=True)
    def _dramatiq_noop() -> None:
        return None

    noop = _dramatiq_noop
elif PEER == "saq":
    from saq import Queue

    async def _saq_noop(ctx: dict[str, Any]) -> None:
        return None

    saq_settings = {
        "queue": Queue.from_url(URL, name="wp-bench-peer"),
        "functions": [("noop", _saq_noop)],
        "concurrency": 64,
    }
elif PEER == "celery":
    from celery import Celery

    celery_app = Celery("bench", broker=URL, backend=URL)
    celery_app.conf.update(worker_prefetch_multiplier=64, task_ignore_result=False)

    @celery_app.task(name="noop")
    def _celery_noop() -> None:
        return None

    noop = _celery_noop


# --------------------------------------------------------------------------- producers


async def _taskiq(tasks: int, round_trips: int) -> tuple[list[float], float]:
    await taskiq_broker.startup()
    times = []
    for _ in range(round_trips):
        start = time.perf_counter()
        await (await noop.kiq()).wait_result(check_interval=0.001, timeout=30)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    sent = []
    for lo in range(0, tasks, 200):
        sent += await asyncio.gather(*(noop.kiq() for _ in range(lo, min(tasks, lo + 200))))
    for lo in range(0, len(sent), 200):
        await asyncio.gather(
            *(t.wait_result(check_interval=0.01, timeout=600) for t in sent[lo : lo + 200])
        )
    wall = time.perf_counter() - start
    await taskiq_broker.shutdown()
    return times, wall


def _dramatiq(tasks: int, round_trips: int) -> tuple[list[float], float]:
    times = []
    for _ in range(round_trips):
        start = time.perf_counter()
        noop.send().get_result(block=True, timeout=30_000)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    sent = [noop.send() for _ in range(tasks)]
    for message in sent:
        message.get_result(block=True, timeout=600_000)
    return times, time.perf_counter() - start


async def _saq(tasks: int, round_trips: int) -> tuple[list[float], float]:
    queue = saq_settings["queue"]
    await queue.connect()
    times = []
    for _ in range(round_trips):
        start = time.perf_counter()
        job = await queue.enqueue("noop")
        try:
            await job.refresh(until_complete=30)
        except TimeoutError:  # saq can publish the completion before refresh subscribes
            await job.refresh()
            if job.status != "complete":
                raise
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    for lo in range(0, tasks, 200):
        await asyncio.gather(*(queue.enqueue("noop") for _ in range(lo, min(tasks, lo + 200))))
    while await queue.count("incomplete"):  # noqa: ASYNC110 - saq exposes no event
        await asyncio.sleep(0.01)
    wall = time.perf_counter() - start
    await queue.disconnect()
    return times, wall


def _celery(tasks: int, round_trips: int) -> tuple[list[float], float]:
    times = []
    for _ in range(round_trips):
        start = time.perf_counter()
        noop.delay().get(timeout=30, interval=0.001)
        times.append((time.perf_counter() - start) * 1e3)
    start = time.perf_counter()
    sent = [noop.delay() for _ in range(tasks)]
    for result in sent:
        result.get(timeout=600, interval=0.005)
    return times, time.perf_counter() - start


def produce(system: str, tasks: int, round_trips: int) -> dict[str, float]:
    cpu0 = time.process_time()  # imports and start-up are not the producer's work
    if system in ("taskiq", "saq"):
        runner = _taskiq if system == "taskiq" else _saq
        times, wall = asyncio.run(runner(tasks, round_trips))
    else:
        times, wall = (_dramatiq if system == "dramatiq" else _celery)(tasks, round_trips)
    times.sort()
    return {
        "client_cpu_s": time.process_time() - cpu0,
        "rate": tasks / wall if tasks else 0.0,
        "wall_s": wall,
        "p50_ms": statistics.median(times) if times else 0.0,
        "p99_ms": times[min(len(times) - 1, round(0.99 * (len(times) - 1)))] if times else 0.0,
    }


if __name__ == "__main__":
    if len(sys.argv) != 5 or sys.argv[1] != "produce":
        raise SystemExit("usage: python -m bench.peers_app produce SYSTEM TASKS ROUND_TRIPS")
    print(json.dumps(produce(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))))
