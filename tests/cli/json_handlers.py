"""Handlers for tests/cli/test_json_everywhere.py's worker process (``--handlers
tests.cli.json_handlers:HANDLERS``): one that logs and echoes, one that always fails."""

from __future__ import annotations

from typing import Any

from worldpool.worker.handlers import Handler, TaskContext


def echo(ctx: TaskContext) -> dict[str, Any]:
    ctx.log.info("echoing %s", sorted(ctx.payload))
    return {"echo": ctx.payload}


def boom(ctx: TaskContext) -> None:
    raise RuntimeError("boom: this handler always fails")


HANDLERS: dict[str, Handler] = {"echo": echo, "boom": boom}
