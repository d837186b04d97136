"""Lifecycle policy: pure functions, no I/O."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from worldpool import lifecycle
from worldpool.models import (
    AttemptOutcome,
    ResultStatus,
    RetryPolicy,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
)


def _dispatched(max_retries: int = 3) -> TaskRecord:
    record = TaskRecord(spec=TaskSpec(handler="h", retry=RetryPolicy(max_retries=max_retries)))
    return lifecycle.dispatched(record, "w1", "us-east-1", 100.0)


@given(st.integers(min_value=1, max_value=30))
def test_backoff_is_bounded_and_grows(failures: int) -> None:
    policy = RetryPolicy(backoff_initial_s=0.5, backoff_max_s=8.0)
    delay = lifecycle.backoff_s(policy, failures, random.Random(failures))
    assert 0 < delay <= 8.0
    no_jitter = policy.model_copy(update={"jitter": False})
    assert lifecycle.backoff_s(no_jitter, failures) == min(8.0, 0.5 * 2 ** (failures - 1))


def test_fencing_rejects_other_attempts_and_workers() -> None:
    record = _dispatched()
    ok = TaskResult(task_id=record.id, attempt=1, worker_id="w1", status=ResultStatus.SUCCEEDED)
    assert lifecycle.apply_result(record, ok, 101.0) is not None
    stale = ok.model_copy(update={"attempt": 2})
    other = ok.model_copy(update={"worker_id": "w2"})
    assert lifecycle.apply_result(record, stale, 101.0) is None
    assert lifecycle.apply_result(record, other, 101.0) is None


def test_failures_retry_until_the_budget_then_fail() -> None:
    record = _dispatched(max_retries=1)
    fail = TaskResult(
        task_id=record.id, attempt=1, worker_id="w1", status=ResultStatus.FAILED, error="x"
    )
    after_first = lifecycle.apply_result(record, fail, 101.0)
    assert after_first is not None and after_first.status is TaskStatus.RETRYING
    assert after_first.not_before > 101.0
    again = lifecycle.dispatched(after_first, "w2", "eu-west-1", 102.0)
    fail2 = fail.model_copy(update={"attempt": 2, "worker_id": "w2"})
    final = lifecycle.apply_result(again, fail2, 103.0)
    assert final is not None and final.status is TaskStatus.FAILED


def test_lost_workers_do_not_use_the_retry_budget() -> None:
    record = _dispatched(max_retries=0)
    lost = lifecycle.failed_attempt(
        record, "worker died", 101.0, outcome=AttemptOutcome.WORKER_LOST, retryable=True
    )
    assert lost.status is TaskStatus.PENDING
    assert lifecycle.failures(lost) == 0 and lifecycle.losses(lost) == 1


def test_a_terminal_report_on_a_dispatched_task_makes_the_running_step_too() -> None:
    # Workers skip STARTED for fast handlers: the RUNNING step comes from started_at.
    record = _dispatched()
    done = TaskResult(
        task_id=record.id,
        attempt=1,
        worker_id="w1",
        status=ResultStatus.SUCCEEDED,
        started_at=100.5,
        ended_at=100.6,
    )
    running, succeeded = lifecycle.apply_result_steps(record, done, 101.0)
    assert running.status is TaskStatus.RUNNING and running.attempts[-1].started_at == 100.5
    assert succeeded.status is TaskStatus.SUCCEEDED and succeeded.started_at == 100.5
    assert record.status is TaskStatus.DISPATCHED  # the input is left as it was
    assert record.attempts[-1].started_at is None
    assert lifecycle.apply_result_steps(succeeded, done, 101.0) == []  # now stale


def test_timeout_deadline_follows_the_state() -> None:
    spec = TaskSpec(
        handler="h", schedule_to_start_timeout_s=5, execution_timeout_s=30, heartbeat_timeout_s=10
    )
    pending = TaskRecord(spec=spec, submitted_at=100.0)
    assert lifecycle.timeout_deadline(pending) == 105.0
    dispatched = lifecycle.dispatched(pending, "w1", "eu", 101.0)
    assert lifecycle.timeout_deadline(dispatched) is None  # not started: nothing can fire
    start = TaskResult(
        task_id=spec.id, attempt=1, worker_id="w1", status=ResultStatus.STARTED, started_at=102.0
    )
    running = lifecycle.apply_result(dispatched, start, 102.0)
    assert running is not None
    assert lifecycle.timeout_deadline(running) == 112.0  # heartbeat before execution
    assert lifecycle.timeout_deadline(lifecycle.cancelled(running, 103.0)) is None
    assert lifecycle.timeout_deadline(TaskRecord(spec=TaskSpec(handler="h"))) is None


def _report(record: TaskRecord, status: ResultStatus, **fields: Any) -> TaskResult:
    return TaskResult(
        task_id=record.id,
        attempt=record.attempt,
        worker_id=record.worker_id or "",
        status=status,
        **fields,
    )


def test_every_way_an_attempt_ends_records_its_outcome() -> None:
    record = _dispatched()
    ended = {
        AttemptOutcome.SUCCEEDED: lifecycle.apply_result(
            record, _report(record, ResultStatus.SUCCEEDED), 101.0
        ),
        AttemptOutcome.HANDLER_ERROR: lifecycle.apply_result(
            record, _report(record, ResultStatus.FAILED, error="boom"), 101.0
        ),
        AttemptOutcome.REJECTED: lifecycle.apply_result(
            record, _report(record, ResultStatus.REJECTED, error="bad signature"), 101.0
        ),
        AttemptOutcome.HANDED_BACK: lifecycle.apply_result(
            record, _report(record, ResultStatus.REVOKED), 101.0
        ),
        AttemptOutcome.CANCELLED: lifecycle.cancelled(record, 101.0),
    }
    for outcome, after in ended.items():
        assert after is not None and after.attempts[-1].outcome is outcome, outcome
    assert record.attempts[-1].outcome is None  # still running: the input is unchanged


def test_the_decision_reads_the_outcome_never_the_message() -> None:
    # A handler error worded like a lost worker spends the budget ...
    record = _dispatched(max_retries=0)
    failed = lifecycle.apply_result(
        record, _report(record, ResultStatus.FAILED, error="lost connection"), 101.0
    )
    assert failed is not None and failed.status is TaskStatus.FAILED
    assert (lifecycle.failures(failed), lifecycle.losses(failed)) == (1, 0)
    assert not lifecycle.last_attempt_lost(failed)
    # ... and a lost worker, whatever its message, does not
    lost = lifecycle.failed_attempt(
        record, "heartbeats stopped", 101.0, outcome=AttemptOutcome.WORKER_LOST, retryable=True
    )
    assert lost.status is TaskStatus.PENDING and lost.not_before == 0.0
    assert lifecycle.last_attempt_lost(lost)  # the next dispatch is a failover


def test_timeouts_spend_the_retry_budget_and_interrupted_dispatches_do_not() -> None:
    record = _dispatched(max_retries=1)
    timed_out = lifecycle.failed_attempt(
        record, "execution timeout", 101.0, outcome=AttemptOutcome.TIMED_OUT, retryable=True
    )
    assert timed_out.status is TaskStatus.RETRYING and lifecycle.failures(timed_out) == 1
    again = lifecycle.dispatched(timed_out, "w2", "eu", 102.0)
    interrupted = lifecycle.failed_attempt(
        again, "never sent", 103.0, outcome=AttemptOutcome.DISPATCH_INTERRUPTED, retryable=True
    )
    assert interrupted.status is TaskStatus.PENDING
    assert (lifecycle.failures(interrupted), lifecycle.losses(interrupted)) == (1, 1)
    third = lifecycle.dispatched(interrupted, "w3", "eu", 104.0)
    final = lifecycle.failed_attempt(
        third, "execution timeout", 105.0, outcome=AttemptOutcome.TIMED_OUT, retryable=True
    )
    assert final.status is TaskStatus.FAILED  # the second timeout is past max_retries=1


def test_a_worker_lost_too_often_fails_the_task() -> None:
    record = _dispatched(max_retries=0)
    for n in range(lifecycle.MAX_FAILOVERS + 1):
        record = lifecycle.failed_attempt(
            record, "gone", 100.0 + n, outcome=AttemptOutcome.WORKER_LOST, retryable=True
        )
        if record.status is TaskStatus.FAILED:
            break
        record = lifecycle.dispatched(record, f"w{n}", "eu", 100.5 + n)
    assert record.status is TaskStatus.FAILED
    assert lifecycle.losses(record) == lifecycle.MAX_FAILOVERS + 1


def test_a_report_sets_handler_metadata_and_the_trace_but_no_other_system_field() -> None:
    record = _dispatched().model_copy(update={"upstream": {"a": 1}, "traceparent": "submit"})
    report = _report(
        record,
        ResultStatus.SUCCEEDED,
        started_at=100.5,
        meta={"upstream": "forged", "last_progress_at": 0, "vm_id": "vm-1"},
        traceparent="run-span",
    )
    running, done = lifecycle.apply_result_steps(record, report, 101.0)
    assert done.meta == {"upstream": "forged", "last_progress_at": 0, "vm_id": "vm-1"}
    assert done.upstream == {"a": 1} and done.last_progress_at == 100.5
    assert done.traceparent == "run-span"  # set by the worker runtime, not by the handler
    assert running.traceparent == "submit"


def test_every_attempt_is_charged_worker_time_plus_reported_tokens() -> None:
    # $3,600/h is $1/s: the seed's complaint was a worker at that rate recording $0.0.
    spec = TaskSpec(handler="h", retry=RetryPolicy(max_retries=2, jitter=False))
    first = lifecycle.dispatched(TaskRecord(spec=spec), "w1", "us-east-1", 100.0, 3600.0)
    failed = TaskResult(
        task_id=spec.id,
        attempt=1,
        worker_id="w1",
        status=ResultStatus.FAILED,
        error="boom",
        cost_usd=0.25,
        tokens_used=10,
    )
    retrying = lifecycle.apply_result(first, failed, 102.0)
    assert retrying is not None and retrying.status is TaskStatus.RETRYING
    assert retrying.attempts[0].compute_cost_usd == 2.0  # 2 s held at $1/s
    assert retrying.attempts[0].token_cost_usd == 0.25
    assert retrying.attempts[0].cost_usd == 2.25
    assert lifecycle.attempt_cost(retrying)["attempt_cost_usd"] == 2.25

    second = lifecycle.dispatched(retrying, "w2", "eu-west-1", 110.0, 36.0)  # $0.01/s
    lost = lifecycle.failed_attempt(
        second, "worker died", 111.0, outcome=AttemptOutcome.WORKER_LOST, retryable=True
    )
    assert lost.attempts[1].compute_cost_usd == 0.01  # a lost attempt is paid for too

    third = lifecycle.dispatched(lost, "w2", "eu-west-1", 120.0, 36.0)
    ok = TaskResult(
        task_id=spec.id,
        attempt=3,
        worker_id="w2",
        status=ResultStatus.SUCCEEDED,
        started_at=120.5,
        ended_at=125.0,
        cost_usd=0.5,
    )
    done = lifecycle.apply_result(third, ok, 125.0)
    assert done is not None and done.status is TaskStatus.SUCCEEDED
    assert done.compute_cost_usd == pytest.approx(2.0 + 0.01 + 0.05)
    assert done.token_cost_usd == 0.75
    assert done.cost_usd == done.compute_cost_usd + done.token_cost_usd
    assert [a.cost_per_hour for a in done.attempts] == [3600.0, 36.0, 36.0]


def test_a_cancelled_attempt_is_charged_the_time_it_held_the_slot() -> None:
    record = lifecycle.dispatched(TaskRecord(spec=TaskSpec(handler="h")), "w", "r", 10.0, 360.0)
    cancelled = lifecycle.cancelled(record, 20.0)
    assert cancelled.cost_usd == 1.0 and cancelled.attempts[0].compute_cost_usd == 1.0
