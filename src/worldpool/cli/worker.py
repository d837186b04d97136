"""``worldpool worker``: build the profile (detection + config + flags), load handlers, run.

The command (registered on :data:`.app.app`), the :class:`WorkerOptions` it gathers, and
what :func:`run_worker` does with them. Handlers come from ``--handlers module:object``
given by the operator on the command line (never from messages) and, unless
``--no-builtin``, the built-in executors, whose shell sandbox ``--sandbox`` names from the
provider registry (:mod:`worldpool.executors.registry`).
"""

from __future__ import annotations

import asyncio
import importlib
import importlib.util
import os
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from worldpool.backends import backend_from_url
from worldpool.cli import logs
from worldpool.cli.app import (
    NamespaceOpt,
    RedisOpt,
    WorkerRefused,
    app,
    console,
    need_redis,
    run_async,
    settings_for,
)
from worldpool.cli.blobs import ArtifactStoreOpt, S3EndpointOpt, blob_settings
from worldpool.cli.logs import LogFormat, LogFormatOpt
from worldpool.cli.sandbox_policy import (
    MaxMemoryOpt,
    MaxOpenFilesOpt,
    MaxProcsOpt,
    MaxWorkspaceOpt,
)
from worldpool.cli.worker_setup import (
    SyncMode,
    WorkerOptions,
    build_profile,
    collect_handlers,
    sandbox_provider_name,
    sync_processes,
)
from worldpool.config import Settings
from worldpool.errors import ConfigError
from worldpool.models import GPU, ServedModel
from worldpool.worker.runtime import WorkerRuntime

__all__ = [
    "SyncMode",
    "WorkerOptions",
    "WorkerRefused",
    "build_profile",
    "collect_handlers",
    "run_worker",
    "sandbox_provider_name",
    "sync_processes",
]


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
    sandbox: Annotated[
        str | None,
        typer.Option(
            help="sandbox provider of the shell executors: bubblewrap, locale2b or local "
            "(default: bubblewrap when installed; local with --unsafe-local-shell)"
        ),
    ] = None,
    sandbox_max_memory_mb: MaxMemoryOpt = None,
    sandbox_max_procs: MaxProcsOpt = None,
    sandbox_max_open_files: MaxOpenFilesOpt = None,
    sandbox_max_workspace_mb: MaxWorkspaceOpt = None,
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
    artifact_store: ArtifactStoreOpt = None,
    s3_endpoint_url: S3EndpointOpt = None,
    drain_timeout_s: Annotated[
        float | None,
        typer.Option(
            "--drain-timeout-s",
            min=0,
            help="on SIGTERM, how long running handlers get to finish before they are "
            "stopped and handed back (default 10; tasks not started go back at once)",
        ),
    ] = None,
    sync_handlers: Annotated[
        SyncMode,
        typer.Option(
            help="where the sync handlers of --handlers run: thread (a stopped handler deaf "
            "to ctx.cancelled runs on until it returns) or process (a child process per "
            "busy slot, killed after --cancel-grace-s, or at once when a drain hands its "
            "task back)"
        ),
    ] = SyncMode.THREAD,
    cancel_grace_s: Annotated[
        float,
        typer.Option(
            "--cancel-grace-s",
            min=0,
            help="with --sync-handlers process: how long a cancelled or timed-out "
            "handler's process gets to return before it is killed",
        ),
    ] = 2.0,
    celery_app: Annotated[
        str | None,
        typer.Option(help="module:app of a Celery app: run its tasks on its Celery fleet"),
    ] = None,
    celery_queue: Annotated[
        str | None, typer.Option(help="the Celery queue to send to (default: the app's)")
    ] = None,
    log_format: LogFormatOpt = LogFormat.TEXT,
    credential: Annotated[
        str | None,
        typer.Option(
            envvar="WORLDPOOL_WORKER_KEY",
            help="this worker's key, from `worldpool credential WORKER_ID`",
        ),
    ] = None,
) -> None:
    """Run a worker that dials out to Redis, registers and takes tasks."""
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
        sandbox=sandbox,
        sandbox_limits={
            "memory_mb": sandbox_max_memory_mb,
            "procs": sandbox_max_procs,
            "open_files": sandbox_max_open_files,
            "workspace_mb": sandbox_max_workspace_mb,
        },
        browser=browser,
        llm_url=llm_url,
        llm_model=llm_model,
        verify_claims=verify_claims,
        celery_app=celery_app,
        celery_queue=celery_queue,
        sync_handlers=sync_handlers,
        cancel_grace_s=cancel_grace_s,
    )
    if workspace_cache is not None:
        options.workspace_cache = workspace_cache
    if print_profile:
        run_async(run_worker(settings_for(redis, namespace), options, console, print_only=True))
        return
    settings = blob_settings(
        settings_for(
            need_redis(redis), namespace, drain_timeout_s=drain_timeout_s, worker_key=credential
        ),
        artifact_store,
        s3_endpoint_url,
    )
    logs.configure(log_format)
    run_async(run_worker(settings, options, console))


def _remeasure(runtime: WorkerRuntime, llm_url: str) -> asyncio.Task[None]:
    """Measure the LLM endpoint again now and then; re-register when its figures move."""
    from worldpool.worker.served_models import remeasure_loop

    async def update(served: list[ServedModel]) -> None:
        hardware = runtime.profile.hardware.model_copy(update={"models": served})
        runtime.profile = runtime.profile.model_copy(update={"hardware": hardware})
        await runtime.backend.register(runtime.profile)

    return asyncio.create_task(
        remeasure_loop(llm_url, lambda: runtime.profile.hardware.models, update)
    )


def _redetect_gpus(runtime: WorkerRuntime) -> asyncio.Task[None]:
    """Look at the GPUs again now and then; re-register when they change."""
    from worldpool.worker.gpus import redetect_loop

    async def update(found: list[GPU]) -> None:
        hardware = runtime.profile.hardware.model_copy(update={"gpus": found})
        runtime.profile = runtime.profile.model_copy(update={"hardware": hardware})
        await runtime.backend.register(runtime.profile)

    return asyncio.create_task(redetect_loop(lambda: runtime.profile.hardware.gpus, update))


async def run_worker(
    settings: Settings, options: WorkerOptions, console: Console, print_only: bool = False
) -> None:
    _require_worker_extra()
    if options.llm_url:  # `http:/gpu-box:8000/v1` is an error, not a request elsewhere
        from worldpool.config import check_http_url

        check_http_url(options.llm_url, "--llm-url")
    handlers = collect_handlers(options)
    profile = build_profile(options, handlers)
    logs.set_worker_id(profile.id)
    from worldpool.worker.hardware import check_claims

    problems = check_claims(
        profile, sandbox_provider=options.sandbox, unsafe_local_shell=options.unsafe_local_shell
    )
    if options.llm_url:  # advertise what the endpoint measurably serves, not what is claimed
        from worldpool.worker.served_models import with_measured_models

        profile, llm_problems = await with_measured_models(
            profile, options.llm_url, options.llm_model
        )
        problems += llm_problems
    if print_only:  # the JSON alone on stdout (it parses); the warnings on stderr
        from worldpool.cli.app import err
        from worldpool.cli.output import emit_json

        emit_json(profile, console=console)
        for problem in problems:
            err.print(f"warning: {problem}", markup=False, highlight=False, soft_wrap=True)
        return
    if problems and not options.verify_claims:
        for problem in problems:  # simulated pools and tests: say so, then start anyway
            console.print(f"[yellow]warning (claims not verified):[/] {problem}")
        problems = []
    if problems:
        raise WorkerRefused("refusing to start: " + "; ".join(problems))
    processes = sync_processes(options)
    from worldpool.service import stop_on_signals, tune_gc

    stop = stop_on_signals()
    async with backend_from_url(settings.redis_url, settings) as backend:
        cached: list[str] = []
        if options.builtin:  # advertise the workspaces we hold, for the data-locality scorer
            from worldpool.executors.workspace import WorkspaceCache

            cached = WorkspaceCache(options.workspace_cache).keys()
        runtime = WorkerRuntime(
            backend, profile, handlers, settings, cached=cached, sync_processes=processes
        )
        await runtime.start()
        from worldpool.worker.gpus import detect_gpus

        # Re-detect only GPUs that came from detection, not ones a simulated profile claims.
        real_gpus = profile.hardware.gpus == detect_gpus()
        watchers = [_redetect_gpus(runtime)] if real_gpus else []
        if options.llm_url:
            watchers.append(_remeasure(runtime, options.llm_url))
        tune_gc()
        console.print(
            f"worker {profile.id} online in {profile.location.region} with "
            f"{len(handlers)} handlers, {profile.max_concurrency} slots"
            + (", sync handlers in child processes" if processes else "")
        )
        stopped = asyncio.ensure_future(stop.wait())
        assert runtime.ended is not None  # set by start()
        either: list[asyncio.Future[Any]] = [stopped, runtime.ended]  # a signal, or refused
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        stopped.cancel()
        if runtime.refused:
            await runtime.stop(drain=False)
            raise WorkerRefused(
                f"the orchestrator refused worker {profile.id}: {runtime.refused}. Run "
                f"`worldpool credential {profile.id}` where WORLDPOOL_SECRET is set and pass "
                "the key with --credential or WORLDPOOL_WORKER_KEY"
            )
        console.print(f"worker {profile.id} draining")
        for watcher in watchers:
            watcher.cancel()
        await runtime.stop(drain=True)
        stuck = runtime.busy_threads
    if stuck:  # sync handlers that ignored the stop: their tasks went back; end them too
        console.print(f"worker {profile.id}: {stuck} handlers ignored the stop; exiting")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _require_worker_extra() -> None:
    """A worker needs what a client does not (hardware detection, sandbox limits, the code
    executor): say which extra brings it instead of failing on an import."""
    missing = [name for name in ("psutil", "jedi") if importlib.util.find_spec(name) is None]
    if missing:
        raise ConfigError(
            f"worldpool worker needs {', '.join(missing)}, which this install lacks: "
            "pip install 'worldpool[worker]'"
        )
