"""The worker runtime: register, heartbeat, consume, run handlers, report, drain.

One :class:`WorkerRuntime` per worker process (or several in one process in embedded
mode). It never crashes on bad input: an envelope that fails :func:`decode_envelope` is
dead-lettered with its reason code, and a handler that raises becomes a failed result.
Running one task (context, handler call, upload, report) is
:class:`~worldpool.worker.execution.TaskExecutor`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Iterable, Mapping

from worldpool.artifacts.store import ArtifactStore
from worldpool.backends.base import Backend, Delivery
from worldpool.config import Settings
from worldpool.envelope import peek_task
from worldpool.epoch import EpochWatch
from worldpool.errors import EnvelopeError, NotFoundError
from worldpool.identity import key_for, registration_proof
from worldpool.models import Envelope, ResultStatus, WorkerProfile, WorkerState, WorkerStatus
from worldpool.worker.admission import Admission
from worldpool.worker.execution import Reporter, Run, TaskExecutor, WorkerStats
from worldpool.worker.handlers import Handler, HandlerTable
from worldpool.worker.processes import SyncProcesses

log = logging.getLogger("worldpool.worker.runtime")

RECEIVE_BLOCK_S = 1.0
RECEIVE_BATCH_MAX = 32  # deliveries taken per blocking read, when that many slots are free
RECEIVE_STUCK_AFTER_S = RECEIVE_BLOCK_S + 4.0
"""A read of new work not answered in this long is abandoned and sent again (the backend
replaces its connection); a worker whose reads have not been answered for
CONSUME_STALLED_AFTER_S says so in its heartbeat and the sweep fails it over."""
CONSUME_STALLED_AFTER_S = 2 * RECEIVE_STUCK_AFTER_S


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
        sync_processes: SyncProcesses | None = None,
    ) -> None:
        """``sync_processes``: run the sync handlers of those specs in child processes,
        which a stop can kill (``--sync-handlers process``); default: in threads."""
        self.handlers = handlers if isinstance(handlers, HandlerTable) else HandlerTable(handlers)
        missing = set(profile.handlers) - set(self.handlers.names())
        if missing:
            from worldpool.errors import ConfigError

            raise ConfigError(
                f"worker {profile.id} advertises handlers it does not have: {sorted(missing)}"
            )
        if not profile.handlers:
            profile = profile.model_copy(update={"handlers": self.handlers.names()})
        self.settings = settings or Settings()
        # This worker's own credential: envelopes are checked and reports signed with it,
        # and the registration carries the proof of it (identity.py).
        self.key = key_for(
            profile.id, secret=self.settings.secret, worker_key_=self.settings.worker_key
        )
        if self.key:
            profile = profile.model_copy(
                update={"credential_proof": registration_proof(profile.id, self.key)}
            )
        self.refused: str | None = None  # why the orchestrator refused us (then we stop)
        self.ended: asyncio.Future[None] | None = None  # done when refused
        self.profile = profile
        self.backend = backend
        self.artifacts = artifacts or ArtifactStore(backend, self.settings)
        self.state = WorkerState(worker_id=profile.id, cached=list(cached or []))
        self.stats = WorkerStats()
        self._reporter = Reporter(backend, profile.id, self.key)
        self._admission = Admission(backend, profile.id, self.key, self.settings, self.handlers)
        self._executor = TaskExecutor(
            profile,
            self.handlers,
            self.artifacts,
            self._reporter,
            self.stats,
            self._advertise,
            sync_processes,
        )
        self._running: dict[str, Run] = {}
        self._loops: list[asyncio.Task[None]] = []
        self._slots = asyncio.Semaphore(profile.max_concurrency)
        self._stopping = False
        self._draining = False
        self._consumed_at = time.monotonic()  # when a read of new work last answered
        self._waiting_for_slot = False  # all slots busy: not reading, and not stuck
        # After a read that stalled or failed, its answer may be lost with deliveries in it
        # (taken, so never sent again as new): the next read asks for what we took.
        self._reread_taken = False
        self.epoch = EpochWatch(backend, f"worker {profile.id}")
        self._unacked_done: set[str] = set()  # runs that ended whose ack did not get through

    @property
    def id(self) -> str:
        return self.profile.id

    @property
    def in_flight(self) -> dict[str, int]:
        return {tid: r.envelope.attempt for tid, r in self._running.items()}

    # ------------------------------------------------------------------ lifecycle
    async def start(self) -> None:
        self.ended = asyncio.get_running_loop().create_future()
        await self.epoch.check()
        children = self._executor.children
        if children is not None:  # one child now: a spec that does not load is said here
            await asyncio.to_thread(children.warm)
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

    async def stop(self, drain: bool = True, grace_s: float | None = None) -> None:
        """Stop. With ``drain``: take no new work, hand back what has not started at once,
        give running handlers ``grace_s`` (default ``settings.drain_timeout_s``) to finish,
        then stop them and hand them back too, for re-routing."""
        if drain:
            await self.drain(grace_s)
        self._stopping = True
        for task in self._loops:
            task.cancel()
        for task in self._loops:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._loops.clear()
        self._executor.close()
        for _ in range(80):  # threads serving killed children end at once
            if not self.busy_threads or self._executor.children is None:
                break
            await asyncio.sleep(0.025)
        if drain:
            with contextlib.suppress(Exception):
                await self.backend.mark_offline(self.id)

    async def crash(self) -> None:
        """Die abruptly, as with SIGKILL: no goodbye, in-flight work abandoned.

        Used by the demo and tests to show failover; the orchestrator notices only through
        the missing heartbeats."""
        self._stopping = True
        for run in list(self._running.values()):
            run.kill.set()
            if run.context:
                run.context.cancelled.set()
            if run.task:
                run.task.cancel()
        for task in self._loops:
            task.cancel()
        self._running.clear()
        self._loops.clear()

    @property
    def busy_threads(self) -> int:
        """Sync handlers still running in their threads (stopped or not: a thread cannot be
        killed; a process that exits takes them with it). In child processes
        (``sync_processes``) a stopped one is killed, and its thread ends with it."""
        return self._executor.busy_threads

    async def drain(self, grace_s: float | None = None) -> None:
        grace_s = self.settings.drain_timeout_s if grace_s is None else grace_s
        self._draining = True
        self.state.status = WorkerStatus.DRAINING
        with contextlib.suppress(Exception):
            await self.backend.heartbeat(self.state, self.in_flight)
        # Not started (queued for us, or accepted and waiting for its handler): back now.
        await self._hand_back_queued()
        for task_id, run in list(self._running.items()):
            if run.started_at is None:
                await self._hand_back(task_id, run)
        in_flight = [r.task for r in self._running.values() if r.task is not None]
        if in_flight:
            await asyncio.wait(in_flight, timeout=grace_s)
        for task_id, run in list(self._running.items()):
            log.warning("worker %s: task %s outlived the drain; stopped", self.id, task_id)
            await self._hand_back(task_id, run)
        await self._hand_back_queued()  # anything a read in progress took meanwhile

    async def _hand_back_queued(self) -> None:
        """Give back every delivery queued for us that no run took."""
        for delivery in await self.backend.receive(self.id, 1000, block_s=0):
            await self._give_back(delivery)

    async def _give_back(self, delivery: Delivery) -> None:
        peek = peek_task(delivery.data)
        if peek:
            await self._reporter.report(
                peek[0], peek[1], ResultStatus.REVOKED, error="worker draining"
            )
        await self.backend.ack(self.id, delivery.id)

    async def _hand_back(self, task_id: str, run: Run) -> None:
        """Stop a run (its report, if it comes, is dropped; a child process running it is
        killed) and give its task back."""
        run.revoked = True
        run.kill.set()
        if run.context:
            run.context.cancelled.set()
        if run.thread is not None:
            run.thread.cancel()  # a sync handler not yet begun never begins
        if run.task:
            run.task.cancel()
        self._running.pop(task_id, None)
        await self._reporter.report(
            task_id, run.envelope.attempt, ResultStatus.REVOKED, error="worker draining"
        )
        await self.backend.ack(self.id, run.delivery_id)

    # ------------------------------------------------------------------ heartbeat
    async def _heartbeat_loop(self) -> None:
        while not self._stopping:
            self.state.heartbeat_seq += 1  # counted when tried: a gap shows missed ones
            self.state.consuming = self._consuming()
            try:
                reply = await self.backend.heartbeat(self.state, self.in_flight)
                if reply.status is WorkerStatus.OFFLINE and await self._refused():
                    return
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
            except NotFoundError:  # our registration is gone: was the whole state lost?
                with contextlib.suppress(Exception):
                    await self.epoch.check()
                    await self.backend.register(self.profile)
            except Exception:
                log.exception("heartbeat failed; retrying")
                with contextlib.suppress(Exception):  # back in reach: the same Redis?
                    await self.epoch.check()
            await asyncio.sleep(self.settings.heartbeat_s)

    async def _refused(self) -> bool:
        """Whether the orchestrator refused this worker's credential: then say why and
        stop (the CLI exits non-zero); re-registering would only be refused again."""
        reason = await self._admission.refusal(self.profile.credential_proof)
        if reason is None:
            return False
        self.refused = reason
        if self.ended is not None and not self.ended.done():
            self.ended.set_result(None)
        log.error(
            "worker %s was refused by the orchestrator: %s. Get this worker's credential "
            "with `worldpool credential %s` where WORLDPOOL_SECRET is set, and start the "
            "worker with --credential KEY (or WORLDPOOL_WORKER_KEY).",
            self.id,
            reason,
            self.id,
        )
        self._stopping = True
        self._revoke(list(self._running))
        for task in self._loops:
            if task is not asyncio.current_task():
                task.cancel()
        return True

    def _consuming(self) -> bool:
        """Whether this worker still takes new work (or has no slot free to take it)."""
        if self._waiting_for_slot or self._draining:
            return True
        stuck_s = time.monotonic() - self._consumed_at
        if stuck_s > CONSUME_STALLED_AFTER_S:
            log.error("worker %s has not been able to read new work for %.0fs", self.id, stuck_s)
            return False
        return True

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
            self._waiting_for_slot = self._slots.locked()
            await self._slots.acquire()
            if self._waiting_for_slot:
                self._waiting_for_slot = False
                self._consumed_at = time.monotonic()  # the stall clock starts at the read
            free = 1
            while free < RECEIVE_BATCH_MAX and not self._slots.locked():
                await self._slots.acquire()  # does not suspend: a slot is free
                free += 1
            try:
                reread, self._reread_taken = self._reread_taken, False
                async with asyncio.timeout(RECEIVE_STUCK_AFTER_S):
                    deliveries = await self.backend.receive(
                        self.id, free, block_s=RECEIVE_BLOCK_S, taken=reread
                    )
                self._consumed_at = time.monotonic()
                if reread:
                    deliveries = self._not_seen(deliveries)
            except asyncio.CancelledError:
                self._release_slots(free)
                raise
            except TimeoutError:
                self._release_slots(free)
                self._reread_taken = True
                log.warning("worker %s: a read of new work stalled; reading again", self.id)
                continue
            except Exception:
                self._release_slots(free)
                self._reread_taken = True
                log.exception("receive failed; retrying")
                await asyncio.sleep(0.5)
                continue
            self._release_slots(free - len(deliveries))
            if self._draining:  # the read was in progress when the drain began
                for delivery in deliveries:
                    await self._give_back(delivery)
                    self._slots.release()
                continue
            await self._accept_all(deliveries)
            if deliveries:  # the runs just accepted start (and short ones report) before
                await asyncio.sleep(0)  # the next read goes out

    def _not_seen(self, deliveries: list[Delivery]) -> list[Delivery]:
        """Of the deliveries taken and not acked, those no run here has (lost answers)."""
        running = {run.delivery_id for run in self._running.values()}
        fresh = [d for d in deliveries if d.id not in running and d.id not in self._unacked_done]
        if fresh:
            log.warning("worker %s found %d deliveries a lost read had taken", self.id, len(fresh))
        return fresh

    def _release_slots(self, count: int) -> None:
        for _ in range(count):
            self._slots.release()

    async def _accept_all(self, deliveries: list[Delivery]) -> None:
        """Admit a batch (each delivery on its own; a bad one never holds up its
        neighbours), dead-letter what is refused, start the rest."""
        admitted = await self._admission.admit(deliveries, self._running)
        for delivery, exc, report in admitted.refused:
            await self._reject(delivery, exc, report=report)
            self._slots.release()
        for delivery, envelope in admitted.start:
            self._start(delivery, envelope)

    def _start(self, delivery: Delivery, envelope: Envelope) -> None:
        run = Run(envelope=envelope, delivery_id=delivery.id)
        self._running[envelope.task_id] = run
        run.task = asyncio.create_task(self._run(run), name=f"{self.id}:{envelope.task_id}")

    async def _reject(self, delivery: Delivery, exc: EnvelopeError, *, report: bool = True) -> None:
        """Dead-letter a delivery. ``report``: tell the orchestrator (not for a replay:
        the attempt it names is running or ran, and its own report stands)."""
        self.stats.rejected += 1
        log.warning("worker %s dead-lettered a delivery: %s", self.id, exc)
        await self.backend.dead_letter(self.id, exc.code, str(exc), delivery.data)
        if not report:
            await self.backend.ack(self.id, delivery.id)
            return
        peek = peek_task(delivery.data)
        if peek is not None:
            await self._reporter.report(
                peek[0], peek[1], ResultStatus.REJECTED, error=str(exc), retryable=False
            )
        task_id = delivery.task_id or (peek[0] if peek else "")
        if task_id:  # the slot was reserved for a task this worker will never run
            await self.backend.release(self.id, task_id)
        await self.backend.ack(self.id, delivery.id)

    # ------------------------------------------------------------------ run one task
    async def _run(self, run: Run) -> None:
        try:
            await self._executor.execute(run, lambda: self._stopping)
        finally:
            env = run.envelope
            if run.context:
                self._advertise(run.context.holds)  # what it fetched stays, success or not
                run.context.close_log()
            if self._running.get(env.task_id) is run:
                del self._running[env.task_id]
            if not run.acked:
                try:
                    await self.backend.ack(self.id, run.delivery_id)
                except Exception:  # the reclaim at failover, or a restart, takes it out
                    if len(self._unacked_done) > 4096:
                        self._unacked_done.clear()
                    self._unacked_done.add(run.delivery_id)
            if run.thread is not None and not run.thread.done():
                # A sync handler that timed out or was revoked still holds its thread:
                # its slot comes back when the thread does, so the pool is never short.
                run.thread.add_done_callback(lambda _: self._slots.release())
            else:
                self._slots.release()

    def _advertise(self, keys: Iterable[str]) -> None:
        """What we hold (output artifacts, workspaces handlers cloned), sent with the next
        heartbeat for the data-locality scorer; the newest 256 are kept."""
        for key in keys:
            if key not in self.state.cached:
                self.state.cached.append(key)
        del self.state.cached[:-256]
