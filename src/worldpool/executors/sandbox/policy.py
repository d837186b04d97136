"""The worker's sandbox policy: the most a task may have, whatever its ``limits`` ask.

A task's ``limits`` are a request; the worker's :class:`SandboxPolicy` is the ceiling. A
value over the ceiling is **capped, not refused**: the command runs with the policy's
value, and the result's ``capped`` lists each limit that was lowered (``memory_mb: the
task asked 8192, this worker's policy allows 256``), so the caller sees why a command ran
with less than it asked for. Limits the task did not set take their default, lowered to
the policy silently. The operator sets the policy when starting the worker
(``worldpool worker --sandbox-max-memory-mb 1024 ...``).
"""

from __future__ import annotations

from dataclasses import dataclass, fields

from worldpool.errors import ConfigError
from worldpool.executors.sandbox.base import Limits

# limit field -> the policy field that caps it
_CAPS = {
    "memory_mb": "max_memory_mb",
    "processes": "max_processes",
    "open_files": "max_open_files",
    "workspace_mb": "max_workspace_mb",
    "tmp_mb": "max_tmp_mb",
    "cpu_s": "max_cpu_s",
    "file_size_mb": "max_file_size_mb",
}
# the smallest value of each that still runs a shell (the Limits models' own minimums)
_FLOORS = {
    "max_memory_mb": 16,
    "max_processes": 4,
    "max_open_files": 16,
    "max_workspace_mb": 1,
    "max_tmp_mb": 1,
    "max_cpu_s": 1,
    "max_file_size_mb": 1,
}


@dataclass(frozen=True)
class SandboxPolicy:
    """Ceilings for every sandboxed command of one worker (not raisable by a task)."""

    max_memory_mb: int = 2048
    """address space per process (RLIMIT_AS)"""
    max_processes: int = 256
    """processes and threads of one command"""
    max_open_files: int = 1024
    """open file descriptors per process (RLIMIT_NOFILE)"""
    max_workspace_mb: int = 1024
    """size of the ``/workspace`` filesystem (a size-capped tmpfs: it is memory)"""
    max_tmp_mb: int = 256
    """size of the private ``/tmp`` (a size-capped tmpfs)"""
    max_cpu_s: int = 3600
    """CPU seconds per process (RLIMIT_CPU)"""
    max_file_size_mb: int = 1024
    """largest file a process may write (RLIMIT_FSIZE)"""

    def __post_init__(self) -> None:
        for item in fields(self):
            value = getattr(self, item.name)
            if not isinstance(value, int) or isinstance(value, bool):
                raise ConfigError(f"sandbox policy {item.name} must be an integer, got {value!r}")
            if value < _FLOORS[item.name]:
                raise ConfigError(
                    f"sandbox policy {item.name}={value} is below the usable minimum "
                    f"{_FLOORS[item.name]}: raise it"
                )

    def apply(self, limits: Limits) -> tuple[Limits, list[str]]:
        """``limits`` lowered to this policy, and one line per limit the task asked more of."""
        lowered: dict[str, int] = {}
        notes: list[str] = []
        for name, cap_name in _CAPS.items():
            asked = int(getattr(limits, name))
            cap = int(getattr(self, cap_name))
            if asked > cap:
                lowered[name] = cap
                if name in limits.model_fields_set:
                    notes.append(
                        f"{name}: the task asked {asked}, this worker's policy allows {cap}"
                    )
        if not lowered:
            return limits, notes
        return limits.model_copy(update=lowered), notes


DEFAULT_POLICY = SandboxPolicy()
