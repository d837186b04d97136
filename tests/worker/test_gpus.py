"""GPU detection through a stub NVML (CI has no GPU): MIG slices, versions, re-detection.

The stub mirrors nvidia-ml-py's calls and its errors (a GPU without MIG raises on
nvmlDeviceGetMigMode; an empty MIG slot raises on nvmlDeviceGetMigDeviceHandleByIndex).
`make gpu-check` runs the real thing on a machine with a GPU (docs/workers.md).
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import types
from dataclasses import dataclass, field

import pytest

from worldpool.models import GPU
from worldpool.worker.gpus import GIB, detect_gpus, redetect_loop


@dataclass
class Card:
    name: str
    memory_gib: float
    mig: list[tuple[str, float] | None] | None = None  # slots: a slice or None (empty)
    handles: list[object] = field(default_factory=list)


def stub_nvml(cards: list[Card], driver: str = "550.54.15", cuda: int = 12040) -> types.ModuleType:
    class NVMLError(Exception):
        pass

    nvml = types.ModuleType("pynvml")
    names: dict[object, tuple[str, float]] = {}
    for index, card in enumerate(cards):
        names[("gpu", index)] = (card.name, card.memory_gib)
        for slot, piece in enumerate(card.mig or []):
            if piece is not None:
                names[("mig", index, slot)] = (f"{card.name} MIG {piece[0]}", piece[1])

    def mig_mode(handle: tuple[str, int]) -> tuple[int, int]:
        card = cards[handle[1]]
        if card.mig is None:
            raise NVMLError("Not Supported")
        return (1, 1)

    def mig_handle(handle: tuple[str, int], slot: int) -> object:
        key = ("mig", handle[1], slot)
        if key not in names:
            raise NVMLError("Not Found")
        return key

    nvml.nvmlInit = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    nvml.nvmlSystemGetDriverVersion = lambda: driver  # type: ignore[attr-defined]
    nvml.nvmlSystemGetCudaDriverVersion = lambda: cuda  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetCount = lambda: len(cards)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetHandleByIndex = lambda i: ("gpu", i)  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetName = lambda h: names[h][0].encode()  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMemoryInfo = lambda h: types.SimpleNamespace(  # type: ignore[attr-defined]
        total=int(names[h][1] * GIB)
    )
    nvml.nvmlDeviceGetMigMode = mig_mode  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMaxMigDeviceCount = lambda h: len(cards[h[1]].mig or [])  # type: ignore[attr-defined]
    nvml.nvmlDeviceGetMigDeviceHandleByIndex = mig_handle  # type: ignore[attr-defined]
    return nvml


def test_several_gpus_with_driver_and_cuda_versions(monkeypatch: pytest.MonkeyPatch) -> None:
    cards = [Card("NVIDIA H100 80GB HBM3", 80)] * 4
    monkeypatch.setitem(sys.modules, "pynvml", stub_nvml(cards, driver="550.54.15", cuda=12040))
    assert detect_gpus() == [
        GPU(
            model="NVIDIA H100 80GB HBM3",
            vram_gb=80.0,
            count=4,
            driver_version="550.54.15",
            cuda_version="12.4",
        )
    ]


def test_a_gpu_in_mig_mode_is_listed_as_its_slices(monkeypatch: pytest.MonkeyPatch) -> None:
    mig = [("3g.40gb", 39.5), ("1g.10gb", 9.8), ("1g.10gb", 9.8), None]  # one slot empty
    cards = [Card("NVIDIA A100-SXM4-80GB", 80, mig=mig), Card("NVIDIA L4", 24)]
    monkeypatch.setitem(sys.modules, "pynvml", stub_nvml(cards))
    found = {(g.model, g.mig_profile): (g.count, g.vram_gb) for g in detect_gpus()}
    assert found == {
        ("NVIDIA A100-SXM4-80GB MIG 1g.10gb", "1g.10gb"): (2, 9.8),
        ("NVIDIA A100-SXM4-80GB MIG 3g.40gb", "3g.40gb"): (1, 39.5),
        ("NVIDIA L4", None): (1, 24.0),
    }


def test_a_failing_driver_means_no_gpus(monkeypatch: pytest.MonkeyPatch) -> None:
    nvml = stub_nvml([Card("NVIDIA L4", 24)])

    def broken(index: int) -> object:
        raise RuntimeError("GPU is lost")

    nvml.nvmlDeviceGetHandleByIndex = broken  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "pynvml", nvml)
    assert detect_gpus() == []


async def test_redetection_reports_a_change_once(monkeypatch: pytest.MonkeyPatch) -> None:
    before = [GPU(model="NVIDIA L4", vram_gb=24, count=2)]
    after = [GPU(model="NVIDIA L4", vram_gb=24, count=1)]  # one fell off the bus
    seen: list[list[GPU]] = []
    current = list(before)
    answers = itertools.chain([before, after], itertools.repeat(after))

    async def on_change(found: list[GPU]) -> None:
        seen.append(found)
        current[:] = found

    loop = asyncio.create_task(
        redetect_loop(lambda: current, on_change, interval_s=0.01, detect=lambda: next(answers))
    )
    for _ in range(100):
        await asyncio.sleep(0.01)
        if len(seen) and current == after:
            break
    await asyncio.sleep(0.05)
    loop.cancel()
    assert seen == [after]
