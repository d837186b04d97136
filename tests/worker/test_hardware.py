"""Hardware detection (real, and with a fake NVML), profile merging and claim checks."""

from __future__ import annotations

import shutil
import sys
import types
from typing import Any

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.models import GPU, Hardware, Location, WorkerProfile
from worldpool.worker.hardware import (
    GIB,
    build_profile,
    check_claims,
    detect_gpus,
    detect_hardware,
    measure_rtt_ms,
)


def fake_nvml(devices: list[tuple[str, int]], *, init_error: bool = False) -> types.ModuleType:
    class NVMLError(Exception):
        pass

    module = types.ModuleType("pynvml")

    def init() -> None:
        if init_error:
            raise NVMLError("NVML Shared Library Not Found")

    module.NVMLError = NVMLError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlDeviceGetCount = lambda: len(devices)  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda i: devices[i][0].encode()  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = (  # type: ignore[attr-defined]
        lambda i: types.SimpleNamespace(total=devices[i][1])
    )
    return module


def test_real_detection_sees_this_machine() -> None:
    hw = detect_hardware()
    assert hw.cpus >= 1 and hw.memory_gb > 0 and hw.disk_gb > 0
    if shutil.which("git"):
        assert "git" in hw.tools
    if shutil.which("bwrap"):
        assert "bwrap" in hw.tools
        assert hw.virtualization is not None and hw.virtualization.platform == "bubblewrap"
        assert hw.isolation is not None and hw.isolation.filesystem_isolation
    if shutil.which("chromium"):
        assert hw.browser_automation is not None and hw.browser_automation.recording
    assert hw.tools == sorted(hw.tools)


def test_gpus_through_nvml(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(
        sys.modules,
        "pynvml",
        fake_nvml(
            [
                ("NVIDIA H100 80GB HBM3", 80 * GIB),
                ("NVIDIA H100 80GB HBM3", 80 * GIB),
                ("NVIDIA L4", 24 * GIB),
            ]
        ),
    )
    assert detect_gpus() == [
        GPU(model="NVIDIA H100 80GB HBM3", vram_gb=80.0, count=2),
        GPU(model="NVIDIA L4", vram_gb=24.0, count=1),
    ]
    assert detect_hardware().gpu_count == 3


def test_no_nvml_library_or_driver_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pynvml", fake_nvml([], init_error=True))
    assert detect_gpus() == []
    monkeypatch.setitem(sys.modules, "pynvml", None)  # import fails
    assert detect_gpus() == []


def test_config_wins_for_region_cost_labels_capabilities() -> None:
    detected = Hardware(cpus=8, memory_gb=32, tools=["bwrap", "git"])
    profile = build_profile(
        {
            "id": "w1",
            "region": "eu-west-1",
            "cost_per_hour": 0.5,
            "labels": {"team": "a"},
            "capabilities": ["testing"],
            "hardware": {"tools": ["x-custom"]},
        },
        detected,
        rtt_ms=12.5,
        handlers=["shell"],
    )
    assert profile.location.region == "eu-west-1"
    assert profile.cost_per_hour == 0.5 and profile.labels == {"team": "a"}
    assert profile.capabilities == frozenset({"testing"})
    assert profile.hardware.cpus == 8 and profile.hardware.tools == ["bwrap", "git", "x-custom"]
    assert profile.handlers == frozenset({"shell"})
    assert profile.latency_to_orchestrator_ms == 12.5


def profile(caps: list[str], **hw: Any) -> WorkerProfile:
    return WorkerProfile(
        id="w", capabilities=caps, location=Location(region="local"), hardware=Hardware(**hw)
    )


def test_claims_without_backing_are_listed() -> None:
    bare = Hardware(cpus=2, memory_gb=4, tools=[])
    problems = check_claims(
        profile(["browser_operations", "shell_operations"], gpus=[GPU(model="H100", vram_gb=80)]),
        bare,
    )
    joined = "\n".join(problems)
    assert "browser_operations" in joined and "'chromium'" in joined
    assert "shell_operations" in joined and "bubblewrap" in joined
    assert "1 GPU(s) but 0" in joined


def test_backed_claims_pass() -> None:
    hw = Hardware(
        cpus=4, memory_gb=8, tools=["bwrap", "chromium"], gpus=[GPU(model="L4", vram_gb=24)]
    )
    claims = profile(["browser_operations", "testing"], gpus=[GPU(model="L4", vram_gb=24)])
    assert check_claims(claims, hw) == []


def test_local_shell_needs_the_unsafe_flag() -> None:
    hw = Hardware(tools=[])
    claims = profile(["shell_operations"])
    assert check_claims(claims, hw, sandbox_provider="local")
    assert check_claims(claims, hw, sandbox_provider="local", unsafe_local_shell=True) == []
    assert check_claims(claims, hw, sandbox_provider="locale2b") == []


async def test_rtt_is_measured_against_the_backend() -> None:
    backend = MemoryBackend()
    rtt = await measure_rtt_ms(backend, samples=3)
    assert rtt >= 0
