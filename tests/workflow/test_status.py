"""The status document and its completion estimate (worldpool.workflow.status)."""

from __future__ import annotations

import pytest

from tests.workflow.fixtures import artifact, seed_workflow, task_record
from worldpool.models import (
    GPU,
    CandidateReport,
    Hardware,
    Location,
    RoutingDecision,
    TaskRecord,
    TaskStatus,
    WorkerProfile,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowState,
)
from worldpool.workflow.builder import estimate_completion_sec, status_document
from worldpool.workflow.status import routing_reason

S = TaskStatus
WEIGHTS = {"capability_match": 0.4, "load": 0.3, "latency": 0.2, "cost": 0.1}


def decision(task_id: str) -> RoutingDecision:
    """dgx-tokyo-01 beats gpu-london-02 on load; london is cheaper."""
    return RoutingDecision(
        task_id=task_id,
        winner="dgx-tokyo-01",
        runner_up="gpu-london-02",
        weights=WEIGHTS,
        pool_size=9,
        feasible_count=2,
        candidates=[
            CandidateReport(
                worker_id="dgx-tokyo-01",
                feasible=True,
                scores={"capability_match": 1.0, "load": 1.0, "latency": 0.5, "cost": 0.5},
                total=0.85,
            ),
            CandidateReport(
                worker_id="gpu-london-02",
                feasible=True,
                scores={"capability_match": 1.0, "load": 0.5, "latency": 0.5, "cost": 1.0},
                total=0.75,
            ),
        ],
    )


def running_seed(spec: WorkflowSpec) -> dict[str, TaskRecord]:
    """At t=140: planning took 10 s, localization 20 s, understanding runs since t=130."""
    return {
        "planning": task_record(
            spec,
            "planning",
            S.SUCCEEDED,
            submitted=95,
            started=100,
            ended=110,
            worker="dgx-tokyo-01",
            region="ap-northeast-1",
            tokens_used=8234,
            cost_usd=0.12,
            decision=decision("fix-auth-bug-12345.planning"),
            result={"plan": ["reproduce", "fix"]},
        ),
        "localization": task_record(
            spec,
            "localization",
            S.SUCCEEDED,
            submitted=110,
            started=110,
            ended=130,
            worker="sandbox-onprem-01",
            region="onprem",
            cost_usd=0.05,
            meta={"vm_id": "fc-vm-8a7f3b2c", "sandbox_id": "sb-1"},
            outputs={"trace.txt": artifact("trace.txt")},
        ),
        "understanding": task_record(
            spec,
            "understanding",
            S.RUNNING,
            submitted=130,
            started=130,
            worker="browser-aws-useast-03",
            region="us-east-1",
            tokens_used=100,
            meta={"vnc_url": "vnc://browser-aws-useast-03:5900"},
            outputs={
                "log.txt": artifact("log.txt"),
                "step3.png": artifact("step3.png", "image/png"),
            },
        ),
    }


WORKERS = {
    "dgx-tokyo-01": WorkerProfile(
        id="dgx-tokyo-01",
        location=Location(region="ap-northeast-1"),
        hardware=Hardware(gpus=[GPU(model="H100", vram_gb=80, count=8)]),
    ),
    "sandbox-onprem-01": WorkerProfile(id="sandbox-onprem-01", location=Location(region="onprem")),
}


def test_status_document_fields() -> None:
    # Given the seed workflow two steps in, with a third running
    spec = seed_workflow()
    record = WorkflowRecord(
        spec=spec,
        status=WorkflowState.IN_PROGRESS,
        submitted_at=95,
        task_ids={s: f"{spec.id}.{s}" for s in ("planning", "localization", "understanding")},
    )
    tasks = running_seed(spec)

    # When the status document is built at t=140
    doc = status_document(record, tasks, WORKERS, now=140)

    # Then steps come in topological order with everything a watcher needs
    assert [s.step for s in doc.steps] == [
        "planning",
        "localization",
        "understanding",
        "fix",
        "tests",
        "browser",
        "review",
    ]
    plan, loc, und, fix, tests, _browser, review = doc.steps
    assert (doc.id, doc.name, doc.status) == ("fix-auth-bug-12345", "fix-auth-bug", "in_progress")
    assert plan.task_id == "fix-auth-bug-12345.planning"
    assert (plan.worker, plan.region, plan.gpu) == ("dgx-tokyo-01", "ap-northeast-1", "8x H100")
    assert (plan.status, plan.attempts, plan.handler, plan.after) == ("succeeded", 1, "plan", [])
    assert (plan.queued_at, plan.started_at, plan.ended_at) == (95, 100, 110)
    assert (plan.queue_wait_ms, plan.duration_ms) == (5000, 10000)
    assert (plan.tokens_used, plan.cost_usd) == (8234, 0.12)
    assert plan.reason == (
        "dgx-tokyo-01 scored 0.850, +0.100 over runner-up gpu-london-02 (0.750); "
        "ahead on load +0.15"
    )
    assert (loc.vm_id, loc.sandbox_id, loc.gpu, loc.screenshot) == (
        "fc-vm-8a7f3b2c",
        "sb-1",
        None,
        None,
    )
    assert loc.outputs == {"trace.txt": artifact("trace.txt")}
    # a running step: elapsed time so far; no profile given, region from the attempt
    assert (und.status, und.duration_ms, und.ended_at) == ("running", 10000, None)
    assert (und.region, und.gpu, und.vnc_url) == (
        "us-east-1",
        None,
        "vnc://browser-aws-useast-03:5900",
    )
    assert und.screenshot == artifact("step3.png", "image/png")
    # steps without a task yet say what they wait for
    assert (fix.status, fix.pending_reason, fix.task_id) == (
        "waiting",
        "waiting for understanding",
        None,
    )
    assert fix.after == ["understanding"]
    assert tests.worker is None and tests.duration_ms is None
    assert review.pending_reason == "waiting for tests, browser"
    assert doc.total_cost_usd == pytest.approx(0.17)
    assert doc.total_tokens == 8334
    assert doc.estimated_completion_sec == 55.0  # see test_eta_hand_computed


def test_status_document_serialises_in_the_seed_shape() -> None:
    spec = seed_workflow()
    record = WorkflowRecord(spec=spec, submitted_at=95)
    body = status_document(record, running_seed(spec), now=140).model_dump(mode="json")
    assert body["status"] == "in_progress"  # computed from the steps: the record lags
    first = body["steps"][0]
    for key in ("step", "worker", "status", "duration_ms", "tokens_used"):
        assert key in first
    assert set(body) >= {"id", "status", "steps", "total_cost_usd", "estimated_completion_sec"}


def test_eta_hand_computed() -> None:
    # Observed run times: plan 10 s, run_tests 20 s; the mean of all observed is 15 s.
    # understanding (analyze: no observation -> 15 s) has run 10 s: 5 s left.
    # fix (15 s) ends at 20; tests (run_tests: 20 s) at 40; browser (15 s) at 35;
    # review (15 s) after both, at max(40, 35) + 15 = 55.
    spec = seed_workflow()
    assert estimate_completion_sec(spec, running_seed(spec), now=140) == 55.0


def test_eta_running_step_past_its_expectation_counts_zero() -> None:
    spec = seed_workflow()
    # understanding has run 100 s, far past the 15 s expected: it counts 0, not -85
    assert estimate_completion_sec(spec, running_seed(spec), now=230) == 50.0


def test_eta_unknown_before_anything_finished_and_zero_when_done() -> None:
    spec = seed_workflow()
    first = {"planning": task_record(spec, "planning", S.RUNNING, started=0, worker="w")}
    assert estimate_completion_sec(spec, first, now=5) is None
    done = {s.name: task_record(spec, s.name, S.SUCCEEDED, started=0, ended=1) for s in spec.steps}
    assert estimate_completion_sec(spec, done, now=5) == 0.0


def test_eta_ignores_blocked_branch() -> None:
    # tests failed: review can never run, so only browser's remaining time counts
    spec = seed_workflow()
    tasks = {
        name: task_record(spec, name, S.SUCCEEDED, started=0, ended=10)
        for name in ("planning", "localization", "understanding", "fix")
    }
    tasks["tests"] = task_record(spec, "tests", S.FAILED, started=10, ended=11, error="boom")
    tasks["browser"] = task_record(spec, "browser", S.RUNNING, started=10, worker="b")
    assert estimate_completion_sec(spec, tasks, now=14) == 6.0
    doc = status_document(WorkflowRecord(spec=spec), tasks, now=14)
    review = doc.steps[-1]
    assert (review.status, review.pending_reason) == (
        "blocked",
        "will not run: parent 'tests' failed",
    )
    assert doc.steps[4].error == "boom"


def test_terminal_workflow_marks_unstarted_steps_skipped() -> None:
    spec = seed_workflow()
    tasks = {"planning": task_record(spec, "planning", S.CANCELLED, ended=3)}
    record = WorkflowRecord(spec=spec, status=WorkflowState.CANCELLED, ended_at=3, error="user")
    doc = status_document(record, tasks, now=10)
    assert doc.status == WorkflowState.CANCELLED
    assert doc.estimated_completion_sec == 0.0
    assert (doc.ended_at, doc.error) == (3, "user")
    assert doc.steps[0].queue_wait_ms == 3000  # cancelled while queued
    assert doc.steps[1].status == "blocked"
    # a step that is not downstream of the cancelled one is skipped, not blocked
    cancelled_mid = {
        "planning": task_record(spec, "planning", S.SUCCEEDED, started=0, ended=1),
    }
    doc = status_document(record, cancelled_mid, now=10)
    assert doc.steps[1].status == "skipped"
    assert doc.steps[1].pending_reason == "workflow cancelled before this step started"


def test_tasks_may_be_keyed_by_task_id() -> None:
    spec = seed_workflow()
    tasks = running_seed(spec)
    record = WorkflowRecord(spec=spec, task_ids={s: t.id for s, t in tasks.items()})
    doc = status_document(record, {t.id: t for t in tasks.values()}, now=140)
    assert [s.status for s in doc.steps[:3]] == ["succeeded", "succeeded", "running"]


def test_reason_without_runner_up_and_without_decision() -> None:
    only = decision("t").model_copy(
        update={"runner_up": None, "feasible_count": 1, "candidates": decision("t").candidates[:1]}
    )
    assert routing_reason(only) == (
        "dgx-tokyo-01 scored 0.850, the only feasible worker of 9; "
        "top scorers: capability_match 0.40, load 0.30, latency 0.10"
    )
    assert routing_reason(None) is None
    assert routing_reason(RoutingDecision(task_id="t", reasons=["no worker"])) is None
    capped = decision("t").model_copy(update={"candidates": []})
    assert (
        routing_reason(capped) == "routed to dgx-tokyo-01 (its scores were not kept in the report)"
    )
