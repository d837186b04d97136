"""Results: apply workers' fenced reports in batches (one read, one write call, one
events call per batch), retries with backoff and workflow advancement as follow-ups."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
from collections.abc import Callable

from worldpool import lifecycle
from worldpool.backends.base import Backend
from worldpool.models import Event, TaskRecord, TaskResult
from worldpool.orchestrator.clock import BackendClock
from worldpool.orchestrator.events import transition_events
from worldpool.orchestrator.pending import PendingQueue
from worldpool.orchestrator.records import RecordCache
from worldpool.orchestrator.signals import Changes
from worldpool.orchestrator.transitions import CAS_ATTEMPTS, Transitions
from worldpool.orchestrator.trust import ReportGate
from worldpool.tracing import exporting, hop

log = logging.getLogger("worldpool.orchestrator.core")

Step = tuple[TaskRecord, TaskRecord, str]  # (before, after, the reporting worker)


class ResultsApplier:
    """The results loop and report application; owns the acknowledgements not yet sent."""

    def __init__(
        self,
        backend: Backend,
        name: str,
        clock: BackendClock,
        records: RecordCache,
        pending: PendingQueue,
        changes: Changes,
        transitions: Transitions,
        rng: random.Random,
        gate: ReportGate | None = None,
    ) -> None:
        self._backend = backend
        self._gate = gate or ReportGate(backend, None)
        self._name = name
        self._clock = clock
        self._records = records
        self._pending = pending
        self._changes = changes
        self._transitions = transitions
        self._rng = rng
        self._unacked: list[str] = []  # applied, acknowledged with the next read

    async def run(self, stopping: Callable[[], bool]) -> None:
        """The results loop until ``stopping()``."""
        while not stopping():
            try:
                # What the last batch applied is acknowledged with the next read: one round
                # trip less per batch, and nobody waits on it. (Unacked at a crash, a report
                # is applied again and changes nothing: every write is fenced.)
                messages = await self._backend.receive_results(
                    self._name, 200, block_s=1.0, ack=self._unacked
                )
                self._unacked = []
                if messages:
                    for m in messages:  # the last hop of each report: back at the orchestrator
                        _result_hop(m.result)
                    await self.apply_results([m.result for m in messages])
                    self._unacked = [m.id for m in messages]
                    await asyncio.sleep(0)  # the waiters this batch woke go before the read
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("applying results failed; retrying")
                await asyncio.sleep(0.5)

    async def ack_applied(self) -> None:
        """Acknowledge what was applied (at stop; best effort)."""
        with contextlib.suppress(Exception):
            await self._backend.ack_results(self._unacked)
            self._unacked = []

    async def apply_results(self, results: list[TaskResult]) -> None:
        """Apply a batch of worker reports: one read of the records and of the clock, the
        reports of one task folded into one record write (STARTED + SUCCEEDED of a fast
        task is one put, still two events), every write of the batch and its
        events in one :meth:`Backend.put_tasks` call (one round trip on Redis)."""
        results, forged = self._gate.unsigned(results)
        for result in forged:
            await self._gate.reject(
                result, "bad_report_signature", "report not signed by the worker it names"
            )
        by_task: dict[str, list[TaskResult]] = {}
        for result in results:
            by_task.setdefault(result.task_id, []).append(result)
        ids = list(by_task)
        # One after the other: both usually answer from memory, and a gather would wrap
        # each in a task and cost an event-loop pass on every batch.
        records = await self._transitions.records_of(ids)
        now = await self._clock.now()
        planned: list[tuple[TaskRecord, list[Step]]] = []
        for task_id, record in zip(ids, records, strict=True):
            if record is None:
                continue
            if self._gate.enabled:
                by_task[task_id] = await self._held(record, by_task[task_id])
            steps = self._fold(record, by_task[task_id], now)
            if steps:
                planned.append((record, steps))
            else:  # stale, or our cached copy is: decide on a fresh read
                self._records.drop(task_id)
                for result in by_task[task_id]:
                    await self.apply_result(result)
        written = await self._backend.put_tasks(
            [(steps[-1][1], record.version) for record, steps in planned],
            [_steps_events(steps, now) for _, steps in planned],
        )
        for ok, (record, steps) in zip(written, planned, strict=True):
            if ok:
                self._records.put(steps[-1][1])
                for before, after, worker in steps:
                    await self._transitions.follow_up(before, after, worker)
            else:  # a concurrent writer got there first: one report at a time
                self._records.drop(record.id)
                for result in by_task[record.id]:
                    await self.apply_result(result)
        if planned:
            self._changes.notify(wake_dispatcher=self._pending.backlog)

    async def _held(self, record: TaskRecord, results: list[TaskResult]) -> list[TaskResult]:
        """The reports whose signer was sent the attempt they name; the rest rejected."""
        kept = []
        for result in results:
            if self._gate.not_holder(record, result):
                await self._gate.reject(
                    result, "not_attempt_holder", "the signer was never sent this attempt"
                )
            else:
                kept.append(result)
        return kept

    def _fold(self, record: TaskRecord, results: list[TaskResult], now: float) -> list[Step]:
        """The transitions a task's reports make, in order."""
        steps: list[Step] = []
        current = record
        for result in results:
            made = lifecycle.apply_result_steps(current, result, now, self._rng)
            for nxt in made:
                steps.append((current, nxt, result.worker_id))
                current = nxt
        return steps

    async def apply_result(self, result: TaskResult) -> None:
        """Apply one worker report (fenced: a stale attempt changes nothing)."""
        for _ in range(CAS_ATTEMPTS):  # a concurrent writer may have bumped the version
            record = await self._backend.get_task(result.task_id)
            if record is None:
                return
            now = await self._clock.now()
            steps = self._fold(record, [result], now)
            if not steps:
                log.info(
                    "ignored stale report for %s attempt %s from %s",
                    result.task_id,
                    result.attempt,
                    result.worker_id,
                )
                await self._transitions.redo_follow_ups(record)
                return
            [written] = await self._backend.put_tasks(
                [(steps[-1][1], record.version)], [_steps_events(steps, now)]
            )
            if written:
                self._records.put(steps[-1][1])
                for before, after, worker in steps:
                    await self._transitions.follow_up(before, after, worker)
                self._changes.notify()
                return
        log.warning(
            "gave up applying the %s report of task %s attempt %s: %d writes in a row "
            "conflicted with other writers",
            result.status.value,
            result.task_id,
            result.attempt,
            CAS_ATTEMPTS,
        )


def _steps_events(steps: list[Step], now: float) -> list[Event]:
    return [
        e for before, after, worker in steps for e in transition_events(before, after, worker, now)
    ]


def _result_hop(result: TaskResult) -> None:
    if result.traceparent and exporting():
        attrs: dict[str, str | int | float | None] = {
            "worldpool.task_id": result.task_id,
            "worldpool.attempt": result.attempt,
            "worldpool.worker_id": result.worker_id,
            "worldpool.status": result.status.value,
        }
        hop("worldpool.result", result.traceparent, attrs)
