"""A small synchronous facade for scripts: the async client on a private event loop."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any, TypeVar

from worldpool.client.core import Client
from worldpool.client.handles import TaskHandle
from worldpool.models import TaskRecord
from worldpool.typed import TypedHandler

T = TypeVar("T")


class SyncClient:
    """``with SyncClient.connect(url) as c: c.run("echo", {"x": 1})``."""

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
    def connect(cls, url: str, *, namespace: str = "default") -> SyncClient:
        return cls(Client.connect(url, namespace=namespace))

    def _call(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result()

    def submit(
        self, handler: str | TypedHandler[Any, Any], payload: Any = None, **options: Any
    ) -> SyncTaskHandle:
        return SyncTaskHandle(self, self._call(self._client.submit(handler, payload, **options)))

    def run(
        self,
        handler: str | TypedHandler[Any, Any],
        payload: Any = None,
        *,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> Any:
        return self._call(self._client.run(handler, payload, timeout_s=timeout_s, **options))

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
    def __init__(self, owner: SyncClient, handle: TaskHandle[Any]) -> None:
        self._owner = owner
        self._handle = handle
        self.task_id = handle.task_id

    def result(self, timeout_s: float = 60.0) -> Any:
        return self._owner._call(self._handle.result(timeout_s))

    def status(self) -> TaskRecord:
        return self._owner._call(self._handle.status())

    def cancel(self) -> bool:
        return self._owner._call(self._handle.cancel())
