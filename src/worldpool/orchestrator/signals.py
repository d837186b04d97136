"""Waking up: :class:`Changes`, the signal that waiters and the dispatcher wait on, and
the cheap future helpers it and the record cache share."""

from __future__ import annotations

import asyncio
import contextlib


class Changes:
    """ "Something changed": a generation counter, the coroutines waiting for the next
    change (``wait_workflow``, ``run_until_idle``) and the dispatcher's wake-up event."""

    def __init__(self) -> None:
        self.generation = 0  # bumped on every change, so waiters never miss a wake-up
        self.dispatcher = asyncio.Event()  # set: the dispatcher should run a pass now
        self._waiters: list[asyncio.Future[None]] = []

    def notify(self, wake_dispatcher: bool = True) -> None:
        """Wake the waiters (and the dispatcher, unless the change is the dispatcher's own
        and leaves it nothing new to do)."""
        self.generation += 1
        if wake_dispatcher:
            self.dispatcher.set()
        waiters, self._waiters = self._waiters, []
        for future in waiters:
            settle(future)

    async def wait(self, timeout_s: float, seen: int | None = None) -> None:
        """Wait for a change after generation ``seen`` (at once if one already happened
        while the caller was reading; None: the next change), at most ``timeout_s``."""
        if seen is not None and self.generation != seen:
            return
        await wait_settled(self._waiters, timeout_s)


async def wait_settled(futures: list[asyncio.Future[None]], timeout_s: float) -> None:
    """Add a future to ``futures`` and wait until it is settled or ``timeout_s`` passes
    (cheaper than ``asyncio.wait_for``, which makes a task per call), then remove it."""
    loop = asyncio.get_running_loop()
    future = loop.create_future()
    futures.append(future)
    timer = loop.call_later(timeout_s, settle, future)
    try:
        await future
    finally:
        timer.cancel()
        with contextlib.suppress(ValueError):
            futures.remove(future)


def settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
