"""The ``locale2b`` provider: commands in Firecracker microVMs run by a locale2b service.

locale2b (github.com/jhacksman/locale2b, ``workspace_service/main.py``) speaks JSON over
HTTP; the API key goes in the ``X-API-Key`` header. The calls used here:

    GET    /capacity                     -> {max_sandboxes, active_sandboxes, ...}
    POST   /sandboxes                    {template, memory_mb, vcpu_count}
                                         -> {sandbox_id, status, ...}
    POST   /sandboxes/{id}/files/write   {path, content, is_base64} -> {status, path}
    POST   /sandboxes/{id}/exec          {command, timeout_seconds, working_dir}
                                         -> {success, exit_code, stdout, stderr, error}
    GET    /sandboxes/{id}/files/read?path=...  -> {success, content (base64), error}
    DELETE /sandboxes/{id}               -> {status: "destroyed", sandbox_id}

One microVM per task, used as a VM: the first command of a task (of a workspace: the
host directory the command runs in, so steps sharing a workspace share the VM) boots it,
later commands run in the same VM and see what earlier ones left there; the workspace is
uploaded to ``/workspace`` (afterwards only the files that changed), declared outputs are
read back. A VM is destroyed when its workspace is gone (the task ended: a reaper checks
every second), after a timeout or a failed call (its state is unknown), when idle for
``idle_s``, and at :meth:`Locale2bProvider.close`. ``concurrent_vms`` (default: the
service's ``max_sandboxes``) is the capacity: a command needing a new VM waits for a free
one. The VM's id is the step's ``sandbox_id`` and ``vm_id``. Memory and the wall clock are
enforced by the service (VM size, ``timeout_seconds``); the other limits are the VM's own.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from worldpool.errors import ConfigError, HandlerError
from worldpool.executors.sandbox.base import (
    LimitHit,
    SandboxProvider,
    ShellRequest,
    ShellResult,
    check_relative,
)
from worldpool.executors.sandbox.runner import CappedStream

ENV_URL = "WORLDPOOL_LOCALE2B_URL"
ENV_API_KEY = "WORLDPOOL_LOCALE2B_API_KEY"
REMOTE_WORKSPACE = "/workspace"
MAX_UPLOAD_BYTES = 64 * 1024 * 1024
HTTP_SLACK_S = 30.0
REAP_EVERY_S = 1.0  # how soon a finished task's VM is destroyed


@dataclass
class _VM:
    """A booted sandbox and what of its workspace was uploaded (path -> size, mtime)."""

    sandbox_id: str
    workspace: Path
    uploaded: dict[str, tuple[int, int]] = field(default_factory=dict)
    last_used: float = field(default_factory=time.monotonic)
    lock: threading.Lock = field(default_factory=threading.Lock)


class Locale2bProvider(SandboxProvider):
    """Client of a locale2b service. ``transport`` is for tests (httpx.MockTransport)."""

    name = "locale2b"
    vm_backed = True

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        template: str = "default",
        vcpu_count: int = 1,
        api_key_header: str = "X-API-Key",
        concurrent_vms: int | None = None,
        idle_s: float = 600.0,
        reap_every_s: float = REAP_EVERY_S,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url or os.environ.get(ENV_URL)
        if not url:
            raise ConfigError(f"locale2b needs a service URL: pass base_url or set {ENV_URL}")
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        headers = {api_key_header: key} if key else {}
        self.template = template
        self.vcpu_count = vcpu_count
        self.idle_s = idle_s
        self._client = httpx.Client(
            base_url=url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(60.0, connect=10.0),
        )
        self._vms: dict[Path, _VM] = {}
        self._lock = threading.Lock()
        self._capacity = concurrent_vms
        self._slots: threading.Semaphore | None = None
        self._stop = threading.Event()
        self._reap_every_s = reap_every_s
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------------ capacity
    @property
    def concurrent_vms(self) -> int | None:
        """VMs this provider runs at once: the setting, else the service's max_sandboxes
        (None when the service does not say: its own 503 is then the limit)."""
        if self._capacity is None:
            with contextlib.suppress(HandlerError):
                reported = self._call("GET", "/capacity").get("max_sandboxes")
                if isinstance(reported, int) and reported > 0:
                    self._capacity = reported
        return self._capacity

    def _acquire_slot(self, cancelled: threading.Event | None, wait_s: float) -> None:
        if self._slots is None:
            capacity = self.concurrent_vms
            if capacity is None:
                return
            with self._lock:
                if self._slots is None:
                    self._slots = threading.BoundedSemaphore(capacity)
        deadline = time.monotonic() + wait_s
        while not self._slots.acquire(timeout=0.2):
            self.reap()  # a finished task's VM frees its slot
            if (cancelled is not None and cancelled.is_set()) or time.monotonic() > deadline:
                raise HandlerError(
                    f"all {self._capacity} locale2b VMs of this worker are busy", retryable=True
                )

    # ------------------------------------------------------------------ VMs
    def active_vms(self) -> dict[str, Path]:
        """Booted VMs by id, with the workspace each serves."""
        with self._lock:
            return {vm.sandbox_id: path for path, vm in self._vms.items()}

    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        started = time.monotonic()
        vm = self._vm_for(request, cancelled)
        with vm.lock:  # one command at a time per VM
            try:
                self._upload(vm, request.workspace)
                reply = self._call(
                    "POST",
                    f"/sandboxes/{vm.sandbox_id}/exec",
                    json={
                        "command": _shell_string(request),
                        "timeout_seconds": max(1, int(request.timeout_s)),
                        "working_dir": REMOTE_WORKSPACE,
                    },
                    timeout=request.timeout_s + HTTP_SLACK_S,
                )
                self._download(vm.sandbox_id, request)
            except BaseException:
                self._retire(vm)  # its state is unknown now
                raise
            vm.last_used = time.monotonic()
        result = _result(reply, request, vm.sandbox_id, int((time.monotonic() - started) * 1000))
        if result.limit_hit is LimitHit.TIMEOUT:
            self._retire(vm)  # the command may still run in there
        return result

    def reap(self) -> list[str]:
        """Destroy the VMs whose workspace is gone or that sat idle too long; their ids."""
        now = time.monotonic()
        with self._lock:
            done = [
                vm
                for path, vm in self._vms.items()
                if not vm.lock.locked() and (not path.exists() or now - vm.last_used > self.idle_s)
            ]
        for vm in done:
            self._retire(vm)
        return [vm.sandbox_id for vm in done]

    def close(self) -> None:
        self._stop.set()
        with self._lock:
            vms = list(self._vms.values())
        for vm in vms:
            self._retire(vm)
        self._client.close()

    def _vm_for(self, request: ShellRequest, cancelled: threading.Event | None) -> _VM:
        key = request.workspace.resolve()
        with self._lock:
            vm = self._vms.get(key)
        if vm is not None:
            return vm
        self._acquire_slot(cancelled, request.timeout_s)
        try:
            created = self._call(
                "POST",
                "/sandboxes",
                json={
                    "template": self.template,
                    "memory_mb": request.limits.memory_mb,
                    "vcpu_count": self.vcpu_count,
                },
            )
        except BaseException:
            self._release_slot()
            raise
        sandbox_id = str(created.get("sandbox_id") or "")
        if not sandbox_id:
            self._release_slot()
            raise HandlerError("locale2b answered a create without a sandbox_id")
        vm = _VM(sandbox_id, key)
        with self._lock:
            self._vms[key] = vm
            self._start_reaper()
        return vm

    def _retire(self, vm: _VM) -> None:
        with self._lock:
            if self._vms.get(vm.workspace) is not vm:
                return
            del self._vms[vm.workspace]
        self._destroy(vm.sandbox_id)
        self._release_slot()

    def _release_slot(self) -> None:
        if self._slots is not None:
            with contextlib.suppress(ValueError):
                self._slots.release()

    def _start_reaper(self) -> None:
        if self._reaper is None or not self._reaper.is_alive():
            self._reaper = threading.Thread(
                target=self._reap_loop, name="locale2b-reaper", daemon=True
            )
            self._reaper.start()

    def _reap_loop(self) -> None:
        while not self._stop.wait(self._reap_every_s):
            with contextlib.suppress(Exception):  # a failed delete is retried next round
                self.reap()

    # ------------------------------------------------------------------ internals
    def _call(
        self, method: str, path: str, *, timeout: float | None = None, **kwargs: Any
    ) -> dict[str, Any]:
        try:
            response = self._client.request(
                method,
                path,
                timeout=timeout if timeout is not None else httpx.USE_CLIENT_DEFAULT,
                **kwargs,
            )
        except httpx.HTTPError as exc:
            raise HandlerError(f"locale2b {method} {path} failed: {exc}") from exc
        if response.status_code == 401:
            raise HandlerError(f"locale2b refused the API key (set {ENV_API_KEY})", retryable=False)
        if response.status_code >= 400:
            retryable = response.status_code in (429, 503) or response.status_code >= 500
            raise HandlerError(
                f"locale2b {method} {path}: HTTP {response.status_code} {response.text[:300]}",
                retryable=retryable,
            )
        try:
            body = response.json()
        except ValueError as exc:
            raise HandlerError(f"locale2b {method} {path} returned non-JSON") from exc
        if not isinstance(body, dict):
            raise HandlerError(f"locale2b {method} {path} returned {type(body).__name__}")
        return body

    def _upload(self, vm: _VM, workspace: Path) -> None:
        """Upload what changed in the workspace since the VM last saw it."""
        root = workspace.resolve()
        total = 0
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue  # symlinks could point outside the workspace: never follow them
            rel = path.relative_to(root).as_posix()
            stat = path.stat()
            seen = (stat.st_size, stat.st_mtime_ns)
            if vm.uploaded.get(rel) == seen:
                continue
            data = path.read_bytes()
            total += len(data)
            if total > MAX_UPLOAD_BYTES:
                raise HandlerError(
                    f"workspace is over {MAX_UPLOAD_BYTES} bytes: too big to upload to locale2b",
                    retryable=False,
                )
            self._call(
                "POST",
                f"/sandboxes/{vm.sandbox_id}/files/write",
                json={
                    "path": f"{REMOTE_WORKSPACE}/{rel}",
                    "content": base64.b64encode(data).decode("ascii"),
                    "is_base64": True,
                },
            )
            vm.uploaded[rel] = seen

    def _download(self, sandbox_id: str, request: ShellRequest) -> None:
        root = request.workspace.resolve()
        for rel in request.outputs:
            check_relative(rel)
            body = self._call(
                "GET",
                f"/sandboxes/{sandbox_id}/files/read",
                params={"path": f"{REMOTE_WORKSPACE}/{rel}"},
            )
            if not body.get("success") or body.get("content") is None:
                continue  # reported as missing by the executor
            target = root / rel
            if not target.parent.resolve().is_relative_to(root):
                raise HandlerError(
                    f"output {rel!r} would land outside the workspace", retryable=False
                )
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(base64.b64decode(str(body["content"])))

    def _destroy(self, sandbox_id: str) -> None:
        # the service reaps idle VMs; a failed delete must not hide the step's result
        with contextlib.suppress(httpx.HTTPError):
            self._client.delete(f"/sandboxes/{sandbox_id}")


def _shell_string(request: ShellRequest) -> str:
    prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in request.env.items())
    command = request.command if isinstance(request.command, str) else shlex.join(request.command)
    return f"env {prefix} /bin/sh -c {shlex.quote(command)}" if prefix else command


def _result(
    reply: dict[str, Any], request: ShellRequest, sandbox_id: str, duration_ms: int
) -> ShellResult:
    out, err = CappedStream(request.limits.output_bytes), CappedStream(request.limits.output_bytes)
    out.feed(str(reply.get("stdout") or "").encode())
    err.feed(str(reply.get("stderr") or "").encode())
    error = str(reply.get("error") or "")
    timed_out = "timed out" in error.lower()
    if error and not timed_out:
        err.feed(f"\nlocale2b: {error}".encode())
    code = reply.get("exit_code")
    return ShellResult(
        exit_code=None if timed_out or not isinstance(code, int) else code,
        stdout=out.text(),
        stderr=err.text(),
        stdout_truncated=out.truncated,
        stderr_truncated=err.truncated,
        duration_ms=duration_ms,
        provider=Locale2bProvider.name,
        sandbox_id=sandbox_id,
        limit_hit=LimitHit.TIMEOUT if timed_out else None,
    )
