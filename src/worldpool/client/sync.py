"""A small synchronous facade for scripts: the async client on a private event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Coroutine, Iterator
from typing import Any, TypeVar, cast

from worldpool.backends.base import DeadLetter
from worldpool.client.core import Client
from worldpool.client.handles import TaskHandle, WorkflowHandle
from worldpool.client.runs import RunFilter, RunSummary
from worldpool.config import Settings
from worldpool.models import TaskRecord, WorkflowSpec, WorkflowStatus
from worldpool.typed import TypedHandler

T = TypeVar("T")


class SyncClient:
    """``with SyncClient.connect(url) as c: c.run("echo", {"x": 1})``: every method of
    :class:`~worldpool.Client`, blocking."""

    def __init__(self, make: Coroutine[Any, Any, Client]) -> None:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, daemon=True)
        self._thread.start()
        try:
            self._client = self._call(make)
        except BaseException:
            self._stop_loop()
            raise

    @classmethod
    def connect(cls, url: str, *, namespace: str | None = None) -> SyncClient:
        return cls(Client.connect(url, namespace=namespace))

    @classmethod
    def from_settings(cls, settings: Settings) -> SyncClient:
        """A client of the deployment ``settings`` name (``WORLDPOOL_REDIS_URL``, ...)."""
        return cls(Client.from_settings(settings))

    @property
    def client(self) -> Client:
        """The async client underneath (its methods run on this facade's loop only)."""
        return self._client

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def _iterate(self, items: AsyncIterator[T]) -> Iterator[T]:
        """An async iterator of the loop's, read one item at a time from this thread."""

        async def step() -> tuple[bool, T | None]:
            try:
                return True, await anext(items)
            except StopAsyncIteration:
                return False, None

        while True:
            more, item = self._call(step())
            if not more:
                return
            yield cast("T", item)  # an item when ``more``

    # ------------------------------------------------------------------ submit
    def submit(
        self,
        handler: str | TypedHandler[Any, Any],
        payload: Any = None,
        *,
        later: bool = False,
        **options: Any,
    ) -> SyncTaskHandle:
        """Queue a task (see :meth:`Client.submit`)."""
        handle = self._call(self._client.submit(handler, payload, later=later, **options))
        return SyncTaskHandle(self, handle)

    def run(
        self,
        handler: str | TypedHandler[Any, Any],
        payload: Any = None,
        *,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> Any:
        """Submit and wait for the value (see :meth:`Client.run`)."""
        return self._call(self._client.run(handler, payload, timeout_s=timeout_s, **options))

    def submit_workflow(
        self, spec: WorkflowSpec | dict[str, Any], *, later: bool = False
    ) -> SyncWorkflowHandle:
        """Validate the DAG, store it, queue its first steps (see :meth:`Client.submit_workflow`)."""
        handle = self._call(self._client.submit_workflow(spec, later=later))
        return SyncWorkflowHandle(self, handle)

    # ------------------------------------------------------------------ look up
    def task(self, task_id: str) -> SyncTaskHandle:
        return SyncTaskHandle(self, self._client.task(task_id))

    def workflow(self, workflow_id: str) -> SyncWorkflowHandle:
        return SyncWorkflowHandle(self, self._client.workflow(workflow_id))

    def list_runs(self, where: RunFilter | None = None, limit: int = 100) -> list[RunSummary]:
        """Tasks and workflows, newest first, filtered (see :class:`RunFilter`)."""
        return self._call(self._client.list_runs(where, limit))

    def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return self._call(self._client.dead_letters(limit))

    # ------------------------------------------------------------------ close
    def close(self) -> None:
        try:
            self._call(self._client.aclose())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=5)
        self._loop.close()

    def __enter__(self) -> SyncClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class SyncTaskHandle:
    """A :class:`~worldpool.TaskHandle`, blocking."""

    def __init__(self, owner: SyncClient, handle: TaskHandle[Any]) -> None:
        self._owner = owner
        self._handle = handle
        self.task_id = handle.task_id

    def __repr__(self) -> str:
        return f"SyncTaskHandle({self.task_id!r})"

    def result(self, timeout_s: float = 60.0) -> Any:
        return self._owner._call(self._handle.result(timeout_s))

    def wait(self, timeout_s: float = 60.0) -> TaskRecord:
        return self._owner._call(self._handle.wait(timeout_s))

    def status(self) -> TaskRecord:
        return self._owner._call(self._handle.status())

    def cancel(self) -> bool:
        return self._owner._call(self._handle.cancel())

    def retry(self) -> bool:
        return self._owner._call(self._handle.retry())

    def logs(self, follow: bool = False, timeout_s: float = 3600.0) -> Iterator[str]:
        """Its log lines; with ``follow``, also those still to come, until it ends."""
        return self._owner._iterate(self._handle.logs(follow=follow, timeout_s=timeout_s))


class SyncWorkflowHandle:
    """A :class:`~worldpool.WorkflowHandle`, blocking."""

    def __init__(self, owner: SyncClient, handle: WorkflowHandle) -> None:
        self._owner = owner
        self._handle = handle
        self.workflow_id = handle.workflow_id

    def __repr__(self) -> str:
        return f"SyncWorkflowHandle({self.workflow_id!r})"

    def result(self, timeout_s: float = 300.0) -> WorkflowStatus:
        return self._owner._call(self._handle.result(timeout_s))

    def status(self) -> WorkflowStatus:
        return self._owner._call(self._handle.status())

    def cancel(self) -> bool:
        return self._owner._call(self._handle.cancel())

    def retry(self) -> list[str]:
        return self._owner._call(self._handle.retry())

    def step(self, name: str) -> SyncTaskHandle:
        """The handle of one step's task."""
        return SyncTaskHandle(self._owner, self._handle.step(name))
