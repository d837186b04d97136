"""Tasks: submit, read (attempts, logs, artifacts, routing decision), cancel, explain."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from worldpool.api.errors import ApiError
from worldpool.api.schemas import CancelResult, ErrorBody
from worldpool.api.state import State
from worldpool.models import RoutingDecision, TaskRecord, TaskSpec

ERRORS: dict[int | str, dict[str, object]] = {
    code: {"model": ErrorBody} for code in (400, 401, 403, 404, 409, 413, 422)
}
router = APIRouter(tags=["tasks"], responses=ERRORS)


LATER = Query(
    description="accept a handler no worker has offered yet: the work is held until one "
    "registers (without it, such a handler is refused with 422 and a did-you-mean)"
)


@router.post("/api/v1/tasks", status_code=201, response_model=TaskRecord)
async def submit_task(
    spec: TaskSpec, api: State, later: Annotated[bool, LATER] = False
) -> TaskRecord:
    """Queue one task; it is routed as soon as a worker fits (admin). A handler no worker
    has ever offered is refused (422, with a did-you-mean) unless ``?later=true``."""
    if not later:
        await api.offered.check([spec.handler])
    return await api.orchestrator.submit(spec)


@router.get("/api/v1/tasks/{task_id}", response_model=TaskRecord)
async def get_task(task_id: str, api: State) -> TaskRecord:
    """The task's record: status, attempts, logs, outputs, and the routing decision."""
    return await api.orchestrator.get_task(task_id)


@router.post("/api/v1/tasks/{task_id}/cancel", response_model=CancelResult)
async def cancel_task(task_id: str, api: State) -> CancelResult:
    """Cancel a task; 409 if it has already ended (admin)."""
    record = await api.orchestrator.get_task(task_id)  # 404 before anything changes
    if not await api.orchestrator.cancel(record.id):
        raise ApiError(
            409, f"task {task_id!r} already ended ({record.status.value}); nothing to cancel"
        )
    return CancelResult(id=task_id, cancelled=True)


@router.post("/api/v1/explain", response_model=RoutingDecision)
async def explain(spec: TaskSpec, api: State) -> RoutingDecision:
    """Dry run: where this task would go now, and why. Changes nothing."""
    return await api.orchestrator.explain(spec)


@router.get("/api/v1/tasks/{task_id}/explain", response_model=RoutingDecision)
async def explain_task(task_id: str, api: State) -> RoutingDecision:
    """The task's full routing explanation: every candidate, verdicts, scores, runner-up,
    why pending and the smallest fix. Recorded for a task that waited; for a dispatched
    task (whose record keeps the winner and runner-up only) computed now, on demand."""
    return await api.orchestrator.explain_task(task_id)
