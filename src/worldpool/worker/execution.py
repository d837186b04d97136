"""Running one task on a worker: :class:`TaskExecutor` builds the handler's context, calls
the handler (sync ones in a thread of the worker's own pool, one thread per slot) under the
deadline, uploads what it staged and reports the outcome through :class:`Reporter`, the
one way a worker's reports leave it.

A task is RUNNING from the moment its handler begins (for a sync handler: when its thread
picks it up), and its execution timeout counts from then, not from the dispatch. With
:class:`~worldpool.worker.processes.SyncProcesses` the sync handlers of the operator's
``--handlers`` run in child processes that a stop can kill (:mod:`.processes`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import threading
import time
import traceback
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import orjson

from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.base import Backend
from worldpool.envelope import not_started_in_time
from worldpool.errors import HandlerError, TaskTimeoutError
from worldpool.identity import sign_result
from worldpool.models import (
    ArtifactRef,
    Envelope,
    JSONValue,
    ResultStatus,
    TaskResult,
    WorkerProfile,
)
from worldpool.tracing import bind, span
from worldpool.unchecked import assign
from worldpool.worker.effects import EffectLedger
from worldpool.worker.handlers import Handler, HandlerTable, TaskContext
from worldpool.worker.processes import ChildPool, SyncProcesses
from worldpool.worker.secrets import resolve, scrub, scrub_text

log = logging.getLogger("worldpool.worker.runtime")

# STARTED is reported only for a handler still running after this long: a fast task costs
# one report (its terminal one, which carries ``started_at``; the orchestrator records the
# RUNNING step from it), a slow one still shows as running within a blink.
STARTED_AFTER_S = 0.05


@dataclass
class Run:
    """One delivery being run: its envelope, context, task and reporting state."""

    envelope: Envelope
    delivery_id: str
    received_at: float = field(default_factory=time.time)
    started_at: float | None = None
    """When the handler began (None: not yet)."""
    thread: asyncio.Future[JSONValue] | None = None
    """A sync handler's call in the pool; it may outlive the run (it cannot be cancelled)."""
    context: TaskContext | None = None
    task: asyncio.Task[None] | None = None
    revoked: bool = False
    kill: threading.Event = field(default_factory=threading.Event)
    """Set when the task is handed back: a child process running its handler dies now."""
    started_report: asyncio.Task[bool] | None = None
    acked: bool = False


@dataclass
class WorkerStats:
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    handlers_seen: dict[str, int] = field(default_factory=dict)


class Reporter:
    """Sends a worker's fenced reports, retrying with backoff."""

    def __init__(self, backend: Backend, worker_id: str, key: str | None = None) -> None:
        self.backend = backend
        self._backend = backend
        self._worker_id = worker_id
        self._key = key  # this worker's credential: every report is signed with it

    async def report(
        self,
        task_id: str,
        attempt: int,
        status: ResultStatus,
        *,
        value: JSONValue = None,
        value_ref: ArtifactRef | None = None,
        outputs: Mapping[str, object] | None = None,
        error: str | None = None,
        retryable: bool = True,
        ctx: TaskContext | None = None,
        traceparent: str | None = None,
        started_at: float | None = None,
        progress: float | None = None,
        ack: Run | None = None,
        meta: dict[str, JSONValue] | None = None,
    ) -> bool:
        """Send one report. With ``ack``, the run's delivery is acknowledged in the same
        round trip (its last report). ``ctx``: the handler's usage, logs and metadata."""
        # One validated construction: assigning the context's fields afterwards would
        # validate each assignment again (~5% of a no-op task's worker CPU).
        extra: dict[str, object] = {}
        if ctx is not None:
            extra = {
                "tokens_used": ctx.tokens_used,
                "cost_usd": ctx.cost_usd,
                "logs": list(ctx.logs),
                "meta": dict(ctx.meta),
            }
            if ctx.secrets:  # a value the handler let slip never leaves the worker
                shown = ctx.secrets.values()
                value, extra = scrub(value, shown), scrub(extra, shown)
                error = None if error is None else scrub_text(error, shown)
        elif meta is not None:
            extra = {"meta": meta}
        result = TaskResult(
            task_id=task_id,
            attempt=attempt,
            worker_id=self._worker_id,
            status=status,
            value=value,
            value_ref=value_ref,
            outputs=dict(outputs or {}),
            error=error,
            retryable=retryable,
            started_at=started_at,
            progress=progress,
            traceparent=traceparent,
            **extra,
        )
        if self._key:
            assign(result, signature=sign_result(result, self._key))
        for delay in (0.1, 0.5, 1.0, 2.0, 5.0):
            try:
                accepted = await self._backend.complete(
                    result, ack=None if ack is None else ack.delivery_id
                )
                if ack is not None:
                    ack.acked = True
                return accepted
            except Exception:
                log.warning(
                    "reporting %s for %s failed; retrying in %ss", status.value, task_id, delay
                )
                await asyncio.sleep(delay)
        return False


class TaskExecutor:
    """Runs handlers for one worker and reports how each run ended. ``advertise`` is told
    what the worker now holds (output artifacts, fetched workspaces)."""

    def __init__(
        self,
        profile: WorkerProfile,
        handlers: HandlerTable,
        artifacts: ArtifactStore,
        reporter: Reporter,
        stats: WorkerStats,
        advertise: Callable[[Iterable[str]], None],
        processes: SyncProcesses | None = None,
    ) -> None:
        self._profile = profile
        self.children = (
            None if processes is None else ChildPool(processes, profile.id, profile.max_concurrency)
        )
        self._handlers = handlers
        self._artifacts = artifacts
        self._reporter = reporter
        self._stats = stats
        self._advertise = advertise
        self._pool: ThreadPoolExecutor | None = None
        self.busy_threads = 0
        """Sync handlers running in the pool now (a handler that ignores its stop keeps
        its thread after its run ended)."""
        self._busy_lock = threading.Lock()

    def _threads(self) -> ThreadPoolExecutor:
        """The sync handlers' pool: one thread per slot (made on first use)."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(
                max_workers=self._profile.max_concurrency,
                thread_name_prefix=f"worldpool-{self._profile.id}",
            )
        return self._pool

    def close(self) -> None:
        """Stop the sync handlers' pool (threads still running are left to finish) and
        kill the child processes, if any."""
        if self.children is not None:
            self.children.close()
        if self._pool is not None:
            self._pool.shutdown(wait=False, cancel_futures=True)
            self._pool = None

    async def execute(self, run: Run, stopping: Callable[[], bool]) -> None:
        """Run ``run`` to its report (none if it was revoked). ``stopping``: whether the
        worker is stopping, when a cancellation is not an error."""
        env = run.envelope
        report = self._reporter.report
        timer: list[asyncio.TimerHandle] = []
        traceparent: str | None = None
        started: float | None = None
        try:
            ctx = await self._context(env)
            run.context = ctx
            attrs: dict[str, str | int | float | bool] = {
                "worldpool.task_id": env.task_id,
                "worldpool.attempt": env.attempt,
                "worldpool.worker_id": self._profile.id,
                "worldpool.handler": env.handler,
            }
            with (
                span("worldpool.run", env.traceparent, attrs) as traceparent,
                bind(workflow_id=env.workflow_id, task_id=env.task_id),
            ):
                value = await self._call(run, ctx, timer)
            started = run.started_at
            outputs = await self._upload(ctx)
            value, value_ref = await self._stored_value(value, ctx)
            await _started_reported(timer, run)
            if not run.revoked:
                await report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.SUCCEEDED,
                    value=value,
                    value_ref=value_ref,
                    outputs=outputs,
                    ctx=ctx,
                    traceparent=traceparent,  # the next hop continues the trace
                    started_at=started,
                    ack=run,
                )
                self._stats.succeeded += 1
                self._advertise([ref.digest for ref in outputs.values()])
        except asyncio.CancelledError:
            if not run.revoked and not stopping():
                raise
        except EnvelopeExpiredError as exc:  # never started: back for a fresh attempt
            if not run.revoked:
                await report(
                    env.task_id, env.attempt, ResultStatus.REVOKED, error=str(exc), ack=run
                )
        except Exception as exc:  # any handler failure becomes a failed result
            self._stats.failed += 1
            if not run.revoked:
                retryable = getattr(exc, "retryable", True)
                if isinstance(exc, TypeError) and "JSON" in str(exc):
                    retryable = False
                started = run.started_at
                # Keep what the handler staged (a trace, a failure screenshot) for debugging.
                failed_outputs = await self._upload(run.context) if run.context else {}
                await _started_reported(timer, run)
                await report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.FAILED,
                    error=describe_failure(exc),
                    retryable=retryable,
                    outputs=failed_outputs,
                    ctx=run.context,
                    traceparent=traceparent,
                    started_at=started,
                    ack=run,
                )
        finally:
            for handle in timer:
                handle.cancel()

    def _began(self, run: Run, ctx: TaskContext, timer: list[asyncio.TimerHandle]) -> None:
        """The handler begins now: RUNNING from here, and the deadline counts from here."""
        run.started_at = started = time.time()
        env = run.envelope
        if env.deadline is not None:  # the budget the dispatch gave, from now on
            ctx.deadline = started + max(0.0, env.deadline - run.received_at)
        loop = asyncio.get_running_loop()
        timer.append(loop.call_later(STARTED_AFTER_S, self._report_started, run, started))

    def _in_thread(self, handler: Handler, ctx: TaskContext, run: Run) -> JSONValue:
        """A sync handler's call, in its pool thread (in a child process if it is one of
        the handlers the children run)."""
        expires_at = run.envelope.expires_at
        if ctx.cancelled.is_set():  # handed back before its thread picked it up
            return None
        if expires_at is not None and time.time() > expires_at:
            raise EnvelopeExpiredError()  # it waited for a thread past its window
        with self._busy_lock:
            self.busy_threads += 1
        try:
            children, name = self.children, run.envelope.handler
            if children is not None and name in children.names:
                return children.call(name, ctx, run.kill)
            return _call_sync(handler, ctx)
        finally:
            with self._busy_lock:
                self.busy_threads -= 1

    def _report_started(self, run: Run, started: float) -> None:
        """The handler is still running after STARTED_AFTER_S: say so (timer callback)."""
        if not run.revoked:
            env = run.envelope
            run.started_report = asyncio.create_task(
                self._reporter.report(
                    env.task_id, env.attempt, ResultStatus.STARTED, started_at=started
                )
            )

    async def _stored_value(
        self, value: JSONValue, ctx: TaskContext
    ) -> tuple[JSONValue, ArtifactRef | None]:
        """The value to report inline, or (None, its reference) once stored as an artifact
        when its JSON is over ``result_inline_max_bytes``. A non-JSON value, or one over
        ``result_max_bytes``, is the handler's bug: it fails the task, not retried."""
        encoded = orjson.dumps(value)  # TypeError for a non-JSON value: fails clearly
        settings = self._artifacts.settings
        if len(encoded) <= settings.result_inline_max_bytes:
            return value, None
        if len(encoded) > settings.result_max_bytes:
            raise ResultTooLargeError(len(encoded), settings.result_max_bytes)
        if ctx.secrets:  # a value the handler let slip never leaves the worker
            encoded = orjson.dumps(scrub(value, ctx.secrets.values()))
        ref = await self._artifacts.put(
            "result.json", encoded, media_type="application/json", producer=self._profile.id
        )
        return None, ref

    async def _upload(self, ctx: TaskContext) -> dict[str, ArtifactRef]:
        return {
            name: await self._artifacts.put(
                name, staged.data, media_type=staged.ref.media_type, producer=self._profile.id
            )
            for name, staged in list(ctx.staged.items())
        }

    async def _context(self, env: Envelope) -> TaskContext:
        data = {}
        for name, ref in env.inputs.items():
            data[name] = await self._artifacts.get(ref)
        loop = asyncio.get_running_loop()
        report = self._reporter.report

        def on_progress(fraction: float, message: str) -> None:
            asyncio.run_coroutine_threadsafe(
                report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.PROGRESS,
                    progress=fraction,
                    error=message or None,
                ),
                loop,
            )

        effects = EffectLedger(
            self._reporter.backend, loop, env.task_id, self._profile.id, env.attempt, env.task_id
        )
        ctx = TaskContext(
            effects=effects,
            task_id=env.task_id,
            attempt=env.attempt,
            handler=env.handler,
            payload=env.payload,
            worker=self._profile,
            workflow_id=env.workflow_id,
            step=env.step,
            deadline=env.deadline,
            inputs=dict(env.inputs),
            upstream=dict(env.upstream),
            input_data=data,
            on_progress=on_progress,
            secrets=resolve(env.secrets),  # fails the step naming what is missing
        )

        async def publish(names: tuple[str, ...]) -> None:
            outputs = {}
            for name in names:  # live artifacts (a last screenshot) go up now
                staged = ctx.staged.get(name)
                if staged is not None:
                    outputs[name] = await self._artifacts.put(
                        name, staged.data, media_type=staged.ref.media_type, producer=ctx.worker.id
                    )
            await report(
                env.task_id,
                env.attempt,
                ResultStatus.PROGRESS,
                progress=ctx.progress,
                meta=dict(ctx.meta),
                outputs=outputs,
            )

        def on_meta(names: tuple[str, ...]) -> None:  # live metadata: a VNC URL, a screenshot
            asyncio.run_coroutine_threadsafe(publish(names), loop)

        ctx.on_meta = on_meta
        return ctx

    async def _call(
        self, run: Run, ctx: TaskContext, timer: list[asyncio.TimerHandle]
    ) -> JSONValue:
        env = run.envelope
        handler = self._handlers.get(env.handler)
        assert handler is not None  # decode_envelope checked it
        if not_started_in_time(env):  # it waited past its window (a slow context, a queue)
            raise EnvelopeExpiredError()
        self._began(run, ctx, timer)
        if inspect.iscoroutinefunction(handler):
            call: Awaitable[JSONValue] = handler(ctx)
        else:
            # A thread is free: the pool has one per slot, and a slot comes back only when
            # its thread does (even after a timeout), so the handler begins at once.
            call = run.thread = asyncio.get_running_loop().run_in_executor(
                self._threads(),
                contextvars.copy_context().run,
                self._in_thread,
                handler,
                ctx,
                run,
            )
        timeout = None if ctx.deadline is None else max(0.0, ctx.deadline - time.time())
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError:
            ctx.cancelled.set()
            raise TaskTimeoutError("execution", timeout or 0.0) from None


async def _started_reported(timer: list[asyncio.TimerHandle], run: Run) -> None:
    """Before the terminal report: no STARTED any more, or the one sent has landed
    (reports of one task must reach the results stream in order)."""
    for handle in timer:
        handle.cancel()
    if run.started_report is not None:
        with contextlib.suppress(Exception):
            await run.started_report


class ResultTooLargeError(HandlerError):
    """A handler's value is over ``result_max_bytes``: the task fails, not retried."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(
            f"the handler's result is {size} bytes as JSON, over the limit of {limit} bytes "
            "(result_max_bytes, WORLDPOOL_RESULT_MAX_BYTES): return a smaller value, or "
            "store the data as an output artifact (ctx.store) and return its name",
            retryable=False,
        )
        self.size = size
        self.limit = limit


class EnvelopeExpiredError(Exception):
    """The envelope's start window closed before its handler began: it never starts."""

    def __init__(self) -> None:
        super().__init__("the envelope expired before its handler began; handed back")


def _call_sync(handler: Handler, ctx: TaskContext) -> JSONValue:
    return handler(ctx)


def describe_failure(exc: BaseException) -> str:
    if isinstance(exc, HandlerError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
