"""The evidence for a default policy: candidates against baselines, per task class.

    python -m worldpool.sim.evidence                 # the full sweep, markdown to stdout
    python -m worldpool.sim.evidence --write-docs    # ... and rewrite docs/simulation.md's
                                                     # generated section, JSON and SVGs
    python -m worldpool.sim.evidence --render-only   # docs from docs/img/evidence.json

Every run uses the honest simulator (:data:`HONEST`: batching curve, belief noise, four
deciders on 2 s stale views, time-of-day prices, failures) on two scenarios (the seed's
7 workers; a 120-worker world pool over 24 regions), three load levels and three seeds.
For each candidate it checks the goal of issue 17 (:mod:`worldpool.sim.goal`).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.goal import BASELINES, CANDIDATES, TOLERANCE, judge, render
from worldpool.sim.load import load_workload, offered_load
from worldpool.sim.metrics import RunResult
from worldpool.sim.policies import make_placer
from worldpool.sim.pools import seed_pool, world_pool
from worldpool.sim.svg import pareto_svg
from worldpool.sim.truth import HONEST
from worldpool.sim.workload import DAY_S

__all__ = ["BASELINES", "CANDIDATES", "HONEST", "TOLERANCE", "judge", "main", "sweep"]

#: scenario -> (pool spec, interactive tasks a day)
SCENARIOS: dict[str, tuple[str, int]] = {"seed": ("seed", 5000), "world": ("world:120", 6000)}
#: label -> offered GPU load (see worldpool.sim.load); the runs report what was measured
LOADS: dict[str, float] = {"low": 0.05, "mid": 0.40, "high": 0.70}
DOC = Path("docs/simulation.md")
IMG = Path("docs/img")
BEGIN, END = "<!-- evidence:begin (generated) -->", "<!-- evidence:end -->"


def _pool(spec: str, seed: int) -> list[Any]:
    if spec == "seed":
        return seed_pool()
    return world_pool(int(spec.partition(":")[2]), seed=seed)


def summarise(r: RunResult) -> dict[str, Any]:
    c = r.counters
    sticky = c.sticky_hits + c.sticky_misses
    return {
        "policy": r.policy,
        "p95": {k: round(v.p95_s, 3) for k, v in r.classes.items()},
        "p50": {k: round(v.p50_s, 3) for k, v in r.classes.items()},
        "cost": round(r.total_cost_usd, 3),
        "fleet": round(r.fleet_cost_usd, 3),
        "idle": round(r.idle_cost_usd, 3),
        "carbon_kg": round(c.carbon_kg, 3),
        "gpu_util": round(r.gpu_utilisation, 4),
        "sticky": round(c.sticky_hits / sticky, 4) if sticky else None,
        "lost": r.lost,
        "stuck": len(r.stuck),
        "wall_s": round(r.wall_s, 2),
    }


def run_cell(job: tuple[str, str, int, float, list[str]]) -> dict[str, Any]:
    """One scenario x load x seed: every policy on the same pool and workload."""
    scenario, load, seed, scale, policies = job
    spec, interactive = SCENARIOS[scenario]
    profiles = _pool(spec, seed)
    wl, counts = load_workload(profiles, LOADS[load], max(1, round(interactive * scale)), seed)
    cfg = SimConfig(seed=seed, horizon_s=DAY_S, **HONEST)  # type: ignore[arg-type]
    runs = [summarise(Simulation(profiles, wl, make_placer(p, seed), cfg).run()) for p in policies]
    return {
        "scenario": scenario,
        "pool": spec,
        "load": load,
        "offered": round(offered_load(profiles, counts), 4),
        "seed": seed,
        "tasks": len(wl),
        "counts": counts,
        "runs": runs,
    }


def sweep(
    scenarios: Sequence[str],
    loads: Sequence[str],
    seeds: int,
    *,
    scale: float = 1.0,
    jobs: int = 2,
    policies: Sequence[str] = (*CANDIDATES, *BASELINES),
    cache: Path | None = None,
) -> dict[str, Any]:
    cells = [
        (s, ld, k, scale, list(policies)) for k in range(seeds) for s in scenarios for ld in loads
    ]
    done: dict[tuple[str, str, int], dict[str, Any]] = {}
    if cache is not None:  # resume: cells already run with the same policies and scale
        cache.mkdir(parents=True, exist_ok=True)
        for f in cache.glob("*.json"):
            cell = json.loads(f.read_text(encoding="utf-8"))
            if cell.get("scale") == scale and [r["policy"] for r in cell["runs"]] == list(policies):
                done[(cell["scenario"], cell["load"], cell["seed"])] = cell
    todo = [c for c in cells if (c[0], c[1], c[2]) not in done]

    def keep(cell: dict[str, Any]) -> None:
        cell["scale"] = scale
        done[(cell["scenario"], cell["load"], cell["seed"])] = cell
        if cache is not None:
            name = f"{cell['scenario']}_{cell['load']}_{cell['seed']}.json"
            (cache / name).write_text(json.dumps(cell), encoding="utf-8")

    if jobs > 1 and len(todo) > 1:
        with ProcessPoolExecutor(jobs) as ex:
            for cell in ex.map(run_cell, todo):
                keep(cell)
    else:
        for c in todo:
            keep(run_cell(c))
    out = [done[(c[0], c[1], c[2])] for c in cells]
    return {
        "honest": HONEST,
        "loads": {k: LOADS[k] for k in loads},
        "scenarios": {k: SCENARIOS[k][0] for k in scenarios},
        "seeds": seeds,
        "scale": scale,
        "candidates": [p for p in policies if p in CANDIDATES],
        "baselines": [p for p in policies if p not in CANDIDATES],
        "cells": out,
    }


def from_cache(cache: Path) -> dict[str, Any]:
    """The cells a (perhaps unfinished) sweep kept in ``cache``, as :func:`sweep` returns."""
    cells = [json.loads(f.read_text(encoding="utf-8")) for f in sorted(cache.glob("*.json"))]
    if not cells:
        raise SystemExit(f"{cache}: no cells yet")
    order = {(s, ld): k for k, (s, ld) in enumerate((s, ld) for s in SCENARIOS for ld in LOADS)}
    cells.sort(key=lambda c: (order[(c["scenario"], c["load"])], c["seed"]))
    policies = [r["policy"] for r in cells[0]["runs"]]
    return {
        "honest": HONEST,
        "loads": {k: v for k, v in LOADS.items() if any(c["load"] == k for c in cells)},
        "scenarios": {
            k: v[0] for k, v in SCENARIOS.items() if any(c["scenario"] == k for c in cells)
        },
        "seeds": len({c["seed"] for c in cells}),
        "scale": cells[0].get("scale", 1.0),
        "candidates": [p for p in policies if p in CANDIDATES],
        "baselines": [p for p in policies if p not in CANDIDATES],
        "cells": cells,
    }


def write_svgs(data: dict[str, Any], img: Path) -> list[Path]:
    """One Pareto SVG per scenario and load: p95 (mean over seeds) against cost."""
    paths = []
    img.mkdir(parents=True, exist_ok=True)
    groups: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for cell in data["cells"]:
        groups.setdefault((cell["scenario"], cell["load"]), []).append(cell)
    for (scenario, load), cells in groups.items():
        names = [r["policy"] for r in cells[0]["runs"]]
        classes = list(cells[0]["runs"][0]["p95"])
        panels: dict[str, Sequence[tuple[str, float, float]]] = {}
        for cls in classes:
            pts: list[tuple[str, float, float]] = []
            for k, name in enumerate(names):
                p95 = sum(c["runs"][k]["p95"][cls] for c in cells) / len(cells)
                cost = sum(c["runs"][k]["cost"] for c in cells) / len(cells)
                pts.append((name, p95, cost))
            panels[cls] = pts
        path = img / f"pareto_{scenario}_{load}.svg"
        title = f"{scenario} pool, {load} load, mean of {len(cells)} seeds"
        path.write_text(pareto_svg(title, panels), encoding="utf-8")
        paths.append(path)
    return paths


def write_docs(data: dict[str, Any], doc: Path = DOC, img: Path = IMG) -> str:
    """Write the JSON and SVGs into ``img`` and the generated section into ``doc``."""
    img.mkdir(parents=True, exist_ok=True)
    (img / "evidence.json").write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")
    write_svgs(data, img)
    return replace_section(doc, render(data, img_prefix="img/"))


def replace_section(doc: Path, body: str) -> str:
    text = doc.read_text(encoding="utf-8")
    head, sep, rest = text.partition(BEGIN)
    _, sep2, tail = rest.partition(END)
    if not sep or not sep2:
        raise SystemExit(f"{doc}: no '{BEGIN}' ... '{END}' markers to replace between")
    new = f"{head}{BEGIN}\n{body}{END}{tail}"
    doc.write_text(new, encoding="utf-8")
    return new


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--loads", default=",".join(LOADS))
    parser.add_argument("--scale", type=float, default=1.0, help="scale the interactive volume")
    parser.add_argument("--jobs", type=int, default=2, help="processes (one per CPU core)")
    parser.add_argument("--write-docs", action="store_true", help="rewrite docs/simulation.md")
    parser.add_argument("--render-only", action="store_true", help="docs from evidence.json")
    parser.add_argument("--cache", type=Path, default=None, help="keep each cell's JSON here")
    parser.add_argument("--doc", type=Path, default=DOC)
    parser.add_argument("--img", type=Path, default=IMG)
    args = parser.parse_args(argv)
    if args.render_only and args.cache is not None:  # what a sweep has finished so far
        data = from_cache(args.cache)
    elif args.render_only:
        data = json.loads((args.img / "evidence.json").read_text(encoding="utf-8"))
    else:
        scenarios = [s for s in args.scenarios.split(",") if s]
        loads = [s for s in args.loads.split(",") if s]
        unknown = [s for s in scenarios if s not in SCENARIOS] + [
            s for s in loads if s not in LOADS
        ]
        if unknown:
            raise SystemExit(
                f"unknown scenario or load {unknown}: use {list(SCENARIOS)} / {list(LOADS)}"
            )
        data = sweep(
            scenarios, loads, args.seeds, scale=args.scale, jobs=args.jobs, cache=args.cache
        )
    if args.write_docs or args.render_only:
        write_docs(data, args.doc, args.img)
    sys.stdout.write(render(data, img_prefix="img/"))


if __name__ == "__main__":
    main()
