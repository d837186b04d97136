"""Coalesce concurrent single calls into batch calls, with no added delay.

Two hundred coroutines each submitting one task would each pay a Redis command of their
own (a pooled connection, a socket write, a reply parse): most of the orchestrator's CPU
under load. A :class:`Coalescer` sends the first call at once and, while that batch is in
flight, gathers the calls that arrive into the next one, so a lone call costs what it did
and a burst costs a few pipelined round trips.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

In = TypeVar("In")
Out = TypeVar("Out")


class Coalescer(Generic[In, Out]):
    """``await coalescer(item)`` runs ``batch([item, ...])`` and returns this item's output.

    ``batch`` must return one output per input, in order. If it raises, every caller of
    that batch gets the exception. A caller cancelled while its batch is in flight does not
    cancel the batch (the others still need it); a lone call sent from its caller's task is
    that caller's alone, so cancelling it cancels just that call."""

    def __init__(self, batch: Callable[[list[In]], Awaitable[list[Out]]], max_batch: int = 500):
        self._batch = batch
        self._max = max_batch
        self._queue: list[tuple[In, asyncio.Future[Out]]] = []
        self._flusher: asyncio.Task[None] | None = None
        self._sending = False  # a lone call is in flight in its caller's task

    async def __call__(self, item: In) -> Out:
        if not self._sending and (self._flusher is None or self._flusher.done()):
            return await self._send_alone(item)
        # A batch is in flight: the lone sender or the running flusher takes this one next.
        future: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        self._queue.append((item, future))
        return await future  # cancelling it drops this caller only: the flusher runs on

    async def _send_alone(self, item: In) -> Out:
        """Nothing in flight: send this call at once from the caller's own task (no task
        to schedule); calls arriving meanwhile go out together when it is back."""
        self._sending = True
        try:
            outputs = await self._batch([item])
        finally:
            self._sending = False
            if self._queue:
                self._flusher = asyncio.create_task(self._flush(), name="coalescer-flush")
        if len(outputs) != 1:
            raise RuntimeError(f"a batch of 1 returned {len(outputs)}")
        return outputs[0]

    async def _flush(self) -> None:
        while self._queue:
            taken, self._queue = self._queue[: self._max], self._queue[self._max :]
            try:
                outputs = await self._batch([item for item, _ in taken])
                if len(outputs) != len(taken):
                    raise RuntimeError(f"a batch of {len(taken)} returned {len(outputs)}")
            except asyncio.CancelledError:
                for _, future in taken:
                    future.cancel()
                raise
            except Exception as exc:  # handed to every caller of this batch
                for _, future in taken:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), output in zip(taken, outputs, strict=True):
                if not future.done():
                    future.set_result(output)
