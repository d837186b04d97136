"""The handlers the end-to-end bench runs: ``--handlers bench.noop_handlers:HANDLERS``."""

from __future__ import annotations

import asyncio
import time

from worldpool.models import JSONValue
from worldpool.worker.handlers import TaskContext

HOLD_MAX_S = 600.0


async def noop(ctx: TaskContext) -> JSONValue:
    """Does nothing, so the figures measure the task queue and not the work."""
    return None


async def hold(ctx: TaskContext) -> JSONValue:
    """Stays in flight for ``payload["s"]`` seconds (the memory run keeps 10,000 tasks in
    flight this way) and says when it ran, so the producer can count how many were in
    flight at once."""
    seconds = ctx.payload.get("s", 1.0)
    if not isinstance(seconds, int | float) or not 0 <= seconds <= HOLD_MAX_S:
        raise ValueError(f"payload 's' is {seconds!r}: give seconds in [0, {HOLD_MAX_S:g}]")
    start = time.time()
    await asyncio.sleep(float(seconds))
    return {"start": start, "end": time.time()}


HANDLERS = {"noop": noop, "hold": hold}
