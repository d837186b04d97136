"""A Celery fleet as a worldpool worker: :class:`CeleryBridge`.

The bridge's handlers are the Celery app's task names. Each delivery is handed to the
bridge's queue with ``app.send_task`` under the Celery task id of its attempt
(:func:`.app.celery_task_id`), and its result is read back through the app's result
backend, polled from a thread so the event loop never blocks. How the Celery task ends
maps onto worldpool's outcomes:

* ``SUCCESS``: the step's result value;
* ``FAILURE``: a handler error (retried by worldpool unless Celery's own retries were
  spent first); a Celery time limit: a timeout;
* ``RETRY``: Celery retries on its own; the bridge keeps waiting (worldpool's deadline
  still holds);
* ``REVOKED`` (by someone else, or expired): a handler error that is not retried;
* cancelled, re-routed or past its deadline on the worldpool side: the Celery task is
  revoked (terminated where the Celery pool can);
* its Celery worker died: a failed attempt (:class:`.liveness.FleetMonitor`; needs the
  app's ``task_track_started``, which tells where a task runs).

The payload's items are the task's keyword arguments (``{"args": [...], "kwargs": {...}}``
also works); the worldpool task id, attempt, workflow, step and upstream results travel
in the ``worldpool`` message header (:func:`worldpool_request` reads it in a task).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from worldpool.bridges.celery.app import celery_task_id, check_json_only, task_names
from worldpool.bridges.celery.liveness import FleetMonitor
from worldpool.errors import HandlerError, TaskTimeoutError
from worldpool.models import JSONValue
from worldpool.worker.handlers import HandlerTable, TaskContext

log = logging.getLogger("worldpool.bridges.celery")

HEADER = "worldpool"
POLL_FIRST_S = 0.01  # result polls start fast (short tasks) and back off to POLL_MAX_S
POLL_MAX_S = 0.25
_TIME_LIMITS = frozenset({"TimeLimitExceeded", "SoftTimeLimitExceeded"})


def worldpool_request(request: Any) -> dict[str, Any]:
    """What the bridge told a Celery task (``self.request`` of a bound task): task_id,
    attempt, workflow_id, step, upstream. Empty when the task was not sent by a bridge."""
    value = getattr(request, HEADER, None)
    if value is None:
        headers = getattr(request, "headers", None) or {}
        value = headers.get(HEADER)
    return dict(value) if isinstance(value, Mapping) else {}


class CeleryBridge:
    """Runs worldpool deliveries on the Celery workers that consume ``queue``."""

    def __init__(
        self,
        app: Any,
        queue: str,
        *,
        names: list[str] | None = None,
        monitor: FleetMonitor | None = None,
    ) -> None:
        check_json_only(app)
        if not app.conf.task_track_started:
            log.warning(
                "Celery app %s does not set task_track_started: a Celery worker that dies "
                "mid-task is found only by the task's execution timeout",
                app.main,
            )
        self.app = app
        self.queue = queue
        self.names = names if names is not None else task_names(app)
        self.monitor = monitor or FleetMonitor(app, queue)

    def handlers(self) -> HandlerTable:
        """One async handler per Celery task name."""
        return HandlerTable({name: self._handler_for(name) for name in self.names})

    async def aclose(self) -> None:
        await self.monitor.close()

    def _handler_for(self, name: str) -> Callable[[TaskContext], Awaitable[JSONValue]]:
        async def run_on_celery(ctx: TaskContext) -> JSONValue:
            return await self.run(name, ctx)

        run_on_celery.__name__ = f"celery:{name}"
        return run_on_celery

    async def run(self, name: str, ctx: TaskContext) -> JSONValue:
        """Send ``name`` for this attempt, wait for its end, map it (see the module doc)."""
        celery_id = celery_task_id(ctx.task_id, ctx.attempt)
        if ctx.attempt > 1:  # an earlier attempt's bridge died: stop its Celery task too
            superseded = [celery_task_id(ctx.task_id, n) for n in range(1, ctx.attempt)]
            asyncio.get_running_loop().run_in_executor(None, self._revoke, superseded)
        args, kwargs = _arguments(ctx.payload)
        limits: dict[str, Any] = {}
        left = ctx.time_left_s
        if left is not None:  # Celery stops it too, and never starts it past the deadline
            limits = {
                "soft_time_limit": max(1, math.ceil(left)),
                "time_limit": max(2, math.ceil(left) + 1),
                "expires": max(0.1, left),
            }
        header = {
            "task_id": ctx.task_id,
            "attempt": ctx.attempt,
            "workflow_id": ctx.workflow_id,
            "step": ctx.step,
            "upstream": ctx.upstream,
        }
        ctx.set_meta("celery_task_id", celery_id)
        ctx.set_meta("celery_queue", self.queue)
        await asyncio.to_thread(
            self.app.send_task,
            name,
            args=args,
            kwargs=kwargs,
            task_id=celery_id,
            queue=self.queue,
            serializer="json",
            headers={HEADER: header},
            **limits,
        )
        lost = self.monitor.watch(celery_id)
        finished = False
        try:
            value = await self._wait(celery_id, lost, ctx)
            finished = True
            return value
        except HandlerError:
            finished = True
            raise
        finally:
            self.monitor.unwatch(celery_id)
            if not finished:  # cancelled, re-routed or timed out here: stop it there
                await asyncio.to_thread(self._revoke, [celery_id])

    async def _wait(self, celery_id: str, lost: asyncio.Future[str], ctx: TaskContext) -> JSONValue:
        delay = POLL_FIRST_S
        saw_retry = False
        while True:
            meta = await asyncio.to_thread(self.app.backend.get_task_meta, celery_id)
            state = meta.get("status")
            if state == "SUCCESS":
                result: JSONValue = meta.get("result")
                return result
            if state == "FAILURE":
                raise _failure(meta.get("result"), celery_id, retried=saw_retry)
            if state == "REVOKED":
                raise HandlerError(
                    f"Celery task {celery_id} was revoked or expired", retryable=False
                )
            if state == "STARTED" and isinstance(meta.get("result"), Mapping):
                hostname = meta["result"].get("hostname")  # task_track_started
                if isinstance(hostname, str):
                    self.monitor.started(celery_id, hostname)
            if state == "RETRY" and not saw_retry:
                saw_retry = True
                ctx.log.info("Celery retries %s: %s", celery_id, meta.get("result"))
            if lost.done():
                raise HandlerError(f"Celery task {celery_id} was lost: {lost.result()}")
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(asyncio.shield(lost), delay)
            delay = min(POLL_MAX_S, delay * 1.5)

    def _revoke(self, celery_ids: list[str]) -> None:
        try:
            self.app.control.revoke(celery_ids, terminate=True, signal="SIGTERM")
        except Exception as exc:  # best effort: the deadline and fencing still hold
            log.warning("revoking Celery tasks %s failed: %s", celery_ids, exc)


def _arguments(payload: Mapping[str, JSONValue]) -> tuple[list[JSONValue], dict[str, JSONValue]]:
    """The payload as Celery arguments: its items are keyword arguments, unless it is
    exactly ``{"args": [...]}`` and/or ``{"kwargs": {...}}``."""
    args, kwargs = payload.get("args"), payload.get("kwargs")
    if (
        payload
        and set(payload) <= {"args", "kwargs"}
        and isinstance(args, list | None)
        and isinstance(kwargs, dict | None)
    ):
        return list(args or []), dict(kwargs or {})
    return [], dict(payload)


def _failure(result: Any, celery_id: str, *, retried: bool) -> HandlerError:
    """A Celery FAILURE as a worldpool error. The result backend stores the exception as
    ``{"exc_type", "exc_message", ...}`` under the JSON serializer."""
    exc_type, message = "Exception", str(result)
    if isinstance(result, Mapping):
        exc_type = str(result.get("exc_type") or exc_type)
        raw = result.get("exc_message")
        parts = raw if isinstance(raw, list | tuple) else [raw]
        message = ", ".join(str(p) for p in parts if p is not None)
    elif isinstance(result, BaseException):
        exc_type, message = type(result).__name__, str(result)
    if exc_type in _TIME_LIMITS:
        return TaskTimeoutError("Celery time limit", 0.0)
    # Celery's own retries were spent first: worldpool does not retry on top of them.
    return HandlerError(
        f"Celery task {celery_id} failed: {exc_type}: {message}", retryable=not retried
    )
