"""Code executors: ``apply_patch``, ``check_syntax`` and ``run_tests``.

All three work on the step's workspace (``snapshot``, ``files`` or ``workspace`` in the
payload, as for ``shell``). ``apply_patch`` returns a new snapshot of the patched
workspace, so the next step (on any worker) continues from it.

* ``apply_patch``: ``{"patch": "<unified diff>"}`` or ``{"patch_artifact": "fix.diff"}``
  -> ``{"changed": [...], "snapshot": {...}, "sandbox": "bubblewrap"}``; ``git apply`` runs
  inside the worker's sandbox when it has one that brings the workspace back (bubblewrap,
  local), else on the host (``sandbox: null``); a patch that does not apply fails the step
  (not retryable) with git's reason.
* ``check_syntax``: ``{"paths": [...]}`` (default: the files changed against HEAD, or every
  ``.py`` file outside git) -> ``{"ok", "checked", "errors": ["file:line:col: message"]}``.
* ``run_tests``: ``{"command": [...]}`` (default ``python3 -m pytest -q``) run through the
  sandboxed shell -> the shell result plus ``passed``, ``failed``, ``errors``, ``skipped``.
"""

from __future__ import annotations

import ast
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import jedi

from worldpool.errors import HandlerError, ValidationError
from worldpool.executors.sandbox.base import SandboxProvider, ShellRequest, check_relative
from worldpool.executors.shell import WorkspaceResolver, execute, prepared_workspace
from worldpool.executors.workspace import git, snapshot
from worldpool.worker.handlers import TaskContext

DEFAULT_TEST_COMMAND = ["python3", "-m", "pytest", "-q", "-p", "no:cacheprovider"]
_SUMMARY_COUNT = re.compile(
    r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed|warnings?|deselected)"
)

Handler = Callable[[TaskContext], dict[str, Any]]


# --------------------------------------------------------------------------- apply_patch


PATCH_FILE = ".worldpool-patch.diff"
_SANDBOXED_APPLY = (
    f"git apply --numstat {PATCH_FILE} 2>/dev/null; "
    f"git apply --whitespace=nowarn --check {PATCH_FILE} && "
    f"git apply --whitespace=nowarn {PATCH_FILE}; "
    f'rc=$?; rm -f {PATCH_FILE}; exit "$rc"'
)


def apply_patch(worktree: Path, patch: bytes, sandbox: SandboxProvider | None = None) -> list[str]:
    """Apply a unified diff with ``git apply``; the files it touched, sorted.

    With ``sandbox`` (a provider that brings the workspace back, such as bubblewrap), git
    runs inside it: the patch is untrusted input and git's own checks are the only thing
    between it and the host otherwise."""
    if not patch.strip():
        raise ValidationError("the patch is empty")
    if sandbox is not None:
        return _apply_in_sandbox(worktree, patch, sandbox)
    numstat = git(worktree, "apply", "--numstat", "-", data=patch, check=False)
    check = _git_apply(worktree, patch, "--check")
    if check:
        raise HandlerError(f"patch does not apply: {check}", retryable=False)
    failed = _git_apply(worktree, patch)
    if failed:
        raise HandlerError(f"patch does not apply: {failed}", retryable=False)
    lines = numstat.decode().splitlines()
    changed = {line.split("\t", 2)[2] for line in lines if line.count("\t") >= 2}
    return sorted(changed)


def _apply_in_sandbox(worktree: Path, patch: bytes, sandbox: SandboxProvider) -> list[str]:
    (worktree / PATCH_FILE).write_bytes(patch)
    try:
        result = sandbox.run(
            ShellRequest(command=_SANDBOXED_APPLY, workspace=worktree, timeout_s=60)
        )
    finally:
        (worktree / PATCH_FILE).unlink(missing_ok=True)
    if not result.ok:
        why = result.stderr.strip() or f"exit code {result.exit_code} ({result.limit_hit})"
        raise HandlerError(f"patch does not apply: {why}", retryable=False)
    lines = result.stdout.splitlines()
    return sorted({line.split("\t", 2)[2] for line in lines if line.count("\t") >= 2})


def _git_apply(worktree: Path, patch: bytes, *flags: str) -> str:
    try:
        git(worktree, "apply", "--whitespace=nowarn", *flags, "-", data=patch)
    except HandlerError as exc:
        return str(exc).removeprefix("git apply failed: ")
    return ""


def apply_patch_handler(
    workspace_root: Path | None = None,
    snapshot_resolver: WorkspaceResolver | None = None,
    sandbox: SandboxProvider | None = None,
) -> Handler:
    """The ``apply_patch`` handler; ``git apply`` runs in ``sandbox`` when it brings the
    workspace back (:attr:`SandboxProvider.syncs_workspace`), else on the host."""
    inside = sandbox if sandbox is not None and sandbox.syncs_workspace else None

    def handler(ctx: TaskContext) -> dict[str, Any]:
        patch = _patch_bytes(ctx)
        with prepared_workspace(ctx, workspace_root, snapshot_resolver) as worktree:
            changed = apply_patch(worktree, patch, inside)
            ctx.log.info("patched %d file(s): %s", len(changed), ", ".join(changed))
            result: dict[str, Any] = {
                "changed": changed,
                "sandbox": inside.name if inside else None,
            }
            if (worktree / ".git").exists():
                result["snapshot"] = snapshot(ctx, worktree).model_dump(mode="json")
        return result

    return handler


def _patch_bytes(ctx: TaskContext) -> bytes:
    if "patch_artifact" in ctx.payload:
        return ctx.read(str(ctx.payload["patch_artifact"]))
    patch = ctx.payload.get("patch")
    if not isinstance(patch, str):
        raise ValidationError("apply_patch needs 'patch' (a unified diff) or 'patch_artifact'")
    return patch.encode("utf-8")


# --------------------------------------------------------------------------- check_syntax


def syntax_errors(source: str, path: str) -> list[str]:
    """``file:line:col: message`` for each syntax error jedi (all of them) or ast finds."""
    errors: list[str] = []
    for err in jedi.Script(source, path=path).get_syntax_errors():
        errors.append(f"{path}:{err.line}:{err.column + 1}: {err.get_message()}")
    try:
        ast.parse(source, filename=path)
    except SyntaxError as exc:
        message = f"{path}:{exc.lineno or 0}:{exc.offset or 0}: {exc.msg}"
        if not any(e.startswith(f"{path}:{exc.lineno}:") for e in errors):
            errors.append(message)
    return errors


def changed_python_files(worktree: Path) -> list[str]:
    """Python files that differ from HEAD (untracked included); every .py without git."""
    if not (worktree / ".git").exists():
        return sorted(p.relative_to(worktree).as_posix() for p in worktree.rglob("*.py"))
    out = git(worktree, "status", "--porcelain", "-z", "--untracked-files=all")
    paths: list[str] = []
    entries = out.decode().split("\0")
    skip_next = False
    for entry in entries:
        if skip_next or len(entry) < 4:
            skip_next = False
            continue
        status, path = entry[:2], entry[3:]
        skip_next = "R" in status or "C" in status  # the next field is the old name
        if "D" not in status and path.endswith(".py"):
            paths.append(path)
    return sorted(paths)


def check_syntax(worktree: Path, paths: list[str]) -> dict[str, Any]:
    errors: list[str] = []
    for rel in paths:
        check_relative(rel)
        file = worktree / rel
        if not file.resolve().is_relative_to(worktree.resolve()) or not file.is_file():
            errors.append(f"{rel}:0:0: file not found in the workspace")
            continue
        errors += syntax_errors(file.read_text(encoding="utf-8", errors="replace"), rel)
    return {"ok": not errors, "checked": paths, "errors": errors}


def check_syntax_handler(
    workspace_root: Path | None = None, snapshot_resolver: WorkspaceResolver | None = None
) -> Handler:
    def handler(ctx: TaskContext) -> dict[str, Any]:
        with prepared_workspace(ctx, workspace_root, snapshot_resolver) as worktree:
            paths = ctx.payload.get("paths")
            if paths is None:
                paths = changed_python_files(worktree)
            if not isinstance(paths, list):
                raise ValidationError("check_syntax 'paths' must be a list of workspace paths")
            return check_syntax(worktree, [str(p) for p in paths])

    return handler


# --------------------------------------------------------------------------- run_tests


def parse_pytest_summary(output: str) -> dict[str, int]:
    """Counts from pytest's last summary line (``=== 3 passed, 1 failed in 0.1s ===``)."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for line in reversed(output.splitlines()):
        found = _SUMMARY_COUNT.findall(line)
        if found and (" in " in line or "no tests ran" in line):
            for number, word in found:
                key = "errors" if word.startswith("error") else word
                if key in counts:
                    counts[key] = int(number)
            break
    return counts


def run_tests_handler(
    provider: SandboxProvider,
    workspace_root: Path | None = None,
    snapshot_resolver: WorkspaceResolver | None = None,
) -> Handler:
    def handler(ctx: TaskContext) -> dict[str, Any]:
        command = ctx.payload.get("command") or DEFAULT_TEST_COMMAND
        result = execute(ctx, provider, workspace_root, snapshot_resolver, command=command)
        summary = parse_pytest_summary(result.stdout)
        ctx.log.info("tests: %s", summary)
        return {
            **result.model_dump(mode="json"),
            **summary,
            "ok": result.ok and summary["failed"] == 0 and summary["errors"] == 0,
        }

    return handler
