"""``worldpool worker``'s sandbox policy flags: the most any task's ``limits`` may have.

Each flag also reads an environment variable (``WORLDPOOL_SANDBOX_MAX_MEMORY_MB``...); an
unset one keeps :class:`~worldpool.executors.sandbox.policy.SandboxPolicy`'s default (see
docs/workers.md). A task asking more runs with the policy's value, and its result's
``capped`` says so. The policy module is imported only when a worker starts: the CLI must
load without the worker extra."""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

if TYPE_CHECKING:
    from worldpool.executors.sandbox.policy import SandboxPolicy


def _opt(flag: str, floor: int, what: str) -> typer.models.OptionInfo:
    env = "WORLDPOOL_" + flag.removeprefix("--").replace("-", "_").upper()
    info: typer.models.OptionInfo = typer.Option(flag, envvar=env, min=floor, help=what)
    return info


MaxMemoryOpt = Annotated[
    int | None,
    _opt(
        "--sandbox-max-memory-mb",
        16,
        "most memory (address space, MB) a sandboxed process may have [2048]",
    ),
]
MaxProcsOpt = Annotated[
    int | None,
    _opt("--sandbox-max-procs", 4, "most processes and threads of one sandboxed command [256]"),
]
MaxOpenFilesOpt = Annotated[
    int | None,
    _opt("--sandbox-max-open-files", 16, "most open files per sandboxed process [1024]"),
]
MaxWorkspaceOpt = Annotated[
    int | None,
    _opt(
        "--sandbox-max-workspace-mb",
        1,
        "size of the sandbox's /workspace filesystem, MB (a tmpfs: it uses memory) [1024]",
    ),
]


def policy_from_flags(
    memory_mb: int | None = None,
    procs: int | None = None,
    open_files: int | None = None,
    workspace_mb: int | None = None,
) -> SandboxPolicy:
    """The policy the flags give; a flag not given keeps the policy's default."""
    from worldpool.executors.sandbox.policy import SandboxPolicy

    given = {
        "max_memory_mb": memory_mb,
        "max_processes": procs,
        "max_open_files": open_files,
        "max_workspace_mb": workspace_mb,
    }
    return SandboxPolicy(**{k: v for k, v in given.items() if v is not None})
