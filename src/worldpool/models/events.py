"""Events: everything that happens, appended to the backend's event log."""

from __future__ import annotations

from enum import Enum

from pydantic import Field

from worldpool.models.base import JSONValue, Model, now_s


class EventKind(str, Enum):
    WORKER_REGISTERED = "worker.registered"
    WORKER_ONLINE = "worker.online"
    WORKER_DRAINING = "worker.draining"
    WORKER_OFFLINE = "worker.offline"
    TASK_SUBMITTED = "task.submitted"
    TASK_ROUTED = "task.routed"
    TASK_UNSCHEDULABLE = "task.unschedulable"
    TASK_DISPATCHED = "task.dispatched"
    TASK_STARTED = "task.started"
    TASK_PROGRESS = "task.progress"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_RETRYING = "task.retrying"
    TASK_FAILOVER = "task.failover"
    TASK_TIMED_OUT = "task.timed_out"
    TASK_CANCELLED = "task.cancelled"
    TASK_DEAD_LETTERED = "task.dead_lettered"
    WORKFLOW_SUBMITTED = "workflow.submitted"
    WORKFLOW_SUCCEEDED = "workflow.succeeded"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"
    DEPLOYMENT_STATE_LOST = "deployment.state_lost"  # the backend came back empty / older
    SECURITY_REJECTED = "security.rejected"  # a forged/unsigned report or a refused worker


class Event(Model):
    """Something that happened. ``seq`` is assigned by the backend's event log."""

    kind: EventKind
    at: float = Field(default_factory=now_s)
    seq: str | None = Field(default=None, description="backend-assigned, monotonically ordered")
    task_id: str | None = None
    workflow_id: str | None = None
    step: str | None = None
    worker_id: str | None = None
    attempt: int | None = None
    message: str = ""
    data: dict[str, JSONValue] = Field(default_factory=dict)
