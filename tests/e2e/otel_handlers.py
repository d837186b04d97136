"""A handler that logs, for the OTLP and JSON-log test (tests/e2e/test_otlp.py)."""

from __future__ import annotations

from worldpool.worker.handlers import TaskContext


def hello(ctx: TaskContext) -> str:
    ctx.log.info("hello from the task")
    return "hello"


HANDLERS = {"hello": hello}
