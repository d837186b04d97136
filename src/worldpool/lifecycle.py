"""Task lifecycle policy, written once for every backend: pure functions on records.

The orchestrator reads a record, calls one of these to get the next record, and writes it
back with compare-and-set. Keeping the policy here (no I/O) makes retries, backoff and
fencing easy to test and impossible to drift between backends. Every ended attempt records
its :class:`~worldpool.models.AttemptOutcome`; the retry budget and failover are decided on
outcomes (:data:`FAILURE_OUTCOMES`, :data:`LOSS_OUTCOMES`), never on error text.

Cost: every attempt, however it ends, is charged its worker's ``cost_per_hour`` (recorded
on the attempt at dispatch) times the time it held the slot (dispatch to end), plus the
token or API cost its handler reported; the record keeps the totals and the split
(``compute_cost_usd``, ``token_cost_usd``, ``cost_usd`` their sum).
"""

from __future__ import annotations

import random

from worldpool.models import (
    AttemptOutcome,
    AttemptRecord,
    JSONValue,
    ResultStatus,
    RetryPolicy,
    TaskRecord,
    TaskResult,
    TaskStatus,
)
from worldpool.unchecked import assign

MAX_FAILOVERS = 10  # a task that keeps losing its worker is failed after this many losses

# Outcomes that spend the retry budget (``RetryPolicy.max_retries``): the task's own doing.
FAILURE_OUTCOMES = frozenset(
    {AttemptOutcome.HANDLER_ERROR, AttemptOutcome.REJECTED, AttemptOutcome.TIMED_OUT}
)
# Outcomes that are nobody's fault but the pool's: re-routed at once (failover), counted
# against MAX_FAILOVERS only.
LOSS_OUTCOMES = frozenset({AttemptOutcome.WORKER_LOST, AttemptOutcome.DISPATCH_INTERRUPTED})


def backoff_s(policy: RetryPolicy, failures: int, rng: random.Random | None = None) -> float:
    """Exponential backoff before retry number ``failures`` (1-based), with full jitter."""
    base = policy.backoff_initial_s * policy.backoff_multiplier ** max(0, failures - 1)
    delay = min(policy.backoff_max_s, base)
    if policy.jitter:
        delay = (rng or random).uniform(delay / 2, delay)  # "equal jitter": never near zero
    return delay


def failures(record: TaskRecord) -> int:
    """Attempts that spent the retry budget (not lost to a dead worker)."""
    counted = record.attempts[record.retry_base :]  # a manual retry starts a fresh budget
    return sum(1 for a in counted if a.outcome in FAILURE_OUTCOMES)


def losses(record: TaskRecord) -> int:
    """Attempts lost to the pool (a dead worker, an interrupted dispatch)."""
    return sum(1 for a in record.attempts if a.outcome in LOSS_OUTCOMES)


def last_attempt_lost(record: TaskRecord) -> bool:
    """Whether the previous attempt was lost, so the next dispatch is a failover."""
    return bool(record.attempts) and record.attempts[-1].outcome in LOSS_OUTCOMES


def is_current(record: TaskRecord, result: TaskResult) -> bool:
    """Fencing: only the current attempt on the worker it was sent to may report."""
    return (
        not record.status.terminal
        and record.attempt == result.attempt
        and record.worker_id == result.worker_id
    )


def _copy(record: TaskRecord) -> TaskRecord:
    """A copy safe to change: what these functions mutate (the last attempt, ``meta``,
    ``logs``, ``outputs``, the attempts list) is copied, the rest (the spec, the routing
    decision) is shared; nothing here or in the orchestrator mutates those in place.
    A deep copy cost ~10% of the orchestrator's CPU on the fast path. The system fields
    (``traceparent``, ``upstream``, ``last_progress_at``) are replaced, never mutated."""
    attempts = list(record.attempts)
    if attempts:
        attempts[-1] = attempts[-1].model_copy()
    return record.model_copy(
        update={
            "attempts": attempts,
            "meta": dict(record.meta),
            "logs": list(record.logs),
            "outputs": dict(record.outputs),
        }
    )


def dispatched(
    record: TaskRecord, worker_id: str, region: str, now: float, cost_per_hour: float = 0.0
) -> TaskRecord:
    """The record after routing it to ``worker_id`` (next attempt number), whose slot time
    is charged at ``cost_per_hour`` (the worker's rate in the pool snapshot)."""
    attempt = record.attempt + 1
    rec = _copy(record)
    assign(
        rec, status=TaskStatus.DISPATCHED, attempt=attempt, worker_id=worker_id, pending_reason=None
    )
    rec.attempts.append(
        AttemptRecord(
            attempt=attempt,
            worker_id=worker_id,
            region=region,
            dispatched_at=now,
            cost_per_hour=cost_per_hour,
        )
    )
    return rec


def timeout_deadline(record: TaskRecord) -> float | None:
    """The earliest time at which one of the task's timeouts can fire in its current state
    (None: none can). Backends index tasks by it, so the sweep reads only the tasks that
    are due instead of every unfinished record; the sweep still re-checks each one."""
    spec = record.spec
    if record.status is TaskStatus.PENDING:
        if spec.schedule_to_start_timeout_s:
            return record.submitted_at + spec.schedule_to_start_timeout_s
        return None
    if record.status not in (TaskStatus.DISPATCHED, TaskStatus.RUNNING) or not record.attempts:
        return None
    deadlines = []
    started_at = record.attempts[-1].started_at
    if spec.execution_timeout_s and started_at:
        deadlines.append(started_at + spec.execution_timeout_s)
    progress_at = record.last_progress_at
    if spec.heartbeat_timeout_s and record.status is TaskStatus.RUNNING and progress_at is not None:
        deadlines.append(progress_at + spec.heartbeat_timeout_s)
    return min(deadlines) if deadlines else None


def _close_attempt(
    record: TaskRecord,
    status: TaskStatus,
    outcome: AttemptOutcome,
    now: float,
    error: str | None,
) -> None:
    if record.attempts and record.attempts[-1].attempt == record.attempt:
        last = record.attempts[-1]
        held_s = max(0.0, now - last.dispatched_at)
        compute = last.cost_per_hour * held_s / 3600.0
        assign(
            last,
            ended_at=now,
            status=status,
            outcome=outcome,
            error=error,
            compute_cost_usd=compute,
        )
        assign(
            record,
            compute_cost_usd=record.compute_cost_usd + compute,
            cost_usd=record.cost_usd + compute,
        )


def attempt_cost(record: TaskRecord) -> dict[str, JSONValue]:
    """The last attempt's charge, for the event that ends it: the worker it was charged
    to, the total and the split (empty when the task never had an attempt)."""
    if not record.attempts:
        return {}
    last = record.attempts[-1]
    return {
        "attempt_worker": last.worker_id,
        "attempt_cost_usd": last.cost_usd,
        "compute_cost_usd": last.compute_cost_usd,
        "token_cost_usd": last.token_cost_usd,
    }


def started(record: TaskRecord, result: TaskResult, now: float) -> TaskRecord:
    rec = _copy(record)
    at = result.started_at or now
    assign(rec, status=TaskStatus.RUNNING, started_at=rec.started_at or at, last_progress_at=at)
    if rec.attempts:
        assign(rec.attempts[-1], started_at=at, status=TaskStatus.RUNNING)
    return rec


def progressed(record: TaskRecord, result: TaskResult, now: float) -> TaskRecord:
    """A running attempt's progress, and the metadata and artifacts it published while
    running (a live ``vnc_url``, a ``vm_id``, a last screenshot; null values clear keys)."""
    rec = _copy(record)
    if result.progress is not None:
        rec.progress = result.progress
    if result.meta:
        rec.meta.update(result.meta)
    if result.outputs:  # artifacts published while it runs (a last screenshot)
        rec.outputs.update(result.outputs)
    assign(rec, last_progress_at=now)
    return rec


def succeeded(record: TaskRecord, result: TaskResult, now: float) -> TaskRecord:
    rec = _copy(record)
    _close_attempt(rec, TaskStatus.SUCCEEDED, AttemptOutcome.SUCCEEDED, result.ended_at, None)
    assign(
        rec,
        status=TaskStatus.SUCCEEDED,
        result=result.value,
        result_ref=result.value_ref,
        outputs=dict(result.outputs),
        ended_at=result.ended_at,
        started_at=rec.started_at or result.started_at,
        error=None,
        progress=1.0,
    )
    _absorb(rec, result)
    return rec


def _absorb(rec: TaskRecord, result: TaskResult) -> None:
    """Take a terminal report's usage, logs and handler metadata (into ``meta`` only: the
    system fields are typed fields a handler cannot reach)."""
    assign(
        rec,
        tokens_used=rec.tokens_used + result.tokens_used,
        cost_usd=rec.cost_usd + result.cost_usd,
        token_cost_usd=rec.token_cost_usd + result.cost_usd,
        logs=[*rec.logs, *result.logs][-1000:],
    )
    if rec.attempts and rec.attempts[-1].attempt == result.attempt:
        last = rec.attempts[-1]
        assign(
            last,
            tokens_used=last.tokens_used + result.tokens_used,
            token_cost_usd=last.token_cost_usd + result.cost_usd,
        )
    if result.traceparent is not None:  # the next attempt continues from the run span
        assign(rec, traceparent=result.traceparent)
    rec.meta.update(result.meta)


def failed_attempt(
    record: TaskRecord,
    error: str,
    now: float,
    *,
    outcome: AttemptOutcome,
    retryable: bool,
    rng: random.Random | None = None,
) -> TaskRecord:
    """Close the current attempt with ``outcome`` and decide: re-route at once (a loss,
    within MAX_FAILOVERS), retry after a backoff (``retryable``, within the retry budget),
    or fail. The decision reads outcomes only; ``error`` is the message for people."""
    rec = _copy(record)
    lost = outcome in LOSS_OUTCOMES
    message = f"lost: {error}" if lost else error
    _close_attempt(rec, TaskStatus.FAILED, outcome, now, message)
    rec.error = message
    rec.worker_id = None
    if lost and losses(rec) <= MAX_FAILOVERS:
        rec.status = TaskStatus.PENDING  # failover: re-route at once, no backoff
        rec.not_before = 0.0
    elif retryable and not lost and (n_fail := failures(rec)) <= rec.spec.retry.max_retries:
        rec.status = TaskStatus.RETRYING
        rec.not_before = now + backoff_s(rec.spec.retry, n_fail, rng)
    else:
        rec.status = TaskStatus.FAILED
        rec.ended_at = now
    return rec


def apply_result(
    record: TaskRecord, result: TaskResult, now: float, rng: random.Random | None = None
) -> TaskRecord | None:
    """The record after a worker's report, or None when the report is stale (fenced)."""
    if not is_current(record, result):
        return None
    match result.status:
        case ResultStatus.STARTED:
            return started(record, result, now)
        case ResultStatus.PROGRESS:
            return progressed(record, result, now)
        case ResultStatus.SUCCEEDED:
            return succeeded(record, result, now)
        case ResultStatus.REVOKED:
            rec = _copy(record)
            _close_attempt(
                rec,
                TaskStatus.CANCELLED,
                AttemptOutcome.HANDED_BACK,
                now,
                "handed back by the worker",
            )
            rec.status, rec.worker_id, rec.not_before = TaskStatus.PENDING, None, 0.0
            return rec
        case _:
            rejected = result.status is ResultStatus.REJECTED
            rec = failed_attempt(
                record,
                result.error or "handler failed",
                now,
                outcome=AttemptOutcome.REJECTED if rejected else AttemptOutcome.HANDLER_ERROR,
                retryable=result.retryable and not rejected,
                rng=rng,
            )
            rec.outputs.update(result.outputs)  # e.g. a trace of the failed attempt
            _absorb(rec, result)
            return rec


def apply_result_steps(
    record: TaskRecord, result: TaskResult, now: float, rng: random.Random | None = None
) -> list[TaskRecord]:
    """As :func:`apply_result`, as the list of transitions it makes (empty when stale).

    A worker reports STARTED only for a handler still running after a few milliseconds, so
    a fast task's terminal report can arrive for a DISPATCHED record: the RUNNING step is
    then made from the report's ``started_at``, so every transition still gets its event."""
    if not is_current(record, result):
        return []
    steps = []
    if (
        record.status is TaskStatus.DISPATCHED
        and result.started_at is not None
        and result.status in (ResultStatus.SUCCEEDED, ResultStatus.FAILED)
    ):
        record = started(record, result, now)
        steps.append(record)
    final = apply_result(record, result, now, rng)
    return [*steps, final] if final is not None else steps


RETRYABLE_BY_HAND = frozenset({TaskStatus.FAILED, TaskStatus.CANCELLED})


def retried(record: TaskRecord) -> TaskRecord:
    """A failed or cancelled task queued again by hand, with a fresh retry budget; its
    attempts stay on the record and the next one is ``attempt + 1`` (fencing holds)."""
    rec = _copy(record)
    rec.status = TaskStatus.PENDING
    rec.retry_base = len(rec.attempts)
    rec.worker_id = None
    rec.not_before = 0.0
    rec.started_at = rec.ended_at = None
    rec.error = rec.pending_reason = None
    rec.progress = None
    rec.result = rec.result_ref = None
    return rec


def cancelled(record: TaskRecord, now: float, reason: str = "cancelled") -> TaskRecord:
    rec = _copy(record)
    _close_attempt(rec, TaskStatus.CANCELLED, AttemptOutcome.CANCELLED, now, reason)
    rec.status = TaskStatus.CANCELLED
    rec.ended_at = now
    rec.error = reason
    return rec
