"""The ``local`` provider: no isolation at all. Only for workers started with
``--unsafe-local-shell`` (a trusted machine, a developer laptop, a CI job).

It still applies the rlimits (through ``prlimit`` when present, capped by the worker's
policy), the wall clock, the output cap and the process watchdog (no workspace size cap,
no seccomp filter), but the command sees the whole machine, its files
and its network, as the worker's user.
"""

from __future__ import annotations

import threading
import uuid

from worldpool.errors import HandlerError
from worldpool.executors.sandbox.base import SandboxProvider, ShellRequest, ShellResult
from worldpool.executors.sandbox.policy import DEFAULT_POLICY, SandboxPolicy
from worldpool.executors.sandbox.runner import ProcessSpec, rlimit_prefix, run_process


class LocalProvider(SandboxProvider):
    """Runs commands directly on the host; refuses unless ``allow`` is True."""

    name = "local"
    syncs_workspace = True
    isolated = False

    def __init__(self, allow: bool, policy: SandboxPolicy | None = None) -> None:
        self.allow = allow
        self.policy = policy or DEFAULT_POLICY

    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        if not self.allow:
            raise HandlerError(
                "the local shell provider runs commands without any isolation and is off; "
                "start the worker with --unsafe-local-shell to allow it, or use bubblewrap",
                retryable=False,
            )
        workspace = request.workspace.resolve()
        if not workspace.is_dir():
            raise HandlerError(f"workspace {workspace} is not a directory", retryable=False)
        limits, capped = self.policy.apply(request.limits)
        prefix, _ = rlimit_prefix(limits, None)
        outcome = run_process(
            ProcessSpec(
                argv=prefix + request.argv(),
                env=request.base_env(home=str(workspace)),
                limits=limits,
                timeout_s=request.timeout_s,
                cwd=workspace,
                watch_processes=limits.processes,
                cancelled=cancelled,
            )
        )
        result = outcome.result(self.name, f"local-{uuid.uuid4().hex[:12]}")
        result.capped = capped
        return result
