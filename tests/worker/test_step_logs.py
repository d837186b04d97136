"""Step logs: kept with the step when the handler logs, and no logger left behind."""

from __future__ import annotations

import logging

from worldpool.models import TaskSpec, TaskStatus
from worldpool.testing import EmbeddedPool
from worldpool.worker.handlers import TaskContext


def chatty(ctx: TaskContext) -> str:
    ctx.log.info("working on %s", ctx.payload["what"])
    return "done"


def quiet(ctx: TaskContext) -> str:
    return "done"


async def test_handler_log_lines_are_kept_and_the_task_logger_is_forgotten() -> None:
    async with EmbeddedPool({"chatty": chatty, "quiet": quiet}) as pool:
        loud = await pool.run_task(TaskSpec(handler="chatty", payload={"what": "x"}))
        silent = await pool.run_task(TaskSpec(handler="quiet"))
    assert loud.status is TaskStatus.SUCCEEDED
    assert "INFO working on x" in loud.logs
    assert silent.logs == []
    loggers = logging.Logger.manager.loggerDict
    # logging keeps every logger it makes: one per task would grow without bound.
    assert f"worldpool.task.{loud.id}" not in loggers
    assert f"worldpool.task.{silent.id}" not in loggers
