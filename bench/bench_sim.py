"""Simulator throughput: simulated tasks per wall-second on the world pool.

    .venv/bin/python bench/bench_sim.py                 # 10,000 workers, 20,000 tasks
    .venv/bin/python bench/bench_sim.py --tasks 1000000 --policies default

The workload keeps one day's arrival pattern squeezed into ``tasks / 1e6`` of a day, so
the load per worker matches the full 1,000,000-task day. Prints one line per policy and
the share of wall time spent inside the router.
"""

from __future__ import annotations

import argparse
import time

from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.policies import make_placer
from worldpool.sim.pools import world_pool
from worldpool.sim.workload import DAY_S, world_workload


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", type=int, default=10_000)
    ap.add_argument("--tasks", type=int, default=20_000)
    ap.add_argument("--policies", default="default,least-loaded,random")
    args = ap.parse_args()
    t = time.perf_counter()
    pool = world_pool(args.workers, seed=0)
    day_s = DAY_S * args.tasks / 1_000_000
    wl = world_workload(args.tasks, seed=0, day_s=day_s)
    print(
        f"setup: {args.workers} workers, {len(wl)} tasks, "
        f"{len({p.location.region for p in pool})} regions in {time.perf_counter() - t:.1f} s"
    )
    for name in args.policies.split(","):
        placer = make_placer(name)
        router = placer.router
        spent = [0.0]
        inner = placer.place

        def timed(ctx, pool_, _inner=inner, _spent=spent):  # type: ignore[no-untyped-def]
            s = time.perf_counter()
            try:
                return _inner(ctx, pool_)
            finally:
                _spent[0] += time.perf_counter() - s

        placer.place = timed  # type: ignore[method-assign]
        sim = Simulation(pool, wl, placer, SimConfig(horizon_s=day_s, until_s=day_s + DAY_S))
        r = sim.run()
        per = r.wall_s / max(1, r.counters.decisions) * 1e6
        print(
            f"{name:>15}: {r.tasks_per_wall_s:8.0f} tasks/s wall, {per:7.0f} us/decision, "
            f"placement {spent[0] / r.wall_s:5.1%} of wall, lost {r.lost}, "
            f"stuck {len(r.stuck)}, 1M tasks ≈ {1e6 / r.tasks_per_wall_s / 60:.1f} min"
            f" (router: {type(router).__name__})"
        )


if __name__ == "__main__":
    main()
