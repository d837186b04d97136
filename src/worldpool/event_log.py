"""Following the event log: where its tail is, and a cancellation check for the loops
that follow it (the API's SSE streams and metrics consumer, ``worldpool watch``).

Kept apart from the API so a client-only install (no FastAPI, no prometheus-client) can
follow a deployment's events too.
"""

from __future__ import annotations

import asyncio

from worldpool.backends.base import Backend


def cancel_checkpoint() -> None:
    """Raise CancelledError if this task was asked to stop.

    On Python 3.11 ``asyncio.wait_for`` can swallow a cancellation that arrives just as
    the awaited future completes (fixed in 3.12); a backend's blocking read built on it
    then returns normally, and a ``while True`` reader would never stop. Loops that block
    on the backend call this once per turn.
    """
    task = asyncio.current_task()
    if task is not None and task.cancelling():
        raise asyncio.CancelledError


async def tail_seq(backend: Backend, batch: int = 10_000) -> str | None:
    """The seq of the newest event in the log (None if empty), to follow only new events.
    Walks the log in batches: the Backend contract has no "last seq" call."""
    cursor: str | None = None
    while True:
        events = await backend.read_events(after=cursor, limit=batch)
        if not events:
            return cursor
        cursor = events[-1].seq or cursor
        if len(events) < batch:
            return cursor
