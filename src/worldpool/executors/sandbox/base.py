"""What every sandbox provider takes and returns, and the provider contract.

A :class:`ShellRequest` names a command, a host directory that becomes the sandbox's
writable workspace, limits and whether the network is wanted. A provider runs it and
answers a :class:`ShellResult` that says how it ended and, in ``limit_hit``, which limit
(if any) stopped it. Declared output files are left in the host workspace; the shell
executor stores them as artifacts.
"""

from __future__ import annotations

import re
import shlex
import threading
from abc import ABC, abstractmethod
from enum import StrEnum
from pathlib import Path

from pydantic import Field, field_validator

from worldpool.errors import ValidationError
from worldpool.models import Model

DEFAULT_PATH = "/usr/local/bin:/usr/bin:/bin"
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")


class LimitHit(StrEnum):
    """Which limit ended a command (``ShellResult.limit_hit``)."""

    TIMEOUT = "timeout"
    MEMORY = "memory"
    CPU = "cpu"
    FILE_SIZE = "file_size"
    PROCESSES = "processes"
    OUTPUT = "output"
    CANCELLED = "cancelled"
    DISK = "disk"  # the workspace or /tmp filesystem is full (ENOSPC)


class Limits(Model):
    """Resource limits a task asks for one command. Memory is address space (RLIMIT_AS).

    A provider lowers them to its worker's policy (:mod:`.policy`) before running."""

    memory_mb: int = Field(default=2048, ge=16)
    cpu_s: int = Field(default=300, ge=1, description="CPU seconds per process (RLIMIT_CPU)")
    processes: int = Field(default=256, ge=4, description="processes/threads in the sandbox")
    file_size_mb: int = Field(default=512, ge=1, description="largest file it may write")
    open_files: int = Field(default=1024, ge=16)
    output_bytes: int = Field(
        default=1_048_576, ge=1024, description="stdout / stderr kept per stream"
    )
    output_kill_bytes: int = Field(
        default=64 * 1_048_576, ge=1024, description="total output read before the flood is killed"
    )
    tmp_mb: int = Field(default=256, ge=1, description="size of the private /tmp")
    workspace_mb: int = Field(default=1024, ge=1, description="size of the /workspace filesystem")


class ShellRequest(Model):
    """One command to run in a sandbox."""

    command: list[str] | str = Field(description="argv list, or a string run with /bin/sh -c")
    workspace: Path = Field(description="host directory mounted writable as the workspace")
    env: dict[str, str] = Field(default_factory=dict)
    timeout_s: float = Field(default=600.0, gt=0, description="wall-clock limit")
    limits: Limits = Field(default_factory=Limits)
    network: bool = False
    outputs: list[str] = Field(default_factory=list, description="workspace-relative paths")

    @field_validator("command")
    @classmethod
    def _non_empty(cls, v: list[str] | str) -> list[str] | str:
        if (isinstance(v, str) and not v.strip()) or (isinstance(v, list) and not v):
            raise ValueError("command is empty: give an argv list or a shell string")
        return v

    @field_validator("env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for name, value in v.items():
            if not _ENV_NAME.match(name) or "\0" in value:
                raise ValueError(f"environment variable {name!r} has an invalid name or value")
        return v

    def argv(self) -> list[str]:
        """The command as an argv list: strings run through ``/bin/sh -c``."""
        return ["/bin/sh", "-c", self.command] if isinstance(self.command, str) else self.command

    def display(self) -> str:
        return self.command if isinstance(self.command, str) else shlex.join(self.command)

    def base_env(self, home: str) -> dict[str, str]:
        """A cleared environment: PATH, HOME, LANG, then what the task asked for."""
        env = {"PATH": DEFAULT_PATH, "HOME": home, "LANG": "C.UTF-8", "TMPDIR": "/tmp"}
        env.update(self.env)
        return env


class ShellResult(Model):
    """How a command ended. ``exit_code`` is None when it never started."""

    exit_code: int | None
    stdout: str = ""
    stderr: str = ""
    stdout_truncated: bool = False
    stderr_truncated: bool = False
    duration_ms: int = 0
    provider: str
    sandbox_id: str
    limit_hit: LimitHit | None = None
    outputs: dict[str, str] = Field(
        default_factory=dict, description="output path -> artifact digest (set by the executor)"
    )
    capped: list[str] = Field(
        default_factory=list, description="limits the worker's policy lowered, one line each"
    )
    notes: list[str] = Field(
        default_factory=list, description="what else the sandbox did (workspace not copied back)"
    )

    @property
    def ok(self) -> bool:
        return self.exit_code == 0 and self.limit_hit is None


class SandboxProvider(ABC):
    """Runs a :class:`ShellRequest` in some kind of isolation. Sync: handlers run in threads."""

    #: True when ``sandbox_id`` names a VM (the status document's ``vm_id``).
    vm_backed: bool = False

    name: str = "abstract"
    #: whether this provider isolates the command at all (``local`` does not)
    isolated: bool = True
    #: whether every change the command makes to the workspace is in the host workspace
    #: afterwards (not only declared outputs): ``apply_patch`` runs git in such a provider
    syncs_workspace: bool = False

    @abstractmethod
    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        """Run the command; ``cancelled`` is a ``threading.Event`` checked while it runs."""


def check_relative(path: str) -> str:
    """Refuse absolute paths and ``..``: output and workspace paths stay inside."""
    if not path or "\0" in path:
        raise ValidationError(f"path {path!r} is empty or contains a NUL byte")
    parts = Path(path).parts
    if Path(path).is_absolute() or ".." in parts:
        raise ValidationError(
            f"path {path!r} must be relative to the workspace, without '..' components"
        )
    return path
