"""The goal check of the evidence report (hand-computed on made-up results)."""

from __future__ import annotations

from worldpool.sim.evidence import judge
from worldpool.sim.metrics import ClassStats, Counters, RunResult


def result(policy: str, p95: float, cost: float, lost: int = 0) -> RunResult:
    stats = ClassStats(100, p95 / 2, p95, p95 * 1.2, 0.0, 0.0, None)
    return RunResult(
        policy, 100, 100 - lost, Counters(), {"batch": stats}, cost, lost, [], 1.0, 1.0, {}
    )


def test_gaps_are_against_the_best_baseline_and_the_cheapest() -> None:
    runs = [
        result("default", 104.0, 110.0),
        result("least-loaded", 100.0, 120.0),
        result("label-weight", 130.0, 100.0),
    ]
    assert judge(runs, "default") == [
        "batch p95 104.0 s vs 100.0 (+4.0% ok)",  # best baseline p95: least-loaded
        "cost $110 vs $100 (+10.0% MISS)",  # cheapest baseline: label-weight
        "lost 0, stuck 0",
    ]
