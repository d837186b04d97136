"""Simulator throughput: simulated tasks per second of wall time on the world pool.

    .venv/bin/python bench/bench_sim.py                  # 10,000 workers, 20,000 tasks
    .venv/bin/python bench/bench_sim.py --repeat 3 --policies default
    .venv/bin/python bench/bench_sim.py --full           # one day, 1,000,000 tasks
    .venv/bin/python bench/bench_sim.py --honest         # with the honest simulator on

The short runs squeeze one day's arrival pattern into ``tasks / 1e6`` of a day, so the
load per worker matches the full 1,000,000-task day; ``--full`` simulates the whole day
(default policy only unless ``--policies`` says otherwise). Per policy it prints the
median over ``--repeat`` runs of: simulated tasks per wall-second, wall and CPU time per
routing decision and in all, the share of wall time spent placing tasks (inside the
router), and the projected wall time of a 1,000,000-task day; the machine's load average
before and after. CPU time is this process's, which a busy shared machine inflates far
less than wall time. The last line says whether the goal of issue 17 (a 1,000,000-task
day of 10,000 workers in 20+ regions in under 5 minutes) is met, measured (``--full``)
or projected from the shorter run.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Any

from worldpool.routing import PoolSnapshot, RoutingContext
from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.policies import Placement, make_placer
from worldpool.sim.pools import world_pool
from worldpool.sim.truth import HONEST
from worldpool.sim.workload import DAY_S, world_workload

FULL_TASKS = 1_000_000
GOAL_S = 300.0


def run_once(name: str, pool: Any, wl: Any, day_s: float, honest: bool = False) -> dict[str, float]:
    placer = make_placer(name)
    inner = placer.place
    spent = [0.0]

    def timed(ctx: RoutingContext, snapshot: PoolSnapshot) -> Placement:
        s = time.perf_counter()
        try:
            return inner(ctx, snapshot)
        finally:
            spent[0] += time.perf_counter() - s

    placer.place = timed  # type: ignore[method-assign,assignment]
    extra: dict[str, Any] = HONEST if honest else {}
    cfg = SimConfig(horizon_s=day_s, until_s=day_s + DAY_S, **extra)
    sim = Simulation(pool, wl, placer, cfg)
    cpu = time.process_time()
    r = sim.run()
    cpu = time.process_time() - cpu
    decisions = max(1, r.counters.decisions)
    return {
        "tasks_per_wall_s": r.tasks_per_wall_s,
        "wall_us": r.wall_s / decisions * 1e6,
        "cpu_us": cpu / decisions * 1e6,
        "placing": spent[0] / r.wall_s,
        "wall_s": r.wall_s,
        "cpu_s": cpu,
        "lost": r.lost,
        "stuck": len(r.stuck),
        "decisions": decisions,
    }


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--policies", default=None, help="comma-separated policy names")
    ap.add_argument("--repeat", type=int, default=1, help="runs per policy (median shown)")
    ap.add_argument("--full", action="store_true", help=f"one whole day, {FULL_TASKS:,} tasks")
    ap.add_argument("--honest", action="store_true", help="batching, noise, 4 stale deciders")
    args = ap.parse_args(argv)
    tasks = FULL_TASKS if args.full else args.tasks
    policies = args.policies or ("default" if args.full else "default,least-loaded,random")
    t = time.perf_counter()
    pool = world_pool(args.workers, seed=0)
    day_s = DAY_S * min(1.0, tasks / FULL_TASKS)
    wl = world_workload(tasks, seed=0, day_s=day_s)
    print(
        f"setup: {args.workers:,} workers, {len({p.location.region for p in pool})} regions, "
        f"{len(wl):,} tasks over {day_s / 3600:.2f} simulated h in "
        f"{time.perf_counter() - t:.1f} s"
    )
    # Wall time on a shared machine follows its load: say what it was.
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")
    for name in policies.split(","):
        runs = [run_once(name, pool, wl, day_s, args.honest) for _ in range(args.repeat)]

        def med(key: str, runs: list[dict[str, float]] = runs) -> float:
            return statistics.median(r[key] for r in runs)

        rate = med("tasks_per_wall_s")
        print(
            f"{name:>15}: {rate:8.0f} tasks/s wall, {med('wall_us'):6.0f} us wall and "
            f"{med('cpu_us'):6.0f} us CPU per decision, placing {med('placing'):5.1%} of "
            f"wall, {med('decisions'):,.0f} decisions in {med('wall_s'):.1f} s "
            f"({med('cpu_s'):.1f} s CPU), "
            f"lost {med('lost'):.0f}, stuck {med('stuck'):.0f}; "
            f"1M-task day ≈ {FULL_TASKS / rate / 60:.1f} min"
        )
        day = med("wall_s") if args.full else FULL_TASKS / rate
        how = "measured" if args.full else "projected"
        verdict = "met" if day < GOAL_S else "NOT met"
        print(
            f"{name:>15}: goal (1M-task day under {GOAL_S / 60:.0f} min): {verdict}, "
            f"{how} {day / 60:.1f} min"
        )
    print(f"load average {', '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min)")


if __name__ == "__main__":
    main()
