"""Small builders for routing tests: workers, tasks, contexts."""

from __future__ import annotations

from typing import Any

from worldpool import geo
from worldpool.models import (
    GPU,
    Hardware,
    ServedModel,
    TaskSpec,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
)
from worldpool.routing import PoolSnapshot, RoutingContext

NOW = 1_700_000_000.0  # 2023-11-14 22:13 UTC


def worker(
    wid: str,
    *,
    region: str = "us-east-1",
    caps: tuple[str, ...] = ("coding",),
    handlers: tuple[str, ...] = ("run",),
    gpus: tuple[tuple[str, float], ...] = (),
    memory_gb: float = 16,
    cpus: int = 4,
    tools: tuple[str, ...] = (),
    models: tuple[str, ...] = (),
    cost: float = 1.0,
    slots: int = 2,
    running: int = 0,
    status: WorkerStatus = WorkerStatus.ONLINE,
    heartbeat_age_s: float = 0.0,
    latency_ms: float | None = None,
    profile_latency_ms: float = 50.0,
    labels: dict[str, str] | None = None,
    cached: tuple[str, ...] = (),
) -> Worker:
    hardware = Hardware(
        cpus=cpus,
        memory_gb=memory_gb,
        gpus=[GPU(model=m, vram_gb=v) for m, v in gpus],
        tools=list(tools),
        models=[ServedModel(name=m) for m in models],
    )
    profile = WorkerProfile(
        id=wid,
        capabilities=frozenset(caps),
        handlers=frozenset(handlers),
        hardware=hardware,
        location=geo.location_for(region),
        cost_per_hour=cost,
        max_concurrency=slots,
        latency_to_orchestrator_ms=profile_latency_ms,
        labels=labels or {},
    )
    state = WorkerState(
        worker_id=wid,
        status=status,
        running=running,
        last_heartbeat=NOW - heartbeat_age_s,
        latency_ms=latency_ms,
        cached=list(cached),
    )
    return Worker(profile=profile, state=state)


def task(**kwargs: Any) -> TaskSpec:
    kwargs.setdefault("handler", "run")
    kwargs.setdefault("id", "t1")
    return TaskSpec(**kwargs)


def ctx(spec: TaskSpec, **kwargs: Any) -> RoutingContext:
    kwargs.setdefault("now", NOW)
    return RoutingContext(task=spec, **kwargs)


def pool(*workers: Worker) -> PoolSnapshot:
    return PoolSnapshot(workers)


def assert_mask_matches_verdicts(
    plugin: Any, context: RoutingContext, snapshot: PoolSnapshot
) -> None:
    """The vectorised mask and the per-worker verdict must agree on every worker."""
    mask = plugin.mask(context, snapshot)
    for row, w in enumerate(snapshot.workers):
        verdict = plugin.verdict(context, w)
        assert bool(mask[row]) == verdict.ok, (w.id, verdict)
        assert verdict.plugin == plugin.name
        if not verdict.ok:
            assert verdict.code != "ok" and verdict.reason
