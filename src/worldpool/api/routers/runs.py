"""Runs: one list of tasks and workflows with filters and paging; a task's log lines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from worldpool.api.errors import ApiError
from worldpool.api.routers.tasks import ERRORS
from worldpool.api.state import State
from worldpool.artifacts.results import task_value
from worldpool.client.runs import Kind, RunFilter, RunSummary, select_runs
from worldpool.models import JSONValue, Model

router = APIRouter(tags=["runs"], responses=ERRORS)

GLOB = r"^[A-Za-z0-9_.:*?\[\]-]+$"  # ids, names and region codes, with glob characters


class RunPage(Model):
    runs: list[RunSummary]
    total: int


class LogLine(Model):
    seq: int
    at: float | None
    stream: str
    text: str


class LogPage(Model):
    task_id: str
    lines: list[LogLine]
    next: int
    done: bool


@router.get("/api/v1/runs", response_model=RunPage)
async def list_runs(
    api: State,
    kind: Annotated[Kind | None, Query(description="only tasks or only workflows")] = None,
    status: Annotated[str | None, Query(max_length=32, pattern=r"^[a-z_]+$")] = None,
    handler: Annotated[str | None, Query(max_length=128, pattern=GLOB)] = None,
    worker: Annotated[str | None, Query(max_length=128, pattern=GLOB)] = None,
    region: Annotated[str | None, Query(max_length=64, pattern=GLOB)] = None,
    since: Annotated[float | None, Query(description="created at or after (epoch s)")] = None,
    until: Annotated[float | None, Query(description="created before (epoch s)")] = None,
    q: Annotated[
        str | None, Query(max_length=128, description="substring of id or workflow")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
) -> RunPage:
    """Tasks and workflows, newest first, filtered (globs on handler, worker and region;
    ``q`` matches any part of a run's id or its workflow id), ``limit`` at a time."""
    if since is not None and until is not None and until < since:
        raise ApiError(422, "'until' is before 'since': swap them or drop one")
    where = RunFilter(kind, status, handler, worker, region, since, until, q)
    backend = api.orchestrator.backend
    tasks = [] if kind == "workflow" else await backend.list_tasks()
    flows = [] if kind == "task" else await backend.list_workflows()
    chosen = select_runs(tasks, flows, where)
    return RunPage(runs=chosen[offset : offset + limit], total=len(chosen))


@router.get("/api/v1/tasks/{task_id}/logs", response_model=LogPage)
async def task_logs(
    task_id: str,
    api: State,
    after: Annotated[int, Query(ge=0, le=1_000_000, description="lines already read")] = 0,
) -> LogPage:
    """A task's log lines (what its handler wrote through ``ctx.log``), from ``after`` on.
    Lines arrive with each attempt's report; ``done`` once the task has ended."""
    record = await api.orchestrator.get_task(task_id)
    at = record.ended_at
    lines = [
        LogLine(seq=i, at=at, stream="log", text=text)
        for i, text in enumerate(record.logs[after:], start=after)
    ]
    return LogPage(
        task_id=record.id,
        lines=lines,
        next=after + len(lines),
        done=record.status.terminal,
    )


class TaskRetried(Model):
    task_id: str
    status: str


class WorkflowRetried(Model):
    workflow_id: str
    retried_steps: list[str]


@router.post("/api/v1/tasks/{task_id}/retry", response_model=TaskRetried)
async def retry_task(task_id: str, api: State) -> TaskRetried:
    """Queue a failed or cancelled task again, with a fresh retry budget (a workflow's
    step: the workflow runs on from it). 409 if the task has not failed (admin)."""
    record = await api.orchestrator.get_task(task_id)  # 404 before anything changes
    if not await api.orchestrator.retry(record.id):
        raise ApiError(
            409,
            f"task {task_id!r} is {record.status.value}: only a failed or cancelled task can be retried",
        )
    return TaskRetried(
        task_id=record.id, status=(await api.orchestrator.get_task(task_id)).status.value
    )


@router.post("/api/v1/workflows/{workflow_id}/retry", response_model=WorkflowRetried)
async def retry_workflow(workflow_id: str, api: State) -> WorkflowRetried:
    """Run a failed or cancelled workflow on from its failed steps; 409 if it has not
    failed or been cancelled (admin)."""
    record = await api.orchestrator.get_workflow(workflow_id)
    steps = await api.orchestrator.retry(record.id)
    if not steps:
        raise ApiError(
            409,
            f"workflow {workflow_id!r} is {record.status.value}: only a failed or cancelled "
            "workflow can be retried",
        )
    return WorkflowRetried(workflow_id=record.id, retried_steps=steps)


class TaskResult(Model):
    task_id: str
    status: str
    result: JSONValue
    error: str | None


@router.get("/api/v1/tasks/{task_id}/result", response_model=TaskResult)
async def task_result(task_id: str, api: State) -> TaskResult:
    """A finished task's value (``result``) or its last error (``error``); 409 while it
    has not ended (wait for its ``task.succeeded`` / ``task.failed`` event, then ask).
    A value too large for a record is read from the artifact store and checked against
    its digest (the record's ``result_ref``), so ``result`` is always the full value."""
    record = await api.orchestrator.get_task(task_id)
    if not record.status.terminal:
        raise ApiError(
            409, f"task {task_id!r} is {record.status.value}: ask again once it has ended"
        )
    value = await task_value(api.orchestrator.artifacts, record)  # verified by digest
    return TaskResult(
        task_id=record.id, status=record.status.value, result=value, error=record.error
    )
