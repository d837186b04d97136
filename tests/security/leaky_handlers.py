"""Handlers a worker process loads in the planted-secret sweep (test_secret_sweep.py).

``use`` needs the task's secret ``API_KEY`` (a reference resolved on the worker) and does
its best to leak it: into its result, its step log, its metadata and a progress message;
``fail`` puts it into the error it raises. The sweep then looks for the value everywhere.
"""

from __future__ import annotations

import hashlib
from typing import Any

from worldpool.errors import HandlerError
from worldpool.worker.handlers import Handler, TaskContext


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()[:16]


def use(ctx: TaskContext) -> dict[str, Any]:
    value = ctx.secret("API_KEY")
    ctx.log.info("calling the service with key %s", value)
    ctx.set_meta("key_used", value)
    ctx.report_progress(0.5, f"authenticated as {value}")
    # The digest proves the handler got the real value; the rest must come back masked.
    return {"digest": _digest(value), "echo": value, "nested": {"header": f"Bearer {value}"}}


def fail(ctx: TaskContext) -> dict[str, Any]:
    value = ctx.secret("API_KEY")
    raise HandlerError(f"the service refused key {value}", retryable=False)


LEAKY: dict[str, Handler] = {"use": use, "fail": fail}
