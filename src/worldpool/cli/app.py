"""The ``worldpool`` command line.

Exit codes (named, documented in ``--help`` and docs/cli.md):

    0  OK            the command (or the workflow it waited for) succeeded
    1  FAILED        the task or workflow ended failed / cancelled
    2  USAGE         bad arguments or input files (the message says what to fix)
    3  NOT_FOUND     an id names nothing
    4  UNAVAILABLE   the backend (Redis) or server cannot be reached
    5  REFUSED       a worker refused to start (claims it cannot back)
"""

from __future__ import annotations

import asyncio
import os
from enum import IntEnum
from pathlib import Path
from typing import Annotated, Any

import orjson
import typer
from rich.console import Console

from worldpool.cli.worker import WorkerRefused
from worldpool.config import Settings, parse_weights
from worldpool.errors import (
    BackendError,
    ConfigError,
    NotFoundError,
    ValidationError,
    WorldpoolError,
)

console = Console()
err = Console(stderr=True)


class Exit(IntEnum):
    OK = 0
    FAILED = 1
    USAGE = 2
    NOT_FOUND = 3
    UNAVAILABLE = 4
    REFUSED = 5


EPILOG = """\
Examples:

\b
  worldpool demo                                   # the seed scenario, embedded, no server
  worldpool demo --user-location tokyo --no-live
  worldpool explain --pool pool.toml --capabilities coding --gpu --user-location tokyo
  worldpool serve --redis redis://localhost:6379/0
  worldpool worker --redis redis://hub:6379/0 --id gpu-tokyo-1 --region ap-northeast-1 \\
      --capabilities coding,planning --cost-per-hour 6.5 --handlers mypkg.handlers:HANDLERS
  worldpool submit workflow.toml --redis redis://hub:6379/0 --wait
  worldpool status wf-1234 --redis redis://hub:6379/0
  worldpool simulate --pool seed --workload seed-day --compare random,least-loaded

\b
Exit codes: 0 ok, 1 task/workflow failed, 2 bad input, 3 unknown id, 4 backend
unreachable, 5 worker refused to start.
"""

app = typer.Typer(
    name="worldpool",
    help="Route AI-agent work to the right worker anywhere in the world.",
    epilog=EPILOG,
    rich_markup_mode=None,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)

RedisOpt = Annotated[
    str | None,
    typer.Option(
        "--redis",
        envvar="WORLDPOOL_REDIS_URL",
        help="redis:// or rediss:// URL of the deployment's Redis",
    ),
]
NamespaceOpt = Annotated[
    str,
    typer.Option("--namespace", envvar="WORLDPOOL_NAMESPACE", help="key namespace"),
]


def fail(code: Exit, message: str) -> typer.Exit:
    err.print(f"[red]error:[/] {message}", highlight=False)
    return typer.Exit(int(code))


def run_async(coro: Any) -> Any:
    """Run a coroutine, turning worldpool errors into messages and exit codes."""
    try:
        return asyncio.run(coro)
    except NotFoundError as exc:
        raise fail(Exit.NOT_FOUND, str(exc)) from None
    except WorkerRefused as exc:
        raise fail(Exit.REFUSED, str(exc)) from None
    except (ConfigError, ValidationError) as exc:
        raise fail(Exit.USAGE, str(exc)) from None
    except (BackendError, ConnectionError, OSError) as exc:
        raise fail(Exit.UNAVAILABLE, f"cannot reach the backend: {exc}") from None
    except WorldpoolError as exc:
        raise fail(Exit.FAILED, str(exc)) from None


def settings_for(redis: str | None, namespace: str = "default", **extra: Any) -> Settings:
    try:
        return Settings.from_env(redis_url=redis, namespace=namespace, **extra)
    except ConfigError as exc:
        raise fail(Exit.USAGE, str(exc)) from None


def log_to_stderr() -> None:
    """Long-running commands (serve, worker) log what they do: one line per event."""
    import logging

    logging.basicConfig(
        level=os.environ.get("WORLDPOOL_LOG_LEVEL", "INFO").upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def need_redis(redis: str | None) -> str:
    if not redis:
        raise fail(
            Exit.USAGE,
            "this command talks to a deployment: pass --redis URL or set "
            "WORLDPOOL_REDIS_URL (the embedded mode runs in one process: see "
            "`worldpool demo`)",
        )
    return redis


# --------------------------------------------------------------------------- demo


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


# --------------------------------------------------------------------------- explain


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
    import time as _time

    from worldpool import geo

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
        now=_time.time(),
        user_location=geo.try_location(spec.user_location) if spec.user_location else None,
    )
    decision = Router(policy).decide(ctx, PoolSnapshot(workers))
    if as_json:
        console.print_json(decision.model_dump_json())
    else:
        typer.echo(explain_table(decision))  # plain text: never re-wrapped to the terminal
    raise typer.Exit(int(Exit.OK if decision.winner else Exit.FAILED))


# --------------------------------------------------------------------------- distributed


@app.command()
def serve(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    host: Annotated[str, typer.Option(help="API bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0: no API)")] = 8700,
    name: Annotated[str, typer.Option(help="orchestrator replica name")] = "",
) -> None:
    """Run the orchestrator (and the API + dashboard) against Redis."""
    from worldpool.cli.serve import serve as run_serve

    url = need_redis(redis)
    log_to_stderr()
    run_async(
        run_serve(
            settings_for(url, namespace),
            host=host,
            port=port,
            name=name or f"orchestrator-{os.getpid()}",
            console=console,
        )
    )


@app.command()
def worker(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    worker_id: Annotated[str | None, typer.Option("--id", help="worker id")] = None,
    capabilities: Annotated[str, typer.Option(help="comma-separated capabilities")] = "",
    region: Annotated[str | None, typer.Option(help="region or city code")] = None,
    cost_per_hour: Annotated[float | None, typer.Option(min=0, help="USD per hour")] = None,
    max_concurrency: Annotated[int | None, typer.Option(min=1, help="task slots")] = None,
    handlers: Annotated[
        list[str] | None, typer.Option(help="module:object of a dict of handlers (repeatable)")
    ] = None,
    profile: Annotated[
        Path | None, typer.Option(help="profile file (TOML/JSON)", exists=True, dir_okay=False)
    ] = None,
    label: Annotated[list[str] | None, typer.Option(help="key=value label (repeatable)")] = None,
    builtin: Annotated[
        bool, typer.Option("--builtin/--no-builtin", help="also run the built-in executors")
    ] = True,
    unsafe_local_shell: Annotated[
        bool, typer.Option(help="allow the unsandboxed local shell provider")
    ] = False,
    browser: Annotated[
        bool, typer.Option(help="run the browser executor (Playwright on /usr/bin/chromium)")
    ] = False,
    llm_url: Annotated[
        str | None, typer.Option(help="OpenAI-compatible base URL for the llm executor")
    ] = None,
    llm_model: Annotated[str | None, typer.Option(help="model name for the llm executor")] = None,
    workspace_cache: Annotated[
        Path | None,
        typer.Option(
            help="where git workspaces are cached (default ~/.cache/worldpool/workspaces)"
        ),
    ] = None,
    print_profile: Annotated[
        bool, typer.Option(help="print what this worker would advertise, then exit")
    ] = False,
    verify_claims: Annotated[
        bool,
        typer.Option(
            "--verify-claims/--no-verify-claims",
            help="refuse to start (exit 5) when the profile claims hardware or tools this "
            "machine lacks; --no-verify-claims only warns (simulated pools, tests)",
        ),
    ] = True,
) -> None:
    """Run a worker that dials out to Redis, registers and takes tasks."""
    from worldpool.cli.worker import WorkerOptions, run_worker

    options = WorkerOptions(
        worker_id=worker_id,
        capabilities=[c for c in capabilities.split(",") if c.strip()],
        region=region,
        cost_per_hour=cost_per_hour,
        max_concurrency=max_concurrency,
        handler_specs=list(handlers or []),
        profile_file=profile,
        labels=dict(item.split("=", 1) for item in label or [] if "=" in item),
        builtin=builtin,
        unsafe_local_shell=unsafe_local_shell,
        browser=browser,
        llm_url=llm_url,
        llm_model=llm_model,
        verify_claims=verify_claims,
    )
    if workspace_cache is not None:
        options.workspace_cache = workspace_cache
    if print_profile:
        run_async(run_worker(settings_for(redis, namespace), options, console, print_only=True))
        return
    log_to_stderr()
    run_async(run_worker(settings_for(need_redis(redis), namespace), options, console))


@app.command()
def submit(
    file: Annotated[
        Path,
        typer.Argument(help="task or workflow file (JSON or TOML)", exists=True, dir_okay=False),
    ],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    wait: Annotated[bool, typer.Option(help="wait for the end and print the result")] = False,
    timeout_s: Annotated[float, typer.Option(min=1)] = 600.0,
) -> None:
    """Submit a task or a workflow to a deployment."""
    from worldpool.cli.deployment import submit_file

    code = run_async(
        submit_file(settings_for(need_redis(redis), namespace), file, wait, timeout_s, console)
    )
    raise typer.Exit(int(code))


@app.command()
def status(
    ident: Annotated[str, typer.Argument(help="workflow or task id")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """Print the status document of a workflow (or a task's record)."""
    from worldpool.cli.deployment import show_status

    run_async(show_status(settings_for(need_redis(redis), namespace), ident, as_json, console))


@app.command()
def workers(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A table of the pool: load, region, heartbeat age."""
    from worldpool.cli.deployment import show_workers

    run_async(show_workers(settings_for(need_redis(redis), namespace), as_json, console))


@app.command()
def watch(
    ident: Annotated[str, typer.Argument(help="workflow id")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    url: Annotated[str | None, typer.Option(help="follow a `worldpool serve` API instead")] = None,
    token: Annotated[
        str | None,
        typer.Option(envvar="WORLDPOOL_API_TOKEN_READ", help="API bearer token (read role)"),
    ] = None,
) -> None:
    """Watch a workflow live in the terminal; exits when it ends."""
    from worldpool.cli.deployment import watch_workflow

    code = run_async(watch_workflow(settings_for(redis, namespace), ident, url, console, token))
    raise typer.Exit(int(code))


@app.command()
def events(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    after: Annotated[str | None, typer.Option(help="start after this event seq")] = None,
    follow: Annotated[bool, typer.Option(help="keep printing new events")] = False,
) -> None:
    """Print the event log as JSON lines (replay it: simulate --workload events:FILE)."""
    import sys

    from worldpool.cli.deployment import dump_events

    run_async(dump_events(settings_for(need_redis(redis), namespace), after, follow, sys.stdout))


def _mount_simulate() -> None:
    from worldpool.sim.cli import simulate_cmd

    app.command("simulate")(simulate_cmd)


_mount_simulate()


def main() -> None:
    app()
