"""Response shapes the API adds on top of worldpool.models (for the OpenAPI schema)."""

from __future__ import annotations

from pydantic import Field

from worldpool.models import (
    Model,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkflowRecord,
    WorkflowState,
)


class ErrorDetail(Model):
    code: str = Field(description="machine-readable, e.g. 'not_found', 'validation_error'")
    message: str = Field(description="what is wrong and what to do")
    details: list[dict[str, object]] | None = None


class ErrorBody(Model):
    error: ErrorDetail


class WorkerView(Model):
    """A worker as the dashboard shows it."""

    id: str
    region: str
    macro_region: str
    city: str
    lat: float
    lon: float
    status: str
    running: int
    max_concurrency: int
    load: float = Field(description="running / max_concurrency, 0..1")
    heartbeat_age_s: float
    gpu: str | None = None
    profile: WorkerProfile
    state: WorkerState

    @classmethod
    def of(cls, worker: Worker, now: float) -> WorkerView:
        p, s = worker.profile, worker.state
        gpus = p.hardware.gpus
        return cls(
            id=p.id,
            region=p.location.region,
            macro_region=p.location.macro_region,
            city=p.location.city,
            lat=p.location.lat,
            lon=p.location.lon,
            status=s.status.value,
            running=s.running,
            max_concurrency=p.max_concurrency,
            load=min(1.0, s.running / p.max_concurrency),
            heartbeat_age_s=max(0.0, now - s.last_heartbeat),
            gpu=f"{gpus[0].count}x {gpus[0].model}" if gpus else None,
            profile=p,
            state=s,
        )


class WorkflowSummary(Model):
    id: str
    name: str
    status: WorkflowState
    steps: int
    submitted_at: float
    ended_at: float | None = None
    error: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @classmethod
    def of(cls, record: WorkflowRecord) -> WorkflowSummary:
        return cls(
            id=record.id,
            name=record.spec.name,
            status=record.status,
            steps=len(record.spec.steps),
            submitted_at=record.submitted_at,
            ended_at=record.ended_at,
            error=record.error,
            labels=record.spec.labels,
        )


class CancelResult(Model):
    id: str
    cancelled: bool


class Health(Model):
    status: str = "ok"
    backend: str
    workers_online: int
