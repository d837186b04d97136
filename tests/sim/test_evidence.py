"""The goal check and the generated docs of the evidence sweep."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from worldpool.sim import evidence
from worldpool.sim.evidence import BEGIN, END, replace_section, sweep, write_docs
from worldpool.sim.goal import judge, render, worst
from worldpool.sim.svg import pareto


def run(policy: str, p95: float, cost: float, lost: int = 0) -> dict[str, Any]:
    return {
        "policy": policy,
        "p95": {"batch_inference": p95},
        "cost": cost,
        "lost": lost,
        "stuck": 0,
    }


def test_gaps_are_against_the_best_baseline_and_the_cheapest() -> None:
    runs = [
        run("work-aware", 104.0, 110.0),
        run("least-loaded", 100.0, 120.0),
        run("label-weight", 130.0, 100.0),
    ]
    v = judge(runs, "work-aware", ["least-loaded", "label-weight"])
    assert v["gaps"]["batch_inference"] == pytest.approx(0.04)  # best p95: least-loaded
    assert v["cost_gap"] == pytest.approx(0.10)  # cheapest: label-weight
    assert v["dominated"] == 0.0  # nobody beats it on both
    w = worst([v])
    assert not w["met"]  # the cost is 10 % over


def test_domination_is_the_smaller_of_the_two_margins() -> None:
    runs = [run("c", 110.0, 103.0), run("b", 100.0, 100.0)]
    v = judge(runs, "c", ["b"])
    assert v["dominated"] == pytest.approx(0.03) and v["dominated_by"] == "b (batch)"
    assert not worst([v])["met"]
    ok = worst([judge([run("c", 103.0, 101.0), run("b", 100.0, 100.0)], "c", ["b"])])
    assert ok["dominated"] == pytest.approx(0.01) and ok["met"]


def test_worst_case_over_seeds_and_lost_tasks_fail_the_goal() -> None:
    a = judge([run("c", 100.0, 100.0), run("b", 100.0, 100.0)], "c", ["b"])
    b = judge([run("c", 100.0, 100.0, lost=1), run("b", 100.0, 100.0)], "c", ["b"])
    assert worst([a])["met"] and not worst([a, b])["met"]


def test_pareto_front() -> None:
    pts = [("a", 1.0, 5.0), ("b", 2.0, 2.0), ("c", 3.0, 3.0), ("d", 5.0, 1.0)]
    assert pareto(pts) == {"a", "b", "d"}


def test_the_generator_runs_and_rewrites_only_its_section(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a tiny sweep (the seed pool, one seed, 0.5 % offered load, 2 % of the volume)
    monkeypatch.setitem(evidence.LOADS, "low", 0.005)
    data = sweep(["seed"], ["low"], 1, scale=0.02, jobs=1, policies=["work-aware", "random"])
    doc = tmp_path / "simulation.md"
    doc.write_text(f"# title\n\nintro\n\n{BEGIN}\nold\n{END}\n\nafter\n", encoding="utf-8")
    text = write_docs(data, doc, tmp_path / "img")
    assert text.startswith("# title\n\nintro\n\n") and text.endswith(f"{END}\n\nafter\n")
    assert "old" not in text and "| seed | low (" in text and "`work-aware`" in text
    assert (tmp_path / "img" / "pareto_seed_low.svg").read_text().startswith("<svg")
    saved = json.loads((tmp_path / "img" / "evidence.json").read_text())
    assert saved["cells"][0]["runs"][0]["lost"] == 0
    with pytest.raises(SystemExit, match="markers"):
        replace_section(tmp_path / "img" / "evidence.json", "x")


def test_the_docs_show_what_evidence_json_holds() -> None:
    # docs/simulation.md's generated section is exactly the render of docs/img/evidence.json
    root = Path(__file__).resolve().parents[2]
    data = json.loads((root / "docs/img/evidence.json").read_text(encoding="utf-8"))
    text = (root / "docs/simulation.md").read_text(encoding="utf-8")
    section = text.partition(BEGIN)[2].partition(END)[0]
    assert section == "\n" + render(data, img_prefix="img/")
