"""An embedded deployment: the real orchestrator and real workers on the memory backend,
in one event loop. ``worldpool demo`` and :mod:`worldpool.testing` use it; it is the same
code as a distributed deployment, only another backend.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.memory import MemoryBackend
from worldpool.client import Client
from worldpool.config import Settings
from worldpool.errors import TaskFailedError
from worldpool.models import (
    Capability,
    Hardware,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    WorkerProfile,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.orchestrator.core import Orchestrator
from worldpool.typed import TypedHandler
from worldpool.worker.handlers import Handler, HandlerTable
from worldpool.worker.runtime import WorkerRuntime

# Quick failover for tests, but not so quick that a busy 2-core CI machine trips it.
FAST_SETTINGS = Settings(heartbeat_s=0.25)


def _default_worker(handlers: Iterable[str]) -> WorkerProfile:
    return make_worker(handlers=handlers)


class EmbeddedPool:
    """An orchestrator plus in-process workers on one memory backend."""

    def __init__(
        self,
        handlers: HandlerTable
        | Mapping[str, Handler]
        | Iterable[TypedHandler[Any, Any]]
        | None = None,
        workers: Iterable[WorkerProfile] | None = None,
        settings: Settings | None = None,
        *,
        worker_handlers: Mapping[str, HandlerTable | Mapping[str, Handler]] | None = None,
        seed: int | None = 0,
    ) -> None:
        self.settings = settings or FAST_SETTINGS
        self.backend = MemoryBackend(self.settings)
        self.artifacts = ArtifactStore(self.backend, self.settings)
        self.orchestrator = Orchestrator(
            self.backend, self.settings, artifacts=self.artifacts, seed=seed
        )
        table = handlers if isinstance(handlers, HandlerTable) else HandlerTable(handlers or {})
        profiles = list(workers) if workers is not None else [_default_worker(table.names())]
        self.workers: dict[str, WorkerRuntime] = {}
        self._client: Client | None = None
        for profile in profiles:
            own = (worker_handlers or {}).get(profile.id, table)
            if not isinstance(own, HandlerTable):
                own = HandlerTable(own)
            if not profile.handlers:
                profile = profile.model_copy(update={"handlers": own.names()})
            self.workers[profile.id] = WorkerRuntime(
                self.backend, profile, own, self.settings, artifacts=self.artifacts
            )

    async def start(self) -> None:
        for worker in self.workers.values():
            await worker.start()
        await self.orchestrator.start()

    async def stop(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.orchestrator.stop()
        for worker in self.workers.values():
            await worker.stop(drain=False)

    async def __aenter__(self) -> EmbeddedPool:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @property
    def client(self) -> Client:
        """The same :class:`~worldpool.Client` a deployment gives (``Client.connect``), on
        this pool: code written against it runs unchanged against ``worldpool serve``."""
        if self._client is None:
            self._client = Client(self.backend, self.orchestrator)
        return self._client

    async def submit(self, spec: TaskSpec) -> TaskRecord:
        return await self.orchestrator.submit(spec)

    async def run_task(self, spec: TaskSpec, timeout_s: float = 30.0) -> TaskRecord:
        """Submit, wait for the end; raise TaskFailedError if it failed."""
        await self.submit(spec)
        record = await self.orchestrator.wait_task(spec.id, timeout_s)
        if record.status is TaskStatus.FAILED:
            raise TaskFailedError(record.id, record.error, attempts=len(record.attempts))
        return record

    async def run_workflow(self, spec: WorkflowSpec, timeout_s: float = 60.0) -> WorkflowStatus:
        await self.orchestrator.submit_workflow(spec)
        status = await self.orchestrator.wait_workflow(spec.id, timeout_s)
        await self.raise_first_failure()
        return status

    async def run_until_idle(self, timeout_s: float = 30.0) -> list[TaskRecord]:
        """Wait until no task is pending or running; re-raise the first failure."""
        async with asyncio.timeout(timeout_s):
            while True:
                records = await self.backend.list_tasks()
                if all(r.status.terminal for r in records):
                    break
                await self.orchestrator.changes.wait(0.2)
        await self.raise_first_failure()
        return records

    async def raise_first_failure(self) -> None:
        failed = [r for r in await self.backend.list_tasks() if r.status is TaskStatus.FAILED]
        if failed:
            first = min(failed, key=lambda r: r.ended_at or 0.0)
            raise TaskFailedError(first.id, first.error)

    async def kill_worker(self, worker_id: str) -> None:
        """Crash a worker (no drain, no goodbye): failover starts after missed heartbeats."""
        await self.workers[worker_id].crash()


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
    from worldpool.geo import location_for  # the region catalogue is big: load on use

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
