"""The ``locale2b`` provider: commands in Firecracker microVMs run by a locale2b service.

locale2b (github.com/jhacksman/locale2b, ``workspace_service/main.py``) speaks JSON over
HTTP; the API key goes in the ``X-API-Key`` header. The calls used here:

    POST   /sandboxes                    {template, memory_mb, vcpu_count}
                                         -> {sandbox_id, status, ...}
    POST   /sandboxes/{id}/files/write   {path, content, is_base64} -> {status, path}
    POST   /sandboxes/{id}/exec          {command, timeout_seconds, working_dir}
                                         -> {success, exit_code, stdout, stderr, error}
    GET    /sandboxes/{id}/files/read?path=...  -> {success, content (base64), error}
    DELETE /sandboxes/{id}               -> {status: "destroyed", sandbox_id}

One microVM per command: the workspace is uploaded file by file to ``/workspace``, the
command runs there (argv lists are quoted into one shell string, as the API takes a
string), declared outputs are read back into the host workspace, and the VM is destroyed
even when something fails. Memory and the wall clock are enforced by the service (VM
size, ``timeout_seconds``); the other limits are the VM's own.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shlex
import threading
import time
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


class Locale2bProvider(SandboxProvider):
    """Client of a locale2b service. ``transport`` is for tests (httpx.MockTransport)."""

    name = "locale2b"

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        template: str = "default",
        vcpu_count: int = 1,
        api_key_header: str = "X-API-Key",
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url = base_url or os.environ.get(ENV_URL)
        if not url:
            raise ConfigError(f"locale2b needs a service URL: pass base_url or set {ENV_URL}")
        key = api_key if api_key is not None else os.environ.get(ENV_API_KEY)
        headers = {api_key_header: key} if key else {}
        self.template = template
        self.vcpu_count = vcpu_count
        self._client = httpx.Client(
            base_url=url,
            headers=headers,
            transport=transport,
            timeout=httpx.Timeout(60.0, connect=10.0),
        )

    def close(self) -> None:
        self._client.close()

    def run(self, request: ShellRequest, cancelled: threading.Event | None = None) -> ShellResult:
        started = time.monotonic()
        created = self._call(
            "POST",
            "/sandboxes",
            json={
                "template": self.template,
                "memory_mb": request.limits.memory_mb,
                "vcpu_count": self.vcpu_count,
            },
        )
        sandbox_id = str(created.get("sandbox_id") or "")
        if not sandbox_id:
            raise HandlerError("locale2b answered a create without a sandbox_id")
        try:
            self._upload(sandbox_id, request.workspace)
            reply = self._call(
                "POST",
                f"/sandboxes/{sandbox_id}/exec",
                json={
                    "command": _shell_string(request),
                    "timeout_seconds": max(1, int(request.timeout_s)),
                    "working_dir": REMOTE_WORKSPACE,
                },
                timeout=request.timeout_s + HTTP_SLACK_S,
            )
            self._download(sandbox_id, request)
        finally:
            self._destroy(sandbox_id)
        return _result(reply, request, sandbox_id, int((time.monotonic() - started) * 1000))

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

    def _upload(self, sandbox_id: str, workspace: Path) -> None:
        root = workspace.resolve()
        total = 0
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file():
                continue  # symlinks could point outside the workspace: never follow them
            data = path.read_bytes()
            total += len(data)
            if total > MAX_UPLOAD_BYTES:
                raise HandlerError(
                    f"workspace is over {MAX_UPLOAD_BYTES} bytes: too big to upload to locale2b",
                    retryable=False,
                )
            self._call(
                "POST",
                f"/sandboxes/{sandbox_id}/files/write",
                json={
                    "path": f"{REMOTE_WORKSPACE}/{path.relative_to(root).as_posix()}",
                    "content": base64.b64encode(data).decode("ascii"),
                    "is_base64": True,
                },
            )

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
