from __future__ import annotations

import pytest

from tests.routing.builders import assert_mask_matches_verdicts, ctx, pool, task, worker
from worldpool.routing.filters.hardware import HardwareFilter

SNAP_WORKERS = [
    worker("cpu", memory_gb=8, cpus=2, tools=("git",)),
    worker("a100-40", gpus=(("A100-40GB", 40),), memory_gb=64, cpus=16, models=("llama-3-8b",)),
    worker("h100x2", gpus=(("NVIDIA H100", 80), ("NVIDIA H100", 80)), memory_gb=512, cpus=64),
    worker("browser", tools=("chromium", "git"), memory_gb=16),
]


@pytest.mark.parametrize(
    ("requirements", "expected", "code", "reason"),
    [
        ({"gpu": True}, [False, True, True, False], "no_gpu", "has no GPU, task needs 1"),
        ({"gpu_count": 2}, [False, False, True, False], "gpu_count", "has 1 GPUs, task needs 2"),
        ({"gpu_model": "h100"}, [False, False, True, False], "gpu_model", "task needs a 'h100'"),
        (
            {"min_vram_gb": 80},
            [False, False, True, False],
            "vram",
            "has 40 GB VRAM, task needs 80 GB",
        ),
        (
            {"min_memory_gb": 32},
            [False, True, True, False],
            "memory",
            "has 8 GB memory, task needs 32 GB",
        ),
        ({"min_cpus": 16}, [False, True, True, False], "cpus", "has 2 CPUs, task needs 16"),
        ({"model": "Llama-3-8B"}, [False, True, False, False], "model", "does not serve model"),
        ({"tools": ["chromium"]}, [False, False, False, True], "tools", "lacks tools chromium"),
        ({}, [True, True, True, True], None, None),
    ],
)
def test_hardware_requirements(
    requirements: dict[str, object], expected: list[bool], code: str | None, reason: str | None
) -> None:
    snap = pool(*SNAP_WORKERS)
    f = HardwareFilter()
    c = ctx(task(requirements=requirements))
    assert f.mask(c, snap).tolist() == expected
    assert_mask_matches_verdicts(f, c, snap)
    if code is not None:
        failing = [f.verdict(c, w) for w in snap.workers if not f.verdict(c, w).ok]
        assert {v.code for v in failing} <= {code, "no_gpu"}
        assert any(v.code == code and reason in v.reason for v in failing), failing


def test_browser_and_virtualization_count_as_tools() -> None:
    w = worker("vm")
    w.profile.hardware.browser = "chromium"
    snap = pool(w, worker("bare"))
    c = ctx(task(requirements={"tools": ["Chromium"]}))
    assert HardwareFilter().mask(c, snap).tolist() == [True, False]


def test_combined_requirements_report_the_first_failure() -> None:
    snap = pool(*SNAP_WORKERS)
    c = ctx(task(requirements={"gpu": True, "min_vram_gb": 80, "min_memory_gb": 1024}))
    f = HardwareFilter()
    assert f.mask(c, snap).tolist() == [False, False, False, False]
    assert f.verdict(c, snap.workers[2]).code == "memory"
    assert_mask_matches_verdicts(f, c, snap)
