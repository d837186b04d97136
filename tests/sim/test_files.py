"""Pool files, trace files and event-log replay: good input loads, bad input says where."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from worldpool.errors import ConfigError
from worldpool.models import Event, EventKind, StepSpec, TaskSpec, WorkflowSpec
from worldpool.sim.pools import dump_pool, load_pool_file, seed_pool, world_pool
from worldpool.sim.traces import dump_trace_line, load_event_log, load_trace


def test_seed_pool_matches_the_seed() -> None:
    pool = {p.id: p for p in seed_pool()}
    assert list(pool) == [
        "dgx-tokyo-01",
        "dgx-london-02",
        "dgx-sf-01",
        "browser-aws-useast-03",
        "browser-gcp-euwest-01",
        "browser-azure-eastasia-01",
        "sandbox-onprem-01",
    ]
    assert pool["dgx-tokyo-01"].handlers == {"plan", "analyze", "fix", "review", "llm"}
    assert pool["dgx-london-02"].hardware.gpus[0].model == "H100-80GB"
    assert pool["browser-gcp-euwest-01"].location.region == "europe-west1"
    sandbox = pool["sandbox-onprem-01"].hardware
    assert sandbox.virtualization is not None and sandbox.virtualization.platform == "firecracker"
    # The seed's hardware groups, with its figures.
    assert (sandbox.virtualization.concurrent_vms, sandbox.virtualization.boot_time_ms) == (32, 125)
    assert sandbox.virtualization.snapshot_support
    assert sandbox.isolation is not None and sandbox.isolation.resource_limits is not None
    assert sandbox.isolation.resource_limits.max_memory_mb == 2048
    browser = pool["browser-aws-useast-03"].hardware
    assert browser.browser_automation is not None and browser.network is not None
    assert browser.browser_automation.vnc_port == 5900
    assert browser.browser_automation.concurrent_sessions == 4
    assert browser.network.captcha_solving and browser.network.bandwidth_mbps == 1000
    gpu = pool["dgx-tokyo-01"].hardware
    assert gpu.code_analysis is not None and gpu.code_analysis.tool == "jedi"
    assert any(m.context_tokens == 128_000 for m in gpu.models)
    assert any(v.supports_ocr for v in gpu.vision_models)


def test_world_pool_spreads_over_20_regions() -> None:
    pool = world_pool(2000, seed=1)
    assert len({p.location.region for p in pool}) >= 20
    assert {p.labels["kind"] for p in pool} == {"gpu", "browser", "sandbox"}
    assert world_pool(50, seed=1) == world_pool(50, seed=1)


def test_pool_file_round_trip_and_toml(tmp_path: Path) -> None:
    path = tmp_path / "pool.json"
    dump_pool(seed_pool(), path)
    assert load_pool_file(path) == seed_pool()
    toml = tmp_path / "pool.toml"
    toml.write_text('[[workers]]\nid = "w1"\nlocation = "tokyo"\nhandlers = ["llm"]\n')
    [w] = load_pool_file(toml)
    assert w.location.city == "Tokyo"


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (
            '[{"id": "a", "location": "tokyo",\n "max_concurrency": -1}]',
            "item 1 (id 'a'): max_concurrency: Input should be greater than or equal to 1",
        ),
        ('[{"id": "a", "location": "tokio"}]', "unknown region or city 'tokio'"),
        ('[{"id": "a", "location": "tokyo", "colour": "red"}]', "colour: Extra inputs"),
        (
            '[{"id": "a", "location": "tokyo"},\n{"id": "a", "location": "tokyo"}]',
            "item 2 (id 'a'): worker id 'a' is used twice",
        ),
        ('[{"id": "a",\n "location": "tokyo",]', "pool.json:2:"),
        ('{"nodes": []}', "expected a list of worker profiles"),
    ],
)
def test_bad_pool_files_name_file_item_and_reason(
    tmp_path: Path, content: str, expected: str
) -> None:
    path = tmp_path / "pool.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_pool_file(path)
    assert expected in str(info.value) and str(path) in str(info.value)


def test_trace_loads_tasks_and_workflows(tmp_path: Path) -> None:
    task = TaskSpec(id="t1", handler="analyze", interactive=True, user_location="tokyo")
    wf = WorkflowSpec(
        id="wf1",
        steps=[
            StepSpec(name="a", task=TaskSpec(id="s1", handler="run_tests")),
            StepSpec(name="b", task=TaskSpec(id="s2", handler="analyze"), after=["a"]),
        ],
    )
    path = tmp_path / "trace.jsonl"
    path.write_text(
        "# a comment\n"
        + "\n".join(
            [
                dump_trace_line(1.5, task, work_s=3, goal_s=10, **{"class": "chat"}),
                dump_trace_line(2.0, wf, work_s={"a": 4}, out_bytes={"a": 100}),
            ]
        )
        + "\n"
    )
    wl = load_trace(path)
    assert len(wl) == 3 and wl.class_names == ["chat", "workflow"]
    assert list(wl.work_s) == [3.0, 4.0, 12.0]  # b falls back to the analyze median
    assert wl.sources[0] == f"{path}:2"
    assert list(wl.parent_idx) == [1]


def test_bad_trace_lines_are_reported_with_line_numbers(tmp_path: Path) -> None:
    path = tmp_path / "trace.jsonl"
    path.write_text(
        "\n".join(
            [
                '{"at": 1, "task": {"handler": "analyze"}}',
                '{"at": -1, "task": {"handler": "analyze"}}',
                '{"at": 1, "task": {"handler": "analyze", "user_location": "atlantis"}}',
                '{"at": 1, "task": {"handler": "analyze"}, "speed": 3}',
                "not json",
                '{"at": 1}',
            ]
        )
    )
    with pytest.raises(ConfigError) as info:
        load_trace(path)
    text = str(info.value)
    assert f"{path}:2: at: Input should be greater than or equal to 0" in text
    assert f"{path}:3: unknown region or city 'atlantis'" in text
    assert f"{path}:4: speed: Extra inputs are not permitted" in text
    assert f"{path}:5:" in text
    assert f"{path}:6: each line needs exactly one of 'task' or 'workflow'" in text
    assert f"{path}:1:" not in text


def test_event_log_replay(tmp_path: Path) -> None:
    events = [
        Event(kind=EventKind.TASK_SUBMITTED, at=100.0, task_id="t1", message="handler analyze"),
        Event(kind=EventKind.TASK_STARTED, at=101.0, task_id="t1"),
        Event(kind=EventKind.TASK_SUCCEEDED, at=108.5, task_id="t1"),
        Event(
            kind=EventKind.TASK_SUBMITTED,
            at=103.0,
            task_id="t2",
            data={"spec": {"handler": "run_tests", "capabilities": ["testing"]}},
        ),
    ]
    path = tmp_path / "events.jsonl"
    path.write_text("\n".join(e.model_dump_json() for e in events))
    wl = load_event_log(path)
    assert list(wl.arrival) == [0.0, 3.0]
    assert list(wl.work_s) == [7.5, 25.0]
    assert wl.templates[1].capabilities == {"testing"}
    path.write_text(json.dumps({"kind": "task.exploded", "at": 1}))
    with pytest.raises(ConfigError, match=r"events.jsonl:1: not an event"):
        load_event_log(path)
