"""The worker runtime: register, heartbeat, consume, run handlers, report, drain.

One :class:`WorkerRuntime` per worker process (or several in one process in embedded
mode). It never crashes on bad input: an envelope that fails :func:`decode_envelope` is
dead-lettered with its reason code, and a handler that raises becomes a failed result.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import logging
import time
import traceback
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

import orjson

from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.base import Backend, Delivery
from worldpool.config import Settings
from worldpool.envelope import decode_envelope, peek_task
from worldpool.errors import EnvelopeError, HandlerError, NotFoundError, TaskTimeoutError
from worldpool.models import (
    ArtifactRef,
    Envelope,
    JSONValue,
    ResultStatus,
    TaskResult,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
)
from worldpool.tracing import bind, span
from worldpool.worker.handlers import Handler, HandlerTable, TaskContext

log = logging.getLogger("worldpool.worker.runtime")

RECEIVE_BLOCK_S = 1.0
# STARTED is reported only for a handler still running after this long: a fast task costs
# one report (its terminal one, which carries ``started_at``; the orchestrator records the
# RUNNING step from it), a slow one still shows as running within a blink.
STARTED_AFTER_S = 0.05
RECEIVE_BATCH_MAX = 32  # deliveries taken per blocking read, when that many slots are free


@dataclass
class _Running:
    envelope: Envelope
    delivery_id: str
    context: TaskContext | None = None
    task: asyncio.Task[None] | None = None
    revoked: bool = False
    started_report: asyncio.Task[bool] | None = None
    acked: bool = False


@dataclass
class WorkerStats:
    succeeded: int = 0
    failed: int = 0
    rejected: int = 0
    handlers_seen: dict[str, int] = field(default_factory=dict)


class WorkerRuntime:
    """Runs one worker against a backend. Use ``async with`` or start()/stop()."""

    def __init__(
        self,
        backend: Backend,
        profile: WorkerProfile,
        handlers: HandlerTable | Mapping[str, Handler],
        settings: Settings | None = None,
        *,
        artifacts: ArtifactStore | None = None,
        cached: list[str] | None = None,
    ) -> None:
        self.handlers = handlers if isinstance(handlers, HandlerTable) else HandlerTable(handlers)
        missing = set(profile.handlers) - set(self.handlers.names())
        if missing:
            from worldpool.errors import ConfigError

            raise ConfigError(
                f"worker {profile.id} advertises handlers it does not have: {sorted(missing)}"
            )
        if not profile.handlers:
            profile = profile.model_copy(update={"handlers": self.handlers.names()})
        self.profile = profile
        self.backend = backend
        self.settings = settings or Settings()
        self.artifacts = artifacts or ArtifactStore(backend, self.settings)
        self.state = WorkerState(worker_id=profile.id, cached=list(cached or []))
        self.stats = WorkerStats()
        self._running: dict[str, _Running] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(profile.max_concurrency)
        self._stopping = False
        self._draining = False

    @property
    def id(self) -> str:
        return self.profile.id

    @property
    def in_flight(self) -> dict[str, int]:
        return {tid: r.envelope.attempt for tid, r in self._running.items()}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        await self.backend.register(self.profile)
        self._stopping = self._draining = False
        self._loops = [
            asyncio.create_task(self._heartbeat_loop(), name=f"{self.id}:heartbeat"),
            asyncio.create_task(self._consume_loop(), name=f"{self.id}:consume"),
        ]
        log.info("worker %s online in %s", self.id, self.profile.location.region)

    async def __aenter__(self) -> WorkerRuntime:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def stop(self, drain: bool = True, grace_s: float = 10.0) -> None:
        """Stop. With ``drain``: take no new work, finish in-flight tasks for up to
        ``grace_s``, hand back the rest (and anything still queued) for re-routing."""
        if drain:
            await self.drain(grace_s)
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        if drain:
            with contextlib.suppress(Exception):
                await self.backend.mark_offline(self.id)

    async def crash(self) -> None:
        """Die abruptly, as with SIGKILL: no goodbye, in-flight work abandoned.

        Used by the demo and tests to show failover; the orchestrator notices only through
        the missing heartbeats."""
        self._stopping = True
        for run in list(self._running.values()):
            if run.context:
                run.context.cancelled.set()
            if run.task:
                run.task.cancel()
        for task in self._loops:
            task.cancel()
        self._running.clear()
        self._loops.clear()

    async def drain(self, grace_s: float = 10.0) -> None:
        self._draining = True
        self.state.status = WorkerStatus.DRAINING
        with contextlib.suppress(Exception):
            await self.backend.heartbeat(self.state, self.in_flight)
        in_flight = [r.task for r in self._running.values() if r.task is not None]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace_s)
        for task_id, run in list(self._running.items()):
            await self._hand_back(task_id, run)
        # Anything queued for us and not yet taken goes back too.
        for delivery in await self.backend.receive(self.id, 1000, block_s=0):
            peek = peek_task(delivery.data)
            if peek:
                await self._report(peek[0], peek[1], ResultStatus.REVOKED, error="worker draining")
            await self.backend.ack(self.id, delivery.id)

    async def _hand_back(self, task_id: str, run: _Running) -> None:
        run.revoked = True
        if run.context:
            run.context.cancelled.set()
        if run.task:
            run.task.cancel()
        await self._report(
            task_id, run.envelope.attempt, ResultStatus.REVOKED, error="worker draining"
        )
        await self.backend.ack(self.id, run.delivery_id)
        self._running.pop(task_id, None)

    # ------------------------------------------------------------------ heartbeat
    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            try:
                reply = await self.backend.heartbeat(self.state, self.in_flight)
                if reply.status is WorkerStatus.OFFLINE and not self._draining:
                    # We were declared dead (paused too long): our work went elsewhere.
                    log.warning(
                        "worker %s was declared offline; abandoning %d tasks",
                        self.id,
                        len(self._running),
                    )
                    self._revoke(list(self._running))
                    await self.backend.register(self.profile)
                elif reply.revoked:
                    self._revoke(reply.revoked)
            except asyncio.CancelledError:
                raise
            except NotFoundError:
                with contextlib.suppress(Exception):
                    await self.backend.register(self.profile)
            except Exception:
                log.exception("heartbeat failed; retrying")
            await asyncio.sleep(self.settings.heartbeat_s)

    def _revoke(self, task_ids: list[str]) -> None:
        for task_id in task_ids:
            run = self._running.pop(task_id, None)
            if run is None:
                continue
            run.revoked = True
            if run.context:
                run.context.cancelled.set()
            if run.task:
                run.task.cancel()

    # ------------------------------------------------------------------ consume
    async def _consume_loop(self) -> None:
        while not self._stopping:
            if self._draining:
                await asyncio.sleep(0.05)
                continue
            await self._slots.acquire()
            free = 1
            while free < RECEIVE_BATCH_MAX and not self._slots.locked():
                await self._slots.acquire()  # does not suspend: a slot is free
                free += 1
            try:
                deliveries = await self.backend.receive(self.id, free, block_s=RECEIVE_BLOCK_S)
            except asyncio.CancelledError:
                self._release_slots(free)
                raise
            except Exception:
                self._release_slots(free)
                log.exception("receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            self._release_slots(free - len(deliveries))
            for delivery in deliveries:
                await self._accept(delivery)
            if deliveries:  # the runs just accepted start (and short ones report) before
                await asyncio.sleep(0)  # the next read goes out

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    async def _accept(self, delivery: Delivery) -> None:
        try:
            envelope = decode_envelope(
                delivery.data,
                secret=self.settings.secret,
                max_bytes=self.settings.max_envelope_bytes,
                handlers=self.handlers,
            )
        except EnvelopeError as exc:
            await self._reject(delivery, exc)
            self._slots.release()
            return
        run = _Running(envelope=envelope, delivery_id=delivery.id)
        self._running[envelope.task_id] = run
        run.task = asyncio.create_task(self._run(run), name=f"{self.id}:{envelope.task_id}")

    async def _reject(self, delivery: Delivery, exc: EnvelopeError) -> None:
        self.stats.rejected += 1
        log.warning("worker %s dead-lettered a delivery: %s", self.id, exc)
        await self.backend.dead_letter(self.id, exc.code, str(exc), delivery.data)
        peek = peek_task(delivery.data)
        if peek is not None:
            await self._report(
                peek[0], peek[1], ResultStatus.REJECTED, error=str(exc), retryable=False
            )
        task_id = delivery.task_id or (peek[0] if peek else "")
        if task_id:  # the slot was reserved for a task this worker will never run
            await self.backend.release(self.id, task_id)
        await self.backend.ack(self.id, delivery.id)

    # ------------------------------------------------------------------ run one task
    async def _run(self, run: _Running) -> None:
        env = run.envelope
        started = time.time()
        timer = asyncio.get_running_loop().call_later(
            STARTED_AFTER_S, self._report_started, run, started
        )
        try:
            ctx = await self._context(env)
            run.context = ctx
            attrs: dict[str, str | int | float | bool] = {
                "worldpool.task_id": env.task_id,
                "worldpool.attempt": env.attempt,
                "worldpool.worker_id": self.id,
                "worldpool.handler": env.handler,
            }
            with (
                span("worldpool.run", env.traceparent, attrs) as traceparent,
                bind(workflow_id=env.workflow_id, task_id=env.task_id),
            ):
                ctx.meta["traceparent"] = traceparent  # the next hop continues the trace
                value = await self._call(env, ctx)
            outputs = await self._upload(ctx)
            orjson.dumps(value)  # a non-JSON return value is the handler's bug: fail clearly
            await self._started_reported(timer, run)
            if not run.revoked:
                await self._report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.SUCCEEDED,
                    value=value,
                    outputs=outputs,
                    ctx=ctx,
                    started_at=started,
                    ack=run,
                )
                self.stats.succeeded += 1
                self._advertise([ref.digest for ref in outputs.values()])
        except asyncio.CancelledError:
            if not run.revoked and not self._stopping:
                raise
        except Exception as exc:  # any handler failure becomes a failed result
            self.stats.failed += 1
            if not run.revoked:
                retryable = getattr(exc, "retryable", True)
                if isinstance(exc, TypeError) and "JSON" in str(exc):
                    retryable = False
                # Keep what the handler staged (a trace, a failure screenshot) for debugging.
                failed_outputs = await self._upload(run.context) if run.context else {}
                await self._started_reported(timer, run)
                await self._report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.FAILED,
                    error=_describe(exc),
                    retryable=retryable,
                    outputs=failed_outputs,
                    ctx=run.context,
                    started_at=started,
                    ack=run,
                )
        finally:
            timer.cancel()
            if run.context:
                self._advertise(run.context.holds)  # what it fetched stays, success or not
                run.context.close_log()
            if self._running.get(env.task_id) is run:
                del self._running[env.task_id]
            if not run.acked:
                with contextlib.suppress(Exception):
                    await self.backend.ack(self.id, run.delivery_id)
            self._slots.release()

    def _report_started(self, run: _Running, started: float) -> None:
        """The handler is still running after STARTED_AFTER_S: say so (timer callback)."""
        if not run.revoked:
            env = run.envelope
            run.started_report = asyncio.create_task(
                self._report(env.task_id, env.attempt, ResultStatus.STARTED, started_at=started)
            )

    @staticmethod
    async def _started_reported(timer: asyncio.TimerHandle, run: _Running) -> None:
        """Before the terminal report: no STARTED any more, or the one sent has landed
        (reports of one task must reach the results stream in order)."""
        timer.cancel()
        if run.started_report is not None:
            with contextlib.suppress(Exception):
                await run.started_report

    async def _upload(self, ctx: TaskContext) -> dict[str, ArtifactRef]:
        return {
            name: await self.artifacts.put(
                name, staged.data, media_type=staged.ref.media_type, producer=self.id
            )
            for name, staged in list(ctx.staged.items())
        }

    async def _context(self, env: Envelope) -> TaskContext:
        data = {}
        for name, ref in env.inputs.items():
            data[name] = await self.artifacts.get(ref)
        loop = asyncio.get_running_loop()

        def on_progress(fraction: float, message: str) -> None:
            asyncio.run_coroutine_threadsafe(
                self._report(
                    env.task_id,
                    env.attempt,
                    ResultStatus.PROGRESS,
                    progress=fraction,
                    error=message or None,
                ),
                loop,
            )

        return TaskContext(
            task_id=env.task_id,
            attempt=env.attempt,
            handler=env.handler,
            payload=env.payload,
            worker=self.profile,
            workflow_id=env.workflow_id,
            step=env.step,
            deadline=env.deadline,
            inputs=dict(env.inputs),
            upstream=dict(env.upstream),
            input_data=data,
            on_progress=on_progress,
        )

    async def _call(self, env: Envelope, ctx: TaskContext) -> JSONValue:
        handler = self.handlers.get(env.handler)
        assert handler is not None  # decode_envelope checked it
        timeout = None if env.deadline is None else max(0.0, env.deadline - time.time())
        if inspect.iscoroutinefunction(handler):
            call = handler(ctx)
        else:
            call = asyncio.to_thread(_call_sync, handler, ctx)
        try:
            async with asyncio.timeout(timeout):
                return await call
        except TimeoutError:
            ctx.cancelled.set()
            raise TaskTimeoutError("execution", timeout or 0.0) from None

    def _advertise(self, keys: Iterable[str]) -> None:
        """What we hold (output artifacts, workspaces handlers cloned), sent with the next
        heartbeat for the data-locality scorer; the newest 256 are kept."""
        for key in keys:
            if key not in self.state.cached:
                self.state.cached.append(key)
        del self.state.cached[:-256]

    async def _report(
        self,
        task_id: str,
        attempt: int,
        status: ResultStatus,
        *,
        value: JSONValue = None,
        outputs: Mapping[str, object] | None = None,
        error: str | None = None,
        retryable: bool = True,
        ctx: TaskContext | None = None,
        started_at: float | None = None,
        progress: float | None = None,
        ack: _Running | None = None,
    ) -> bool:
        """Send one fenced report, retrying with backoff. With ``ack``, the run's delivery
        is acknowledged in the same round trip (its last report)."""
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
        result = TaskResult(
            task_id=task_id,
            attempt=attempt,
            worker_id=self.id,
            status=status,
            value=value,
            outputs=dict(outputs or {}),
            error=error,
            retryable=retryable,
            started_at=started_at,
            progress=progress,
            **extra,
        )
        for delay in (0.1, 0.5, 1.0, 2.0, 5.0):
            try:
                accepted = await self.backend.complete(
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


def _call_sync(handler: Handler, ctx: TaskContext) -> JSONValue:
    return handler(ctx)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, HandlerError):
        return str(exc)
    frames = traceback.extract_tb(exc.__traceback__)
    where = f" (at {frames[-1].filename.rsplit('/', 1)[-1]}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"
