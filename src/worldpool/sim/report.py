"""Presenting runs: a rich comparison table, JSON, and PNG plots (matplotlib, Agg).

matplotlib is optional (``pip install 'worldpool[sim]'``); only :func:`write_plots` needs it.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console
from rich.table import Table

from worldpool.errors import ConfigError
from worldpool.render import plain_table
from worldpool.sim.metrics import RunResult

TITLE = "worldpool simulate: policies compared"


def _s(x: float) -> str:
    return "-" if math.isnan(x) else (f"{x:.1f}" if x < 100 else f"{x:.0f}")


COLUMNS = (
    "policy",
    "class",
    "n",
    "p50 s",
    "p95 s",
    "p99 s",
    "wait p95 s",
    "in goal",
    "cost $",
    "idle fleet $",
    "CO2 kg",
    "GPU util",
    "x-region GB",
    "sticky",
    "failovers",
    "stuck",
)


def comparison_rows(results: list[RunResult]) -> list[list[str]]:
    """One row per policy and task class; the run-wide counters on each policy's first."""
    rows = []
    for r in results:
        c = r.counters
        sticky_total = c.sticky_hits + c.sticky_misses
        sticky = f"{c.sticky_hits / sticky_total:.0%}" if sticky_total else "-"
        for k, (name, s) in enumerate(r.classes.items()):
            first = k == 0
            rows.append(
                [
                    r.policy if first else "",
                    name,
                    str(s.count),
                    _s(s.p50_s),
                    _s(s.p95_s),
                    _s(s.p99_s),
                    _s(s.p95_queue_wait_s),
                    "-" if s.within_goal is None else f"{s.within_goal:.1%}",
                    f"{r.total_cost_usd:,.0f}" if first else "",
                    f"{r.idle_cost_usd:,.0f}" if first else "",
                    f"{c.carbon_kg:,.1f}" if first else "",
                    f"{r.gpu_utilisation:.1%}" if first else "",
                    f"{c.cross_region_bytes / 1e9:,.1f}" if first else "",
                    sticky if first else "",
                    str(c.failovers) if first else "",
                    str(len(r.stuck) + r.lost) if first else "",
                ]
            )
    return rows


def comparison_table(results: list[RunResult]) -> Table:
    """One row per policy and task class, plus the run-wide counters."""
    t = Table(title=TITLE, show_lines=False)
    for col in COLUMNS:
        t.add_column(col, justify="left" if col in ("policy", "class") else "right")
    rows = comparison_rows(results)
    for i, row in enumerate(rows):  # a rule under each policy's last class
        t.add_row(*row, end_section=i + 1 == len(rows) or bool(rows[i + 1][0]))
    return t


def print_results(results: list[RunResult], console: Console | None = None) -> None:
    console = console or Console()
    if console.is_terminal:
        console.print(comparison_table(results))
    else:  # a pipe, a file, CI logs: aligned text, nothing wrapped
        console.file.write(f"{TITLE}\n{plain_table(COLUMNS, comparison_rows(results))}")
    for r in results:
        if r.stuck or r.lost:
            console.print(
                f"[red]{r.policy}: {len(r.stuck)} stuck, {r.lost} lost[/red]", soft_wrap=True
            )
            for s in r.stuck[:5]:
                why = "; ".join(s.reasons) or "no worker ever freed a slot it could use"
                where = f" ({s.source})" if s.source else ""
                console.print(
                    f"  task {s.task}{where}: {s.status}: {why}"
                    + (f" — {s.suggestion}" if s.suggestion else ""),
                    soft_wrap=True,
                    markup=False,
                )


def to_json(results: list[RunResult], extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {**(extra or {}), "runs": [r.to_json() for r in results]}


def write_json(
    results: list[RunResult], path: str | Path, extra: dict[str, Any] | None = None
) -> None:
    """Write the results to ``path``; ``-`` is standard output."""
    text = json.dumps(to_json(results, extra), indent=1)
    if str(path) == "-":
        sys.stdout.write(text + "\n")
    else:
        Path(path).write_text(text, encoding="utf-8")


def write_plots(results: list[RunResult], out_dir: str | Path, prefix: str = "") -> list[Path]:
    """latency CDFs per policy, cost vs p95, load by region over the day; returns paths."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise ConfigError("PNG plots need matplotlib: pip install 'worldpool[sim]'") from None
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = []
    classes = list(results[0].classes) if results else []
    fig, axes = plt.subplots(1, max(1, len(classes)), figsize=(4 * max(1, len(classes)), 3.4))
    for ax, cls in zip(np.atleast_1d(axes), classes, strict=False):
        for r in results:
            data = np.sort(r.completion.get(cls, np.zeros(0)))
            if len(data):
                ax.plot(data, np.arange(1, len(data) + 1) / len(data), label=r.policy, lw=1.2)
        ax.set_xscale("log")
        ax.set_title(cls, fontsize=9)
        ax.set_xlabel("completion time (s)", fontsize=8)
        ax.grid(alpha=0.3)
    np.atleast_1d(axes)[0].set_ylabel("share of tasks")
    np.atleast_1d(axes)[-1].legend(fontsize=6)
    fig.tight_layout()
    paths.append(_save(fig, out / f"{prefix}latency_cdf.png", plt))

    fig, ax = plt.subplots(figsize=(5.5, 4))
    for r in results:
        ax.scatter(r.overall_p95_s(), r.total_cost_usd)
        ax.annotate(r.policy, (r.overall_p95_s(), r.total_cost_usd), fontsize=7)
    ax.set_xlabel("p95 completion time, all classes (s)")
    ax.set_ylabel("total cost (USD)")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    paths.append(_save(fig, out / f"{prefix}cost_vs_p95.png", plt))

    r0 = results[0] if results else None
    if r0 is not None and r0.region_load.size:
        fig, ax = plt.subplots(figsize=(8, 4))
        hours = np.arange(r0.region_load.shape[0]) * r0.sample_s / 3600.0
        top = np.argsort(-r0.region_load.sum(axis=0))[:12]
        ax.stackplot(hours, r0.region_load[:, top].T, labels=[r0.region_names[i] for i in top])
        ax.set_xlabel("hour of the simulated day (UTC)")
        ax.set_ylabel(f"busy slots ({r0.policy})")
        ax.legend(fontsize=6, ncol=2, loc="upper left")
        fig.tight_layout()
        paths.append(_save(fig, out / f"{prefix}load_by_region.png", plt))
    return paths


def _save(fig: Any, path: Path, plt: Any) -> Path:
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
