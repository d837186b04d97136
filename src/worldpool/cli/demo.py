"""``worldpool demo`` and ``worldpool explain``: the commands that need no deployment.

``demo`` runs the seed scenario in this process (embedded backend); ``explain`` is a
routing dry run of one task against a pool file. Both register on :data:`.app.app`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import orjson
import typer

from worldpool.cli.app import Exit, app, console, fail
from worldpool.config import Settings, parse_weights
from worldpool.errors import ConfigError, ValidationError


@app.command()
def demo(
    user_location: Annotated[str, typer.Option(help="region or city of the user")] = "london",
    as_json: Annotated[bool, typer.Option("--json", help="print only the status document")] = False,
    live: Annotated[bool, typer.Option("--live/--no-live", help="live terminal view")] = True,
    serve: Annotated[
        bool,
        typer.Option(
            "--serve", help="also serve the API and dashboard on 127.0.0.1 (stays up after)"
        ),
    ] = False,
    port: Annotated[int, typer.Option(help="port for --serve")] = 8700,
) -> None:
    """Run the seed scenario ("Fix the authentication bug in the login flow") in-process."""
    from worldpool.demo.scenario import main as demo_main

    try:
        code = demo_main(
            user_location,
            live=live and console.is_terminal,
            as_json=as_json,
            console=console,
            serve_port=port if serve else None,
        )
    except ConfigError as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    raise typer.Exit(code)


@app.command()
def explain(
    pool: Annotated[
        Path,
        typer.Option(
            help="pool file (TOML or JSON list of worker profiles)", exists=True, dir_okay=False
        ),
    ],
    task: Annotated[str | None, typer.Option(help="task spec as JSON, or @file.json")] = None,
    handler: Annotated[str, typer.Option(help="handler name")] = "task",
    capabilities: Annotated[str, typer.Option(help="comma-separated required capabilities")] = "",
    gpu: Annotated[bool, typer.Option(help="the task needs a GPU")] = False,
    min_vram_gb: Annotated[float, typer.Option(min=0)] = 0.0,
    model: Annotated[str | None, typer.Option(help="LLM model the worker must serve")] = None,
    region: Annotated[list[str] | None, typer.Option(help="allowed region (glob/macro)")] = None,
    user_location: Annotated[str | None, typer.Option(help="region or city of the user")] = None,
    interactive: Annotated[bool, typer.Option(help="interactive: near the user")] = False,
    heavy: Annotated[bool, typer.Option(help="heavy batch inference: follow the sun")] = False,
    weights: Annotated[str | None, typer.Option(help="e.g. load=0.5,cost=0.3")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="machine-readable decision")] = False,
) -> None:
    """Show where a task would go in a pool, and why (a routing dry run)."""
    from worldpool import geo
    from worldpool.models import Requirements, TaskSpec, Worker, WorkerState
    from worldpool.routing import PoolSnapshot, Router, RoutingContext, RoutingPolicy
    from worldpool.routing.explain import explain_table
    from worldpool.sim.pools import load_pool_file

    try:
        profiles = load_pool_file(pool)
        if task:
            raw = Path(task[1:]).read_bytes() if task.startswith("@") else task.encode()
            spec = TaskSpec.model_validate(orjson.loads(raw))
        else:
            caps = [c for c in capabilities.split(",") if c.strip()]
            spec = TaskSpec(
                handler=handler,
                capabilities=frozenset(caps),
                user_location=user_location,
                interactive=interactive,
                heavy=heavy,
                requirements=Requirements(
                    gpu=gpu, min_vram_gb=min_vram_gb, model=model, regions=list(region or [])
                ),
            )
        policy = RoutingPolicy.from_settings(Settings.from_env())
        if weights:
            policy = policy.with_weights(**parse_weights(weights))
    except (orjson.JSONDecodeError, OSError) as exc:
        raise fail(Exit.USAGE, f"cannot read the task: {exc}") from None
    except (ConfigError, ValidationError) as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    except Exception as exc:  # pydantic errors from the task JSON
        raise fail(Exit.USAGE, f"invalid task: {exc}") from None
    # A pool file that lists no handlers for a worker says nothing about them: assume it
    # runs the task's handler, so the dry run is about capabilities, hardware and place.
    workers = [
        Worker(
            profile=p
            if p.handlers
            else p.model_copy(update={"handlers": frozenset({spec.handler})}),
            state=WorkerState(worker_id=p.id),
        )
        for p in profiles
    ]
    ctx = RoutingContext(
        task=spec,
        now=time.time(),
        user_location=geo.try_location(spec.user_location) if spec.user_location else None,
    )
    decision = Router(policy).decide(ctx, PoolSnapshot(workers))
    if as_json:
        from worldpool.cli.output import emit_json

        emit_json(decision, console=console)
    else:
        typer.echo(explain_table(decision))  # plain text: never re-wrapped to the terminal
    raise typer.Exit(int(Exit.OK if decision.winner else Exit.FAILED))
