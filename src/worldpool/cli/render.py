"""Rich renderings of the status document and routing decisions (demo, watch, CLI)."""

from __future__ import annotations

import time

from rich.table import Table
from rich.text import Text

from worldpool.models import RoutingDecision, StepStatus, WorkflowStatus

STATUS_STYLE = {
    "pending": "dim",
    "dispatched": "cyan",
    "running": "bold yellow",
    "retrying": "magenta",
    "succeeded": "green",
    "failed": "bold red",
    "cancelled": "red",
}


def _duration(step: StepStatus) -> str:
    if step.duration_ms is None:
        return ""
    return f"{step.duration_ms / 1000:.1f}s"


def usd(amount: float) -> str:
    """Dollars with enough digits that a cent-fraction step is not shown as $0."""
    return f"${amount:.4f}" if amount == 0 or amount >= 0.01 else f"${amount:.6f}"


def cost_split(status: WorkflowStatus) -> str:
    """``$0.0123 (compute $0.0100 + tokens $0.0023)``: the total and what it is made of."""
    return (
        f"{usd(status.total_cost_usd)} (compute {usd(status.total_compute_cost_usd)}"
        f" + tokens {usd(status.total_token_cost_usd)})"
    )


def _step_cost(step: StepStatus) -> str:
    if not step.attempt_costs and not step.cost_usd:
        return ""
    text = usd(step.cost_usd)
    if len(step.attempt_costs) > 1:  # failed and lost attempts are paid for too
        text += " = " + " + ".join(usd(a.cost_usd) for a in step.attempt_costs)
    return text


def render_status(status: WorkflowStatus) -> Table:
    """The status document as a table: one row per step, its cost (each attempt's when
    it took more than one) and the workflow's total split into compute and tokens."""
    eta = status.estimated_completion_sec
    title = (
        f"{status.name} [{status.id}]  {status.status.value}  "
        f"cost {cost_split(status)}  tokens {status.total_tokens}"
        + (f"  ETA {eta:.0f}s" if eta is not None and not status.status.terminal else "")
    )
    table = Table(title=title, title_justify="left", expand=False)
    for column in ("step", "status", "worker", "region", "gpu", "try", "time", "cost", "why"):
        table.add_column(column, overflow="fold")
    for step in status.steps:
        why = step.error or step.pending_reason or step.reason or ""
        table.add_row(
            step.step,
            Text(step.status, style=STATUS_STYLE.get(step.status, "")),
            step.worker or "",
            step.region or "",
            step.gpu or "",
            str(step.attempts or ""),
            _duration(step),
            _step_cost(step),
            Text(why, style="red" if step.error else "dim"),
        )
    return table


def render_decision(decision: RoutingDecision, limit: int = 8) -> Table:
    """Why the winner won: candidates with their per-scorer scores and verdicts."""
    scorers = sorted({name for c in decision.candidates for name in c.scores})
    title = (
        f"task {decision.task_id}: winner {decision.winner or '-'}"
        f" (runner-up {decision.runner_up or '-'}); {decision.feasible_count} of "
        f"{decision.pool_size} workers feasible"
    )
    table = Table(title=title, title_justify="left")
    table.add_column("worker")
    table.add_column("total", justify="right")
    for name in scorers:
        weight = decision.weights.get(name, 0.0)
        table.add_column(f"{name}\nw={weight:g}", justify="right")
    table.add_column("excluded because")
    for candidate in decision.candidates[:limit]:
        failing = [v for v in candidate.verdicts if not v.ok]
        table.add_row(
            Text(
                candidate.worker_id,
                style="bold green" if candidate.worker_id == decision.winner else "",
            ),
            f"{candidate.total:.3f}" if candidate.feasible else "-",
            *[f"{candidate.scores[n]:.2f}" if n in candidate.scores else "" for n in scorers],
            "; ".join(f"{v.plugin}: {v.reason}" for v in failing),
        )
    return table


def clock(at: float) -> str:
    return time.strftime("%H:%M:%S", time.localtime(at))
