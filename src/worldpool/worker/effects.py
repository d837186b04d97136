"""Effects applied once per key: :class:`EffectLedger`, what ``TaskContext.once`` uses.

Delivery is at least once: a task may run again after a failover, a drain or a paused
worker that comes back (a zombie). An effect a handler makes through ``ctx.once(name,
effect)`` is applied once per key (``"<idempotency key>:<name>"``) whatever the number of
runs: before the effect, the backend's ledger is asked in one step that also checks the
attempt's fencing token (the task's record still names this worker and attempt); after
it, the ledger records it as done with its value, which later attempts get back instead of
applying it again. An attempt that no longer owns its task (fenced) is refused before it
applies anything.

The one window left is the effect itself: an attempt paused *during* ``effect`` and
resumed after its task ran elsewhere completes it late. ``effect`` is given the fencing
token (it grows with every attempt) so a store that keeps the highest token seen can turn
that late write away too.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import orjson

from worldpool.backends.base import Backend
from worldpool.errors import HandlerError
from worldpool.models import JSONValue

EFFECT_TTL_S = 7 * 24 * 3600.0
"""How long the ledger remembers an effect (longer than any task lives)."""


class FencedError(HandlerError):
    """This attempt no longer owns its task: it was re-routed, handed back or cancelled."""

    def __init__(self, task_id: str, attempt: int) -> None:
        super().__init__(
            f"attempt {attempt} of task {task_id} no longer owns it; effect not applied",
            retryable=False,
        )


class EffectLedger:
    """One attempt's view of the backend's effect ledger."""

    def __init__(
        self,
        backend: Backend,
        loop: asyncio.AbstractEventLoop,
        task_id: str,
        worker_id: str,
        attempt: int,
        key: str,
    ) -> None:
        self._backend = backend
        self._loop = loop
        self.task_id = task_id
        self.worker_id = worker_id
        self.attempt = attempt
        self.key = key

    async def run_async(
        self, name: str, effect: Callable[[int], Awaitable[Any]] | Callable[[int], Any]
    ) -> JSONValue:
        """Apply ``effect(fencing_token)`` unless it was applied for this key already."""
        key = f"{self.key}:{name}"
        claim = await self._backend.claim_effect(
            key, self.task_id, self.worker_id, self.attempt, EFFECT_TTL_S
        )
        if claim.state == "fenced":
            raise FencedError(self.task_id, self.attempt)
        if claim.state == "done":
            return None if claim.value is None else orjson.loads(claim.value)
        value = effect(self.attempt)
        if asyncio.iscoroutine(value) or isinstance(value, asyncio.Future):
            value = await value
        await self._backend.finish_effect(
            key, self.task_id, self.worker_id, self.attempt, orjson.dumps(value)
        )
        return value

    def run(self, name: str, effect: Callable[[int], Any]) -> JSONValue:
        """:meth:`run_async` from a sync handler's thread (``effect`` runs in that thread)."""
        state, value = self.claim(name)
        if state == "done":
            return value
        value = effect(self.attempt)
        self.finish(name, value)
        return value

    def claim(self, name: str) -> tuple[str, JSONValue]:
        """Ask the ledger for ``name``, from a thread: ``("claimed", None)`` (apply it now)
        or ``("done", value)``; raises :class:`FencedError` if this attempt lost its task.
        (A child process's ``ctx.once`` asks through this and :meth:`finish`.)"""
        self._not_on_loop()
        claim = asyncio.run_coroutine_threadsafe(
            self._backend.claim_effect(
                f"{self.key}:{name}", self.task_id, self.worker_id, self.attempt, EFFECT_TTL_S
            ),
            self._loop,
        ).result()
        if claim.state == "fenced":
            raise FencedError(self.task_id, self.attempt)
        if claim.state == "done":
            return "done", None if claim.value is None else orjson.loads(claim.value)
        return "claimed", None

    def finish(self, name: str, value: JSONValue) -> None:
        """Record ``name`` as applied with ``value``, from a thread."""
        self._not_on_loop()
        asyncio.run_coroutine_threadsafe(
            self._backend.finish_effect(
                f"{self.key}:{name}",
                self.task_id,
                self.worker_id,
                self.attempt,
                orjson.dumps(value),
            ),
            self._loop,
        ).result()

    def _not_on_loop(self) -> None:
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is self._loop:
            raise HandlerError(
                "ctx.once blocks: call it from a sync handler, or await ctx.once_async",
                retryable=False,
            )
