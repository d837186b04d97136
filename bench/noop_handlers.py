"""The no-op handler the end-to-end bench runs: ``--handlers bench.noop_handlers:HANDLERS``."""

from __future__ import annotations

from worldpool.models import JSONValue
from worldpool.worker.handlers import TaskContext


async def noop(ctx: TaskContext) -> JSONValue:
    """Does nothing, so the figures measure the task queue and not the work."""
    return None


HANDLERS = {"noop": noop}
