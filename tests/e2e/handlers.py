"""Handlers that worker processes in the e2e tests load with ``--handlers``.

* ``DEMO``: the demo's handlers; the localization step's first attempt first sleeps
  ``WP_E2E_SLOW_S`` seconds so that the test can SIGKILL its worker mid-run.
* ``COUNTING``: ``count`` appends ``task_id attempt worker phase`` lines to the file named
  by ``WP_E2E_COUNT_FILE`` when it starts and when it ends (O_APPEND writes of one short
  line are atomic across processes), after sleeping ``payload["sleep_s"]`` (on the first
  attempt only with ``first_attempt_only``); the tests count executions per task id.
  ``stubborn`` does the same but never looks at ``ctx.cancelled``; ``effect`` applies one
  effect through ``ctx.once`` (a line in ``WP_E2E_EFFECT_FILE``) after its sleep.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any

from worldpool.demo.handlers import HANDLERS
from worldpool.worker.handlers import Handler, TaskContext


def _slow_localization(ctx: TaskContext) -> dict[str, Any]:
    if ctx.step == "localization" and ctx.attempt == 1:
        _sleep(ctx, float(os.environ.get("WP_E2E_SLOW_S", "0")))
    return HANDLERS["run_tests"](ctx)  # type: ignore[return-value]


def _sleep(ctx: TaskContext, seconds: float) -> None:
    """Sleep in small steps; stop early when the worker revokes the task."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not ctx.cancelled.is_set():
        time.sleep(0.02)


def _note(ctx: TaskContext, phase: str) -> None:
    path = os.environ.get("WP_E2E_COUNT_FILE")
    if not path:
        return
    line = f"{ctx.task_id} {ctx.attempt} {ctx.worker.id} {phase}\n".encode()
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line)
    finally:
        os.close(fd)


def count(ctx: TaskContext) -> dict[str, Any]:
    _note(ctx, "start")
    if ctx.attempt == 1 or not ctx.payload.get("first_attempt_only"):
        _sleep(ctx, float(ctx.payload.get("sleep_s", 0) or 0))
    if ctx.cancelled.is_set():
        _note(ctx, "revoked")
        return {"revoked": True}
    _note(ctx, "end")
    return {"task": ctx.task_id, "worker": ctx.worker.id}


def stubborn(ctx: TaskContext) -> dict[str, Any]:
    """Like ``count`` but deaf to ``ctx.cancelled``: only a process exit stops it."""
    _note(ctx, "start")
    if ctx.attempt == 1 or not ctx.payload.get("first_attempt_only"):
        time.sleep(float(ctx.payload.get("sleep_s", 0) or 0))
    _note(ctx, "end")
    return {"task": ctx.task_id, "worker": ctx.worker.id}


def effect(ctx: TaskContext) -> dict[str, Any]:
    """Sleeps (deaf to ``ctx.cancelled``, first attempt only with ``first_attempt_only``),
    then applies its effect through ``ctx.once``: one line in ``WP_E2E_EFFECT_FILE``."""
    _note(ctx, "start")
    if ctx.attempt == 1 or not ctx.payload.get("first_attempt_only"):
        time.sleep(float(ctx.payload.get("sleep_s", 0) or 0))

    def apply(token: int) -> int:
        _append(os.environ["WP_E2E_EFFECT_FILE"], f"{ctx.task_id} {ctx.worker.id} {token}\n")
        return token

    token = ctx.once("apply", apply)
    _note(ctx, "end")
    return {"task": ctx.task_id, "worker": ctx.worker.id, "token": token}


def _append(path: str, line: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        os.write(fd, line.encode())
    finally:
        os.close(fd)


DEMO: dict[str, Handler] = {**HANDLERS, "run_tests": _slow_localization}
COUNTING: dict[str, Handler] = {"count": count, "stubborn": stubborn, "effect": effect}


def executions(path: str | os.PathLike[str]) -> list[tuple[str, int, str, str]]:
    """The lines written by ``count``: (task id, attempt, worker, phase)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    rows = []
    for line in text.splitlines():
        task_id, attempt, worker, phase = line.split()
        rows.append((task_id, int(attempt), worker, phase))
    return rows


# ------------------------------------------------------------------ shared workspaces


def _make_workspace(ctx: TaskContext) -> dict[str, Any]:
    """A git repo with a commit and an uncommitted change, handed on as a snapshot."""
    import tempfile

    from worldpool.executors.workspace import git, snapshot

    with tempfile.TemporaryDirectory(prefix="wp-e2e-ws-") as tmp:
        repo = Path(tmp)
        git(repo, "init", "-q")
        (repo / "app.py").write_text("VERSION = 1\n")
        git(repo, "add", "app.py")
        git(repo, "commit", "-q", "-m", "first")
        (repo / "app.py").write_text("VERSION = 2  # not committed\n")
        (repo / "notes.txt").write_text(f"made on {ctx.worker.id}\n")
        snap = snapshot(ctx, repo)
    return {"snapshot": snap.model_dump(mode="json"), "made_on": ctx.worker.id}


def _read_workspace(ctx: TaskContext) -> dict[str, Any]:
    """Materialise the upstream step's snapshot here and read it back."""
    import tempfile

    from worldpool.executors.workspace import WorkspaceCache, WorkspaceSnapshot

    made = ctx.upstream["make"]
    assert isinstance(made, dict)
    snap = WorkspaceSnapshot.model_validate(made["snapshot"])
    with tempfile.TemporaryDirectory(prefix="wp-e2e-read-") as tmp:
        cache = WorkspaceCache(Path(tmp) / "cache")
        dest = cache.materialize(
            snap, ctx.read(f"make/{snap.bundle}"), ctx.read(f"make/{snap.diff}"), Path(tmp) / "ws"
        )
        return {
            "app": (dest / "app.py").read_text(),
            "notes": (dest / "notes.txt").read_text(),
            "read_on": ctx.worker.id,
        }


WORKSPACES: dict[str, Handler] = {"make": _make_workspace, "read": _read_workspace}
