"""Runs: one summary row per task or workflow, and the filters the client, the CLI and the
API share (globs on handler, worker and region; a time window; a search string)."""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Literal

from worldpool.models import Model, TaskRecord, WorkflowRecord

Kind = Literal["task", "workflow"]


class RunSummary(Model):
    kind: Kind
    id: str
    status: str
    handler: str | None
    worker: str | None
    region: str | None
    workflow_id: str | None
    created_at: float
    updated_at: float
    name: str | None = None  # a workflow's name, a step's name


@dataclass(frozen=True, slots=True)
class RunFilter:
    kind: Kind | None = None
    status: str | None = None
    handler: str | None = None  # glob
    worker: str | None = None  # glob
    region: str | None = None  # glob
    since: float | None = None  # created at or after (epoch s)
    until: float | None = None  # created before (epoch s)
    q: str | None = None  # part of the run's id, its workflow id or its name

    @property
    def task_only(self) -> bool:
        """Workflows have no handler, worker or region: such a filter keeps tasks only."""
        return any(v is not None for v in (self.handler, self.worker, self.region))

    def keeps(self, run: RunSummary) -> bool:
        return (
            (self.kind is None or run.kind == self.kind)
            and (self.status is None or run.status == self.status)
            and _matches(run.handler, self.handler)
            and _matches(run.worker, self.worker)
            and _matches(run.region, self.region)
            and (self.since is None or run.created_at >= self.since)
            and (self.until is None or run.created_at < self.until)
            and (
                self.q is None
                or any(self.q in (v or "") for v in (run.id, run.workflow_id, run.name))
            )
        )


def _matches(value: str | None, pattern: str | None) -> bool:
    return pattern is None or (value is not None and fnmatch.fnmatchcase(value, pattern))


def task_run(record: TaskRecord) -> RunSummary:
    decision = record.decision
    worker = record.worker_id or (decision.winner if decision is not None else None)
    region = None
    if decision is not None and worker is not None:
        region = next(
            (c.region or None for c in decision.candidates if c.worker_id == worker), None
        )
    return RunSummary(
        kind="task",
        id=record.id,
        status=record.status.value,
        handler=record.spec.handler,
        worker=worker,
        region=region,
        workflow_id=record.spec.workflow_id,
        created_at=record.submitted_at,
        updated_at=record.ended_at or record.started_at or record.submitted_at,
        name=record.spec.step,
    )


def workflow_run(record: WorkflowRecord) -> RunSummary:
    return RunSummary(
        kind="workflow",
        id=record.id,
        status=record.status.value,
        handler=None,
        worker=None,
        region=None,
        workflow_id=record.id,
        created_at=record.submitted_at,
        updated_at=record.ended_at or record.submitted_at,
        name=record.spec.name,
    )


def select_runs(
    tasks: list[TaskRecord], workflows: list[WorkflowRecord], where: RunFilter
) -> list[RunSummary]:
    """The runs ``where`` keeps, newest first."""
    runs = [] if where.task_only else [workflow_run(w) for w in workflows]
    runs += [task_run(t) for t in tasks]
    chosen = [r for r in runs if where.keeps(r)]
    chosen.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    return chosen
