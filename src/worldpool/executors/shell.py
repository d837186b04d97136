"""The ``shell`` executor: run one command in a sandbox and store its declared outputs.

Payload of a ``shell`` step::

    {
      "command": ["pytest", "-q"] | "make test && ls",   # argv list, or /bin/sh -c string
      "files": {"src/app.py": "app.py"},   # workspace path -> input artifact name
      "snapshot": {...},                    # or: a workspace snapshot (executors.workspace)
      "workspace": "checkouts/abc",         # or: a directory under the worker's workspace root
      "env": {"CI": "1"},
      "timeout_s": 120,
      "limits": {"memory_mb": 1024, "cpu_s": 60, "processes": 64, ...},
      "network": false,
      "outputs": ["report.xml", "dist/app.whl"]   # workspace-relative, stored as artifacts
    }

The result is :class:`ShellResult` as JSON (exit code, capped output, truncation flags,
duration, sandbox id, the limit hit) with ``outputs`` mapping each output path to the
stored artifact's digest. A non-zero exit is a result, not an exception: the step
succeeds and the caller decides; ``check: true`` in the payload turns it into a failure.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from pydantic import ValidationError as PydanticValidationError

from worldpool.errors import ArtifactError, HandlerError, ValidationError
from worldpool.executors.sandbox.base import (
    Limits,
    SandboxProvider,
    ShellRequest,
    ShellResult,
    check_relative,
)
from worldpool.worker.handlers import TaskContext

MAX_OUTPUT_FILE_BYTES = 64 * 1024 * 1024
MIN_TIMEOUT_S = 1.0

__all__ = [
    "collect_outputs",
    "execute",
    "materialize_files",
    "prepared_workspace",
    "run_command",
    "shell_handler",
]


def run_command(
    request: ShellRequest, provider: SandboxProvider, cancelled: threading.Event | None = None
) -> ShellResult:
    """Run ``request`` with ``provider`` after checking its output paths are safe."""
    for path in request.outputs:
        check_relative(path)
    return provider.run(request, cancelled)


def collect_outputs(workspace: Path, paths: list[str]) -> tuple[dict[str, bytes], list[str]]:
    """Read declared output files; ``(found, missing)``.

    Refuses paths that leave the workspace, directly or through a symlink, and anything
    that is not a regular file.
    """
    root = workspace.resolve()
    found: dict[str, bytes] = {}
    missing: list[str] = []
    for rel in paths:
        check_relative(rel)
        resolved = (root / rel).resolve()
        if not resolved.is_relative_to(root):
            raise ArtifactError(
                f"output {rel!r} resolves to {resolved}, outside the workspace (a symlink?); "
                "outputs must be regular files inside the workspace"
            )
        if not resolved.exists():
            missing.append(rel)
            continue
        if not resolved.is_file():
            raise ArtifactError(f"output {rel!r} is not a regular file")
        size = resolved.stat().st_size
        if size > MAX_OUTPUT_FILE_BYTES:
            raise ArtifactError(
                f"output {rel!r} is {size} bytes, over the {MAX_OUTPUT_FILE_BYTES}-byte cap"
            )
        found[rel] = resolved.read_bytes()
    return found, missing


def materialize_files(workspace: Path, files: dict[str, bytes]) -> None:
    """Write ``files`` (workspace path -> bytes) under ``workspace``, refusing traversal."""
    root = workspace.resolve()
    for rel, data in files.items():
        check_relative(rel)
        target = root / rel
        if not target.parent.resolve().is_relative_to(root):
            raise ArtifactError(f"workspace file {rel!r} would be written outside the workspace")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data)


def output_artifact_name(rel: str) -> str:
    """Artifact names are plain file names: ``dist/app.whl`` becomes ``dist__app.whl``."""
    return "__".join(Path(rel).parts)


WorkspaceResolver = Callable[[TaskContext, Path], None]


def shell_handler(
    provider: SandboxProvider,
    *,
    workspace_root: Path | None = None,
    snapshot_resolver: WorkspaceResolver | None = None,
) -> Callable[[TaskContext], dict[str, Any]]:
    """The ``shell`` handler bound to one sandbox provider.

    ``workspace_root`` is the only host directory a task may name with ``workspace``
    (a relative path under it). ``snapshot_resolver`` materialises ``payload.snapshot``
    (see :func:`worldpool.executors.workspace.snapshot_resolver`).
    """

    def shell(ctx: TaskContext) -> dict[str, Any]:
        return execute(ctx, provider, workspace_root, snapshot_resolver).model_dump(mode="json")

    return shell


def execute(
    ctx: TaskContext,
    provider: SandboxProvider,
    workspace_root: Path | None = None,
    snapshot_resolver: WorkspaceResolver | None = None,
    *,
    command: list[str] | str | None = None,
) -> ShellResult:
    """Run the step's command (``command`` overrides the payload's) and store outputs."""
    with prepared_workspace(ctx, workspace_root, snapshot_resolver) as workspace:
        request = _request(ctx, workspace, command)
        ctx.log.info("shell[%s]: %s", provider.name, request.display())
        result = run_command(request, provider, ctx.cancelled)
        ctx.set_meta("sandbox_id", result.sandbox_id)
        if provider.vm_backed:
            ctx.set_meta("vm_id", result.sandbox_id)
        found, missing = collect_outputs(workspace, request.outputs)
        for rel, data in found.items():
            ref = ctx.store(output_artifact_name(rel), data)
            result.outputs[rel] = ref.digest
        if missing:
            ctx.log.warning("declared outputs not produced: %s", ", ".join(missing))
    if ctx.payload.get("check") and not result.ok:
        why = result.limit_hit.value if result.limit_hit else f"exit code {result.exit_code}"
        raise HandlerError(f"command failed ({why}): {result.stderr[-500:]}", retryable=False)
    return result


def _request(ctx: TaskContext, workspace: Path, command: list[str] | str | None) -> ShellRequest:
    payload = ctx.payload
    timeout_s = float(payload.get("timeout_s", 600.0))
    left = ctx.time_left_s
    if left is not None:
        timeout_s = max(MIN_TIMEOUT_S, min(timeout_s, left))
    try:
        return ShellRequest(
            command=command if command is not None else payload.get("command", ""),
            workspace=workspace,
            env={**(payload.get("env") or {}), **ctx.secrets},  # secrets by reference only
            timeout_s=timeout_s,
            limits=Limits.model_validate(payload.get("limits") or {}),
            network=bool(payload.get("network", False)),
            outputs=payload.get("outputs") or [],
        )
    except PydanticValidationError as exc:
        raise ValidationError(f"bad shell payload: {exc.errors()[0]['msg']}") from exc


@contextlib.contextmanager
def prepared_workspace(
    ctx: TaskContext,
    workspace_root: Path | None,
    snapshot_resolver: WorkspaceResolver | None,
) -> Iterator[Path]:
    """The step's workspace: a named directory under the worker's root (kept), or a
    scratch directory filled from ``snapshot`` and ``files`` (removed afterwards)."""
    payload = ctx.payload
    named = payload.get("workspace")
    if named is not None:
        yield _named_workspace(str(named), workspace_root)
        return
    scratch = Path(tempfile.mkdtemp(prefix="worldpool-ws-"))
    try:
        workspace = scratch / "ws"
        workspace.mkdir()
        if payload.get("snapshot") is not None:
            if snapshot_resolver is None:
                raise HandlerError(
                    "this worker cannot materialise workspace snapshots", retryable=False
                )
            snapshot_resolver(ctx, workspace)
        files = payload.get("files") or {}
        if not isinstance(files, dict):
            raise ValidationError("payload 'files' must map workspace paths to artifact names")
        materialize_files(workspace, {str(p): ctx.read(str(n)) for p, n in files.items()})
        yield workspace
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _named_workspace(named: str, workspace_root: Path | None) -> Path:
    if workspace_root is None:
        raise HandlerError(
            "the task names a workspace directory but this worker has no workspace root",
            retryable=False,
        )
    rel = check_relative(named)
    path = (workspace_root / rel).resolve()
    if not path.is_relative_to(workspace_root.resolve()) or not path.is_dir():
        raise HandlerError(
            f"workspace {rel!r} is not a directory under the workspace root", retryable=False
        )
    return path
