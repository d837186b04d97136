"""Handlers the process-mode tests run in child processes (``--sync-handlers process``):
``tests.worker.process_handlers:HANDLERS``. Each writes what it does, with its process id,
as one line appended to the file named by ``payload["ledger"]`` (O_APPEND writes of one
short line are atomic across processes), so a test reads off what really ran where."""

from __future__ import annotations

import os
import signal
import time
from typing import Any

from worldpool.errors import HandlerError
from worldpool.worker.handlers import Handler, TaskContext


def note(ctx: TaskContext, what: str) -> None:
    line = f"{ctx.task_id} {ctx.attempt} {os.getpid()} {what}\n".encode()
    fd = os.open(str(ctx.payload["ledger"]), os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def deaf(ctx: TaskContext) -> dict[str, Any]:
    """Sleeps without looking at ``ctx.cancelled``, then writes its end and its effect;
    with ``payload["ignore_term"]`` it ignores SIGTERM too."""
    if ctx.payload.get("ignore_term"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    note(ctx, "start")
    time.sleep(float(ctx.payload.get("sleep_s", 0) or 0))  # type: ignore[arg-type]
    note(ctx, "end")
    ctx.once("effect", lambda token: note(ctx, f"effect {token}"))
    return {"pid": os.getpid()}


def polite(ctx: TaskContext) -> dict[str, Any]:
    """Waits for ``ctx.cancelled`` (told by the worker), then says so and returns."""
    note(ctx, "start")
    while not ctx.cancelled.wait(0.02):
        pass
    note(ctx, "stopped")
    return {"pid": os.getpid()}


def charge(ctx: TaskContext) -> Any:
    """Applies its effect through ``ctx.once``; the first attempt then fails (retried)."""
    value = ctx.once("charge", lambda token: note(ctx, f"charge {token}") or {"charged": token})
    if ctx.attempt == 1:
        raise HandlerError("failed after the effect")
    return value


def crash(ctx: TaskContext) -> dict[str, Any]:
    """The first attempt's process dies mid-call."""
    note(ctx, "start")
    if ctx.attempt == 1:
        os._exit(3)
    return {"pid": os.getpid(), "attempt": ctx.attempt}


def context(ctx: TaskContext) -> dict[str, Any]:
    """Uses what handlers use of their context, from a child."""
    ctx.log.info("hello from the child")
    ctx.report_progress(0.5, "half way")
    ctx.set_meta("where", "child")
    ctx.add_usage(tokens=7, cost_usd=0.01)
    ctx.store("out.txt", "made in a child", "text/plain")
    ctx.check_cancelled()
    return {
        "pid": os.getpid(),
        "secret_length": len(ctx.secret("TOKEN")),
        "fencing_token": ctx.fencing_token,
        "idempotency_key": ctx.idempotency_key,
        "payload": ctx.payload["n"],
    }


def quick(ctx: TaskContext) -> dict[str, Any]:
    return {"pid": os.getpid()}


async def in_parent(ctx: TaskContext) -> dict[str, Any]:
    """Async: runs on the worker's loop, not in a child."""
    return {"pid": os.getpid()}


HANDLERS: dict[str, Handler] = {
    "deaf": deaf,
    "polite": polite,
    "charge": charge,
    "crash": crash,
    "context": context,
    "quick": quick,
    "in_parent": in_parent,
}
