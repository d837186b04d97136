"""Shared builders for the workflow tests: the seed's fix-auth-bug DAG and task records."""

from __future__ import annotations

import hashlib
from typing import Any

from worldpool.models import (
    ArtifactRef,
    AttemptRecord,
    Requirements,
    TaskRecord,
    TaskStatus,
    WorkflowSpec,
)
from worldpool.workflow.builder import Workflow, step_task_id


def seed_workflow(workflow_id: str = "fix-auth-bug-12345") -> WorkflowSpec:
    """planning -> localization -> understanding -> fix -> (tests | browser) -> review."""
    wf = Workflow("fix-auth-bug", id=workflow_id, user_location="tokyo")
    plan = wf.step(
        "planning",
        handler="plan",
        capabilities=["planning"],
        requirements=Requirements(gpu=True),
        payload={"goal": "Fix the authentication bug in the login flow"},
    )
    loc = wf.step(
        "localization",
        handler="run_tests",
        capabilities=["shell_operations", "file_operations"],
        after=[plan],
    )
    und = wf.step(
        "understanding",
        handler="analyze",
        capabilities=["coding", "debugging"],
        after=[loc],
        interactive=True,
    )
    fix = wf.step("fix", handler="fix", capabilities=["coding"], sticky_to=und)
    tests = wf.step("tests", handler="run_tests", capabilities=["testing"], after=[fix])
    browser = wf.step("browser", handler="browse", capabilities=["browser_operations"], after=[fix])
    wf.step("review", handler="review", capabilities=["reviewing"], after=[tests, browser])
    return wf.build()


def artifact(name: str, media_type: str = "application/octet-stream") -> ArtifactRef:
    digest = "sha256:" + hashlib.sha256(name.encode()).hexdigest()
    return ArtifactRef(digest=digest, name=name, size=len(name), media_type=media_type)


def task_record(
    spec: WorkflowSpec,
    step: str,
    status: TaskStatus,
    *,
    submitted: float = 0.0,
    started: float | None = None,
    ended: float | None = None,
    worker: str | None = None,
    region: str = "",
    **fields: Any,
) -> TaskRecord:
    """A task record for ``step`` as the orchestrator would keep it."""
    template = next(s.task for s in spec.steps if s.name == step)
    task = template.model_copy(update={"id": step_task_id(spec.id, step)})
    attempts = []
    if worker is not None:
        attempts.append(
            AttemptRecord(
                attempt=1,
                worker_id=worker,
                region=region,
                dispatched_at=submitted,
                started_at=started,
                ended_at=ended,
                status=status,
            )
        )
    return TaskRecord(
        spec=task,
        status=status,
        attempt=len(attempts),
        worker_id=worker,
        attempts=attempts,
        submitted_at=submitted,
        started_at=started,
        ended_at=ended,
        **fields,
    )
