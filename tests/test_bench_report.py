"""The deployment-shape benchmark's harness logic (no processes, no peers venv): medians
over repetitions, the generated table and its idempotent place in the docs page."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from bench import deploy_report
from bench.peers_app import SYSTEMS, worker_command


def _run(system: str, w: int, rep: int, rate: float) -> dict[str, Any]:
    cpu = {"client": 0.1, "worker": 0.2 * rep, "redis": 0.05}
    return {"system": system, "workers": w, "rep": rep, "rate": rate, "p50_ms": 2.0 + rep,
            "p99_ms": 9.0, "cpu_s_per_1000": cpu}  # fmt: skip


def _result() -> dict[str, Any]:
    runs = [_run("worldpool", 1, r, rate) for r, rate in enumerate([900.0, 1000.0, 3000.0])]
    runs += [_run("saq", 1, 0, 1500.0), _run("saq", 2, 0, 2500.0)]
    pool = {"registered": 1000, "rate": 950.0, "p50_ms": 3.0, "cpu_s_per_1000": {"serve": 0.4},
            "serve_idle_cpu_share": 0.012, "serve_rss_mb_at_rest": 70.0}  # fmt: skip
    return {
        "settings": {"tasks": 2000, "round_trips": 50, "reps": 3, "workers": [1, 2],
                     "pool_sizes": [1000], "worldpool_env": {}, "worker_max_concurrency": 64},
        "machine": {"cpus": 2, "load_before": [1.0, 1.0, 1.0], "load_after": [2.0, 2.0, 2.0],
                    "redis_server": "7.0.15"},
        "versions": {"python": "3.11", "worldpool": "0.1"},
        "runs": runs,
        "pool_runs": [pool],
    }  # fmt: skip


def test_medians_are_over_repetitions_per_system_and_w() -> None:
    med = deploy_report.medians(_result())
    assert med[("worldpool", 1)]["rate"] == 1000.0  # not the mean (1,633)
    assert med[("worldpool", 1)]["p50_ms"] == 3.0
    assert med[("worldpool", 1)]["cpu"]["worker"] == pytest.approx(0.2)
    assert med[("saq", 2)]["n"] == 1


def test_the_table_puts_every_system_side_by_side() -> None:
    text = deploy_report.table(_result())
    assert "| workers W | worldpool | saq |" in text
    assert "| 1 | 1,000/s | 1,500/s |" in text
    assert "| 2 | - | 2,500/s |" in text  # a missing run shows as missing, never as 0
    assert "| 1,000 | 950/s | 3.0 ms | 0.400 | 1.2% | 70 MB |" in text


def test_the_docs_section_is_replaced_not_appended(tmp_path: Path) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nolder figures\n")
    json_path = tmp_path / "deploy-1.json"
    deploy_report.write_docs(_result(), json_path, doc)
    deploy_report.write_docs(_result(), json_path, doc)
    text = doc.read_text()
    assert text.count(deploy_report.START) == 1
    assert text.startswith("# Performance\n")
    assert "older figures" in text
    assert "load average 1.00 / 1.00 / 1.00 before" in text


@pytest.mark.parametrize("system", SYSTEMS)
def test_every_peer_has_a_worker_command_for_w_processes(system: str) -> None:
    command = worker_command(system, "/venv/bin/python", 2)
    assert command[0] == "/venv/bin/python"
    assert "2" in command


def test_an_unknown_peer_is_refused_with_the_known_ones() -> None:
    with pytest.raises(SystemExit, match="taskiq, dramatiq, saq, celery"):
        worker_command("rq", "python", 1)


def _with_memory() -> dict[str, Any]:
    result = _result()
    result["memory"] = {
        "tasks": 10_000, "hold_s": 15.0, "submit_s": 6.2, "wall_s": 23.5,
        "peak_in_flight": 9_876,
        "rss_mb": {
            "serve": {"at_rest": 81.0, "peak": 190.4, "after": 150.0},
            "worker": {"at_rest": 60.0, "peak": 420.6, "after": 300.0},
            "client": {"at_rest": 0.0, "peak": 250.0},
        },
    }  # fmt: skip
    return result


def test_the_memory_table_gives_each_process_at_rest_at_peak_and_after() -> None:
    text = deploy_report.memory_table(_with_memory())
    assert "| process | at rest | peak, 9,876 tasks in flight | after |" in text
    assert "| `worldpool serve` | 81 MB | 190 MB | 150 MB |" in text
    assert "| one `worldpool worker` | 60 MB | 421 MB | 300 MB |" in text
    assert "| the client process | - | 250 MB | - |" in text  # not running at rest


def test_the_memory_section_has_its_own_markers_beside_the_throughput_one(
    tmp_path: Path,
) -> None:
    doc = tmp_path / "performance.md"
    doc.write_text("# Performance\n\nolder figures\n")
    json_path = tmp_path / "deploy-1.json"
    deploy_report.write_docs(_with_memory(), json_path, doc)
    for _ in range(2):
        deploy_report.write_memory_docs(_with_memory(), json_path, doc)
    text = doc.read_text()
    assert text.count(deploy_report.MEMORY_START) == 1
    assert text.count(deploy_report.START) == 1  # the memory run leaves the other alone
    assert "at most 9,876 were in flight at once" in text
    assert "older figures" in text
    assert text.index(deploy_report.END) < text.index(deploy_report.MEMORY_START)  # after it


def test_peak_in_flight_counts_overlapping_spans() -> None:
    from bench.wp_inflight import peak_in_flight

    assert peak_in_flight([]) == 0
    assert peak_in_flight([(0.0, 1.0), (0.5, 2.0), (1.5, 3.0)]) == 2
    assert peak_in_flight([(0.0, 1.0), (1.0, 2.0)]) == 1  # one ends as the next starts
    assert peak_in_flight([(0.0, 5.0)] * 3) == 3


async def test_the_hold_handler_refuses_a_bad_duration() -> None:
    from bench.noop_handlers import hold

    class Ctx:
        payload: dict[str, Any] = {"s": -1}

    with pytest.raises(ValueError, match=r"payload 's' is -1"):
        await hold(Ctx())  # type: ignore[arg-type]
    Ctx.payload = {"s": 0}
    value = await hold(Ctx())  # type: ignore[arg-type]
    assert isinstance(value, dict) and value["end"] >= value["start"]
