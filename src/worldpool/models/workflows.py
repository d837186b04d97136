"""Workflows: the DAG spec and its steps, the stored record, the status document."""

from __future__ import annotations

from enum import Enum

from pydantic import Field, model_validator

from worldpool.models.base import JSONValue, Model, new_id, now_s
from worldpool.models.tasks import ArtifactRef, TaskSpec, TaskStatus


class StepSpec(Model):
    """One step of a workflow: a task template plus its dependencies."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    task: TaskSpec
    after: list[str] = Field(default_factory=list)
    sticky_to: str | None = Field(
        default=None, description="run on the same worker as this earlier step (soft affinity)"
    )


class WorkflowSpec(Model):
    id: str = Field(default_factory=lambda: new_id("wf"), pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    name: str = Field(default="workflow", min_length=1, max_length=128)
    steps: list[StepSpec] = Field(min_length=1)
    user_location: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_steps(self) -> WorkflowSpec:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(
                    f"step name {step.name!r} is used twice; step names must be unique"
                )
            seen.add(step.name)
        return self


class WorkflowState(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in {WorkflowState.SUCCEEDED, WorkflowState.FAILED, WorkflowState.CANCELLED}


class WorkflowRecord(Model):
    """The orchestrator's view of a workflow: its spec and one task id per step."""

    spec: WorkflowSpec
    version: int = Field(default=0, ge=0, description="bumped by every successful put (CAS)")
    status: WorkflowState = WorkflowState.PENDING
    task_ids: dict[str, str] = Field(default_factory=dict, description="step -> task id")
    submitted_at: float = Field(default_factory=now_s)
    ended_at: float | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


class AttemptCost(Model):
    """One attempt of a step in the status document: where it ran and what it cost."""

    attempt: int
    worker: str
    outcome: str | None = Field(default=None, description="None while it runs")
    held_ms: int = Field(default=0, description="dispatch to end (to now while it runs)")
    cost_per_hour: float = 0.0
    compute_cost_usd: float = 0.0
    token_cost_usd: float = 0.0
    cost_usd: float = 0.0


class StepStatus(Model):
    """One step in the status document (the seed's shape, and more)."""

    step: str
    task_id: str | None = None
    handler: str = ""
    after: list[str] = Field(default_factory=list)
    worker: str | None = None
    region: str | None = None
    gpu: str | None = None
    status: str = TaskStatus.PENDING.value
    attempts: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    queue_wait_ms: int | None = None
    duration_ms: int | None = None
    tokens_used: int = 0
    cost_usd: float = Field(default=0.0, description="compute_cost_usd + token_cost_usd")
    compute_cost_usd: float = Field(default=0.0, description="worker cost_per_hour x slot time")
    token_cost_usd: float = Field(default=0.0, description="token/API cost the handler reported")
    attempt_costs: list[AttemptCost] = Field(default_factory=list)
    vm_id: str | None = None
    sandbox_id: str | None = None
    vnc_url: str | None = None
    screenshot: ArtifactRef | None = None
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    reason: str | None = Field(default=None, description="one line: why this worker won")
    pending_reason: str | None = None
    error: str | None = None
    result: JSONValue = Field(default=None, description="the step's value once it succeeded")


class WorkflowStatus(Model):
    """The status document pushed to watchers."""

    id: str
    name: str
    status: WorkflowState
    steps: list[StepStatus]
    submitted_at: float
    ended_at: float | None = None
    total_cost_usd: float = 0.0
    total_compute_cost_usd: float = 0.0
    total_token_cost_usd: float = 0.0
    total_tokens: int = 0
    estimated_completion_sec: float | None = None
    error: str | None = None
