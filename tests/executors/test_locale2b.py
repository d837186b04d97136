"""The locale2b client against a fake service on loopback with the API's request and
response shapes (workspace_service/main.py of github.com/jhacksman/locale2b)."""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from tests.executors.context import make_ctx
from tests.helpers import free_port
from worldpool.errors import ConfigError, HandlerError
from worldpool.executors.sandbox.base import LimitHit, ShellRequest
from worldpool.executors.sandbox.locale2b import ENV_URL, Locale2bProvider
from worldpool.executors.shell import shell_handler

API_KEY = "test-key"


@dataclass
class FakeLocale2b:
    """Sandboxes with an in-memory file system; ``exec`` understands two fake commands."""

    files: dict[str, dict[str, bytes]] = field(default_factory=dict)
    calls: list[tuple[str, str, Any]] = field(default_factory=list)
    destroyed: list[str] = field(default_factory=list)
    fail_exec: int | None = None

    def handle(
        self, method: str, path: str, query: dict[str, list[str]], body: Any
    ) -> tuple[int, Any]:
        self.calls.append((method, path, body))
        parts = path.strip("/").split("/")
        if method == "GET" and parts == ["capacity"]:
            live = len(self.files) - len(self.destroyed)
            return 200, {"active_sandboxes": live, "max_sandboxes": 20, "memory_used_mb": 0}
        if method == "POST" and parts == ["sandboxes"]:
            sid = f"sb-{len(self.files) + 1}"
            self.files[sid] = {}
            return 200, {
                "sandbox_id": sid,
                "status": "running",
                "template": body["template"],
                "memory_mb": body["memory_mb"],
                "vcpu_count": body["vcpu_count"],
                "workspace_id": sid,
                "created_at": "2024-01-01T00:00:00",
            }
        sid = parts[1]
        if sid not in self.files:
            return 404, {"detail": "Sandbox not found"}
        fs = self.files[sid]
        if method == "DELETE":
            self.destroyed.append(sid)
            return 200, {"status": "destroyed", "sandbox_id": sid}
        if parts[2:] == ["files", "write"]:
            data = (
                base64.b64decode(body["content"]) if body["is_base64"] else body["content"].encode()
            )
            fs[body["path"]] = data
            return 200, {"status": "written", "path": body["path"]}
        if parts[2:] == ["files", "read"]:
            wanted = query["path"][0]
            if wanted not in fs:
                return 200, {"success": False, "content": None, "error": "File not found"}
            return 200, {"success": True, "content": base64.b64encode(fs[wanted]).decode()}
        if parts[2:] == ["exec"]:
            if self.fail_exec is not None:
                return self.fail_exec, {"detail": "boom"}
            if body["command"] == "sleep 100":
                return 200, {
                    "success": False,
                    "exit_code": -1,
                    "stdout": "",
                    "stderr": "",
                    "error": "Command timed out after 1 seconds",
                }
            if body["command"] == "upper":  # reads in.txt, writes out.txt
                src = fs[f"{body['working_dir']}/in.txt"]
                fs[f"{body['working_dir']}/out.txt"] = src.upper()
                return 200, {"success": True, "exit_code": 0, "stdout": "ok\n", "stderr": ""}
            return 200, {"success": True, "exit_code": 7, "stdout": "", "stderr": "nope\n"}
        return 404, {"detail": "Not Found"}


@pytest.fixture
def fake() -> Iterator[tuple[str, FakeLocale2b]]:
    state = FakeLocale2b()

    class Handler(BaseHTTPRequestHandler):
        def _serve(self, method: str) -> None:
            if self.headers.get("X-API-Key") != API_KEY:
                return self._reply(401, {"detail": "Invalid or missing API key"})
            length = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(length)) if length else None
            url = urlparse(self.path)
            status, reply = state.handle(method, url.path, parse_qs(url.query), body)
            return self._reply(status, reply)

        def _reply(self, status: int, reply: Any) -> None:
            data = json.dumps(reply).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

        def log_message(self, *args: Any) -> None:
            pass

    port = free_port()
    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{port}", state
    server.shutdown()
    server.server_close()
    thread.join(timeout=2)


def test_runs_a_command_with_files_in_and_out(fake: tuple[str, FakeLocale2b]) -> None:
    url, state = fake
    provider = Locale2bProvider(url, API_KEY)
    ctx = make_ctx(
        {
            "command": "upper",
            "files": {"in.txt": "in"},
            "outputs": ["out.txt"],
            "timeout_s": 42,
            "limits": {"memory_mb": 1024},
        }
    )
    ctx.input_data["in"] = b"make me loud"
    result = shell_handler(provider)(ctx)
    assert result["exit_code"] == 0 and result["stdout"] == "ok\n"
    assert result["sandbox_id"] == "sb-1" and ctx.meta["sandbox_id"] == "sb-1"
    assert ctx.staged["out.txt"].data == b"MAKE ME LOUD"
    create = next(c for c in state.calls if c[:2] == ("POST", "/sandboxes"))
    assert create[:2] == ("POST", "/sandboxes") and create[2]["memory_mb"] == 1024
    exec_call = next(c for c in state.calls if c[1].endswith("/exec"))
    assert exec_call[2] == {"command": "upper", "timeout_seconds": 42, "working_dir": "/workspace"}
    assert ctx.meta["vm_id"] == "sb-1"
    # The step's workspace is gone with the step: its VM goes too.
    assert provider.reap() == ["sb-1"] and state.destroyed == ["sb-1"]
    provider.close()


def test_nonzero_exit_and_argv_quoting(fake: tuple[str, FakeLocale2b], tmp_path: Path) -> None:
    url, state = fake
    provider = Locale2bProvider(url, API_KEY)
    result = provider.run(ShellRequest(command=["echo", "two words"], workspace=tmp_path))
    assert result.exit_code == 7 and result.stderr == "nope\n"
    exec_call = next(c for c in state.calls if c[1].endswith("/exec"))
    assert exec_call[2]["command"] == "echo 'two words'"
    provider.close()


def test_timeout_is_reported(fake: tuple[str, FakeLocale2b], tmp_path: Path) -> None:
    url, state = fake
    provider = Locale2bProvider(url, API_KEY)
    result = provider.run(ShellRequest(command="sleep 100", workspace=tmp_path, timeout_s=1))
    assert result.limit_hit is LimitHit.TIMEOUT and result.exit_code is None
    assert state.destroyed == ["sb-1"]
    provider.close()


def test_server_error_is_retryable_and_the_vm_is_destroyed(
    fake: tuple[str, FakeLocale2b], tmp_path: Path
) -> None:
    url, state = fake
    state.fail_exec = 503
    provider = Locale2bProvider(url, API_KEY)
    with pytest.raises(HandlerError) as info:
        provider.run(ShellRequest(command="x", workspace=tmp_path))
    assert info.value.retryable
    assert state.destroyed == ["sb-1"]
    provider.close()


def test_wrong_api_key_is_not_retryable(fake: tuple[str, FakeLocale2b], tmp_path: Path) -> None:
    url, _ = fake
    provider = Locale2bProvider(url, "wrong")
    with pytest.raises(HandlerError, match="API key") as info:
        provider.run(ShellRequest(command="x", workspace=tmp_path))
    assert not info.value.retryable
    provider.close()


def test_service_down_is_retryable(tmp_path: Path) -> None:
    provider = Locale2bProvider(f"http://127.0.0.1:{free_port()}", API_KEY)
    with pytest.raises(HandlerError) as info:
        provider.run(ShellRequest(command="x", workspace=tmp_path))
    assert info.value.retryable
    provider.close()


def test_needs_a_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ENV_URL, raising=False)
    with pytest.raises(ConfigError, match=ENV_URL):
        Locale2bProvider()


def test_symlinks_are_not_uploaded(fake: tuple[str, FakeLocale2b], tmp_path: Path) -> None:
    url, state = fake
    secret = tmp_path / "secret"
    secret.write_text("s3cret")
    ws = tmp_path / "ws"
    ws.mkdir()
    (ws / "a.txt").write_text("a")
    (ws / "link").symlink_to(secret)
    provider = Locale2bProvider(url, API_KEY)
    provider.run(ShellRequest(command="x", workspace=ws))
    written = [c[2]["path"] for c in state.calls if c[1].endswith("/files/write")]
    assert written == ["/workspace/a.txt"]
    provider.close()
