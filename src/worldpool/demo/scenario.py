"""``worldpool demo``: the seed scenario, "Fix the authentication bug in the login flow".

Seven workers from the seed (GPU boxes in Tokyo, London and San Francisco; browser VMs in
us-east-1, europe-west1 and eastasia; an on-prem sandbox host) plus a second sandbox host
in us-west-2, all in this process on the embedded backend. Midway the demo crashes the
worker running the localization step, so you can watch it fail over, then brings it back.

The GPU workers' steps call a real model: ``WORLDPOOL_DEMO_LLM_URL`` when set, else the
local model of the ``local-llm`` extra (llama.cpp's server on a free loopback port, for the
run's length), else the labelled offline rule (:func:`llm_mode` says which, and why).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from worldpool import geo
from worldpool.cli.render import clock, render_decision, render_status
from worldpool.config import Settings
from worldpool.demo.handlers import HANDLERS
from worldpool.demo.llm import LLMMode, llm_for_run, llm_mode, print_model_answers
from worldpool.embedded import EmbeddedPool
from worldpool.models import (
    Event,
    EventKind,
    Requirements,
    WorkerProfile,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.sim.pools import seed_pool
from worldpool.worker.runtime import WorkerRuntime
from worldpool.workflow.builder import Workflow

REQUEST = "Fix the authentication bug in the login flow"
FAILOVER_STEP = "localization"
DEMO_SETTINGS = Settings(heartbeat_s=0.5)
KIND_HANDLERS = {
    "gpu": ("plan", "analyze", "fix", "review"),
    "browser": ("browser_check",),
    "sandbox": ("run_tests",),
}


def demo_pool() -> list[WorkerProfile]:
    """The seed's workers (with the demo's handlers) and a second sandbox host."""
    workers = seed_pool()
    sandbox = next(w for w in workers if w.labels.get("kind") == "sandbox")
    workers.append(
        sandbox.model_copy(
            update={
                "id": "sandbox-aws-uswest-02",
                "location": geo.location_for("us-west-2"),
                "cost_per_hour": 1.60,
                "labels": {**sandbox.labels, "provider": "aws"},
            }
        )
    )
    return [
        w.model_copy(update={"handlers": frozenset(KIND_HANDLERS[w.labels["kind"]])})
        for w in workers
    ]


def demo_workflow(user_location: str) -> WorkflowSpec:
    """The seed's six steps (verification is two parallel steps)."""
    gpu = Requirements(gpu=True)
    wf = Workflow("fix-auth-bug", user_location=user_location)
    plan = wf.step(
        "planning",
        handler="plan",
        capabilities=["planning"],
        requirements=gpu,
        heavy=True,
        payload={"request": REQUEST},
    )
    loc = wf.step(
        "localization",
        handler="run_tests",
        capabilities=["file_operations", "shell_operations"],
        after=[plan],
        payload={"tests": ["tests/test_login.py"]},
    )
    und = wf.step(
        "understanding",
        handler="analyze",
        capabilities=["coding", "debugging"],
        requirements=gpu,
        interactive=True,
        after=[loc],
    )
    fix = wf.step(
        "fix", handler="fix", capabilities=["coding"], requirements=gpu, sticky_to=und, after=[und]
    )
    tests = wf.step(
        "verify_tests",
        handler="run_tests",
        capabilities=["testing", "shell_operations"],
        after=[fix],
        payload={"tests": ["tests"]},
    )
    browser = wf.step(
        "verify_browser",
        handler="browser_check",
        capabilities=["browser_operations"],
        interactive=True,
        after=[fix],
    )
    wf.step(
        "review",
        handler="review",
        capabilities=["reviewing"],
        requirements=gpu,
        weights={"cost": 1.0, "load": 0.6},
        after=[tests, browser],
    )
    return wf.build()


@dataclass
class DemoLog:
    """Event lines for the live view, and what the failover did."""

    lines: list[str] = field(default_factory=list)
    crashed: str | None = None
    failed_over_to: str | None = None

    def add(self, at: float, text: str) -> None:
        self.lines.append(f"{clock(at)}  {text}")
        del self.lines[:-12]


def describe(event: Event) -> str | None:
    """One human line per interesting event."""
    who = event.step or event.task_id or ""
    match event.kind:
        case EventKind.TASK_DISPATCHED:
            hop = "fails over to" if event.data.get("failover") else "→"
            return f"{who} {hop} {event.worker_id} ({event.data.get('region')}): {event.message}"
        case EventKind.TASK_SUCCEEDED:
            return f"{who} done on {event.worker_id}"
        case EventKind.TASK_FAILED | EventKind.TASK_RETRYING | EventKind.TASK_UNSCHEDULABLE:
            return f"{who} {event.kind.value.split('.')[1]}: {event.message}"
        case EventKind.TASK_FAILOVER:
            return f"{who} lost its worker: {event.message}"
        case EventKind.WORKER_OFFLINE:
            return f"worker {event.worker_id} is offline: {event.message}"
        case EventKind.WORKFLOW_SUCCEEDED | EventKind.WORKFLOW_FAILED:
            return f"workflow {event.kind.value.split('.')[1]}"
    return None


async def run_demo(
    user_location: str = "london",
    *,
    failover: bool = True,
    on_update: Callable[[WorkflowStatus, DemoLog], None] | None = None,
    on_finish: Callable[[WorkflowStatus, EmbeddedPool], Awaitable[None]] | None = None,
    serve_port: int | None = None,
    timeout_s: float = 120.0,
    llm: LLMMode = "auto",
) -> tuple[WorkflowStatus, EmbeddedPool, DemoLog]:
    """Run the scenario; ``on_update`` gets every new status document, ``on_finish`` runs
    before the pool stops. With ``serve_port`` the API and dashboard serve the run.
    ``llm`` picks the GPU steps' model (:func:`llm_mode`)."""
    geo.location_for(user_location)  # fail early, with a did-you-mean, on a bad location
    with llm_for_run(llm):
        return await _run(user_location, failover, on_update, on_finish, serve_port, timeout_s)


async def _run(
    user_location: str,
    failover: bool,
    on_update: Callable[[WorkflowStatus, DemoLog], None] | None,
    on_finish: Callable[[WorkflowStatus, EmbeddedPool], Awaitable[None]] | None,
    serve_port: int | None,
    timeout_s: float,
) -> tuple[WorkflowStatus, EmbeddedPool, DemoLog]:
    pool = EmbeddedPool(dict(HANDLERS), demo_pool(), DEMO_SETTINGS)
    spec = demo_workflow(user_location)
    log = DemoLog()
    await pool.start()
    server = await _serve(pool, serve_port) if serve_port is not None else None
    try:
        await pool.orchestrator.submit_workflow(spec)
        deadline = asyncio.get_running_loop().time() + timeout_s
        cursor: str | None = None
        while True:
            events = await pool.backend.read_events(cursor, 100, block_s=0.5)
            for event in events:
                cursor = event.seq
                if (text := describe(event)) is not None:
                    log.add(event.at, text)
                if failover:
                    await _maybe_crash(pool, event, log)
            status = await pool.orchestrator.workflow_status(spec.id)
            if on_update:
                on_update(status, log)
            if status.status.terminal:
                if on_finish:
                    await on_finish(status, pool)
                return status, pool, log
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"the demo did not finish within {timeout_s:g}s")
    finally:
        if server is not None:
            server.should_exit = True
            await asyncio.sleep(0.1)
        await pool.stop()


async def _serve(pool: EmbeddedPool, port: int) -> Any:
    """The API and dashboard on loopback, for ``worldpool demo --serve``."""
    from worldpool.api.app import create_app
    from worldpool.service import start_api_server

    app = create_app(pool.orchestrator, pool.settings, bind_host="127.0.0.1")
    return start_api_server(app, "127.0.0.1", port)


async def _maybe_crash(pool: EmbeddedPool, event: Event, log: DemoLog) -> None:
    """Crash the worker that starts the failover step; bring it back after the failover."""
    if event.step != FAILOVER_STEP or event.worker_id is None:
        return
    if event.kind is EventKind.TASK_STARTED and log.crashed is None:
        log.crashed = event.worker_id
        log.add(event.at, f"💥 taking {event.worker_id} down mid-step (as if SIGKILLed)")
        await pool.kill_worker(event.worker_id)
    elif event.kind is EventKind.TASK_SUCCEEDED and log.crashed and log.failed_over_to is None:
        log.failed_over_to = event.worker_id
        old = pool.workers[log.crashed]
        revived = WorkerRuntime(
            pool.backend, old.profile, old.handlers, pool.settings, artifacts=pool.artifacts
        )
        pool.workers[log.crashed] = revived
        await revived.start()
        log.add(event.at, f"♻ {log.crashed} restarted and registered again")


def main(
    user_location: str,
    *,
    live: bool,
    as_json: bool,
    console: Console,
    serve_port: int | None = None,
) -> int:
    """The CLI entry: run, show, explain. Returns the exit code."""
    view = Live(console=console, refresh_per_second=8) if live and not as_json else None
    printed = 0

    def update(status: WorkflowStatus, log: DemoLog) -> None:
        nonlocal printed
        if view is not None:
            view.update(
                Group(
                    render_status(status),
                    Panel(Text("\n".join(log.lines)), title="hops", title_align="left"),
                )
            )
        elif not as_json:
            for line in log.lines[printed:] if printed < len(log.lines) else []:
                console.print(line, markup=False, highlight=False)
            printed = len(log.lines)

    async def finish(status: WorkflowStatus, pool: EmbeddedPool) -> None:
        if view is not None:
            view.stop()
        if as_json:
            console.print_json(status.model_dump_json())
        else:
            await _explain(console, pool, status)
            await print_model_answers(console, pool)
        if serve_port is not None:
            console.print(
                f"\n[bold]Dashboard[/]: http://127.0.0.1:{serve_port}/ "
                "(the pool stays up; Ctrl-C to stop)"
            )
            await asyncio.Event().wait()

    if not as_json:
        console.print(
            f"[bold]worldpool demo[/]: {REQUEST!r}, user in {user_location}, "
            f"{len(demo_pool())} workers in-process (embedded backend)"
        )
        console.print(llm_mode()[1], markup=False, highlight=False)
        if serve_port is not None:
            console.print(f"watch it live: http://127.0.0.1:{serve_port}/")
        console.print()
    try:
        with view if view is not None else contextlib.nullcontext():
            status, _, _ = asyncio.run(
                run_demo(user_location, on_update=update, on_finish=finish, serve_port=serve_port)
            )
    except KeyboardInterrupt:
        return 0
    return 0 if status.status.value == "succeeded" else 1


async def _explain(console: Console, pool: EmbeddedPool, status: WorkflowStatus) -> None:
    """The final table, why each step went where it went, and the status document."""
    console.print()
    console.print(render_status(status))
    console.print("\n[bold]Why each step went where it went[/]")
    for step in status.steps:
        record = await pool.backend.get_task(step.task_id) if step.task_id else None
        if record is not None and record.decision is not None:
            console.print(render_decision(record.decision, limit=4))
        else:
            console.print(f"{step.step}: no routing decision recorded")
    console.print("\n[bold]Status document[/] (also: worldpool demo --json)")
    console.print_json(status.model_dump_json(include=_SEED_FIELDS))


_SEED_FIELDS: Any = {
    "id": True,
    "status": True,
    "total_cost_usd": True,
    "estimated_completion_sec": True,
    "steps": {
        "__all__": {
            "step",
            "worker",
            "region",
            "status",
            "attempts",
            "duration_ms",
            "tokens_used",
            "cost_usd",
            "sandbox_id",
            "vnc_url",
            "screenshot",
        }
    },
}
