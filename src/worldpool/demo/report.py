"""What the demo prints when the run has ended: the final table, why each step went where
it went, what the run cost (each attempt's worker, rate, slot time and charge, then the
total and its split) and the seed's status document."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from worldpool.embedded import EmbeddedPool
from worldpool.models import WorkflowStatus
from worldpool.render import cost_split, render_decision, render_status, usd


async def explain(console: Console, pool: EmbeddedPool, status: WorkflowStatus) -> None:
    """The final table, why each step went where it went, and the status document."""
    console.print()
    console.print(render_status(status))
    console.print("\n[bold]Why each step went where it went[/]")
    for step in status.steps:
        record = await pool.backend.get_task(step.task_id) if step.task_id else None
        if record is not None and record.decision is not None:
            console.print(render_decision(record.decision, limit=4))
        else:
            console.print(f"{step.step}: no routing decision recorded")
    console.print("\n[bold]What the run cost[/]")
    console.print(cost_explanation(status))
    console.print("\n[bold]Status document[/] (also: worldpool demo --json)")
    console.print_json(status.model_dump_json(include=_SEED_FIELDS))


def cost_explanation(status: WorkflowStatus) -> str:
    """Per step: each attempt's worker, its rate, how long it held the slot and what that
    came to, plus token cost; then the total and its split."""
    lines = []
    for step in status.steps:
        for a in step.attempt_costs:
            line = (
                f"  {step.step:<15} try {a.attempt} on {a.worker:<22} "
                f"${a.cost_per_hour:.2f}/h x {a.held_ms / 1000:.2f}s = {usd(a.compute_cost_usd)}"
            )
            if a.token_cost_usd:
                line += f" + tokens {usd(a.token_cost_usd)}"
            if a.outcome and a.outcome != "succeeded":
                line += f"  ({a.outcome}, still paid for)"
            lines.append(line)
    lines.append(f"  total {cost_split(status)}")
    return "\n".join(lines)


_SEED_FIELDS: Any = {
    "id": True,
    "status": True,
    "total_cost_usd": True,
    "total_compute_cost_usd": True,
    "total_token_cost_usd": True,
    "estimated_completion_sec": True,
    "steps": {
        "__all__": {
            "step",
            "worker",
            "region",
            "status",
            "attempts",
            "duration_ms",
            "tokens_used",
            "cost_usd",
            "compute_cost_usd",
            "token_cost_usd",
            "vm_id",
            "sandbox_id",
            "vnc_url",
            "screenshot",
        }
    },
}
