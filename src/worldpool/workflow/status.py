"""The workflow status document (the seed's monitoring JSON, and more) and its ETA.

Pure: built from a :class:`WorkflowRecord`, its task records and, optionally, the worker
profiles; the clock is an argument. Import these through :mod:`worldpool.workflow.builder`.

Step ``status`` is the task's status, or, for a step with no task yet, one of
``waiting`` (parents not finished), ``blocked`` (an ancestor failed or was cancelled, so
it will never run) or ``skipped`` (the workflow ended before it started).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from statistics import fmean

from worldpool.models import (
    ArtifactRef,
    AttemptCost,
    JSONValue,
    RoutingDecision,
    StepSpec,
    StepStatus,
    TaskRecord,
    TaskStatus,
    WorkerProfile,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowStatus,
    now_s,
)
from worldpool.workflow.dag import DOOMED, blocked_steps, topological_order, workflow_state

STEP_WAITING = "waiting"
STEP_BLOCKED = "blocked"
STEP_SKIPPED = "skipped"
SCREENSHOT_MEDIA_TYPE = "image/png"


def _ms(seconds: float) -> int:
    return max(0, round(seconds * 1000))


def _duration_s(task: TaskRecord, now: float) -> float | None:
    """Run time: start to end, or start to ``now`` while it runs."""
    started = _started_at(task)
    if started is None:
        return None
    end = task.ended_at if task.ended_at is not None else now
    return max(0.0, end - started)


def _started_at(task: TaskRecord) -> float | None:
    if task.started_at is not None:
        return task.started_at
    return task.attempts[-1].started_at if task.attempts else None


def _meta_str(meta: Mapping[str, JSONValue], key: str) -> str | None:
    value = meta.get(key)
    return None if value is None else str(value)


def _screenshot(outputs: Mapping[str, ArtifactRef]) -> ArtifactRef | None:
    """The PNG output, preferring one whose name says it is a screenshot."""
    pngs = [ref for ref in outputs.values() if ref.media_type == SCREENSHOT_MEDIA_TYPE]
    named = [ref for ref in pngs if "screenshot" in ref.name.lower()]
    return (named or pngs)[0] if pngs else None


def _attempt_costs(task: TaskRecord, now: float) -> list[AttemptCost]:
    """Each attempt's charge; a running attempt's compute so far, at its worker's rate."""
    out = []
    for a in task.attempts:
        end = a.ended_at if a.ended_at is not None else now
        held_s = max(0.0, end - a.dispatched_at)
        compute = a.compute_cost_usd if a.ended_at is not None else a.cost_per_hour * held_s / 3600
        out.append(
            AttemptCost(
                attempt=a.attempt,
                worker=a.worker_id,
                outcome=a.outcome.value if a.outcome is not None else None,
                held_ms=_ms(held_s),
                cost_per_hour=a.cost_per_hour,
                compute_cost_usd=round(compute, 9),
                token_cost_usd=round(a.token_cost_usd, 9),
                cost_usd=round(compute + a.token_cost_usd, 9),
            )
        )
    return out


def _gpu_label(profile: WorkerProfile | None) -> str | None:
    if profile is None or not profile.hardware.gpus:
        return None
    return ", ".join(
        f"{g.count}x {g.model}" if g.count > 1 else g.model for g in profile.hardware.gpus
    )


def routing_reason(decision: RoutingDecision | None) -> str | None:
    """One line: why the winner won (its leading scorers and margin over the runner-up).

    A scorer's share is ``weight * score / sum(weights)`` over the scorers that applied,
    so the shares of a worker add up to its total.
    """
    if decision is None or decision.winner is None:
        return None
    by_id = {c.worker_id: c for c in decision.candidates}
    win = by_id.get(decision.winner)
    if win is None:
        return f"routed to {decision.winner} (its scores were not kept in the report)"
    weights = {s: decision.weights.get(s, 0.0) for s in win.scores}
    total_w = sum(weights.values()) or 1.0

    def share(scores: Mapping[str, float], scorer: str) -> float:
        return weights[scorer] * scores.get(scorer, 0.0) / total_w

    run = by_id.get(decision.runner_up) if decision.runner_up else None
    if run is None:
        top = sorted(win.scores, key=lambda s: -share(win.scores, s))[:3]
        parts = ", ".join(f"{s} {share(win.scores, s):.2f}" for s in top)
        alone = "only feasible worker" if decision.feasible_count <= 1 else "best worker"
        return f"{win.worker_id} scored {win.total:.3f}, the {alone} of {decision.pool_size}" + (
            f"; top scorers: {parts}" if parts else ""
        )
    gains = sorted(
        ((share(win.scores, s) - share(run.scores, s), s) for s in win.scores), reverse=True
    )
    leads = [f"{s} +{gain:.2f}" for gain, s in gains[:3] if gain >= 0.005]
    why = f"; ahead on {', '.join(leads)}" if leads else "; won the tie-break"
    return (
        f"{win.worker_id} scored {win.total:.3f}, {win.total - run.total:+.3f} over "
        f"runner-up {run.worker_id} ({run.total:.3f}){why}"
    )


def _waiting_reason(step: StepSpec, tasks: Mapping[str, TaskRecord], blocked: set[str]) -> str:
    if step.name in blocked:
        for parent in step.after:
            task = tasks.get(parent)
            if task is not None and task.status in DOOMED:
                return f"will not run: parent {parent!r} {task.status.value}"
            if parent in blocked:
                return f"will not run: parent {parent!r} is blocked"
    unfinished = [p for p in step.after if p not in tasks or not tasks[p].status.terminal]
    return f"waiting for {', '.join(unfinished)}" if unfinished else "ready to be submitted"


def _step_status(
    step: StepSpec,
    task: TaskRecord | None,
    task_id: str | None,
    workers: Mapping[str, WorkerProfile],
    now: float,
) -> StepStatus:
    base = StepStatus(
        step=step.name, task_id=task_id, handler=step.task.handler, after=list(step.after)
    )
    if task is None:
        return base
    last = task.attempts[-1] if task.attempts else None
    worker = task.worker_id or (last.worker_id if last else None)
    profile = workers.get(worker) if worker else None
    region = (last.region if last and last.worker_id == worker else "") or (
        profile.location.region if profile else None
    )
    started = _started_at(task)
    waited_until = started if started is not None else (task.ended_at or now)
    duration = _duration_s(task, now)
    attempts = _attempt_costs(task, now)
    # The record holds what ended attempts cost; a running one adds its compute so far.
    running = [a for a in attempts if a.outcome is None]
    compute = task.compute_cost_usd + sum(a.compute_cost_usd for a in running)
    cost = task.cost_usd + sum(a.compute_cost_usd for a in running)
    return base.model_copy(
        update={
            "task_id": task.id,
            "worker": worker,
            "region": region or None,
            "gpu": _gpu_label(profile),
            "status": task.status.value,
            "attempts": max(task.attempt, len(task.attempts)),
            "queued_at": task.submitted_at,
            "started_at": started,
            "ended_at": task.ended_at,
            "queue_wait_ms": _ms(waited_until - task.submitted_at),
            "duration_ms": None if duration is None else _ms(duration),
            "tokens_used": task.tokens_used,
            "cost_usd": round(cost, 9),
            "compute_cost_usd": round(compute, 9),
            "token_cost_usd": round(task.token_cost_usd, 9),
            "attempt_costs": attempts,
            "vm_id": _meta_str(task.meta, "vm_id"),
            "sandbox_id": _meta_str(task.meta, "sandbox_id"),
            "vnc_url": _meta_str(task.meta, "vnc_url"),
            "screenshot": _screenshot(task.outputs),
            "outputs": dict(task.outputs),
            "reason": routing_reason(task.decision),
            "pending_reason": task.pending_reason,
            "error": task.error,
            "result": task.result,
        }
    )


def _tasks_by_step(
    record: WorkflowRecord, tasks: Mapping[str, TaskRecord]
) -> dict[str, TaskRecord]:
    """Tasks keyed by step name; ``tasks`` may be keyed by step name or by task id."""
    found: dict[str, TaskRecord] = {}
    for step in record.spec.steps:
        task = tasks.get(step.name)
        if task is None and step.name in record.task_ids:
            task = tasks.get(record.task_ids[step.name])
        if task is not None:
            found[step.name] = task
    return found


def estimate_completion_sec(
    spec: WorkflowSpec, tasks: Mapping[str, TaskRecord], now: float
) -> float | None:
    """Seconds until the workflow settles, from the durations observed so far.

    Each unfinished step is expected to take the mean run time of the succeeded steps
    with the same handler, else the mean of all succeeded steps; a running step counts
    only what is left of that (never below zero). The answer is the longest chain of
    expected times through the unfinished steps (the remaining critical path). Steps that
    will never run (failed, cancelled, blocked) count zero. Queue waits are not modelled.
    None while nothing has succeeded yet (no observation to go on); 0.0 when settled.
    ``tasks`` is keyed by step name.
    """
    statuses = {name: task.status for name, task in tasks.items()}
    if workflow_state(spec, statuses).terminal:
        return 0.0
    observed: dict[str, list[float]] = defaultdict(list)
    for done in tasks.values():
        duration = _duration_s(done, now)
        if done.status == TaskStatus.SUCCEEDED and duration is not None:
            observed[done.spec.handler].append(duration)
    if not observed:
        return None
    overall = fmean(d for ds in observed.values() for d in ds)
    never = set(blocked_steps(spec, statuses))
    finish: dict[str, float] = {}
    steps_by_name = {step.name: step for step in spec.steps}
    for name in topological_order(spec):
        step = steps_by_name[name]
        task = tasks.get(name)
        if name in never or (task is not None and task.status.terminal):
            finish[name] = 0.0
            continue
        after = max((finish[p] for p in step.after), default=0.0)
        handler_runs = observed.get(step.task.handler)
        expected = fmean(handler_runs) if handler_runs else overall
        if task is not None and task.status == TaskStatus.RUNNING:
            expected = max(0.0, expected - (_duration_s(task, now) or 0.0))
        finish[name] = after + expected
    return round(max(finish.values(), default=0.0), 3)


def status_document(
    record: WorkflowRecord,
    tasks: Mapping[str, TaskRecord],
    workers: Mapping[str, WorkerProfile] | None = None,
    now: float | None = None,
) -> WorkflowStatus:
    """The status document of one workflow; steps in topological order.

    ``tasks`` holds the workflow's task records keyed by step name (or by task id);
    ``workers`` (by worker id) adds each step's GPU model and fills in missing regions.
    """
    now = now_s() if now is None else now
    spec = record.spec
    by_step = _tasks_by_step(record, tasks)
    statuses = {name: task.status for name, task in by_step.items()}
    state = record.status if record.status.terminal else workflow_state(spec, statuses)
    blocked = set(blocked_steps(spec, statuses))
    steps_by_name = {step.name: step for step in spec.steps}
    steps: list[StepStatus] = []
    for name in topological_order(spec):
        step = steps_by_name[name]
        doc = _step_status(step, by_step.get(name), record.task_ids.get(name), workers or {}, now)
        if name not in by_step:
            if name in blocked:
                status = STEP_BLOCKED
            else:
                status = STEP_SKIPPED if state.terminal else STEP_WAITING
            reason = _waiting_reason(step, by_step, blocked)
            if status == STEP_SKIPPED:
                reason = f"workflow {state.value} before this step started"
            doc = doc.model_copy(update={"status": status, "pending_reason": reason})
        steps.append(doc)
    return WorkflowStatus(
        id=spec.id,
        name=spec.name,
        status=state,
        steps=steps,
        submitted_at=record.submitted_at,
        ended_at=record.ended_at,
        # Sums of the steps' (rounded) figures, so the document adds up exactly.
        total_cost_usd=sum(s.cost_usd for s in steps),
        total_compute_cost_usd=sum(s.compute_cost_usd for s in steps),
        total_token_cost_usd=sum(s.token_cost_usd for s in steps),
        total_tokens=sum(t.tokens_used for t in by_step.values()),
        estimated_completion_sec=(
            0.0 if state.terminal else estimate_completion_sec(spec, by_step, now)
        ),
        error=record.error,
    )
