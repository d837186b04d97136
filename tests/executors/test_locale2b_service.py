"""The locale2b provider against locale2b's own service code, with only the VM faked.

Runs when ``WORLDPOOL_LOCALE2B_SRC`` names a checkout of github.com/jhacksman/locale2b
(its ``workspace_service`` and ``guest_agent`` packages; they are not vendored here).
What runs is theirs: the FastAPI app (``workspace_service/main.py``) with its API-key and
path-security middleware, ``SandboxManager``'s capacity accounting and its destroy path,
and the guest agent's exec and file handlers (``guest_agent/agent.py``). What is faked is
what needs a hypervisor: booting a Firecracker microVM in ``create_sandbox`` (kernel,
rootfs overlay, firecracker process, TAP network) and the vsock channel to the guest;
here a "VM" is a private directory standing for its root file system, and the guest
agent's handlers run on it with ``/`` mapped there.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import sys
import threading
import time
import uuid
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.executors.context import make_ctx
from tests.helpers import free_port
from worldpool.errors import HandlerError
from worldpool.executors.sandbox.base import ShellRequest
from worldpool.executors.sandbox.locale2b import Locale2bProvider
from worldpool.executors.shell import shell_handler

SRC = os.environ.get("WORLDPOOL_LOCALE2B_SRC", "")
API_KEY = "l2b-test-key-0123456789"
pytestmark = pytest.mark.skipif(
    not (SRC and (Path(SRC) / "workspace_service" / "main.py").is_file()),
    reason="set WORLDPOOL_LOCALE2B_SRC to a checkout of github.com/jhacksman/locale2b",
)


@dataclass
class Service:
    url: str
    manager: Any  # the faked SandboxManager subclass

    def sandboxes(self) -> list[str]:
        reply = httpx.get(f"{self.url}/sandboxes", headers={"X-API-Key": API_KEY})
        reply.raise_for_status()
        return [s["sandbox_id"] for s in reply.json()]


def _fake_manager_class() -> type:
    from guest_agent.agent import GuestAgent
    from workspace_service.sandbox_manager import SandboxConfig, SandboxManager

    class GuestOnDisk:
        """The guest agent's own handlers on a directory standing for the VM's root."""

        def __init__(self, root: Path) -> None:
            self.root = root
            self.agent = GuestAgent.__new__(GuestAgent)  # __init__ installs signal handlers

        def _inside(self, path: str) -> str:
            return str(self.root / path.lstrip("/"))

        def exec_command(self, command: str, timeout: int, working_dir: str) -> dict[str, Any]:
            request = {"command": command, "timeout": timeout, "working_dir": working_dir}
            return dict(
                self.agent.handle_exec({**request, "working_dir": self._inside(working_dir)})
            )

        def read_file(self, path: str) -> dict[str, Any]:
            return dict(self.agent.handle_read_file({"path": self._inside(path)}))

        def write_file(self, path: str, content: str, is_base64: bool = False) -> dict[str, Any]:
            request = {"path": self._inside(path), "content": content, "is_base64": is_base64}
            return dict(self.agent.handle_write_file(request))

        def list_files(self, path: str = "/workspace") -> dict[str, Any]:
            return dict(self.agent.handle_list_files({"path": self._inside(path)}))

        def disconnect(self) -> None:
            pass

    class FakeVMManager(SandboxManager):  # type: ignore[misc]
        """SandboxManager with the Firecracker boot replaced; everything else is theirs."""

        boots = 0

        async def create_sandbox(
            self,
            template: str = "default",
            memory_mb: int | None = None,
            vcpu_count: int | None = None,
            workspace_id: str | None = None,
        ) -> Any:
            memory_mb = memory_mb or self.config.default_memory_mb
            vcpu_count = vcpu_count or self.config.default_vcpu_count
            can_create, reason = self.can_create_sandbox(memory_mb)  # their accounting
            if not can_create:
                raise ValueError(reason)
            sandbox_id = str(uuid.uuid4())[:8]
            (self._get_sandbox_dir(sandbox_id) / "rootfs" / "workspace").mkdir(parents=True)
            config = SandboxConfig(
                sandbox_id=sandbox_id,
                template=template,
                memory_mb=memory_mb,
                vcpu_count=vcpu_count,
                workspace_id=workspace_id or sandbox_id,
                status="running",
                created_at=datetime.now(UTC).isoformat(),
            )
            self._active_sandboxes[sandbox_id] = config
            type(self).boots += 1
            return config

        def _get_vsock_client(self, sandbox_id: str) -> Any:
            if sandbox_id not in self._active_sandboxes:
                raise ValueError(f"Sandbox not found: {sandbox_id}")
            return GuestOnDisk(self._get_sandbox_dir(sandbox_id) / "rootfs")

    return FakeVMManager


@pytest.fixture
def service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Service]:
    import uvicorn

    monkeypatch.syspath_prepend(SRC)
    for name, value in {
        "WORKSPACE_BASE_DIR": str(tmp_path / "l2b"),
        "API_KEY_ENABLED": "true",
        "API_KEYS": API_KEY,
        "RATE_LIMIT_ENABLED": "false",
        "MAX_SANDBOXES": "2",
        "TOTAL_MEMORY_BUDGET_MB": "4096",
    }.items():
        monkeypatch.setenv(name, value)
    for module in [
        m for m in sys.modules if m.split(".")[0] in {"workspace_service", "guest_agent"}
    ]:
        monkeypatch.delitem(sys.modules, module)
    with warnings.catch_warnings():  # their code uses FastAPI's deprecated on_event
        warnings.simplefilter("ignore", DeprecationWarning)
        from workspace_service import config, main, security

    config.reset_config()
    security.reset_security_config()
    manager = _fake_manager_class()()
    monkeypatch.setattr(main, "sandbox_manager", manager)
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(main.app, host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline and thread.is_alive(), "locale2b did not start"
        time.sleep(0.05)
    try:
        yield Service(f"http://127.0.0.1:{port}", manager)
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        config.reset_config()
        security.reset_security_config()


def test_a_tasks_commands_share_one_vm_that_goes_with_the_task(
    service: Service, tmp_path: Path
) -> None:
    provider = Locale2bProvider(service.url, API_KEY, reap_every_s=0.1)
    assert provider.concurrent_vms == 2  # locale2b's MAX_SANDBOXES is the capacity
    ws = tmp_path / "task-ws"
    ws.mkdir()
    (ws / "in.txt").write_text("from the host\n")
    first = provider.run(ShellRequest(command="cat in.txt > vm-only.txt; echo one", workspace=ws))
    second = provider.run(
        ShellRequest(command="cat vm-only.txt", workspace=ws, outputs=["vm-only.txt"])
    )
    assert first.exit_code == 0 and first.stdout == "one\n", first
    assert second.stdout == "from the host\n"  # left in the VM by the first command
    assert first.sandbox_id == second.sandbox_id
    assert (ws / "vm-only.txt").read_text() == "from the host\n"  # the declared output
    assert type(service.manager).boots == 1
    assert service.sandboxes() == [first.sandbox_id]
    shutil.rmtree(ws)  # the task ended: its workspace is gone
    deadline = time.monotonic() + 10
    while service.sandboxes() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert service.sandboxes() == [] and provider.active_vms() == {}
    provider.close()


def test_concurrent_vms_is_the_capacity(service: Service, tmp_path: Path) -> None:
    provider = Locale2bProvider(service.url, API_KEY, reap_every_s=60)
    spaces = [tmp_path / f"ws{i}" for i in range(3)]
    for ws in spaces:
        ws.mkdir()
    for ws in spaces[:2]:
        provider.run(ShellRequest(command="true", workspace=ws))
    with pytest.raises(HandlerError, match="VMs of this worker are busy") as busy:
        provider.run(ShellRequest(command="true", workspace=spaces[2], timeout_s=1))
    assert busy.value.retryable and len(service.sandboxes()) == 2
    shutil.rmtree(spaces[0])  # one task ends: its VM is reaped, the slot is free
    third = provider.run(ShellRequest(command="echo three", workspace=spaces[2], timeout_s=5))
    assert third.stdout == "three\n" and len(service.sandboxes()) == 2
    provider.close()
    assert service.sandboxes() == []


def test_a_shell_step_reports_its_vm_id(service: Service) -> None:
    provider = Locale2bProvider(service.url, API_KEY)
    ctx = make_ctx({"command": "uname -s > os.txt", "outputs": ["os.txt"]})
    result = shell_handler(provider)(ctx)
    assert result["exit_code"] == 0
    assert ctx.meta["vm_id"] == result["sandbox_id"] == ctx.meta["sandbox_id"]
    assert ctx.staged["os.txt"].data.strip()
    provider.close()


def test_the_services_api_key_check_is_met(service: Service, tmp_path: Path) -> None:
    provider = Locale2bProvider(service.url, "wrong-key-0123456789")
    with pytest.raises(HandlerError, match="API key") as refused:
        provider.run(ShellRequest(command="true", workspace=tmp_path))
    assert not refused.value.retryable
    provider.close()
    assert asyncio.iscoroutinefunction(service.manager.create_sandbox)


def test_a_locale2b_worker_advertises_the_services_vms_as_its_capacity(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worldpool.cli.worker import WorkerOptions, build_profile
    from worldpool.worker.handlers import HandlerTable

    monkeypatch.setenv("WORLDPOOL_LOCALE2B_URL", service.url)
    monkeypatch.setenv("WORLDPOOL_LOCALE2B_API_KEY", API_KEY)
    options = WorkerOptions(region="on-prem", sandbox="locale2b")
    profile = build_profile(options, HandlerTable())
    virt = profile.hardware.virtualization
    assert virt is not None and (virt.platform, virt.concurrent_vms) == ("firecracker", 2)
    assert profile.max_concurrency == 2
