"""Helpers for testing your own handlers and workflows in-process.

    async with EmbeddedPool(handlers={"double": double}) as pool:
        record = await pool.run_task(TaskSpec(handler="double", payload={"x": 2}))
        assert record.result == 4

:class:`EmbeddedPool` is the real orchestrator and real workers on the memory backend, in
one event loop: the same code as a distributed deployment, only another backend.
:meth:`EmbeddedPool.run_until_idle` waits for every task to end and re-raises the first
handler failure as :class:`~worldpool.errors.TaskFailedError`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from worldpool.embedded import FAST_SETTINGS, EmbeddedPool
from worldpool.models import Capability, Hardware, WorkerProfile

__all__ = ["FAST_SETTINGS", "EmbeddedPool", "make_worker"]


def make_worker(
    worker_id: str = "worker-1",
    *,
    region: str = "us-east-1",
    capabilities: Iterable[str] = tuple(Capability),
    handlers: Iterable[str] = (),
    max_concurrency: int = 4,
    cost_per_hour: float = 1.0,
    hardware: Hardware | None = None,
    labels: Mapping[str, str] | None = None,
) -> WorkerProfile:
    """A worker profile with sensible defaults, for tests."""
    from worldpool.geo import location_for

    return WorkerProfile(
        id=worker_id,
        capabilities=frozenset(capabilities),
        handlers=frozenset(handlers),
        hardware=hardware or Hardware(),
        location=location_for(region),
        cost_per_hour=cost_per_hour,
        max_concurrency=max_concurrency,
        labels=dict(labels or {}),
    )
