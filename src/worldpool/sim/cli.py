"""``worldpool simulate``: compare routing policies on a simulated pool and workload.

The lead mounts :data:`app` (``app.add_typer(sim_app)`` or ``app.command()(simulate_cmd)``);
:func:`simulate` is the plain-Python entry point behind it.

Pool: ``seed`` (the seed's 7 workers), ``world`` / ``world:N`` (generated, 10,000 by
default), or a JSON/TOML pool file. Workload: ``world`` / ``world:N`` (generated day,
1,000,000 tasks by default), ``seed`` (20,000 tasks sized for the seed pool), a ``.jsonl``
trace, or ``events:PATH`` to replay a recorded event log.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape

from worldpool.errors import ConfigError
from worldpool.models import WorkerProfile
from worldpool.sim.engine import SimConfig, Simulation
from worldpool.sim.metrics import RunResult
from worldpool.sim.policies import make_placer
from worldpool.sim.pools import load_pool_file, seed_pool, world_pool
from worldpool.sim.report import print_results, write_json, write_plots
from worldpool.sim.traces import load_event_log, load_trace
from worldpool.sim.truth import HONEST
from worldpool.sim.workload import DAY_S, Workload, world_workload

SEED_WORKLOAD_TASKS = 20_000
DEFAULT_COMPARE = (
    "default",
    "random",
    "round-robin",
    "least-loaded",
    "label-weight",
    "capability-fifo",
    "power-of-two",
    "cheapest-region",
)

app = typer.Typer(help="Simulate routing policies at world scale.", no_args_is_help=True)


def _count(spec: str, name: str, default: int) -> int:
    _, _, n = spec.partition(":")
    if not n:
        return default
    try:
        value = int(float(n))
    except ValueError:
        raise ConfigError(f"{name} {spec!r}: the part after ':' must be a number") from None
    if value < 1:
        raise ConfigError(f"{name} {spec!r}: the count must be at least 1")
    return value


def resolve_pool(spec: str, seed: int = 0) -> list[WorkerProfile]:
    """``seed``, ``world[:N]`` or a pool file path."""
    if spec == "seed":
        return seed_pool()
    if spec == "world" or spec.startswith("world:"):
        return world_pool(_count(spec, "pool", 10_000), seed=seed)
    return load_pool_file(spec)


def resolve_workload(spec: str, seed: int = 0, day_s: float = DAY_S) -> Workload:
    """``world[:N]``, ``seed``, ``events:PATH`` or a ``.jsonl`` trace path."""
    if spec == "seed":
        return world_workload(SEED_WORKLOAD_TASKS, seed=seed, day_s=day_s)
    if spec == "world" or spec.startswith("world:"):
        return world_workload(_count(spec, "workload", 1_000_000), seed=seed, day_s=day_s)
    if spec.startswith("events:"):
        return load_event_log(spec.removeprefix("events:"))
    return load_trace(spec)


def parse_outage(text: str) -> tuple[str, float, float]:
    """``REGION@HOUR+MINUTES`` (e.g. ``eu-west-1@14+60``) -> (region, at_s, length_s)."""
    region, _, rest = text.partition("@")
    hour, _, minutes = rest.partition("+")
    try:
        return region, float(hour) * 3600.0, float(minutes or 60) * 60.0
    except ValueError:
        raise ConfigError(
            f"outage {text!r}: write REGION@HOUR+MINUTES, e.g. eu-west-1@14+60"
        ) from None


def simulate(
    pool: str,
    workload: str,
    policies: list[str],
    compare: list[str] | None = None,
    *,
    out_json: Path | None = None,
    out_png_dir: Path | None = None,
    seed: int = 0,
    fail_p: float = 0.005,
    crash_per_worker_day: float = 0.05,
    outages: list[str] | None = None,
    console: Console | None = None,
    png_prefix: str = "",
    honest: bool = False,
) -> list[RunResult]:
    """Run each policy on the same pool and workload; print, and optionally save, results."""
    names = list(dict.fromkeys([*policies, *(compare or [])]))
    if not names:
        raise ConfigError("name at least one policy, e.g. --policy default")
    placers = [make_placer(n, seed) for n in names]  # unknown names fail before any work
    profiles = resolve_pool(pool, seed)
    wl = resolve_workload(workload, seed)
    horizon = float(
        max(
            wl.arrival.max(initial=0.0),
            DAY_S if workload.startswith("world") or workload == "seed" else 0.0,
        )
    )
    truth = {k: v for k, v in HONEST.items() if k not in ("fail_p", "crash_per_worker_day")}
    cfg = SimConfig(
        seed=seed,
        horizon_s=horizon,
        fail_p=fail_p,
        crash_per_worker_day=crash_per_worker_day,
        outages=[parse_outage(o) for o in outages or []],
        **(truth if honest else {}),  # type: ignore[arg-type]
    )
    results = [Simulation(profiles, wl, placer, cfg).run() for placer in placers]
    if out_json is None or str(out_json) != "-":  # `--json -`: only the JSON, on stdout
        print_results(results, console)
    extra: dict[str, Any] = {
        "pool": pool,
        "workload": workload,
        "seed": seed,
        "workers": len(profiles),
        "fail_p": fail_p,
        "crash_per_worker_day": crash_per_worker_day,
        "outages": outages or [],
        "honest": truth if honest else {},
    }
    if out_json is not None:
        write_json(results, out_json, extra)
    if out_png_dir is not None:
        write_plots(results, out_png_dir, png_prefix)
    return results


@app.command("simulate")
def simulate_cmd(
    pool: Annotated[str, typer.Option(help="seed | world[:N] | pool file (JSON/TOML)")] = "seed",
    workload: Annotated[
        str, typer.Option(help="seed | world[:N] | trace.jsonl | events:PATH")
    ] = "seed",
    policy: Annotated[
        list[str],
        typer.Option(
            help="default, load-heavy, geo-heavy, cost-heavy, weights:a=1,b=2 or a baseline"
        ),
    ] = ["default"],  # noqa: B006 - typer needs a list default
    compare: Annotated[
        list[str] | None, typer.Option(help="more policies; 'all' = every baseline")
    ] = None,
    json_out: Annotated[
        Path | None, typer.Option("--json", help="write results here ('-': stdout)")
    ] = None,
    png: Annotated[Path | None, typer.Option(help="write PNG plots into this folder")] = None,
    seed: Annotated[int, typer.Option(help="random seed (runs are deterministic)")] = 0,
    fail_p: Annotated[float, typer.Option(help="chance an attempt fails")] = 0.005,
    crash_rate: Annotated[float, typer.Option(help="crashes per worker per day")] = 0.05,
    outage: Annotated[
        list[str] | None, typer.Option(help="REGION@HOUR+MINUTES, e.g. eu-west-1@14+60")
    ] = None,
    honest: Annotated[
        bool,
        typer.Option(
            help="batching curve, belief noise, 4 deciders on 2 s stale views, "
            "time-of-day prices (docs/simulation.md)"
        ),
    ] = False,
) -> None:
    """Compare routing policies on a simulated pool and workload.

    Examples:
      worldpool simulate --pool seed --workload seed --compare all --png docs/img
      worldpool simulate --pool world --workload world:200000 --compare least-loaded
    """
    compare_list = list(compare or [])
    if "all" in compare_list:
        compare_list = [c for c in compare_list if c != "all"] + list(DEFAULT_COMPARE)
    try:
        simulate(
            pool,
            workload,
            policy,
            compare_list,
            out_json=json_out,
            out_png_dir=png,
            seed=seed,
            fail_p=fail_p,
            crash_per_worker_day=crash_rate,
            outages=outage,
            honest=honest,
        )
    except ConfigError as exc:
        Console(stderr=True).print(f"[red]error:[/] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2) from None
