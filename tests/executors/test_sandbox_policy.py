"""The worker's sandbox policy and the seccomp program, without running a sandbox."""

from __future__ import annotations

import struct

import pytest

from worldpool.cli.sandbox_policy import policy_from_flags
from worldpool.errors import ConfigError
from worldpool.executors.sandbox import seccomp
from worldpool.executors.sandbox.base import Limits
from worldpool.executors.sandbox.policy import DEFAULT_POLICY, SandboxPolicy


def test_a_limit_over_the_policy_is_capped_and_said() -> None:
    policy = SandboxPolicy(max_memory_mb=256, max_processes=32, max_workspace_mb=64)
    asked = Limits.model_validate({"memory_mb": 8192, "processes": 16, "workspace_mb": 100_000})
    granted, notes = policy.apply(asked)
    assert (granted.memory_mb, granted.processes, granted.workspace_mb) == (256, 16, 64)
    assert notes == [
        "memory_mb: the task asked 8192, this worker's policy allows 256",
        "workspace_mb: the task asked 100000, this worker's policy allows 64",
    ]
    assert asked.memory_mb == 8192  # the task's own object is left alone


def test_defaults_are_lowered_silently() -> None:
    granted, notes = SandboxPolicy(max_memory_mb=128, max_open_files=64).apply(Limits())
    assert (granted.memory_mb, granted.open_files) == (128, 64)
    assert notes == []


def test_within_the_policy_nothing_changes() -> None:
    limits = Limits.model_validate({"memory_mb": 512})
    granted, notes = DEFAULT_POLICY.apply(limits)
    assert granted == limits and notes == []


@pytest.mark.parametrize(
    ("field", "value"), [("max_memory_mb", 8), ("max_processes", 0), ("max_workspace_mb", 0)]
)
def test_an_unusable_policy_is_refused(field: str, value: int) -> None:
    with pytest.raises(ConfigError, match=field):
        SandboxPolicy(**{field: value})


def test_the_worker_flags_make_the_policy() -> None:
    policy = policy_from_flags(memory_mb=256, procs=None, open_files=64, workspace_mb=None)
    assert policy == SandboxPolicy(max_memory_mb=256, max_open_files=64)


def _decode(program: bytes) -> list[tuple[int, int, int, int]]:
    assert len(program) % 8 == 0
    return [struct.unpack("=HBBI", program[i : i + 8]) for i in range(0, len(program), 8)]


@pytest.mark.parametrize("arch", [seccomp.X86_64, seccomp.AARCH64])
def test_the_filter_checks_the_architecture_first(arch: seccomp.Arch) -> None:
    code = _decode(seccomp.build_filter(arch))
    assert code[0] == (0x20, 0, 0, 4)  # load seccomp_data.arch
    assert code[1] == (0x15, 1, 0, arch.audit_arch)  # equal: skip the kill
    assert code[2] == (0x06, 0, 0, 0x80000000)  # SECCOMP_RET_KILL_PROCESS
    denied = {k for op, _jt, _jf, k in code if op == 0x15}
    for name in ("ptrace", "mount", "unshare", "bpf", "kexec_load", "open_by_handle_at"):
        assert arch.syscalls[name] in denied, name
    assert (0x06, 0, 0, 0x00050000 | 1) in code  # EPERM
    assert (0x06, 0, 0, 0x7FFF0000) in code  # ALLOW


def test_every_jump_lands_inside_the_program() -> None:
    code = _decode(seccomp.build_filter(seccomp.X86_64))
    for index, (op, jt, jf, _k) in enumerate(code):
        if op & 0x07 == 0x05:  # a jump
            assert index + 1 + max(jt, jf) < len(code)
    assert code[-1][0] == 0x06  # ends in a return


def test_an_unknown_architecture_is_refused_by_name() -> None:
    with pytest.raises(ConfigError, match="riscv64"):
        seccomp.arch_for("riscv64")
