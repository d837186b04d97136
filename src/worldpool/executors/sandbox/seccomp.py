"""A seccomp deny-list for sandboxed commands, as a classic BPF program for ``bwrap --seccomp``.

Built here, in Python, for the running architecture (x86_64 and aarch64): no libseccomp.
The program checks ``seccomp_data.arch`` first and kills the process on any other ABI
(32-bit x86 through ``int 0x80`` included, so a syscall number cannot be reinterpreted),
refuses the x32 ABI on x86_64, then answers ``EPERM`` for the syscalls a test run never
needs and an escape usually does:

* debugging other processes, reading their memory or taking their files: ``ptrace``,
  ``process_vm_readv``/``writev``, ``pidfd_getfd``;
* new namespaces: ``unshare``, ``setns``, and ``clone`` with any ``CLONE_NEW*`` flag
  (``clone3`` answers ``ENOSYS``: its flags sit in memory a filter cannot read, and libc
  then falls back to ``clone``, which is checked);
* mounts: ``mount``, ``umount2``, ``pivot_root``, ``chroot`` and the new mount API
  (``fsopen``, ``fsmount``, ``open_tree``, ``move_mount``, ``fsconfig``, ``fspick``,
  ``mount_setattr``);
* the kernel's attack surface: ``bpf``, ``perf_event_open``, ``userfaultfd``,
  ``io_uring_*`` (its operations bypass seccomp), the keyring (``keyctl``, ``add_key``,
  ``request_key``), file handles (``open_by_handle_at``, ``name_to_handle_at``),
  modules and kexec, ``reboot``, swap, clocks, ``acct``, ``quotactl``, ``syslog``,
  ``vhangup``, ``iopl``/``ioperm``;
* ``personality`` except the query and ``PER_LINUX`` (no turning ASLR off).

Everything else is allowed: python, git, sh, compilers and test runners work as before.
"""

from __future__ import annotations

import errno
import os
import platform
import struct
from dataclasses import dataclass

from worldpool.errors import ConfigError

# classic BPF
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06
# seccomp return actions
_KILL_PROCESS = 0x80000000
_ERRNO = 0x00050000
_ALLOW = 0x7FFF0000
# offsets in struct seccomp_data
_NR, _ARCH, _ARG0 = 0, 4, 16
_X32_BIT = 0x40000000
CLONE_NEW_FLAGS = 0x7E020000  # NEWNS | NEWCGROUP | NEWUTS | NEWIPC | NEWUSER | NEWPID | NEWNET
_PERSONALITY_OK = (0x0, 0x8, 0xFFFFFFFF)  # PER_LINUX, PER_LINUX with UNAME26, the query

DENIED = (
    "ptrace",
    "process_vm_readv",
    "process_vm_writev",
    "pidfd_getfd",
    "unshare",
    "setns",
    "mount",
    "umount2",
    "pivot_root",
    "chroot",
    "fsopen",
    "fsconfig",
    "fsmount",
    "fspick",
    "open_tree",
    "move_mount",
    "mount_setattr",
    "bpf",
    "perf_event_open",
    "userfaultfd",
    "io_uring_setup",
    "io_uring_enter",
    "io_uring_register",
    "keyctl",
    "add_key",
    "request_key",
    "open_by_handle_at",
    "name_to_handle_at",
    "init_module",
    "finit_module",
    "delete_module",
    "kexec_load",
    "kexec_file_load",
    "reboot",
    "swapon",
    "swapoff",
    "settimeofday",
    "clock_settime",
    "clock_adjtime",
    "adjtimex",
    "acct",
    "quotactl",
    "syslog",
    "vhangup",
    "lookup_dcookie",
    "iopl",
    "ioperm",
)


@dataclass(frozen=True)
class Arch:
    name: str
    audit_arch: int
    syscalls: dict[str, int]
    x32: bool = False


_COMMON_NEW = {  # the same numbers on every architecture since 5.1
    "io_uring_setup": 425,
    "io_uring_enter": 426,
    "io_uring_register": 427,
    "open_tree": 428,
    "move_mount": 429,
    "fsopen": 430,
    "fsconfig": 431,
    "fsmount": 432,
    "fspick": 433,
    "clone3": 435,
    "mount_setattr": 442,
    "pidfd_getfd": 438,
}
# syscall numbers: the kernel's unistd_64.h (x86_64) and asm-generic/unistd.h (aarch64)
_X86_64_NUMBERS = """
ptrace 101 process_vm_readv 310 process_vm_writev 311 unshare 272 setns 308 mount 165
umount2 166 pivot_root 155 chroot 161 bpf 321 perf_event_open 298 userfaultfd 323
keyctl 250 add_key 248 request_key 249 open_by_handle_at 304 name_to_handle_at 303
init_module 175 finit_module 313 delete_module 176 kexec_load 246 kexec_file_load 320
reboot 169 swapon 167 swapoff 168 settimeofday 164 clock_settime 227 clock_adjtime 305
adjtimex 159 acct 163 quotactl 179 syslog 103 vhangup 153 lookup_dcookie 212 iopl 172
ioperm 173 clone 56 personality 135
"""
_AARCH64_NUMBERS = """
ptrace 117 process_vm_readv 270 process_vm_writev 271 unshare 97 setns 268 mount 40
umount2 39 pivot_root 41 chroot 51 bpf 280 perf_event_open 241 userfaultfd 282
keyctl 219 add_key 217 request_key 218 open_by_handle_at 265 name_to_handle_at 264
init_module 105 finit_module 273 delete_module 106 kexec_load 104 kexec_file_load 294
reboot 142 swapon 224 swapoff 225 settimeofday 170 clock_settime 112 clock_adjtime 266
adjtimex 171 acct 89 quotactl 60 syslog 116 vhangup 58 lookup_dcookie 18 clone 220
personality 92
"""


def _table(text: str) -> dict[str, int]:
    words = text.split()
    return {**_COMMON_NEW, **dict(zip(words[::2], map(int, words[1::2]), strict=True))}


X86_64 = Arch("x86_64", 0xC000003E, _table(_X86_64_NUMBERS), x32=True)
AARCH64 = Arch("aarch64", 0xC00000B7, _table(_AARCH64_NUMBERS))
ARCHES = {"x86_64": X86_64, "amd64": X86_64, "aarch64": AARCH64, "arm64": AARCH64}


def arch_for(machine: str | None = None) -> Arch:
    """The running architecture's table; :class:`ConfigError` naming it when unknown."""
    name = (machine or platform.machine()).lower()
    arch = ARCHES.get(name)
    if arch is None:
        raise ConfigError(
            f"no seccomp filter for the {name} architecture (known: x86_64, aarch64): "
            "run sandboxes on one of those, or use another sandbox provider"
        )
    return arch


class _Program:
    """A tiny assembler: instructions with jumps to labels, resolved at the end."""

    def __init__(self) -> None:
        self.code: list[tuple[int, str | int, str | int, int]] = []
        self.labels: dict[str, int] = {}

    def op(self, code: int, k: int, jt: str | int = 0, jf: str | int = 0) -> None:
        self.code.append((code, jt, jf, k))

    def label(self, name: str) -> None:
        self.labels[name] = len(self.code)

    def assemble(self) -> bytes:
        out = bytearray()
        for index, (code, jt, jf, k) in enumerate(self.code):
            out += struct.pack("=HBBI", code, self._offset(index, jt), self._offset(index, jf), k)
        return bytes(out)

    def _offset(self, index: int, target: str | int) -> int:
        if isinstance(target, int):
            return target
        offset = self.labels[target] - index - 1
        if not 0 <= offset <= 255:
            raise AssertionError(f"seccomp jump to {target} out of range ({offset})")
        return offset


def build_filter(arch: Arch | None = None) -> bytes:
    """The deny-list program (``struct sock_filter`` array) for ``arch`` (default: this one)."""
    arch = arch or arch_for()
    nr = arch.syscalls
    p = _Program()
    p.op(_LD_W_ABS, _ARCH)
    p.op(_JEQ_K, arch.audit_arch, jt=1, jf=0)
    p.op(_RET_K, _KILL_PROCESS)
    p.op(_LD_W_ABS, _NR)
    if arch.x32:
        p.op(_JGE_K, _X32_BIT, jt="eperm")
    for name in DENIED:
        if name in nr:
            p.op(_JEQ_K, nr[name], jt="eperm")
    p.op(_JEQ_K, nr["clone3"], jt="enosys")
    p.op(_JEQ_K, nr["clone"], jf="not_clone")
    p.op(_LD_W_ABS, _ARG0)  # the low 32 bits of the flags argument (little-endian)
    p.op(_JSET_K, CLONE_NEW_FLAGS, jt="eperm", jf="allow")
    p.label("not_clone")  # the accumulator still holds the syscall number
    p.op(_JEQ_K, nr["personality"], jf="allow")
    p.op(_LD_W_ABS, _ARG0)
    for allowed in _PERSONALITY_OK[:-1]:
        p.op(_JEQ_K, allowed, jt="allow")
    p.op(_JEQ_K, _PERSONALITY_OK[-1], jt="allow", jf="eperm")
    p.label("allow")
    p.op(_RET_K, _ALLOW)
    p.label("eperm")
    p.op(_RET_K, _ERRNO | errno.EPERM)
    p.label("enosys")
    p.op(_RET_K, _ERRNO | errno.ENOSYS)
    return p.assemble()


def filter_fd(program: bytes) -> int:
    """A readable fd holding ``program`` (a pipe, written and closed), for ``--seccomp FD``."""
    read, write = os.pipe()
    try:
        os.write(write, program)  # a few hundred bytes: far below the pipe's buffer
    finally:
        os.close(write)
    return read
