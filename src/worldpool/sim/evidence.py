"""The evidence for a default policy: candidates against baselines, per task class.

    python -m worldpool.sim.evidence [--seeds 3] [--world]   # markdown to stdout

For each scenario and seed it runs every candidate and baseline on the same pool and
workload (:func:`worldpool.sim.cli.simulate`) and checks the goal of issue 17 for each
candidate: per task class, p95 within 5% of the best baseline's; total cost within 5%
of the cheapest baseline's; 0 tasks lost or stuck. Each cell says how far off it is.
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Sequence

from rich.console import Console

from worldpool.sim.cli import simulate
from worldpool.sim.metrics import RunResult

CANDIDATES = ("default", "work-aware")
BASELINES = ("least-loaded", "label-weight", "cheapest-region", "power-of-two", "random")
SCENARIOS = {"seed": ("seed", "seed"), "world": ("world:500", "world:20000")}
TOLERANCE = 0.05


def _gap(mine: float, best: float) -> float:
    return (mine / best - 1.0) if best > 0 else 0.0


def judge(results: Sequence[RunResult], candidate: str) -> list[str]:
    """Markdown cells: per class p95 vs the best baseline, cost vs the cheapest, lost."""
    by = {r.policy: r for r in results}
    mine = by[candidate]
    base = [by[b] for b in BASELINES if b in by]
    cells = []
    for cls, stats in sorted(mine.classes.items()):
        best = min((b.classes[cls].p95_s for b in base if cls in b.classes), default=math.nan)
        gap = _gap(stats.p95_s, best)
        mark = "ok" if gap <= TOLERANCE else "MISS"
        cells.append(f"{cls} p95 {stats.p95_s:.1f} s vs {best:.1f} ({gap:+.1%} {mark})")
    cheapest = min(b.total_cost_usd for b in base)
    gap = _gap(mine.total_cost_usd, cheapest)
    mark = "ok" if gap <= TOLERANCE else "MISS"
    cells.append(f"cost ${mine.total_cost_usd:.0f} vs ${cheapest:.0f} ({gap:+.1%} {mark})")
    cells.append(f"lost {mine.lost}, stuck {len(mine.stuck)}")
    return cells


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--world", action="store_true", help="also the 500-worker world pool")
    args = parser.parse_args(argv)
    quiet = Console(file=io.StringIO())
    names = ["seed", "world"] if args.world else ["seed"]
    for name in names:
        pool, workload = SCENARIOS[name]
        for seed in range(args.seeds):
            results = simulate(
                pool, workload, list(CANDIDATES), list(BASELINES), seed=seed, console=quiet
            )
            print(f"\n#### {name} pool ({pool}, {workload}), seed {seed}\n")
            for candidate in CANDIDATES:
                print(f"- **{candidate}**: " + "; ".join(judge(results, candidate)))


if __name__ == "__main__":
    main()
