"""The ``bubblewrap`` provider: Linux namespaces around one command (Debian: bubblewrap).

What the sandbox sees: read-only /usr (and the /bin, /lib... links or binds next to it), a
short list of read-only /etc files, a private /proc, a minimal /dev, a size-capped private
/tmp, and the workspace, writable, at ``/workspace``. Nothing else of the host. New
pid, ipc, uts, net and cgroup namespaces; the network namespace has only a loopback of
its own unless the task asks for network and the worker allows it.

Processes: RLIMIT_NPROC counts per *real uid* and never applies to root, so a fork bomb run
as root is not stopped by it. When the worker runs as root, bwrap (root, no user
namespace) starts the command through ``setpriv`` under a fresh, otherwise unused uid with
no capabilities and ``no_new_privs``: RLIMIT_NPROC then counts exactly this sandbox's
processes, and stopping it kills every process of that uid. When the worker is not root,
bwrap makes a user namespace; the limit then also counts the worker user's other
processes, so it is raised by their number, and the watchdog counts the processes under
the sandbox and kills it at the limit.

The worker's :class:`~.policy.SandboxPolicy` caps every limit a task asks for (the result's
``capped`` says which); ``/workspace`` is a tmpfs of ``workspace_mb`` the workspace is
copied into and back out of (:mod:`.transfer`); a seccomp filter (:mod:`.seccomp`) answers
EPERM to ptrace, mount, unshare, bpf and the other syscalls an escape needs.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
import threading
import uuid
from pathlib import Path
from typing import ClassVar

import psutil  # type: ignore[import-untyped]  # no stubs installed

from worldpool.errors import ConfigError, HandlerError
from worldpool.executors.sandbox import seccomp
from worldpool.executors.sandbox.base import SandboxProvider, ShellRequest, ShellResult
from worldpool.executors.sandbox.policy import DEFAULT_POLICY, SandboxPolicy
from worldpool.executors.sandbox.runner import ProcessSpec, rlimit_prefix, run_process
from worldpool.executors.sandbox.transfer import SOURCE_MOUNT, WRAPPER, Receiver, tmpfs_bytes

WORKSPACE_MOUNT = "/workspace"
_SYSTEM_DIRS = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
_ETC_FILES = (
    "/etc/passwd",
    "/etc/group",
    "/etc/hosts",
    "/etc/resolv.conf",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/localtime",
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl",
    "/etc/ca-certificates",
    "/etc/mime.types",
    "/etc/gitconfig",
)
# Sandboxed commands run as root-started workers get uids from this range (never a login).
UID_BASE = 2_000_000_000
UID_SPAN = 1 << 24
# Without root, the limit counts the worker user's processes: bwrap's monitor, pid 1 of the
# namespace and the workspace wrapper's sh come on top of the command's own. The watchdog
# counts what runs under the monitor (pid 1, sh, the command) and stops the sandbox one
# process before RLIMIT_NPROC would refuse forks, so a drift in the worker's own process
# count cannot leave a fork bomb spinning until the wall clock.
BWRAP_OVERHEAD = 3
MB = 1024 * 1024


class BubblewrapProvider(SandboxProvider):
    """Run commands under bwrap. Construct once per worker; ``run`` is thread-safe."""

    name = "bubblewrap"
    syncs_workspace = True
    _uids_in_use: ClassVar[set[int]] = set()
    _uid_lock: ClassVar[threading.Lock] = threading.Lock()

    def __init__(
        self,
        *,
        allow_network: bool = False,
        ro_paths: list[Path] | None = None,
        bwrap: str | None = None,
        policy: SandboxPolicy | None = None,
        seccomp_filter: bool = True,
    ) -> None:
        found = bwrap or shutil.which("bwrap")
        if found is None:
            raise ConfigError(
                "bubblewrap is not installed: install the Debian package 'bubblewrap' "
                "(apt-get install bubblewrap), or pick another sandbox provider"
            )
        self.bwrap = found
        self.allow_network = allow_network
        self.ro_paths = [Path(p) for p in ro_paths or []]
        for path in self.ro_paths:
            if not path.is_absolute():
                raise ConfigError(f"sandbox read-only path {path} must be absolute")
        self.setpriv = shutil.which("setpriv")
        self.as_root = os.geteuid() == 0 and self.setpriv is not None
        self.policy = policy or DEFAULT_POLICY
        # built once: ConfigError here (an unknown architecture) stops the worker at start
        self.seccomp = seccomp.build_filter() if seccomp_filter else None

    # ------------------------------------------------------------------ public
    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        if request.network and not self.allow_network:
            raise HandlerError(
                "the task asks for network access but this worker runs sandboxes without "
                "network; start the worker with network allowed or route the task elsewhere",
                retryable=False,
            )
        workspace = request.workspace.resolve()
        if not workspace.is_dir():
            raise HandlerError(f"workspace {workspace} is not a directory", retryable=False)
        limits, capped = self.policy.apply(request.limits)
        request = request.model_copy(update={"limits": limits})
        needed = tmpfs_bytes(workspace)
        if needed > limits.workspace_mb * MB:
            raise HandlerError(
                f"the workspace holds {needed // MB + 1} MB, over the {limits.workspace_mb} MB "
                "the sandbox's /workspace may hold (limits.workspace_mb, capped by the "
                "worker's --sandbox-max-workspace-mb): send a smaller workspace",
                retryable=False,
            )
        sandbox_id = f"bwrap-{uuid.uuid4().hex[:12]}"
        uid = self._take_uid() if self.as_root else None
        owner = workspace.stat()
        receiver = Receiver(cap=2 * limits.workspace_mb * MB + 16 * MB)
        filter_fd = seccomp.filter_fd(self.seccomp) if self.seccomp is not None else None
        try:
            if uid is not None:
                _chown_tree(workspace, uid, uid)
            spec = self._spec(request, workspace, uid, cancelled, filter_fd)
            spec.stdin_fd = receiver.child_fd
            receiver.start()
            try:
                outcome = run_process(spec)
            finally:
                receiver.finish()
            hit = outcome.limit_hit
            notes = receiver.copy_back(workspace, hit.value if hit else None)
        finally:
            receiver.close()
            if filter_fd is not None:
                os.close(filter_fd)
            if uid is not None:
                _chown_tree(workspace, owner.st_uid, owner.st_gid)
                self._give_uid(uid)
        result = outcome.result(self.name, sandbox_id)
        result.capped, result.notes = capped, notes
        return result

    def argv(
        self,
        request: ShellRequest,
        workspace: Path,
        uid: int | None,
        seccomp_fd: int | None = None,
    ) -> list[str]:
        """The full bwrap command line (exposed for docs and debugging)."""
        net = request.network and self.allow_network
        if uid is not None:  # root: no user namespace, the uid switch happens in setpriv
            unshare = ["--unshare-ipc", "--unshare-pid", "--unshare-uts", "--unshare-cgroup-try"]
            if not net:
                unshare.append("--unshare-net")
        else:
            unshare = ["--unshare-all", *(["--share-net"] if net else [])]
        argv = [self.bwrap, *unshare, "--die-with-parent", "--new-session", "--hostname", "sandbox"]
        for path in _SYSTEM_DIRS:
            if os.path.islink(path):
                argv += ["--symlink", os.readlink(path), path]
            elif os.path.isdir(path):
                argv += ["--ro-bind", path, path]
        # bwrap makes a mount point's missing parents 0700: a dropped uid could read none
        # of the /etc files below (git's config, TLS roots, ld.so.cache) without this
        argv += ["--perms", "0755", "--dir", "/etc"]
        for path in _ETC_FILES:
            argv += ["--ro-bind-try", path, path]
        # The private /tmp first, so read-only paths that live under /tmp (a CI checkout's
        # virtualenv, say) are bound on top of it rather than hidden by it.
        argv += [
            "--proc",
            "/proc",
            "--dev",
            "/dev",
            "--size",
            str(request.limits.tmp_mb * 1024 * 1024),
            "--perms",
            "1777",
            "--tmpfs",
            "/tmp",
        ]
        made: set[Path] = set()
        for extra in self.ro_paths:
            if any(extra.is_relative_to(d) for d in _SYSTEM_DIRS):
                continue  # already visible through the system binds
            # bwrap makes missing parents of a mount point 0700: a dropped uid could not
            # reach the bind, so create them world-readable first
            for parent in reversed(extra.parents[:-1]):
                if parent not in made and str(parent) not in (*_SYSTEM_DIRS, "/tmp"):
                    made.add(parent)
                    argv += ["--perms", "0755", "--dir", str(parent)]
            argv += ["--ro-bind-try", str(extra), str(extra)]
        argv += [
            "--ro-bind",
            str(workspace),
            SOURCE_MOUNT,
            "--size",
            str(request.limits.workspace_mb * MB),
            "--perms",
            "0777",
            "--tmpfs",
            WORKSPACE_MOUNT,
            # the root bwrap builds and its /dev are tmpfs with no size cap, owned (without
            # root) by the worker's user: read-only, or they are uncapped writable space
            "--remount-ro",
            "/dev",
            "--remount-ro",
            "/",
            "--chdir",
            WORKSPACE_MOUNT,
        ]
        if seccomp_fd is not None:
            argv += ["--seccomp", str(seccomp_fd)]
        argv.append("--")
        if uid is not None:
            assert self.setpriv is not None
            argv += [
                self.setpriv,
                f"--reuid={uid}",
                f"--regid={uid}",
                "--clear-groups",
                "--no-new-privs",
                "--inh-caps=-all",
                "--bounding-set=-all",
                "--",
            ]
        return [*argv, "/bin/sh", "-c", WRAPPER, "sh", *request.argv()]

    # ------------------------------------------------------------------ internals
    def _spec(
        self,
        request: ShellRequest,
        workspace: Path,
        uid: int | None,
        cancelled: threading.Event | None,
        seccomp_fd: int | None,
    ) -> ProcessSpec:
        limits = request.limits
        if uid is not None:  # bwrap itself stays root: only the command counts
            nproc = watch = limits.processes
        else:
            nproc = _processes_of(os.getuid()) + limits.processes + BWRAP_OVERHEAD
            watch = limits.processes + BWRAP_OVERHEAD - 2
        prefix, _ = rlimit_prefix(limits, nproc)
        return ProcessSpec(
            argv=prefix + self.argv(request, workspace, uid, seccomp_fd),
            env=request.base_env(home="/tmp"),
            limits=limits,
            timeout_s=request.timeout_s,
            nproc_rlimit=nproc,
            watch_processes=watch,
            sweep_uid=uid,
            cancelled=cancelled,
            pass_fds=(seccomp_fd,) if seccomp_fd is not None else (),
        )

    def _take_uid(self) -> int:
        with self._uid_lock:
            while True:
                uid = UID_BASE + secrets.randbelow(UID_SPAN)
                if uid not in self._uids_in_use and not _processes_of(uid):
                    self._uids_in_use.add(uid)
                    return uid

    def _give_uid(self, uid: int) -> None:
        with self._uid_lock:
            self._uids_in_use.discard(uid)


def _processes_of(uid: int) -> int:
    return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid)


def _chown_tree(root: Path, uid: int, gid: int) -> None:
    """lchown everything under ``root`` (links are never followed)."""
    os.lchown(root, uid, gid)
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            with contextlib.suppress(FileNotFoundError):
                os.lchown(os.path.join(dirpath, name), uid, gid)
