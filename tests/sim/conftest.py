"""Small pools and workloads for the simulator tests."""

from __future__ import annotations

from worldpool import geo
from worldpool.models import GPU, Hardware, ServedModel, WorkerProfile


def gpu_worker(
    wid: str, region: str, *, slots: int = 1, cost: float = 3.6, latency_ms: float = 0.0
) -> WorkerProfile:
    return WorkerProfile(
        id=wid,
        capabilities={"coding"},
        handlers={"analyze"},
        hardware=Hardware(
            gpus=[GPU(model="A100-80GB", vram_gb=80)],
            models=[ServedModel(name="qwen3-235b", tokens_per_s=50.0)],
        ),
        location=geo.location_for(region),
        cost_per_hour=cost,
        max_concurrency=slots,
        latency_to_orchestrator_ms=latency_ms,
    )


def cpu_worker(wid: str, region: str, *, slots: int = 1, cost: float = 0.36) -> WorkerProfile:
    return WorkerProfile(
        id=wid,
        capabilities={"testing"},
        handlers={"run_tests"},
        location=geo.location_for(region),
        cost_per_hour=cost,
        max_concurrency=slots,
    )
