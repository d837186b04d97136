"""Rich renderings of the status document and routing decisions (demo, watch, CLI)."""

from __future__ import annotations

import time
from collections.abc import Sequence

from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

from worldpool.models import Hardware, RoutingDecision, StepStatus, WorkflowStatus

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


STATUS_COLUMNS = ("step", "status", "worker", "region", "gpu", "try", "time", "cost", "why")


def status_title(status: WorkflowStatus) -> str:
    eta = status.estimated_completion_sec
    return (
        f"{status.name} [{status.id}]  {status.status.value}  "
        f"cost {cost_split(status)}  tokens {status.total_tokens}"
        + (f"  ETA {eta:.0f}s" if eta is not None and not status.status.terminal else "")
    )


def status_rows(status: WorkflowStatus) -> list[list[str]]:
    """One row of plain cells per step, under :data:`STATUS_COLUMNS`."""
    return [
        [
            step.step,
            step.status,
            step.worker or "",
            step.region or "",
            step.gpu or "",
            str(step.attempts or ""),
            _duration(step),
            _step_cost(step),
            step.error or step.pending_reason or step.reason or "",
        ]
        for step in status.steps
    ]


def render_status(status: WorkflowStatus) -> FitTable:
    """The status document as a table: one row per step, its cost (each attempt's when
    it took more than one) and the workflow's total split into compute and tokens."""
    rows: list[list[str | Text]] = [
        [
            *row[:1],
            Text(row[1], style=STATUS_STYLE.get(row[1], "")),
            *row[2:-1],
            Text(row[-1], style="red" if step.error else "dim"),
        ]
        for step, row in zip(status.steps, status_rows(status), strict=True)
    ]
    return FitTable(STATUS_COLUMNS, rows, status_title(status))


class FitTable:
    """A table that fits the width it is drawn at (a terminal's, a live view's, at every
    redraw): ids (the first column) whole on one line, other cells wrapped between words,
    never cut with an ellipsis nor split inside a word; where that cannot fit (each
    column needs its header and its longest word), one block per row: the id, then
    ``column  value`` lines (a value folds only where one word is wider than the screen)."""

    def __init__(
        self, columns: Sequence[str], rows: Sequence[Sequence[str | Text]], title: str | None
    ) -> None:
        self.columns, self.title = list(columns), title
        self.rows = [[c if isinstance(c, Text) else Text(c) for c in row] for row in rows]

    def min_widths(self) -> list[int]:
        widths = [len(c) for c in self.columns]
        for row in self.rows:
            for i, cell in enumerate(row):
                words = [cell.plain] if i == 0 else cell.plain.split() or [""]
                widths[i] = max(widths[i], *map(len, words))
        return widths

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        widths = self.min_widths()
        title = Text(self.title, style="bold") if self.title else None
        if sum(widths) + 3 * len(widths) + 1 > options.max_width:
            yield from self._records(title)
            return
        table = Table(title=title, title_justify="left")
        for i, (name, width) in enumerate(zip(self.columns, widths, strict=True)):
            table.add_column(name, no_wrap=i == 0, overflow="fold", min_width=width)
        for row in self.rows:
            table.add_row(*row)
        yield table

    def _records(self, title: Text | None) -> RenderResult:
        if title is not None:
            yield title
        for row in self.rows:
            yield Text(row[0].plain, style="bold")
            grid = Table.grid(padding=(0, 2), pad_edge=True)  # values wrap in their column
            grid.add_column(no_wrap=True)
            grid.add_column(overflow="fold")
            for name, value in zip(self.columns[1:], row[1:], strict=True):
                grid.add_row(name, value)
            yield grid


def hardware_summary(hw: Hardware) -> str:
    """The seed's hardware groups in one line (what ``workers`` and the dashboard show)."""
    parts = [
        ", ".join(f"{g.count}x {g.model}" if g.count > 1 else g.model for g in hw.gpus)
    ] * bool(hw.gpus)
    if hw.models:
        parts.append("llm " + ", ".join(f"{m.name} {m.context_tokens // 1000}k" for m in hw.models))
    if hw.vision_models:
        parts.append(
            "vision "
            + ", ".join(v.name + (" ocr" if v.supports_ocr else "") for v in hw.vision_models)
        )
    if (code := hw.code_analysis) is not None:
        parts.append(f"code {code.tool}")
    if (b := hw.browser_automation) is not None:
        view = f" vnc:{b.vnc_port}" if b.vnc_port else (" headful" if not b.headless else "")
        rec = " rec" if b.recording else ""
        parts.append(f"browser {b.tool}{view} x{b.concurrent_sessions}{rec}")
    if (net := hw.network) is not None:
        extras = [
            x for x, on in (("proxy", net.proxy_support), ("captcha", net.captcha_solving)) if on
        ]
        speed = [f"{net.bandwidth_mbps:g}Mbps"] if net.bandwidth_mbps else []
        parts.append("net " + " ".join(speed + extras))
    if (v := hw.virtualization) is not None:
        boot = f" {v.boot_time_ms:g}ms" if v.boot_time_ms is not None else ""
        parts.append(
            f"{v.platform} x{v.concurrent_vms}{boot}" + (" snapshots" if v.snapshot_support else "")
        )
    if (iso := hw.isolation) is not None:
        kinds = [
            x for x, on in (("net", iso.network_isolation), ("fs", iso.filesystem_isolation)) if on
        ]
        limits = iso.resource_limits
        cap = ""
        if limits is not None:
            cap = " <=" + "/".join(
                text
                for value, text in (
                    (limits.max_memory_mb, f"{limits.max_memory_mb}MB"),
                    (limits.max_vcpu, f"{limits.max_vcpu}vCPU"),
                    (limits.max_disk_mb, f"{limits.max_disk_mb}MB disk"),
                )
                if value
            )
        parts.append("isolated " + "+".join(kinds) + cap)
    return "; ".join(parts)


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


def plain_table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """For pipes, files and CI logs: ``columns`` and ``rows`` as aligned text lines, two
    spaces between columns, nothing wrapped or cut (the last column is not padded)."""
    lines = [list(columns), *[[_one_line(c) for c in row] for row in rows]]
    widths = [max(len(line[i]) for line in lines) for i in range(len(columns))]
    text = []
    for line in lines:
        padded = [cell.ljust(widths[i]) for i, cell in enumerate(line[:-1])]
        text.append("  ".join([*padded, line[-1]]).rstrip())
    return "\n".join(text) + "\n"


def _one_line(cell: str) -> str:
    return " ".join(cell.split()) if "\n" in cell or "\t" in cell else cell
