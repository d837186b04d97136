"""Typed handlers on a worker: a :class:`TypedHandler` as a ``TaskContext`` handler.

The payload is validated against the input model again here (what arrives on the wire
is not trusted; a payload that does not validate fails the task without a retry, naming
the field), the function is called with the model (and the context if it asks), and its
return value is checked against the output model and sent as JSON.
"""

from __future__ import annotations

from typing import Any

from worldpool.errors import HandlerError, ValidationError
from worldpool.typed import TypedHandler
from worldpool.worker.handlers import Handler, TaskContext


def as_handler(typed: TypedHandler[Any, Any]) -> Handler:
    """A handler of the same kind (sync runs in a thread, async on the loop)."""

    def arguments(ctx: TaskContext) -> tuple[Any, ...]:
        try:
            model = typed.load_input(ctx.payload)
        except ValidationError as exc:
            raise HandlerError(str(exc), retryable=False) from None
        value: Any = ctx.payload if model is None else model
        return (ctx, value) if typed.wants_context else (value,)

    def output(value: Any) -> Any:
        try:
            return typed.dump_output(value)
        except ValidationError as exc:
            raise HandlerError(str(exc), retryable=False) from None

    if typed.is_async:

        async def run_async(ctx: TaskContext) -> Any:
            return output(await typed.fn(*arguments(ctx)))

        return run_async

    def run(ctx: TaskContext) -> Any:
        return output(typed.fn(*arguments(ctx)))

    return run
