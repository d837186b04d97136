"""Runs managed from the command line, on :class:`worldpool.Client`: ``list``, ``result``,
``cancel``, ``retry`` and ``logs``, registered on :data:`.app.app`.

Each command connects a client (a Redis that does not answer fails fast, exit code 4,
naming the URL without its password), does one thing and closes it. A wait that runs
out exits 6 (TIMEOUT): the work may still finish. Output is built by the small
``_print_*`` functions, so a shared table/JSON layer can take them over.
"""

from __future__ import annotations

import datetime as dt
from typing import Annotated, cast

import typer
from rich.console import Console

from worldpool.cli.app import (
    Exit,
    NamespaceOpt,
    RedisOpt,
    app,
    console,
    err,
    fail,
    need_redis,
    run_async,
    settings_for,
)
from worldpool.cli.output import emit_json, emit_table
from worldpool.client import Client, RunFilter, RunSummary
from worldpool.client.runs import Kind
from worldpool.config import Settings
from worldpool.errors import NotFoundError, TaskFailedError, ValidationError
from worldpool.models import TaskStatus, WorkflowState

JsonOpt = Annotated[bool, typer.Option("--json", help="JSON instead of a table")]
TimeoutOpt = Annotated[
    float,
    typer.Option(min=0, help="wait this long for the end (0: answer now); exit 6 if it runs out"),
]


@app.command("list")
def list_cmd(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    kind: Annotated[str | None, typer.Option(help="task or workflow")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. failed, running, succeeded")] = None,
    handler: Annotated[str | None, typer.Option(help="handler name (glob)")] = None,
    worker: Annotated[str | None, typer.Option(help="worker id (glob)")] = None,
    region: Annotated[str | None, typer.Option(help="region (glob)")] = None,
    since: Annotated[
        str | None, typer.Option(help="created at or after: ISO time or epoch s")
    ] = None,
    until: Annotated[str | None, typer.Option(help="created before: ISO time or epoch s")] = None,
    q: Annotated[str | None, typer.Option("--q", help="part of the id or workflow id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """List tasks and workflows, newest first, with filters."""
    if kind not in (None, "task", "workflow"):
        raise fail(Exit.USAGE, f"--kind {kind!r}: use task or workflow")
    where = RunFilter(
        cast("Kind | None", kind),
        status,
        handler,
        worker,
        region,
        _when("--since", since),
        _when("--until", until),
        q,
    )
    settings = settings_for(need_redis(redis), namespace)
    runs = run_async(_list(settings, where, limit))
    _print_runs(runs, as_json, console)


@app.command()
def result(
    ident: Annotated[str, typer.Argument(help="task or workflow id")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    timeout_s: TimeoutOpt = 0.0,
) -> None:
    """Print a task's value (a workflow's: each step's) as JSON; exit 1 if it failed."""
    settings = settings_for(need_redis(redis), namespace)
    raise typer.Exit(int(run_async(_result(settings, ident, timeout_s, console))))


@app.command()
def cancel(
    ident: Annotated[str, typer.Argument(help="task or workflow id")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
) -> None:
    """Cancel a task, or a workflow and its running steps; exit 1 if it had ended."""
    settings = settings_for(need_redis(redis), namespace)
    raise typer.Exit(int(run_async(_cancel(settings, ident, console))))


@app.command()
def retry(
    ident: Annotated[str, typer.Argument(help="task or workflow id")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
) -> None:
    """Queue a failed or cancelled task again (fresh retry budget), or run a workflow on
    from its failed steps; exit 1 if there was nothing to retry."""
    settings = settings_for(need_redis(redis), namespace)
    raise typer.Exit(int(run_async(_retry(settings, ident, console))))


@app.command()
def logs(
    ident: Annotated[str, typer.Argument(help="task id (a step's: WORKFLOW_ID.STEP)")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    follow: Annotated[bool, typer.Option(help="keep printing until the task ends")] = False,
    timeout_s: Annotated[float, typer.Option(min=1, help="stop following after this")] = 3600.0,
) -> None:
    """Print the lines a task's handler logged (``ctx.log``)."""
    settings = settings_for(need_redis(redis), namespace)
    run_async(_logs(settings, ident, follow, timeout_s, console))


# ---------------------------------------------------------------------- coroutines
async def _list(settings: Settings, where: RunFilter, limit: int) -> list[RunSummary]:
    async with await Client.from_settings(settings) as client:
        return await client.list_runs(where, limit)


async def _result(settings: Settings, ident: str, timeout_s: float, out: Console) -> Exit:
    async with await Client.from_settings(settings) as client:
        if await _is_workflow(client, ident):
            flow = client.workflow(ident)
            status = await flow.status()
            if not status.status.terminal and timeout_s > 0:
                try:
                    status = await flow.result(timeout_s)
                except TaskFailedError:  # the document says which step and why
                    status = await flow.status()
            if not status.status.terminal:
                raise TimeoutError(f"workflow {ident} is {status.status.value}; not ended yet")
            emit_json({s.step: s.result for s in status.steps}, console=out)
            if status.status is WorkflowState.SUCCEEDED:
                return Exit.OK
            failed = [s for s in status.steps if s.status == TaskStatus.FAILED.value]
            why = f"step {failed[0].step}: {failed[0].error}" if failed else status.error
            _explain_end(ident, status.status.value, why)
            return Exit.FAILED
        record = await client.task(ident).wait(timeout_s)
        if record.status is TaskStatus.SUCCEEDED:
            emit_json(record.result, console=out)
            return Exit.OK
        _explain_end(ident, record.status.value, record.error)
        return Exit.FAILED


async def _cancel(settings: Settings, ident: str, out: Console) -> Exit:
    async with await Client.from_settings(settings) as client:
        handle = client.workflow(ident) if await _is_workflow(client, ident) else client.task(ident)
        if await handle.cancel():
            out.print(f"cancelled {ident}")
            return Exit.OK
        state = (await handle.status()).status.value
        out.print(f"{ident} had already ended ({state}): nothing to cancel")
        return Exit.FAILED


async def _retry(settings: Settings, ident: str, out: Console) -> Exit:
    async with await Client.from_settings(settings) as client:
        if await _is_workflow(client, ident):
            flow = client.workflow(ident)
            steps = await flow.retry()
            if steps:
                out.print(f"retrying workflow {ident} from {', '.join(steps)}")
                return Exit.OK
            state = (await flow.status()).status.value
        else:
            task = client.task(ident)
            if await task.retry():
                out.print(f"retrying task {ident}")
                return Exit.OK
            state = (await task.status()).status.value
        out.print(f"{ident} is {state}: only a failed or cancelled run can be retried")
        return Exit.FAILED


async def _logs(
    settings: Settings, ident: str, follow: bool, timeout_s: float, out: Console
) -> None:
    async with await Client.from_settings(settings) as client:
        if await _is_workflow(client, ident):
            raise ValidationError(
                f"{ident} is a workflow: logs are per step; pass a step's task id "
                f"({ident}.STEP, listed by `worldpool list --q {ident}`)"
            )
        async for line in client.task(ident).logs(follow=follow, timeout_s=timeout_s):
            out.file.write(line + "\n")
            out.file.flush()


# ---------------------------------------------------------------------- helpers
async def _is_workflow(client: Client, ident: str) -> bool:
    try:
        await client.orchestrator.get_workflow(ident)
    except NotFoundError:
        return False
    return True


def _when(option: str, text: str | None) -> float | None:
    """Epoch seconds from ``1764680000`` or an ISO time (``2026-12-02T13:00``, UTC if it
    names no zone)."""
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        pass
    try:
        moment = dt.datetime.fromisoformat(text)
    except ValueError:
        raise fail(
            Exit.USAGE, f"{option} {text!r}: give epoch seconds or an ISO time (2026-12-02T13:00)"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.timestamp()


def _explain_end(ident: str, state: str, error: str | None) -> None:
    err.print(f"{ident} {state}: {error or 'no error recorded'}", highlight=False, soft_wrap=True)


def _print_runs(runs: list[RunSummary], as_json: bool, out: Console) -> None:
    if as_json:
        emit_json(runs, console=out)
        return
    columns = ("kind", "id", "status", "handler", "worker", "region", "created")
    rows = [
        (
            r.kind,
            r.id,
            r.status,
            r.handler or "",
            r.worker or "",
            r.region or "",
            dt.datetime.fromtimestamp(r.created_at).strftime("%Y-%m-%d %H:%M:%S"),
        )
        for r in runs
    ]
    emit_table(columns, rows, title=f"{len(runs)} runs", console=out)
