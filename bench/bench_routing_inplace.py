"""Routing decisions measured in place: inside a running orchestrator, on a live pool.

    python -m bench.bench_routing_inplace                      # 10,000 and 100,000 workers
    python -m bench.bench_routing_inplace --sizes 10000 --decisions 2000

Unlike ``bench.bench_routing`` (``Router.decide`` on five cached task shapes, in
isolation), this starts a real :class:`Orchestrator` (memory backend, its dispatch,
results and sweep loops running) over a pool where most workers lack the task's handler
(as in a shared fleet) and a background task heartbeats a changing share of the pool. Each
decision is a new task of a randomly drawn shape (handler, capabilities, GPU and VRAM,
regions, tools, labels, user location, interactive or heavy, per-task weights), submitted
through ``Orchestrator.submit``: the timed span is the router's decision as the submit path
makes it, and as dispatch passes make it for tasks that wait (``Router.decide`` with
``explain=False``, the hot path), measured by a timing wrapper around the orchestrator's
own router. The full explanations the dispatcher records for waiting tasks are counted
apart (``explained``). ``--joins-per-s`` also registers new workers during the run (a
pool that grows): the first decision after a join pays for appending it to the
snapshot's columns. The target is p99 < 1 ms at 10,000
workers and < 2 ms at 100,000. ``cpu`` columns are this thread's CPU time per decision,
which other processes on a shared machine do not inflate.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import random
import time
from pathlib import Path
from typing import Any

from bench.bench_routing import CLOUD_REGIONS, make_worker, percentile
from worldpool.backends.memory import MemoryBackend
from worldpool.config import Settings
from worldpool.models import RoutingDecision, TaskSpec, WorkerState
from worldpool.orchestrator.core import Orchestrator
from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy

HANDLERS = ["llm", "browser_check", "run_tests", "shell"]
CAPS = ["coding", "planning", "reviewing", "debugging", "research", "testing", "shell_operations"]
CITIES = ["london", "tokyo", "new-york", "frankfurt", "sydney", "sao-paulo"]


class TimedRouter(Router):
    """The orchestrator's router, timing each decision it is asked for."""

    def __init__(self, policy: RoutingPolicy) -> None:
        super().__init__(policy)
        self.wall_ms: list[float] = []  # lean decisions (the hot path)
        self.cpu_ms: list[float] = []
        self.full_ms: list[float] = []  # full explanations (a task that waits)

    def decide(
        self, ctx: RoutingContext, pool: PoolSnapshot, *, explain: bool = True
    ) -> RoutingDecision:
        start, start_cpu = time.perf_counter(), time.thread_time()
        decision = super().decide(ctx, pool, explain=explain)
        wall, cpu = (time.perf_counter() - start) * 1e3, (time.thread_time() - start_cpu) * 1e3
        if explain:
            self.full_ms.append(wall)
        else:
            self.wall_ms.append(wall)
            self.cpu_ms.append(cpu)
        return decision


def task_shape(rng: random.Random, n: int) -> TaskSpec:
    """A new shape each time: few decisions share every field with another."""
    handler = rng.choice(HANDLERS)
    requirements: dict[str, Any] = {}
    if rng.random() < 0.4:
        requirements.update(gpu=True, min_vram_gb=rng.choice([0, 16, 24, 40, 80]))
    if rng.random() < 0.3:
        requirements["regions"] = rng.sample(CLOUD_REGIONS, rng.randint(1, 6))
    if rng.random() < 0.2:
        requirements["tools"] = [rng.choice(["chromium", "git", "bwrap"])]
    if rng.random() < 0.2:
        requirements["labels"] = {"tier": rng.choice(["gold", "silver"])}
    if rng.random() < 0.2:
        requirements["min_memory_gb"] = rng.choice([4, 8, 32, 128])
    spec: dict[str, Any] = {
        "id": f"t-{n:07d}",
        "handler": handler,
        "capabilities": set(rng.sample(CAPS, rng.randint(0, 2))),
        "requirements": requirements,
        "interactive": rng.random() < 0.3,
        "heavy": rng.random() < 0.2,
    }
    if rng.random() < 0.5:
        spec["user_location"] = rng.choice(CITIES)
    if rng.random() < 0.1:
        spec["weights"] = {"cost": rng.uniform(0.5, 2.0)}
    return TaskSpec.model_validate(spec)


async def heartbeats(backend: MemoryBackend, ids: list[str], rng: random.Random) -> None:
    """A changing share of the pool heartbeats, as in production (not timed)."""
    seq = 0
    while True:
        seq += 1
        for worker_id in rng.sample(ids, min(len(ids), 200)):
            await backend.heartbeat(WorkerState(worker_id=worker_id, heartbeat_seq=seq))
        await asyncio.sleep(0.05)


async def joins(backend: MemoryBackend, size: int, per_s: float, seed: int) -> None:
    """New workers register, ``per_s`` a second, while decisions are taken (not timed)."""
    rng = random.Random(seed + 1)
    n = size
    while True:
        await asyncio.sleep(1.0 / per_s)
        profile = make_worker(n, rng).profile
        await backend.register(profile.model_copy(update={"id": f"joined-{n:07d}"}))
        n += 1


async def bench(
    size: int, decisions: int, seed: int, lacking: float, joins_per_s: float = 0.0
) -> dict[str, float]:
    rng = random.Random(seed)
    settings = Settings(heartbeat_s=30.0)  # nobody goes offline during the run
    backend = MemoryBackend(settings)
    ids = []
    for i in range(size):
        profile = make_worker(i, rng).profile
        if rng.random() < lacking:  # a shared fleet: most workers run other handlers
            profile = profile.model_copy(update={"handlers": frozenset({"other"})})
        profile = profile.model_copy(update={"max_concurrency": 64})
        await backend.register(profile)
        ids.append(profile.id)
    router = TimedRouter(RoutingPolicy.from_settings(settings))
    orch = Orchestrator(backend, settings, router=router, name="bench")
    async with orch:
        beating = asyncio.create_task(heartbeats(backend, ids, rng))
        joining = (
            asyncio.create_task(joins(backend, size, joins_per_s, seed)) if joins_per_s else None
        )
        for n in range(50):  # warm-up: first rebuild, caches
            await orch.submit(task_shape(rng, n))
        router.wall_ms.clear()
        router.cpu_ms.clear()
        router.full_ms.clear()
        for n in range(50, 50 + decisions):
            await orch.submit(task_shape(rng, n))
            if n % 50 == 0:
                await asyncio.sleep(0)  # let the loops and heartbeats run
        for background in (beating, joining):
            if background is not None:
                background.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await background
    wall, cpu, full = sorted(router.wall_ms), sorted(router.cpu_ms), sorted(router.full_ms)
    return {
        "workers": size,
        "joins_per_s": joins_per_s,
        "pool_at_end": len(orch.pool_view.snapshot),
        "decisions": len(wall),
        "explained": len(full),
        "explained_p50_ms": percentile(full, 0.5) if full else 0.0,
        "p50_ms": percentile(wall, 0.50),
        "p99_ms": percentile(wall, 0.99),
        "max_ms": wall[-1],
        "cpu_p50_ms": percentile(cpu, 0.50),
        "cpu_p99_ms": percentile(cpu, 0.99),
        "cpu_max_ms": cpu[-1],
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000])
    parser.add_argument("--decisions", type=int, default=2_000)
    parser.add_argument("--lacking", type=float, default=0.9, help="share without the handler")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--joins-per-s", type=float, default=0.0, help="workers joining a second")
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args(argv)
    print(
        f"{'workers':>8} {'decisions':>9} {'p50 ms':>8} {'p99 ms':>8} "
        f"{'max ms':>8} {'cpu p50':>8} {'cpu p99':>8} {'cpu max':>8} {'explained':>9} "
        f"{'its p50':>8} {'joined':>7}"
    )
    rows = []
    for size in args.sizes:
        r = asyncio.run(bench(size, args.decisions, args.seed, args.lacking, args.joins_per_s))
        rows.append(r)
        print(
            f"{size:>8,} {r['decisions']:>9,} {r['p50_ms']:>8.3f} "
            f"{r['p99_ms']:>8.3f} {r['max_ms']:>8.3f} {r['cpu_p50_ms']:>8.3f} "
            f"{r['cpu_p99_ms']:>8.3f} {r['cpu_max_ms']:>8.3f} {r['explained']:>9,} "
            f"{r['explained_p50_ms']:>8.3f} {r['pool_at_end'] - size:>7,}"
        )
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
