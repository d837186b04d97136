"""`simulate` end to end on the seed pool with a small trace; JSON and PNGs written."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from worldpool.models import TaskSpec
from worldpool.sim.cli import app, simulate
from worldpool.sim.traces import dump_trace_line


def _trace(path: Path) -> Path:
    llm = TaskSpec(id="x", handler="analyze", capabilities={"coding"}, interactive=True)
    lines = [
        dump_trace_line(
            float(k),
            llm.model_copy(
                update={"id": f"t{k}", "user_location": ["tokyo", "london", "new-york"][k % 3]}
            ),
            work_s=5,
            goal_s=20,
        )
        for k in range(60)
    ]
    path.write_text("\n".join(lines))
    return path


def test_simulate_writes_json_and_plots(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl")
    results = simulate(
        "seed",
        str(trace),
        ["default"],
        ["random", "cheapest-region"],
        out_json=tmp_path / "r.json",
        out_png_dir=tmp_path / "img",
        seed=1,
        crash_per_worker_day=0.0,
    )
    assert [r.policy for r in results] == ["default", "random", "cheapest-region"]
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["workers"] == 7 and data["runs"][0]["succeeded"] == 60
    assert {p.name for p in (tmp_path / "img").iterdir()} >= {"latency_cdf.png", "cost_vs_p95.png"}


def test_cli_rejects_unknown_policy(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl")
    result = CliRunner().invoke(app, ["--workload", str(trace), "--policy", "fastest"])
    assert result.exit_code == 2
    assert "unknown policy 'fastest'" in result.output


def test_honest_flag_turns_on_the_honest_simulator(tmp_path: Path) -> None:
    trace = _trace(tmp_path / "t.jsonl")
    out = tmp_path / "r.json"
    simulate("seed", str(trace), ["default"], out_json=out, honest=True, crash_per_worker_day=0)
    data = json.loads(out.read_text())
    assert data["honest"]["deciders"] == 4 and data["honest"]["batching"] == 0.04
    assert data["runs"][0]["succeeded"] == 60 and data["runs"][0]["lost"] == 0
