"""``worldpool serve``: the orchestrator, plus the HTTP API and dashboard when installed.

The command (registered on :data:`.app.app`), :func:`run_orchestrator` behind it, and
:func:`watch_submissions`, which wakes the dispatcher when another process submits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import time
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console

from worldpool.cli import logs
from worldpool.cli.app import (
    NamespaceOpt,
    RedisOpt,
    app,
    console,
    need_redis,
    run_async,
    settings_for,
)
from worldpool.cli.blobs import ArtifactStoreOpt, S3EndpointOpt, blob_settings
from worldpool.cli.logs import LogFormat, LogFormatOpt
from worldpool.redact import redact_url

if TYPE_CHECKING:
    from worldpool.backends.base import Backend
    from worldpool.config import Settings
    from worldpool.orchestrator.core import Orchestrator

log = logging.getLogger("worldpool.cli.serve")
# Tasks are queued (not sent by their client) when work waits already. A burst of them
# wakes the dispatcher at most every BURST_PACE_S, so each pass takes many; a lone one
# (the last wake over BUSY_WAKES_S ago) wakes it at once.
BUSY_WAKES_S = 0.02
BURST_PACE_S = 0.002
"""The submission watcher reads at most this often: another process's submit is picked up
within it (the dispatcher's own idle read of the queue is the fallback)."""


@app.command()
def serve(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    host: Annotated[str, typer.Option(help="API bind address")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (0: no API)")] = 8700,
    name: Annotated[str, typer.Option(help="orchestrator replica name")] = "",
    artifact_store: ArtifactStoreOpt = None,
    s3_endpoint_url: S3EndpointOpt = None,
    log_format: LogFormatOpt = LogFormat.TEXT,
) -> None:
    """Run the orchestrator (and the API + dashboard) against Redis."""
    url = need_redis(redis)
    settings = blob_settings(settings_for(url, namespace), artifact_store, s3_endpoint_url)
    logs.configure(log_format)
    run_async(
        run_orchestrator(
            settings,
            host=host,
            port=port,
            name=name or f"orchestrator-{os.getpid()}",
            console=console,
        )
    )


async def run_orchestrator(
    settings: Settings, *, host: str, port: int, name: str, console: Console
) -> None:
    """Run until SIGINT/SIGTERM. Several replicas may run against one Redis."""
    from worldpool.backends import backend_from_url
    from worldpool.orchestrator.core import Orchestrator
    from worldpool.service import stop_on_signals, tune_gc

    stop = stop_on_signals()
    async with backend_from_url(settings.redis_url, settings) as backend:
        await backend.now()  # fail fast, with exit code 4, if Redis is unreachable
        async with Orchestrator(backend, settings, name=name) as orchestrator:
            watcher = asyncio.create_task(
                watch_submissions(backend, orchestrator), name=f"{name}:submissions"
            )
            server = None
            if port:
                server = await _start_api(orchestrator, settings, host, port, console)
            _next_steps(settings, host, port if server else 0, console)
            tune_gc()
            await stop.wait()
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
            if server is not None:
                server.should_exit = True
                await asyncio.sleep(0.2)
    console.print("orchestrator stopped")


async def watch_submissions(backend: Backend, orchestrator: Orchestrator) -> None:
    """Wake the dispatcher as soon as another process (a client, ``worldpool submit``, a
    replica, the API of another replica) queues a task, instead of on its next idle tick.
    Tasks a client sent in their create wake nothing (they need no dispatch pass), nor do
    this replica's own submits (it queued or sent them itself).

    One blocking read at a time of what creates queued (:meth:`Backend.read_queued`): no
    polling, no pacing, and nothing decoded for tasks that went straight to a worker.
    """
    cursor: str | None = None
    woke = 0.0
    while True:
        try:
            page = await backend.read_queued(cursor, 1000, block_s=5.0)
        except asyncio.CancelledError:
            raise
        except Exception:  # Redis away: the dispatcher's idle tick covers us meanwhile
            log.warning("reading task submissions failed; retrying", exc_info=True)
            await asyncio.sleep(1.0)
            continue
        cursor = page.cursor
        if any(not orchestrator.knows(task_id) for task_id in page.task_ids):
            orchestrator.wake()
            woke, last_wake = time.monotonic(), woke
            if woke - last_wake < BUSY_WAKES_S:  # a burst: let the next pass take more
                await asyncio.sleep(BURST_PACE_S)


async def _start_api(
    orchestrator: Orchestrator, settings: Settings, host: str, port: int, console: Console
) -> Any:
    try:
        from worldpool.api.app import create_app
    except ImportError:
        console.print(
            "[yellow]API not installed[/]: pip install 'worldpool[api]' for the "
            "dashboard; the orchestrator runs without it"
        )
        return None
    from worldpool.service import start_api_server

    return start_api_server(create_app(orchestrator, settings, bind_host=host), host, port)


def _next_steps(settings: Settings, host: str, port: int, console: Console) -> None:
    """What to run next. Each command is one line, never wrapped at the terminal's width
    (soft wrap), so copying it from the terminal or a log gives a command that runs."""
    url = redact_url(settings.redis_url or "")  # the password stays where the operator put it
    console.print(
        f"[bold green]worldpool orchestrator running[/] (namespace "
        f"{settings.namespace!r}, Redis {url})",
        soft_wrap=True,
    )
    lines = [
        "Next steps:",
        f"  start a worker:   worldpool worker --redis {url} --id my-worker "
        "--region us-east-1 --capabilities shell_operations,testing",
        f"  see the pool:     worldpool workers --redis {url}",
        f"  submit work:      worldpool submit workflow.toml --redis {url} --wait",
    ]
    if port:
        lines.append(f"  dashboard:        http://{host}:{port}/")
        lines.append(f"  metrics:          http://{host}:{port}/metrics")
    lines.append("Stop with Ctrl-C.")
    for line in lines:
        console.print(line, soft_wrap=True, markup=False, highlight=False)
