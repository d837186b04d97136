"""The worker's sandbox policy, with real bubblewrap: a task cannot raise its limits past
it, the workspace is a size-capped filesystem, and a seccomp filter refuses the syscalls an
escape needs while ordinary programs run.

Each limit test has a control (the same command under a looser setting, or a smaller
request, succeeds), so a broken sandbox cannot pass by failing everything. These tests
also run as an unprivileged user (``tests/security/test_sandbox_unprivileged.py``).
"""

from __future__ import annotations

import os
import platform
from pathlib import Path

import pytest

from tests.helpers import require_binary
from worldpool.errors import HandlerError
from worldpool.executors.sandbox.base import LimitHit, SandboxProvider, ShellRequest, ShellResult
from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider
from worldpool.executors.sandbox.local import LocalProvider
from worldpool.executors.sandbox.policy import SandboxPolicy

FORK_BOMB = (
    "import os, time\n"
    "while True:\n"
    "    try:\n"
    "        os.fork()\n"
    "    except OSError:\n"
    "        time.sleep(0.01)\n"
)
OPEN_MANY = (
    "import os\n"
    "fds = []\n"
    "try:\n"
    "    for _ in range(500):\n"
    "        fds.append(os.open('/dev/null', os.O_RDONLY))\n"
    "except OSError as exc:\n"
    "    print('refused', len(fds), exc.strerror)\n"
    "else:\n"
    "    print('opened', len(fds))\n"
)
# ptrace(PTRACE_TRACEME) succeeds for any process that has no tracer; the filter refuses it
PTRACE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "rc = libc.ptrace(0, 0, None, None)\n"
    "print('ptrace', rc, os.strerror(ctypes.get_errno()) if rc else 'ok')\n"
)
# clone(CLONE_NEWUSER | SIGCHLD) straight from libc's syscall(), and clone3 (x86_64 numbers)
CLONE = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "pid = libc.syscall(56, 0x10000000 | 17, 0, 0, 0, 0)\n"
    "if pid == 0:\n"
    "    os._exit(0)\n"
    "print('clone', 'ok' if pid > 0 else os.strerror(ctypes.get_errno()))\n"
    "if pid > 0:\n"
    "    os.waitpid(pid, 0)\n"
    "rc = libc.syscall(435, None, 0)\n"
    "print('clone3', os.strerror(ctypes.get_errno()).replace(' ', '_'))\n"
)
MOUNT = (
    "import ctypes, os\n"
    "libc = ctypes.CDLL(None, use_errno=True)\n"
    "rc = libc.mount(b'none', b'/tmp', b'tmpfs', 0, None)\n"
    "print('mount', rc, os.strerror(ctypes.get_errno()))\n"
)


def provider(**policy: int) -> BubblewrapProvider:
    require_binary("bwrap", "bubblewrap")
    return BubblewrapProvider(policy=SandboxPolicy(**policy))


def run(p: SandboxProvider, ws: Path, command: list[str] | str, **kw: object) -> ShellResult:
    return p.run(ShellRequest.model_validate({"command": command, "workspace": ws, **kw}))


def py(code: str) -> list[str]:
    return ["python3", "-c", code]


# --------------------------------------------------------------------------- the policy


def test_a_task_asking_8gb_gets_the_policys_256mb(tmp_path: Path) -> None:
    sandbox = provider(max_memory_mb=256)
    result = run(
        sandbox,
        tmp_path,
        py("b = bytearray(1 << 30)"),
        limits={"memory_mb": 8192},
        timeout_s=30,
    )
    assert result.limit_hit is LimitHit.MEMORY, result
    assert "MemoryError" in result.stderr
    assert result.capped == ["memory_mb: the task asked 8192, this worker's policy allows 256"]
    # the control: 64 MB fits in the same sandbox
    small = run(sandbox, tmp_path, py("b = bytearray(64 << 20); print(len(b))"), timeout_s=30)
    assert small.exit_code == 0, small.stderr
    assert small.stdout.strip() == str(64 << 20)
    assert small.capped == []  # the default 2048 was lowered silently: the task asked nothing


def test_a_fork_bomb_is_stopped_by_the_policys_process_cap(tmp_path: Path) -> None:
    result = run(
        provider(max_processes=32),
        tmp_path,
        py(FORK_BOMB),
        limits={"processes": 100_000},
        timeout_s=60,
    )
    assert result.limit_hit is LimitHit.PROCESSES
    assert result.exit_code != 0
    assert result.capped == ["processes: the task asked 100000, this worker's policy allows 32"]


def test_opening_too_many_files_fails_at_the_policys_cap(tmp_path: Path) -> None:
    sandbox = provider(max_open_files=64)
    result = run(sandbox, tmp_path, py(OPEN_MANY), limits={"open_files": 100_000}, timeout_s=30)
    assert result.exit_code == 0, result.stderr
    words = result.stdout.split()
    assert words[0] == "refused", result.stdout
    assert int(words[1]) < 64
    assert "Too many open files" in result.stdout
    assert result.capped == ["open_files: the task asked 100000, this worker's policy allows 64"]
    # the control: under a looser policy all 500 open
    loose = run(provider(max_open_files=4096), tmp_path, py(OPEN_MANY), timeout_s=30)
    assert loose.stdout.split()[:2] == ["opened", "500"], loose.stdout


def test_writing_past_the_workspace_cap_fails_with_no_space_left(tmp_path: Path) -> None:
    sandbox = provider(max_workspace_mb=4)
    result = run(
        sandbox,
        tmp_path,
        "dd if=/dev/zero of=big bs=1M count=16",
        limits={"workspace_mb": 100_000},
        timeout_s=30,
    )
    assert "No space left on device" in result.stderr
    assert result.limit_hit is LimitHit.DISK
    assert result.exit_code != 0
    assert result.capped == ["workspace_mb: the task asked 100000, this worker's policy allows 4"]
    # what was written (up to the cap) comes back to the host workspace, no more
    assert 0 < (tmp_path / "big").stat().st_size <= 4 * 1024 * 1024
    # the control: a file under the cap is written whole
    fits = run(sandbox, tmp_path, "rm big; dd if=/dev/zero of=ok bs=1M count=2", timeout_s=30)
    assert fits.exit_code == 0, fits.stderr
    assert (tmp_path / "ok").stat().st_size == 2 * 1024 * 1024
    assert not (tmp_path / "big").exists()


def test_a_workspace_bigger_than_the_cap_is_refused_before_it_runs(tmp_path: Path) -> None:
    (tmp_path / "data.bin").write_bytes(b"\0" * (3 * 1024 * 1024))
    with pytest.raises(HandlerError, match="over the 2 MB") as caught:
        run(provider(max_workspace_mb=2), tmp_path, "touch ran", timeout_s=30)
    assert not caught.value.retryable
    assert not (tmp_path / "ran").exists()


def test_the_host_workspace_cannot_be_written_directly(tmp_path: Path) -> None:
    # the host directory is visible only read-only (to copy it in): writes there fail
    (tmp_path / "kept.txt").write_text("host")
    result = run(
        provider(),
        tmp_path,
        "echo x > /.workspace-in/kept.txt; echo rc=$?; touch /.workspace-in/new; echo rc=$?",
        timeout_s=30,
    )
    assert "rc=0" not in result.stdout, result.stdout + result.stderr
    assert result.stderr.count("Read-only file system") == 2, result.stderr
    assert (tmp_path / "kept.txt").read_text() == "host"
    assert not (tmp_path / "new").exists()


# --------------------------------------------------------------------------- copy back


def test_changes_come_back_and_unsafe_entries_do_not(tmp_path: Path) -> None:
    (tmp_path / "old.txt").write_text("old")
    (tmp_path / "edit.txt").write_text("before")
    (tmp_path / "sub").mkdir()
    script = (
        "rm old.txt; echo after > edit.txt; echo new > sub/new.txt; "
        "ln -s /etc/passwd escape; ln -s sub/new.txt inside; chmod 4755 edit.txt"
    )
    result = run(provider(), tmp_path, script, timeout_s=30)
    assert result.exit_code == 0, result.stderr
    assert not (tmp_path / "old.txt").exists()
    assert (tmp_path / "edit.txt").read_text() == "after\n"
    assert not (tmp_path / "edit.txt").stat().st_mode & 0o4000  # no setuid bit comes back
    assert (tmp_path / "sub" / "new.txt").read_text() == "new\n"
    assert os.readlink(tmp_path / "inside") == "sub/new.txt"
    assert not (tmp_path / "escape").is_symlink()
    assert len(result.notes) == 1 and "./escape" in result.notes[0], result.notes


def test_a_command_stopped_by_a_limit_leaves_the_host_workspace_as_it_was(
    tmp_path: Path,
) -> None:
    (tmp_path / "keep.txt").write_text("before")
    result = run(provider(), tmp_path, "echo changed > keep.txt; sleep 60", timeout_s=1)
    assert result.limit_hit is LimitHit.TIMEOUT
    assert (tmp_path / "keep.txt").read_text() == "before"
    assert result.notes and "timeout limit" in result.notes[0]


# --------------------------------------------------------------------------- seccomp


def test_seccomp_refuses_ptrace_unshare_and_mount(tmp_path: Path) -> None:
    script = (
        "grep '^Seccomp:' /proc/self/status; "
        f"python3 -c {_quote(PTRACE)}; python3 -c {_quote(MOUNT)}; "
        "unshare -U true; echo unshare=$?; unshare -r true; echo unshare_map=$?"
    )
    result = run(provider(), tmp_path, script, timeout_s=30)
    out = result.stdout
    assert "Seccomp:\t2" in out, out  # a filter is installed
    assert "ptrace -1 Operation not permitted" in out, out + result.stderr
    assert "mount -1 Operation not permitted" in out, out + result.stderr
    assert "unshare=1" in out and "unshare_map=1" in out, out
    assert "unshare failed: Operation not permitted" in result.stderr


def test_seccomp_refuses_namespaces_through_clone(tmp_path: Path) -> None:
    if platform.machine() != "x86_64":
        pytest.skip("the raw syscall numbers in this test are x86_64's")
    filtered = run(provider(), tmp_path, py(CLONE), timeout_s=30)
    assert "clone Operation not permitted" in filtered.stdout, filtered.stdout + filtered.stderr
    assert "clone3 Function_not_implemented" in filtered.stdout  # libc falls back to clone
    # the control: without the filter the kernel lets the same clone make a user namespace
    require_binary("bwrap", "bubblewrap")
    plain = run(BubblewrapProvider(seccomp_filter=False), tmp_path, py(CLONE), timeout_s=30)
    assert "clone ok" in plain.stdout, plain.stdout + plain.stderr
    assert "clone3 Function_not_implemented" not in plain.stdout


def test_without_the_filter_the_same_calls_succeed(tmp_path: Path) -> None:
    # the control: what the filter refuses above is allowed by the kernel here, so the
    # refusals come from the filter and not from a missing capability
    require_binary("bwrap", "bubblewrap")
    unfiltered = BubblewrapProvider(seccomp_filter=False)
    result = run(unfiltered, tmp_path, f"python3 -c {_quote(PTRACE)}; unshare -U true; echo rc=$?")
    assert "ptrace 0 ok" in result.stdout, result.stdout + result.stderr
    assert "rc=0" in result.stdout, result.stdout + result.stderr


def test_python_git_and_sh_work_under_the_filter(tmp_path: Path) -> None:
    script = (
        "set -e; git init -q repo; cd repo; echo hi > f; git add f; "
        "git -c user.email=a@b.c -c user.name=n commit -qm first; git log --oneline | wc -l; "
        "python3 -c 'import subprocess, threading; t = threading.Thread(target=print, "
        'args=("thread",)); t.start(); t.join(); '
        'print(subprocess.run(["sh", "-c", "echo child | tr a-z A-Z"], '
        "capture_output=True, text=True).stdout.strip())'"
    )
    result = run(provider(), tmp_path, script, timeout_s=60)
    assert result.exit_code == 0, result.stderr
    assert result.stdout.split() == ["1", "thread", "CHILD"], result.stdout
    assert (tmp_path / "repo" / ".git").is_dir()  # and it came back to the host


def _quote(code: str) -> str:
    return "'" + code.replace("'", "'\"'\"'") + "'"


def test_the_only_writable_places_are_the_capped_ones(tmp_path: Path) -> None:
    # / and /dev are tmpfs bwrap builds with no size cap (owned by the worker's user when
    # it is not root): they must be read-only, or they are room past every cap
    places = ["/", "/etc", "/dev", "/dev/shm", "/usr", "/.workspace-in", "/tmp", "/workspace"]
    script = "; ".join(f"touch {p.rstrip('/')}/wp-probe 2>/dev/null; echo {p}=$?" for p in places)
    result = run(provider(), tmp_path, script, timeout_s=30)
    codes = dict(line.split("=") for line in result.stdout.split())
    assert codes == {p: ("0" if p in ("/tmp", "/workspace") else "1") for p in places}, codes


def test_the_local_provider_caps_its_rlimits_to_the_policy_too(tmp_path: Path) -> None:
    require_binary("prlimit", "util-linux")
    local = LocalProvider(allow=True, policy=SandboxPolicy(max_memory_mb=256))
    result = run(local, tmp_path, py("b = bytearray(1 << 30)"), limits={"memory_mb": 8192})
    assert result.limit_hit is LimitHit.MEMORY, result
    assert result.capped == ["memory_mb: the task asked 8192, this worker's policy allows 256"]
