"""The commands that talk to a running deployment through its backend (Redis): ``submit``,
``status``, ``workers``, ``watch``, ``events`` and ``dead-letters``, registered on
:data:`.app.app`, and the coroutines behind them.

One-shot commands: each opens the backend, does its reads or writes, and closes it; a
Redis that does not answer fails fast with exit code 4 (see :func:`_backend`).
"""

from __future__ import annotations

import asyncio
import base64
import sys
import time
import tomllib
from pathlib import Path
from typing import Annotated, Any, TextIO

import orjson
import pydantic
import typer
from rich.console import Console

from worldpool.backends import backend_from_url, probe_backend
from worldpool.backends.base import Backend, DeadLetter
from worldpool.cli.app import (
    NamespaceOpt,
    RedisOpt,
    app,
    console,
    need_redis,
    run_async,
    settings_for,
)
from worldpool.cli.output import emit_json, emit_table
from worldpool.config import Settings
from worldpool.errors import NotFoundError, ValidationError
from worldpool.models import TaskSpec, TaskStatus, WorkflowState, WorkflowStatus
from worldpool.orchestrator.core import Orchestrator
from worldpool.render import STATUS_COLUMNS, clock, render_status, status_rows, status_title
from worldpool.workflow.files import load_workflow_file
from worldpool.workflow.naming import step_task_id


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
    later: Annotated[
        bool,
        typer.Option(help="accept handlers no worker offers yet (held until one registers)"),
    ] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="print the ids (with --wait: the end) as JSON")
    ] = False,
) -> None:
    """Submit a task or a workflow to a deployment."""
    from worldpool.tracing import configure_exporter

    configure_exporter()  # the submit hop's span too, when OTEL_* asks (flushed at exit)
    settings = settings_for(need_redis(redis), namespace)
    code = run_async(
        submit_file(settings, file, wait, timeout_s, console, later=later, as_json=as_json)
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
    run_async(show_status(settings_for(need_redis(redis), namespace), ident, as_json, console))


@app.command()
def workers(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """A table of the pool: load, region, heartbeat age."""
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
    as_json: Annotated[
        bool, typer.Option("--json", help="one status document per change, as JSON lines")
    ] = False,
) -> None:
    """Watch a workflow live in the terminal; exits when it ends."""
    settings = settings_for(redis, namespace)
    code = run_async(watch_workflow(settings, ident, url, console, token, as_json=as_json))
    raise typer.Exit(int(code))


@app.command()
def events(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    after: Annotated[str | None, typer.Option(help="start after this event seq")] = None,
    follow: Annotated[bool, typer.Option(help="keep printing new events")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON lines (the default when stdout is not a terminal)")
    ] = False,
) -> None:
    """Print the event log: one line per event in a terminal, JSON lines in a pipe or with
    --json (replay those: simulate --workload events:FILE)."""
    run_async(
        dump_events(
            settings_for(need_redis(redis), namespace),
            after,
            follow,
            sys.stdout,
            as_json=as_json or not console.is_terminal,
        )
    )


@app.command("dead-letters")
def dead_letters(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    limit: Annotated[int, typer.Option(min=1, help="at most this many, newest first")] = 100,
    as_json: Annotated[bool, typer.Option("--json")] = False,
) -> None:
    """List the dead letters (rejected deliveries, failed tasks), newest first."""
    run_async(
        show_dead_letters(settings_for(need_redis(redis), namespace), limit, as_json, console)
    )


def _backend(settings: Settings) -> Backend:
    """The deployment's backend for a one-shot command: fail fast (exit code 4) when Redis
    does not answer, instead of spending the reconnect backoff (about a minute) that
    long-running processes (serve, worker) rightly use."""
    probe_backend(settings.redis_url or "")
    return backend_from_url(settings.redis_url, settings)


def _read(path: Path) -> dict[str, Any]:
    try:
        raw = path.read_bytes()
        data = tomllib.loads(raw.decode()) if path.suffix == ".toml" else orjson.loads(raw)
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError, orjson.JSONDecodeError) as e:
        raise ValidationError(f"{path}: cannot read it: {e}") from None
    if not isinstance(data, dict):
        raise ValidationError(f"{path}: expected a table/object at the top level")
    return data


async def submit_file(
    settings: Settings,
    path: Path,
    wait: bool,
    timeout_s: float,
    console: Console,
    *,
    later: bool = False,
    as_json: bool = False,
) -> int:
    """Submit a task file or a workflow file (one with ``steps``). A handler no worker
    has ever offered is refused (exit 2, with a did-you-mean) unless ``later``. With
    ``as_json``, one JSON document: the ids, or (``wait``) the final status or record."""
    from worldpool.client.offered import OfferedHandlers

    data = _read(path)
    async with _backend(settings) as backend:
        orchestrator = Orchestrator(backend, settings, submit_only=True)  # loops not started
        offered = OfferedHandlers(backend)
        if "steps" in data:
            spec = load_workflow_file(path)
            if not later:
                await offered.check(step.task.handler for step in spec.steps)
            await orchestrator.submit_workflow(spec)
            steps = {step.name: step_task_id(spec.id, step.name) for step in spec.steps}
            if as_json and not wait:
                emit_json({"kind": "workflow", "id": spec.id, "tasks": steps}, console=console)
            elif not as_json:
                console.print(f"submitted workflow {spec.id} ({len(spec.steps)} steps)")
                for name, task_id in steps.items():  # each step's task, once it is ready
                    console.print(f"  step {name}: task {task_id}")
            if not wait:
                return 0
            status = await _follow(orchestrator, spec.id, timeout_s, None if as_json else console)
            emit_json(status, console=console)
            return 0 if status.status is WorkflowState.SUCCEEDED else 1
        try:
            task = TaskSpec.model_validate(data)
        except pydantic.ValidationError as exc:
            raise ValidationError(f"{path}: {exc}") from None
        if not later:
            await offered.check([task.handler])
        await orchestrator.submit(task)
        if as_json and not wait:
            emit_json({"kind": "task", "id": task.id}, console=console)
        elif not as_json:
            console.print(f"submitted task {task.id}")
        if not wait:
            return 0
        deadline = time.monotonic() + timeout_s
        cursor: str | None = None
        while time.monotonic() < deadline:
            record = await orchestrator.get_task(task.id)
            if record.status.terminal:
                emit_json(record.model_dump(mode="json", exclude={"decision"}), console=console)
                return 0 if record.status is TaskStatus.SUCCEEDED else 1
            events = await backend.read_events(cursor, 100, block_s=1.0)
            cursor = events[-1].seq if events else cursor
        raise TimeoutError(f"task {task.id} did not end within {timeout_s:g}s")


async def _follow(
    orchestrator: Orchestrator, workflow_id: str, timeout_s: float, console: Console | None
) -> WorkflowStatus:
    """Wait for a workflow's end, live on ``console`` (None: quietly), driven by the event
    stream (no record polling)."""
    from worldpool.cli.watch import follow_lines, watch

    try:
        async with asyncio.timeout(timeout_s):
            if console is None:
                return await follow_lines(orchestrator, workflow_id, None)
            return await watch(orchestrator, workflow_id, console=console)
    except TimeoutError:
        raise TimeoutError(f"workflow {workflow_id} did not end within {timeout_s:g}s") from None


async def show_status(settings: Settings, ident: str, as_json: bool, console: Console) -> None:
    async with _backend(settings) as backend:
        orchestrator = Orchestrator(backend, settings)
        try:
            status = await orchestrator.workflow_status(ident)
        except NotFoundError:
            try:
                record = await orchestrator.get_task(ident)
            except NotFoundError as missing:
                from worldpool.epoch import explain_missing

                raise await explain_missing(backend, missing) from None
            emit_json(record, console=console)
            return
        if as_json:
            emit_json(status, console=console)
        elif console.is_terminal:
            console.print(render_status(status))
        else:
            emit_table(
                STATUS_COLUMNS, status_rows(status), title=status_title(status), console=console
            )


async def show_workers(settings: Settings, as_json: bool, console: Console) -> None:
    async with _backend(settings) as backend:
        workers = await backend.list_workers()
        now = await backend.now()
    if as_json:
        emit_json(workers, console=console)
        return
    from worldpool.render import hardware_summary

    columns = ("worker", "status", "region", "load", "heartbeat age", "cost/h")
    rows = [
        (
            w.id,
            w.state.status.value,
            w.profile.location.region,
            f"{w.state.running}/{w.profile.max_concurrency}",
            f"{now - w.state.last_heartbeat:.1f}s",
            f"${w.profile.cost_per_hour:.2f}",
            ",".join(sorted(w.profile.capabilities)),
            hardware_summary(w.profile.hardware),
        )
        for w in sorted(workers, key=lambda w: (w.profile.location.macro_region, w.id))
    ]
    title = f"{len(workers)} workers"
    emit_table((*columns, "capabilities", "hardware"), rows, title=title, console=console)


async def watch_workflow(
    settings: Settings,
    ident: str,
    url: str | None,
    console: Console,
    token: str | None = None,
    *,
    as_json: bool = False,
) -> int:
    """The live view, or (``as_json``) one JSON line per status document, until the end."""
    from worldpool.cli.watch import ApiClient, follow_lines, watch

    async def follow(source: Orchestrator | ApiClient) -> WorkflowStatus:
        if as_json:
            return await follow_lines(source, ident, sys.stdout)
        return await watch(source, ident, console=console)

    if url:
        from worldpool.config import check_http_url

        async with ApiClient(check_http_url(url, "--url"), token) as api:
            status = await follow(api)
    elif settings.redis_url:
        async with _backend(settings) as backend:
            status = await follow(Orchestrator(backend, settings))
    else:
        raise ValidationError("pass --redis URL, or --url of a `worldpool serve` API")
    return 0 if status.status is WorkflowState.SUCCEEDED else 1


async def dump_events(
    settings: Settings, after: str | None, follow: bool, out: TextIO, *, as_json: bool = True
) -> int:
    """Write the deployment's event log: JSON lines (for `simulate --workload events:`), or
    one readable line per event (sequence, time, kind, task, worker, message)."""
    count = 0
    async with backend_from_url(settings.redis_url, settings) as backend:
        cursor = after
        while True:
            page = await backend.read_events(cursor, 1000, block_s=5.0 if follow else 0.0)
            for event in page:
                if as_json:
                    out.write(event.model_dump_json() + "\n")
                else:
                    fields = (event.task_id, event.worker_id, event.message)
                    text = "  ".join(f or "-" for f in fields)
                    out.write(f"{event.seq}  {clock(event.at)}  {event.kind.value}  {text}\n")
            out.flush()
            count += len(page)
            cursor = page[-1].seq if page else cursor
            if not page and not follow:
                return count


async def show_dead_letters(
    settings: Settings, limit: int, as_json: bool, console: Console
) -> None:
    """Print the newest ``limit`` dead letters: a table, or a JSON list (``data`` as UTF-8
    text when it is, else base64, as ``data_encoding`` says)."""
    async with _backend(settings) as backend:
        letters = await backend.list_dead_letters(limit)
    if as_json:
        emit_json([_dead_letter_json(d) for d in letters], console=console)
        return
    rows = [
        (
            letter.worker_id,
            time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(letter.at)),
            letter.code,
            _task_id(letter.data) or "",
            letter.reason,
        )
        for letter in letters
    ]
    columns = ("worker", "at", "code", "task", "reason")
    emit_table(columns, rows, title=f"{len(letters)} dead letters", console=console)


def _dead_letter_json(letter: DeadLetter) -> dict[str, Any]:
    try:
        data, encoding = letter.data.decode(), "utf-8"
    except UnicodeDecodeError:
        data, encoding = base64.b64encode(letter.data).decode(), "base64"
    return {
        "at": letter.at,
        "worker_id": letter.worker_id,
        "code": letter.code,
        "reason": letter.reason,
        "task_id": _task_id(letter.data),
        "data": data,
        "data_encoding": encoding,
    }


def _task_id(data: bytes) -> str | None:
    """The task a dead letter is about, when its data says (an envelope, or the
    orchestrator's ``{"task_id": ...}`` for a failed task); None for unreadable bytes."""
    try:
        task_id = orjson.loads(data).get("task_id")
    except (orjson.JSONDecodeError, AttributeError):
        return None
    return task_id if isinstance(task_id, str) else None
