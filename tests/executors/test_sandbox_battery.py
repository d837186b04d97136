"""The sandbox battery: real bubblewrap, each escape or runaway blocked or killed.

Every test runs one small command in a fresh workspace and asserts both what happened
(the connection never arrived, the file is not on the host) and which limit was reported.
"""

from __future__ import annotations

import os
import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import free_port, require_binary
from worldpool.executors.sandbox.base import LimitHit, Limits, ShellRequest, ShellResult
from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

FORK_BOMB = (
    "import os, time\n"
    "while True:\n"
    "    try:\n"
    "        os.fork()\n"
    "    except OSError:\n"
    "        time.sleep(0.01)\n"
)


@pytest.fixture
def provider() -> BubblewrapProvider:
    require_binary("bwrap", "bubblewrap")
    return BubblewrapProvider(allow_network=True)


@pytest.fixture
def listener() -> Iterator[tuple[int, list[bytes]]]:
    """A TCP server on host loopback that records whatever connects to it."""
    port = free_port()
    seen: list[bytes] = []
    server = socket.create_server(("127.0.0.1", port))
    server.settimeout(0.2)
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except TimeoutError:
                continue
            with conn:
                conn.settimeout(1.0)
                seen.append(conn.recv(64))

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield port, seen
    stop.set()
    thread.join(timeout=2)
    server.close()


def run(provider: BubblewrapProvider, ws: Path, command: list[str] | str, **kw: Any) -> ShellResult:
    return provider.run(ShellRequest(command=command, workspace=ws, **kw))


def connect_script(port: int) -> list[str]:
    code = (
        "import socket\n"
        f"s = socket.create_connection(('127.0.0.1', {port}), timeout=2)\n"
        "s.sendall(b'hello')\n"
        "print('connected')\n"
    )
    return ["python3", "-c", code]


def test_network_is_blocked(
    provider: BubblewrapProvider, tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    port, seen = listener
    result = run(provider, tmp_path, connect_script(port), timeout_s=20)
    assert result.exit_code != 0
    assert "connected" not in result.stdout
    assert seen == []


def test_network_when_asked_and_allowed(
    provider: BubblewrapProvider, tmp_path: Path, listener: tuple[int, list[bytes]]
) -> None:
    # the control: the same script reaches the host when the task asks and the worker allows
    port, seen = listener
    result = run(provider, tmp_path, connect_script(port), timeout_s=20, network=True)
    assert result.exit_code == 0, result.stderr
    assert "connected" in result.stdout
    for _ in range(40):  # the accept thread records it within moments
        if seen:
            break
        time.sleep(0.05)
    assert seen == [b"hello"]


def test_writes_outside_the_workspace_fail(provider: BubblewrapProvider, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    ws.mkdir()
    outside = tmp_path / "outside.txt"
    script = (
        f"echo x > {outside}; echo $? ; touch /usr/evil; echo $?; touch /etc/evil; echo $?;"
        " touch /evil; echo $?; echo inside > /workspace/in.txt; echo $?"
    )
    result = run(provider, ws, script, timeout_s=20)
    codes = result.stdout.split()
    assert "0" not in codes[:4], result.stdout + result.stderr
    assert codes[4] == "0"
    assert not outside.exists()
    assert not Path("/usr/evil").exists() and not Path("/etc/evil").exists()
    assert (ws / "in.txt").read_text() == "inside\n"


def test_fork_bomb_is_contained_and_killed(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(
        provider, tmp_path, ["python3", "-c", FORK_BOMB], limits=Limits(processes=32), timeout_s=60
    )
    assert result.limit_hit is LimitHit.PROCESSES
    assert result.exit_code != 0


def test_memory_hog_is_stopped(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(
        provider,
        tmp_path,
        ["python3", "-c", "b = bytearray(1 << 30)"],
        limits=Limits(memory_mb=256),
        timeout_s=30,
    )
    assert result.limit_hit is LimitHit.MEMORY
    assert "MemoryError" in result.stderr


def test_runaway_loop_is_killed_by_cpu_limit(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(
        provider,
        tmp_path,
        ["python3", "-c", "while True: pass"],
        limits=Limits(cpu_s=1),
        timeout_s=60,
    )
    assert result.limit_hit is LimitHit.CPU
    assert result.exit_code != 0


def test_sleeper_is_killed_by_wall_clock(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(provider, tmp_path, "sleep 60", timeout_s=1)
    assert result.limit_hit is LimitHit.TIMEOUT
    assert result.exit_code != 0


def test_output_flood_is_capped(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(
        provider,
        tmp_path,
        ["yes", "flood"],
        limits=Limits(output_bytes=4096, output_kill_bytes=1 << 20),
        timeout_s=30,
    )
    assert result.limit_hit is LimitHit.OUTPUT
    assert result.stdout_truncated
    assert len(result.stdout) < 4096 + 100
    assert "bytes truncated" in result.stdout


def test_big_file_is_stopped(provider: BubblewrapProvider, tmp_path: Path) -> None:
    result = run(
        provider,
        tmp_path,
        "dd if=/dev/zero of=big bs=1M count=4",
        limits=Limits(file_size_mb=1),
        timeout_s=30,
    )
    assert result.limit_hit is LimitHit.FILE_SIZE
    assert (tmp_path / "big").stat().st_size <= 1024 * 1024


def test_sandbox_sees_a_private_tmp_and_no_host_home(
    provider: BubblewrapProvider, tmp_path: Path
) -> None:
    marker = Path("/tmp") / f"worldpool-marker-{os.getpid()}"
    marker.write_text("host")
    try:
        result = run(provider, tmp_path, f"ls {marker}; ls /root /home; echo end", timeout_s=20)
    finally:
        marker.unlink()
    assert "end" in result.stdout
    assert "host" not in result.stdout
    assert marker.name not in result.stdout


def test_workspace_owner_is_restored(provider: BubblewrapProvider, tmp_path: Path) -> None:
    before = tmp_path.stat()
    result = run(provider, tmp_path, "mkdir d && echo x > d/f", timeout_s=20)
    assert result.exit_code == 0, result.stderr
    for path in (tmp_path, tmp_path / "d", tmp_path / "d" / "f"):
        assert (path.stat().st_uid, path.stat().st_gid) == (before.st_uid, before.st_gid)


def test_read_only_paths_under_tmp_stay_visible(tmp_path: Path) -> None:
    # A CI checkout (and its virtualenv) may live under /tmp, which the sandbox replaces
    # with a private tmpfs: read-only binds must land on top of it, not under it.
    require_binary("bwrap", "bubblewrap")
    shared = Path(tempfile.mkdtemp(prefix="wp-ro-", dir="/tmp"))
    try:
        shared.chmod(0o755)  # like a virtualenv: readable by the sandbox's own uid
        (shared / "tool.txt").write_text("visible")
        workspace = tmp_path / "ws"
        workspace.mkdir()
        provider = BubblewrapProvider(ro_paths=[shared])
        result = provider.run(
            ShellRequest(
                command=["cat", str(shared / "tool.txt")], workspace=workspace, timeout_s=30
            )
        )
        assert result.exit_code == 0, result.stderr
        assert result.stdout.strip() == "visible"
    finally:
        shutil.rmtree(shared, ignore_errors=True)
