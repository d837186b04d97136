"""Regenerate the figures and tables of docs/simulation.md (one command, ~10 minutes).

python -m worldpool.sim.regen [OUT_DIR]   # default docs/img
"""

from __future__ import annotations

import sys
from pathlib import Path

from worldpool.sim.cli import DEFAULT_COMPARE, simulate

VARIANTS = ["default", "load-heavy", "geo-heavy", "cost-heavy"]
SCENARIOS = {  # prefix: (pool, workload, outages)
    "seed_": ("seed", "seed", []),
    "world_": ("world:500", "world:50000", ["eu-west-1@14+60"]),
}


def main(out: Path) -> None:
    baselines = [p for p in DEFAULT_COMPARE if p not in VARIANTS]
    for prefix, (pool, workload, outages) in SCENARIOS.items():
        simulate(
            pool,
            workload,
            VARIANTS,
            baselines,
            out_json=out / f"{prefix}results.json",
            out_png_dir=out,
            png_prefix=prefix,
            seed=0,
            outages=outages,
        )


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "docs/img"))
