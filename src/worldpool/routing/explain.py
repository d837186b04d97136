"""A plain-text table of a RoutingDecision, for the CLI (``worldpool explain``)."""

from __future__ import annotations

from worldpool.models import CandidateReport, RoutingDecision

DETAIL_ROWS = 5  # candidates whose scorer inputs are spelled out under the table


def _summary(decision: RoutingDecision) -> str:
    head = f"task {decision.task_id}: "
    if decision.winner:
        head += f"-> {decision.winner}"
        if decision.runner_up:
            head += f" (runner-up {decision.runner_up})"
    elif decision.waiting_for_affinity:
        head += "waiting for its affinity worker"
    else:
        head += "unschedulable"
    return (
        f"{head}; {decision.feasible_count}/{decision.pool_size} workers feasible, "
        f"decided in {decision.duration_us / 1000:.3f} ms"
    )


def _row(c: CandidateReport, scorers: list[str], rank: int | None) -> list[str]:
    cells = [str(rank) if rank is not None else "-", c.worker_id, c.region]
    if c.feasible:
        cells.append(f"{c.total:.3f}")
        cells += [f"{c.scores[s]:.2f}" if s in c.scores else "" for s in scorers]
        cells.append("ok")
    else:
        cells.append("-")
        cells += ["" for _ in scorers]
        failing = [v for v in c.verdicts if not v.ok]
        cells.append("; ".join(f"{v.plugin}: {v.reason}" for v in failing) or "excluded")
    return cells


def explain_table(decision: RoutingDecision) -> str:
    """The decision as aligned plain text: summary, ranked candidates, reasons."""
    scored = {name for c in decision.candidates for name in c.scores}
    scorers = [s for s in decision.weights if s in scored]
    header = ["#", "worker", "region", "total"]
    header += [f"{s} ({decision.weights[s]:g})" for s in scorers] + ["verdict"]
    rows = [header]
    rank = 0
    for c in decision.candidates:
        rank += c.feasible
        rows.append(_row(c, scorers, rank if c.feasible else None))
    widths = [max(len(r[i]) for r in rows) for i in range(len(header) - 1)]
    lines = [_summary(decision), ""]
    for r in rows:
        padded = [cell.ljust(w) for cell, w in zip(r, widths, strict=False)]
        lines.append("  ".join([*padded, r[-1]]))
    for rank_, c in enumerate((c for c in decision.candidates if c.details), start=1):
        if rank_ > DETAIL_ROWS:
            break
        said = "; ".join(f"{name}: {text}" for name, text in c.details.items())
        lines.append(f"  {c.worker_id}: {said}")
    if decision.omitted_candidates:
        lines.append(f"... {decision.omitted_candidates} more workers not listed")
    if decision.excluded_by:
        counts = ", ".join(f"{k}={v}" for k, v in sorted(decision.excluded_by.items()))
        lines.append(f"excluded: {counts}")
    lines += [f"reason: {r}" for r in decision.reasons]
    if decision.suggestion:
        lines.append(f"suggestion: {decision.suggestion}")
    if decision.sampled:
        lines.append("note: the pool was sampled; the best worker may not have been scored")
    return "\n".join(line.rstrip() for line in lines)
