"""Workload files: JSONL traces, and replay of a real deployment's event log.

Trace format, one JSON object per line (``#`` comments and blank lines are skipped)::

    {"at": 12.5, "task": {"handler": "analyze", "capabilities": ["coding"],
     "interactive": true, "user_location": "tokyo"}, "work_s": 6, "goal_s": 20}
    {"at": 60, "workflow": {...WorkflowSpec...}, "work_s": {"plan": 8}, "out_bytes": {"plan": 2e4}}

``at`` is seconds since the start of the run; ``work_s`` (run time on a reference worker)
defaults to the handler's median in :data:`~worldpool.sim.workload.HANDLER_WORK_S`;
optional ``class``, ``goal_s``, ``rounds``, ``out_bytes``. Every bad line is reported as
``file:line: reason``; unknown fields are errors.

Event-log replay reads ``worldpool.models.Event`` JSON lines: each ``task.submitted``
becomes a task arriving at the same offset from the first event; its run time is the
last ``task.started`` → ``task.succeeded``/``task.failed`` span. The spec comes from
``data.spec`` when the event carries it, otherwise only the handler is known (from
``data.handler`` or the message ``handler NAME``). Workflow steps replay as the tasks the
orchestrator submitted when they became ready.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pydantic
from pydantic import BaseModel, ConfigDict, Field

from worldpool.errors import ConfigError
from worldpool.models import Event, EventKind, TaskSpec, WorkflowSpec
from worldpool.sim.workload_table import HANDLER_WORK_S, Workload, WorkloadBuilder

MAX_ERRORS = 20


class TraceLine(BaseModel):
    model_config = ConfigDict(extra="forbid")

    at: float = Field(ge=0)
    task: TaskSpec | None = None
    workflow: WorkflowSpec | None = None
    work_s: float | dict[str, float] | None = None
    goal_s: float | None = Field(default=None, gt=0)
    rounds: int = Field(default=0, ge=0)
    out_bytes: int | dict[str, int] = 0
    class_: str | None = Field(default=None, alias="class")


def _lines(path: Path) -> list[tuple[int, str]]:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from None
    return [
        (n, ln)
        for n, ln in enumerate(text.splitlines(), 1)
        if ln.strip() and not ln.lstrip().startswith("#")
    ]


def _why(exc: Exception) -> str:
    if isinstance(exc, pydantic.ValidationError):
        return "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'line'}: {e['msg']}" for e in exc.errors()
        )
    return str(exc)


def _raise(path: Path, errors: list[str], what: str) -> None:
    if errors:
        more = f"\n  ... and {len(errors) - MAX_ERRORS} more" if len(errors) > MAX_ERRORS else ""
        raise ConfigError(f"bad {what} {path}:\n  " + "\n  ".join(errors[:MAX_ERRORS]) + more)


def load_trace(path: str | Path) -> Workload:
    """A workload from a JSONL trace (see the module doc)."""
    path = Path(path)
    b = WorkloadBuilder()
    errors: list[str] = []
    for n, line in _lines(path):
        where = f"{path}:{n}"
        try:
            item = TraceLine.model_validate_json(line)
            _add(b, item, where)
        except (pydantic.ValidationError, ConfigError, ValueError) as exc:
            errors.append(f"{where}: {_why(exc)}")
    _raise(path, errors, "trace file")
    if not len(b):
        raise ConfigError(f"{path}: the trace has no tasks")
    return b.build()


def _add(b: WorkloadBuilder, item: TraceLine, where: str) -> None:
    if (item.task is None) == (item.workflow is None):
        raise ConfigError("each line needs exactly one of 'task' or 'workflow'")
    if item.task is not None:
        if isinstance(item.work_s, dict) or isinstance(item.out_bytes, dict):
            raise ConfigError("for a task, work_s and out_bytes are numbers, not per-step maps")
        default = HANDLER_WORK_S.get(item.task.handler, 10.0)
        run_s = item.work_s if item.work_s is not None else default
        b.add_task(
            item.task,
            item.at,
            run_s,
            cls=item.class_ or item.task.handler,
            goal_s=item.goal_s,
            rounds=item.rounds,
            out_bytes=item.out_bytes,
            source=where,
        )
        return
    assert item.workflow is not None
    steps = {s.name for s in item.workflow.steps}
    for label, value in (("work_s", item.work_s), ("out_bytes", item.out_bytes)):
        if isinstance(value, dict) and set(value) - steps:
            raise ConfigError(f"{label} names unknown steps {sorted(set(value) - steps)}")
    work = item.work_s if isinstance(item.work_s, dict) else None
    out = item.out_bytes if isinstance(item.out_bytes, dict) else None
    b.add_workflow(
        item.workflow,
        item.at,
        work,
        cls=item.class_ or "workflow",
        out_bytes=out,
        goal_s=item.goal_s,
        source=where,
    )


def load_event_log(path: str | Path) -> Workload:
    """A workload replaying the tasks of a recorded event log (see the module doc)."""
    path = Path(path)
    errors: list[str] = []
    submitted: dict[str, tuple[float, dict[str, Any], str]] = {}
    started: dict[str, float] = {}
    ran: dict[str, float] = {}
    t0: float | None = None
    for n, line in _lines(path):
        where = f"{path}:{n}"
        try:
            ev = Event.model_validate_json(line)
        except pydantic.ValidationError as exc:
            errors.append(f"{where}: not an event: {_why(exc)}")
            continue
        t0 = ev.at if t0 is None else min(t0, ev.at)
        if ev.task_id is None:
            continue
        if ev.kind is EventKind.TASK_SUBMITTED:
            spec = ev.data.get("spec")
            handler = ev.data.get("handler") or ev.message.removeprefix("handler ").strip()
            if not isinstance(spec, dict) and not handler:
                errors.append(
                    f"{where}: task.submitted for {ev.task_id} names no handler "
                    "(needs data.spec, data.handler or message 'handler NAME')"
                )
                continue
            body = spec if isinstance(spec, dict) else {"handler": handler}
            submitted.setdefault(ev.task_id, (ev.at, {**body, "id": ev.task_id}, where))
        elif ev.kind is EventKind.TASK_STARTED:
            started[ev.task_id] = ev.at
        elif ev.kind in (EventKind.TASK_SUCCEEDED, EventKind.TASK_FAILED) and (
            ev.task_id in started
        ):
            ran[ev.task_id] = ev.at - started[ev.task_id]
    b = WorkloadBuilder()
    for task_id, (at, body, where) in submitted.items():
        try:
            spec = TaskSpec.model_validate(body)
            work = ran.get(task_id, HANDLER_WORK_S.get(spec.handler, 10.0))
            b.add_task(spec, at - (t0 or 0.0), max(0.0, work), cls=spec.handler, source=where)
        except (pydantic.ValidationError, ConfigError) as exc:
            errors.append(f"{where}: {_why(exc)}")
    _raise(path, errors, "event log")
    if not submitted:
        raise ConfigError(f"{path}: the event log has no task.submitted events to replay")
    return b.build()


def dump_trace_line(at: float, spec: TaskSpec | WorkflowSpec, **extra: Any) -> str:
    """One trace line for ``spec`` (used by tests and by users writing traces)."""
    key = "task" if isinstance(spec, TaskSpec) else "workflow"
    return json.dumps({"at": at, key: spec.model_dump(mode="json", exclude_defaults=True), **extra})
