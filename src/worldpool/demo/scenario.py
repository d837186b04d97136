"""``worldpool demo``: the seed scenario, "Fix the authentication bug in the login flow".

Seven workers from the seed (GPU boxes in Tokyo, London and San Francisco; browser VMs in
us-east-1, europe-west1 and eastasia; an on-prem sandbox host) plus a second sandbox host
in us-west-2, all in this process on the embedded backend. Midway the demo crashes the
worker running the localization step, so you can watch it fail over, then brings it back.

Before it starts, :func:`preflight` checks what each worker's handlers need on this
machine (bubblewrap, Chromium, git, ...): a worker that cannot back its handlers is not
started, and a step no started worker can run is left out of the workflow; both are said
up front, with how to install what is missing, and the review then cannot approve.

The GPU workers' steps call a real model: ``WORLDPOOL_DEMO_LLM_URL`` when set, else the
local model of the ``local-llm`` extra (llama.cpp's server on a free loopback port, for the
run's length), else the labelled offline rule (:func:`llm_mode` says which, and why).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console, Group
from rich.live import Live
from rich.panel import Panel
from rich.text import Text

from worldpool import geo
from worldpool.config import Settings
from worldpool.demo.handlers import HANDLERS
from worldpool.demo.llm import LLMMode, llm_for_run, llm_mode, print_model_answers
from worldpool.demo.report import explain
from worldpool.demo.workspace import missing_for
from worldpool.embedded import EmbeddedPool
from worldpool.errors import ConfigError
from worldpool.models import (
    Event,
    EventKind,
    Requirements,
    WorkerProfile,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.render import clock, render_status
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


@dataclass
class Preflight:
    """What this machine can run: workers to start, workers refused and why, steps left out."""

    workers: list[WorkerProfile]
    refused: dict[str, list[str]] = field(default_factory=dict)  # worker -> what it lacks
    left_out: dict[str, str] = field(default_factory=dict)  # step -> why

    def lines(self) -> list[str]:
        out = [f"not starting {w}: missing {'; '.join(m)}" for w, m in self.refused.items()]
        out += [f"cannot run step {s}: {why}" for s, why in self.left_out.items()]
        return out


def preflight(
    profiles: list[WorkerProfile] | None = None,
    missing: Callable[[str], list[str]] = missing_for,
) -> Preflight:
    """Refuse the workers whose handlers this machine cannot back; leave out the steps no
    remaining worker can run (and the steps after them, except the review, which then
    reports the work unverified)."""
    profiles = demo_pool() if profiles is None else profiles
    lacking = {h: missing(h) for h in sorted({h for p in profiles for h in p.handlers})}
    result = Preflight(workers=[])
    for profile in profiles:
        needs = sorted({m for h in profile.handlers for m in lacking[h]})
        if needs:
            result.refused[profile.id] = needs
        else:
            result.workers.append(profile)
    runnable = {h for p in result.workers for h in p.handlers}
    for step in demo_workflow("london").steps:
        if step.task.handler not in runnable:
            result.left_out[step.name] = (
                f"no worker here can run {step.task.handler!r} "
                f"({'; '.join(lacking.get(step.task.handler, [])) or 'no worker has it'})"
            )
        elif step.name != "review" and (gone := [a for a in step.after if a in result.left_out]):
            result.left_out[step.name] = f"it needs {', '.join(gone)}"
    return result


def demo_workflow(user_location: str, leave_out: Collection[str] = ()) -> WorkflowSpec:
    """The seed's six steps (verification is two parallel steps), less ``leave_out``."""
    spec = _seed_workflow(user_location)
    if not leave_out:
        return spec
    steps = [
        s.model_copy(update={"after": [a for a in s.after if a not in leave_out]})
        for s in spec.steps
        if s.name not in leave_out
    ]
    return spec.model_copy(update={"steps": steps})


def _seed_workflow(user_location: str) -> WorkflowSpec:
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


LIVE_HOP_LINES = 12
"""The live view's hop panel shows the newest lines that fit under the status table."""


@dataclass
class DemoLog:
    """Every event line of the run (the printed hop log is complete), and what the
    failover did. The live view shows only the :meth:`tail` that fits its panel."""

    lines: list[str] = field(default_factory=list)
    crashed: str | None = None
    failed_over_to: str | None = None

    def add(self, at: float, text: str) -> None:
        self.lines.append(f"{clock(at)}  {text}")

    def tail(self, count: int = LIVE_HOP_LINES) -> list[str]:
        return self.lines[-count:]


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
    checked: Preflight | None = None,
    llm: LLMMode = "auto",
) -> tuple[WorkflowStatus, EmbeddedPool, DemoLog]:
    """Run the scenario; ``on_update`` gets every new status document, ``on_finish`` runs
    before the pool stops. With ``serve_port`` the API and dashboard serve the run.
    ``checked``: the :func:`preflight` to run with (default: this machine's); ``llm`` picks
    the GPU steps' model (:func:`llm_mode`)."""
    geo.location_for(user_location)  # fail early, with a did-you-mean, on a bad location
    checked = preflight() if checked is None else checked
    if not checked.workers:
        raise ConfigError("no demo worker can run here: " + " | ".join(checked.lines()))
    with llm_for_run(llm):
        return await _run(
            user_location, failover, on_update, on_finish, serve_port, timeout_s, checked
        )


async def _run(
    user_location: str,
    failover: bool,
    on_update: Callable[[WorkflowStatus, DemoLog], None] | None,
    on_finish: Callable[[WorkflowStatus, EmbeddedPool], Awaitable[None]] | None,
    serve_port: int | None,
    timeout_s: float,
    checked: Preflight,
) -> tuple[WorkflowStatus, EmbeddedPool, DemoLog]:
    pool = EmbeddedPool(dict(HANDLERS), checked.workers, DEMO_SETTINGS)
    spec = demo_workflow(user_location, checked.left_out)
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
    # Transient: when the run ends the live view (whose panel keeps the newest hops) is
    # replaced by the whole record, so a terminal keeps every hop, as a pipe does.
    view = (
        Live(console=console, refresh_per_second=8, transient=True)
        if live and not as_json
        else None
    )
    printed = 0
    hops: list[str] = []

    def update(status: WorkflowStatus, log: DemoLog) -> None:
        nonlocal printed, hops
        hops = log.lines
        if view is not None:
            view.update(
                Group(
                    render_status(status),
                    Panel(Text("\n".join(log.tail())), title="hops", title_align="left"),
                )
            )
        elif not as_json:
            for line in log.lines[printed:]:
                console.print(line, markup=False, highlight=False, soft_wrap=True)
            printed = len(log.lines)

    async def finish(status: WorkflowStatus, pool: EmbeddedPool) -> None:
        if view is not None:
            view.stop()
            console.print(render_status(status))
            for line in hops:
                console.print(line, markup=False, highlight=False, soft_wrap=True)
        if as_json:
            console.file.write(status.model_dump_json(indent=2) + "\n")
        else:
            await explain(console, pool, status)
            await print_model_answers(console, pool)
        if serve_port is not None:
            console.print(
                f"\n[bold]Dashboard[/]: http://127.0.0.1:{serve_port}/ "
                "(the pool stays up; Ctrl-C to stop)"
            )
            await asyncio.Event().wait()

    checked = preflight()
    if not as_json:
        console.print(
            f"[bold]worldpool demo[/]: {REQUEST!r}, user in {user_location}, "
            f"{len(checked.workers)} workers in-process (embedded backend)"
        )
        console.print(llm_mode()[1], markup=False, highlight=False)
        for line in checked.lines():  # said up front: what this machine cannot run, and why
            console.print(Text(line, style="yellow"))
        if serve_port is not None:
            console.print(f"watch it live: http://127.0.0.1:{serve_port}/")
        console.print()
    try:
        with view if view is not None else contextlib.nullcontext():
            status, _, _ = asyncio.run(
                run_demo(
                    user_location,
                    on_update=update,
                    on_finish=finish,
                    serve_port=serve_port,
                    checked=checked,
                )
            )
    except KeyboardInterrupt:
        return 0
    return 0 if status.status.value == "succeeded" else 1
