"""Workflows: submit, list with filters, status document, cancel."""

from __future__ import annotations

import fnmatch
from typing import Annotated

from fastapi import APIRouter, Query

from worldpool.api.errors import ApiError
from worldpool.api.routers.tasks import ERRORS, LATER
from worldpool.api.schemas import CancelResult, WorkflowSummary
from worldpool.api.state import State
from worldpool.models import WorkflowRecord, WorkflowSpec, WorkflowState, WorkflowStatus

router = APIRouter(tags=["workflows"], responses=ERRORS)


@router.post("/api/v1/workflows", status_code=201, response_model=WorkflowRecord)
async def submit_workflow(
    spec: WorkflowSpec, api: State, later: Annotated[bool, LATER] = False
) -> WorkflowRecord:
    """Validate the DAG and start it (admin). 422 with the reason if the DAG is invalid,
    or if a step names a handler no worker has ever offered (unless ``?later=true``)."""
    if not later:
        await api.offered.check(step.task.handler for step in spec.steps)
    return await api.orchestrator.submit_workflow(spec)


@router.get("/api/v1/workflows", response_model=list[WorkflowSummary])
async def list_workflows(
    api: State,
    status: Annotated[WorkflowState | None, Query(description="only this state")] = None,
    name: Annotated[str | None, Query(max_length=128, description="name or glob ('ci-*')")] = None,
    since: Annotated[float | None, Query(description="submitted at or after (epoch s)")] = None,
    until: Annotated[float | None, Query(description="submitted before (epoch s)")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[WorkflowSummary]:
    """Workflows, newest first."""
    if since is not None and until is not None and until < since:
        raise ApiError(422, "'until' is before 'since': swap them or drop one")
    records = await api.orchestrator.list_workflows()
    chosen = [
        r
        for r in records
        if (status is None or r.status is status)
        and (name is None or fnmatch.fnmatchcase(r.spec.name, name))
        and (since is None or r.submitted_at >= since)
        and (until is None or r.submitted_at < until)
    ]
    chosen.sort(key=lambda r: r.submitted_at, reverse=True)
    return [WorkflowSummary.of(r) for r in chosen[:limit]]


@router.get("/api/v1/workflows/{workflow_id}", response_model=WorkflowStatus)
async def workflow_status(workflow_id: str, api: State) -> WorkflowStatus:
    """The status document: every step's worker, region, timing, tokens, cost; the ETA."""
    return await api.orchestrator.workflow_status(workflow_id)


@router.post("/api/v1/workflows/{workflow_id}/cancel", response_model=CancelResult)
async def cancel_workflow(workflow_id: str, api: State) -> CancelResult:
    """Cancel a workflow and its running steps; 409 if it has already ended (admin)."""
    record = await api.orchestrator.get_workflow(workflow_id)
    if not await api.orchestrator.cancel(record.id):
        raise ApiError(
            409,
            f"workflow {workflow_id!r} already ended ({record.status.value}); nothing to cancel",
        )
    return CancelResult(id=workflow_id, cancelled=True)
