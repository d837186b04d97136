"""The goal of issue 17, checked on the evidence sweep, and its markdown report.

For a candidate policy, per scenario, load level and seed, against the baselines run on
the same pool and workload:

* per task class, its p95 within :data:`TOLERANCE` (5 %) of the best baseline's;
* its total cost within 5 % of the cheapest baseline's;
* never *dominated* by more than :data:`DOMINANCE` (2 %): no baseline is better on both
  a class's p95 and the total cost by more than that (the margin is the smaller of the
  two gaps);
* 0 tasks lost or stuck.

Over the seeds the worst case counts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

CANDIDATES = (
    "work-aware",
    "work-aware-balanced",
    # ... keeping 1 slot per worker, or 2 % of each worker's slots, for interactive work
    "work-aware-balanced+reserve=1",
    "work-aware-balanced+reserve=2%",
    "seed-default",
)
BASELINES = (
    "least-loaded",
    "label-weight",
    "label-weight-hard",
    "cheapest-region",
    "power-of-two",
    "random",
)
TOLERANCE = 0.05
DOMINANCE = 0.02
SHORT = {
    "interactive_llm": "LLM",
    "batch_inference": "batch",
    "workflow": "workflow",
    "interactive_browser": "browser",
    "sandbox": "sandbox",
}
Run = dict[str, Any]


def _gap(mine: float, best: float) -> float:
    return (mine / best - 1.0) if best > 0 else 0.0


def judge(runs: Sequence[Run], candidate: str, baselines: Sequence[str] = BASELINES) -> Run:
    """One seed's verdict for ``candidate``: gaps per class, cost gap, domination."""
    by = {r["policy"]: r for r in runs}
    mine = by[candidate]
    base = [by[b] for b in baselines if b in by]
    gaps = {}
    dominated, by_whom = 0.0, ""
    for cls, p95 in mine["p95"].items():
        gaps[cls] = _gap(p95, min(b["p95"][cls] for b in base))
        for b in base:
            margin = min(_gap(p95, b["p95"][cls]), _gap(mine["cost"], b["cost"]))
            if margin > dominated:
                dominated, by_whom = margin, f"{b['policy']} ({SHORT.get(cls, cls)})"
    return {
        "gaps": gaps,
        "cost_gap": _gap(mine["cost"], min(b["cost"] for b in base)),
        "dominated": dominated,
        "dominated_by": by_whom,
        "lost": mine["lost"],
        "stuck": mine["stuck"],
    }


def worst(verdicts: Sequence[Run]) -> Run:
    """The worst case over seeds, and whether it meets the goal."""
    classes = list(verdicts[0]["gaps"])
    gaps = {c: max(v["gaps"][c] for v in verdicts) for c in classes}
    top = max(verdicts, key=lambda v: v["dominated"])
    out = {
        "gaps": gaps,
        "cost_gap": max(v["cost_gap"] for v in verdicts),
        "dominated": top["dominated"],
        "dominated_by": top["dominated_by"],
        "lost": sum(v["lost"] for v in verdicts),
        "stuck": sum(v["stuck"] for v in verdicts),
    }
    out["met"] = (
        all(g <= TOLERANCE for g in gaps.values())
        and out["cost_gap"] <= TOLERANCE
        and out["dominated"] <= DOMINANCE
        and out["lost"] == 0
        and out["stuck"] == 0
    )
    return out


def _pct(x: float) -> str:
    return f"{x:+.1%}".replace("-", "\u2212")


def _s(x: float) -> str:
    return f"{x:,.0f}" if x >= 100 else f"{x:.1f}"


def _groups(data: Run) -> dict[tuple[str, str], list[Run]]:
    groups: dict[tuple[str, str], list[Run]] = {}
    for cell in data["cells"]:
        groups.setdefault((cell["scenario"], cell["load"]), []).append(cell)
    return groups


def verdicts(data: Run) -> dict[tuple[str, str, str], Run]:
    """(scenario, load, candidate) -> the worst case over seeds."""
    out = {}
    for (scenario, load), cells in _groups(data).items():
        for cand in data["candidates"]:
            per_seed = [judge(c["runs"], cand, data["baselines"]) for c in cells]
            out[(scenario, load, cand)] = worst(per_seed)
    return out


def render(data: Run, img_prefix: str = "") -> str:
    """The generated section of docs/simulation.md (tables, verdicts, plot links)."""
    groups = _groups(data)
    lines = [
        f"Honest settings: {', '.join(f'{k}={v}' for k, v in data['honest'].items())}; "
        f"{data['seeds']} seeds; offered GPU load levels "
        + ", ".join(f"{k} {v:.0%}" for k, v in data["loads"].items())
        + f"; interactive volume x{data['scale']:g}. Candidates: "
        + ", ".join(f"`{c}`" for c in data["candidates"])
        + "; baselines: "
        + ", ".join(f"`{b}`" for b in data["baselines"])
        + ".",
        "",
        "**The goal, worst case over the seeds** (p95 gap to the best baseline of each "
        "class, cost gap to the cheapest baseline, the largest margin by which a baseline "
        "beats the candidate on both a class's p95 and cost):",
        "",
        "| scenario | load (GPU util) | policy | worst class p95 gap | cost gap | dominated by | lost / stuck | goal |",
        "| --- | --- | --- | --- | ---: | --- | ---: | --- |",
    ]
    v = verdicts(data)
    for (scenario, load), cells in groups.items():
        for cand in data["candidates"]:
            w = v[(scenario, load, cand)]
            k = [r["policy"] for r in cells[0]["runs"]].index(cand)
            util = sum(c["runs"][k]["gpu_util"] for c in cells) / len(cells)
            cls = max(w["gaps"], key=lambda c: w["gaps"][c])
            dom = f"{w['dominated']:.1%} {w['dominated_by']}" if w["dominated"] > 0 else "none"
            lines.append(
                f"| {scenario} | {load} ({util:.0%}) | `{cand}` | {_pct(w['gaps'][cls])} "
                f"({SHORT.get(cls, cls)}) | {_pct(w['cost_gap'])} | {dom} | "
                f"{w['lost']} / {w['stuck']} | {'met' if w['met'] else '**not met**'} |"
            )
    lines.append("")
    for (scenario, load), cells in groups.items():
        names = [r["policy"] for r in cells[0]["runs"]]
        classes = list(cells[0]["runs"][0]["p95"])
        c0 = cells[0]
        lines += [
            f"#### {scenario} pool (`{c0['pool']}`), {load} load: offered "
            f"{sum(c['offered'] for c in cells) / len(cells):.0%}, "
            f"{sum(c['tasks'] for c in cells) // len(cells):,} tasks a day "
            f"({c0['counts'].get('batch_inference', 0):,} batch jobs), mean of {len(cells)} seeds",
            "",
            "| policy | "
            + " | ".join(f"{SHORT.get(c, c)} p95 s" for c in classes)
            + " | cost $ | idle fleet $ | CO2 kg | GPU util | sticky |",
            "| --- | "
            + " | ".join("---:" for _ in classes)
            + " | ---: | ---: | ---: | ---: | ---: |",
        ]
        for k, name in enumerate(names):
            rs = [c["runs"][k] for c in cells]

            def mean(key: str, rs: list[Run] = rs) -> float:
                return sum(float(r[key]) for r in rs) / len(rs)

            p95 = [sum(r["p95"][c] for r in rs) / len(rs) for c in classes]
            sticky = [r["sticky"] for r in rs if r["sticky"] is not None]
            label = f"**{name}**" if name in data["candidates"] else name
            lines.append(
                f"| {label} | "
                + " | ".join(_s(x) for x in p95)
                + f" | {mean('cost'):,.0f} | {mean('idle'):,.0f} | {mean('carbon_kg'):,.0f} | "
                f"{mean('gpu_util'):.0%} | "
                + (f"{sum(sticky) / len(sticky):.0%}" if sticky else "-")
                + " |"
            )
        lines += ["", f"![{scenario} {load} Pareto]({img_prefix}pareto_{scenario}_{load}.svg)", ""]
    return "\n".join(lines) + "\n"
