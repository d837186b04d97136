"""``list``, ``result``, ``cancel``, ``retry``, ``logs``: runs managed from the command line,
through the same :class:`~worldpool.Client` a Python program uses."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Annotated, TypeVar

import typer
from rich.console import Console

from worldpool.cli.app import NamespaceOpt, RedisOpt, app, need_redis, run_async, settings_for
from worldpool.cli.output import emit_json, emit_table
from worldpool.client import Client, RunFilter
from worldpool.client.runs import Kind
from worldpool.errors import NotFoundError, TaskFailedError

console = Console(highlight=False, soft_wrap=True)
T = TypeVar("T")
JsonOpt = Annotated[bool, typer.Option("--json", help="print JSON")]
IdArg = Annotated[str, typer.Argument(help="a task id or a workflow id")]
RUN_COLUMNS = ("id", "kind", "status", "handler", "worker", "region", "created")


def _with_client(redis: str | None, namespace: str, use: Callable[[Client], Awaitable[T]]) -> T:
    async def go() -> T:
        settings = settings_for(need_redis(redis), namespace)
        async with await Client.from_settings(settings) as client:
            return await use(client)

    result: T = run_async(go())
    return result


async def _is_workflow(client: Client, ident: str) -> bool:
    if await client.backend.get_workflow(ident) is not None:
        return True
    if await client.backend.get_task(ident) is not None:
        return False
    raise NotFoundError("task or workflow", ident)


@app.command("list")
def list_runs(
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    kind: Annotated[str | None, typer.Option(help="task or workflow")] = None,
    status: Annotated[str | None, typer.Option(help="e.g. failed, running")] = None,
    handler: Annotated[str | None, typer.Option(help="handler name or glob")] = None,
    worker: Annotated[str | None, typer.Option(help="worker id or glob")] = None,
    region: Annotated[str | None, typer.Option(help="region or glob ('eu-*')")] = None,
    since_s: Annotated[
        float | None, typer.Option(min=0, help="only runs created in the last N seconds")
    ] = None,
    before_s: Annotated[
        float | None, typer.Option(min=0, help="only runs created more than N seconds ago")
    ] = None,
    search: Annotated[str | None, typer.Option("--search", "-q", help="part of an id")] = None,
    limit: Annotated[int, typer.Option(min=1, max=10_000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Tasks and workflows, newest first, with filters."""
    if kind not in (None, "task", "workflow"):
        raise typer.BadParameter("--kind is 'task' or 'workflow'")
    the_kind: Kind | None = "task" if kind == "task" else "workflow" if kind == "workflow" else None
    if since_s is not None and before_s is not None and before_s > since_s:
        raise typer.BadParameter("--before-s is larger than --since-s: the window is empty")
    now = time.time()
    where = RunFilter(
        kind=the_kind,
        status=status,
        handler=handler,
        worker=worker,
        region=region,
        since=now - since_s if since_s is not None else None,
        until=now - before_s if before_s is not None else None,
        q=search,
    )
    runs = _with_client(redis, namespace, lambda c: c.list_runs(where, limit))
    rows = [
        (r.id, r.kind, r.status, r.handler or "", r.worker or "", r.region or "",
         time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(r.created_at)))
        for r in runs
    ]  # fmt: skip
    emit_table(RUN_COLUMNS, rows, json_mode=as_json, title=f"{len(rows)} runs", console=console)


@app.command("result")
def result(
    ident: IdArg,
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    wait_s: Annotated[float, typer.Option(min=0, help="wait this long for the end")] = 0.0,
    as_json: Annotated[
        bool, typer.Option("--json", help="JSON (always: accepted like on every command)")
    ] = False,
) -> None:
    """Print a task's value (JSON) or a workflow's status document; exit 1 if it failed,
    6 if it has not ended (after --wait-s)."""
    del as_json  # the value is JSON either way

    async def use(client: Client) -> int:
        if await _is_workflow(client, ident):
            handle = client.workflow(ident)
            try:
                emit_json(await handle.result(timeout_s=wait_s or 0.001), console=console)
            except TaskFailedError:
                emit_json(await handle.status(), console=console)
                return 1
            return 0
        task = client.task(ident)
        record = await task.wait(timeout_s=wait_s or 0.001)
        emit_json(
            await task.value(record)  # a large one: from the artifact store, verified
            if record.status.value == "succeeded"
            else {"status": record.status.value, "error": record.error},
            console=console,
        )
        return 0 if record.status.value == "succeeded" else 1

    code = _with_client(redis, namespace, use)
    raise typer.Exit(code)


@app.command("cancel")
def cancel(
    ident: IdArg,
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[bool, typer.Option("--json", help='print {"id", "cancelled"}')] = False,
) -> None:
    """Cancel a task or a workflow (and its running steps); exit 1 if it had ended."""
    done = _with_client(redis, namespace, lambda c: c.orchestrator.cancel(ident))
    if as_json:
        emit_json({"id": ident, "cancelled": bool(done)}, console=console)
    else:
        console.print(
            f"cancelled {ident}" if done else f"{ident} had already ended: nothing to cancel"
        )
    raise typer.Exit(0 if done else 1)


@app.command("retry")
def retry(
    ident: IdArg,
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    as_json: Annotated[
        bool, typer.Option("--json", help='print {"id", "retried": [task ids]}')
    ] = False,
) -> None:
    """Queue a failed or cancelled task again, or run a failed workflow on from its failed
    steps; exit 1 if it had not failed or been cancelled."""
    queued = _with_client(redis, namespace, lambda c: c.orchestrator.retry(ident))
    if as_json:
        emit_json({"id": ident, "retried": list(queued)}, console=console)
    elif queued:
        console.print(f"retrying {', '.join(queued)}")
    else:
        console.print(f"{ident} has not failed or been cancelled: nothing to retry")
    raise typer.Exit(0 if queued else 1)


@app.command("logs")
def logs(
    task_id: Annotated[str, typer.Argument(help="a task id (a step's: WORKFLOW_ID.STEP)")],
    redis: RedisOpt = None,
    namespace: NamespaceOpt = "default",
    follow: Annotated[bool, typer.Option("--follow", "-f", help="until the task ends")] = False,
    as_json: Annotated[
        bool, typer.Option("--json", help='JSON lines: {"task_id", "line"} per line')
    ] = False,
) -> None:
    """The lines a task's handler logged."""
    import sys

    import orjson

    async def use(client: Client) -> None:
        await client.task(task_id).status()  # NotFoundError (exit 3) for a wrong id
        async for line in client.task(task_id).logs(follow=follow):
            if as_json:  # one object per line, flushed: `logs -f --json | jq` follows
                sys.stdout.write(orjson.dumps({"task_id": task_id, "line": line}).decode() + "\n")
                sys.stdout.flush()
            else:
                console.print(line, markup=False)

    _with_client(redis, namespace, use)
