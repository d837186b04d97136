"""Run one process under limits: rlimits, a wall clock, a process watchdog, capped output.

Shared by the ``bubblewrap`` and ``local`` providers. Resource limits are set by
util-linux's ``prlimit`` in front of the command (no ``preexec_fn``: the worker is
multi-threaded, and running Python between fork and exec there can deadlock). The
watchdog polls every 50 ms: wall-clock deadline, cancellation, output flood, and the
number of processes under the command, and kills the whole process group (plus, where
the sandbox runs under its own uid, every process of that uid) when one is exceeded.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import psutil  # type: ignore[import-untyped]  # no stubs installed

from worldpool.executors.sandbox.base import LimitHit, Limits, ShellResult

POLL_S = 0.05
PROCESS_COUNT_EVERY_S = 0.1
_MEMORY_ERRORS = re.compile(
    rb"MemoryError|Cannot allocate memory|out of memory|bad_alloc|memory exhausted"
    rb"|failed to allocate|Killed: 9",
    re.IGNORECASE,
)
_DISK_FULL = re.compile(rb"No space left on device|ENOSPC|Disk quota exceeded")
_FORK_ERRORS = re.compile(
    rb"Cannot fork|fork: retry|fork: Resource temporarily unavailable"
    rb"|can't start new thread|BlockingIOError: \[Errno 11\]"
)


class CappedStream:
    """Keeps the first and last halves of a stream up to ``limit`` bytes in all.

    The tail matters as much as the head: a test run's summary line is at the end.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._head_max = limit // 2
        self._tail_max = limit - self._head_max
        self.head = bytearray()
        self.tail = bytearray()
        self.total = 0

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        room = self._head_max - len(self.head)
        if room > 0:
            self.head += chunk[:room]
            chunk = chunk[room:]
        if chunk:
            self.tail += chunk
            if len(self.tail) > self._tail_max:
                del self.tail[: len(self.tail) - self._tail_max]

    @property
    def truncated(self) -> bool:
        return self.total > self.limit

    def raw(self) -> bytes:
        return bytes(self.head + self.tail)

    def text(self) -> str:
        head = self.head.decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        if not self.truncated:
            return head + tail
        dropped = self.total - len(self.head) - len(self.tail)
        return f"{head}\n... [{dropped} bytes truncated] ...\n{tail}"


@dataclass
class ProcessSpec:
    """What to run and under which limits."""

    argv: list[str]
    env: dict[str, str]
    limits: Limits
    timeout_s: float
    cwd: Path | None = None
    nproc_rlimit: int | None = None  # RLIMIT_NPROC; None leaves it alone
    watch_processes: int | None = None  # kill when this many processes run under it
    sweep_uid: int | None = None  # kill every process of this uid when stopping
    cancelled: threading.Event | None = None
    stdin_fd: int | None = None  # None: /dev/null
    pass_fds: tuple[int, ...] = ()  # kept open, at the same numbers, in the child


@dataclass
class ProcessOutcome:
    returncode: int | None
    stdout: CappedStream
    stderr: CappedStream
    duration_ms: int
    limit_hit: LimitHit | None
    signal: int | None = None

    def result(self, provider: str, sandbox_id: str) -> ShellResult:
        return ShellResult(
            exit_code=self.returncode,
            stdout=self.stdout.text(),
            stderr=self.stderr.text(),
            stdout_truncated=self.stdout.truncated,
            stderr_truncated=self.stderr.truncated,
            duration_ms=self.duration_ms,
            provider=provider,
            sandbox_id=sandbox_id,
            limit_hit=self.limit_hit,
        )


def rlimit_prefix(limits: Limits, nproc: int | None) -> tuple[list[str], bool]:
    """``prlimit`` argv setting the limits; ``(argv, True)`` if prlimit exists."""
    prlimit = shutil.which("prlimit")
    if prlimit is None:
        return [], False
    mb = 1024 * 1024
    argv = [
        prlimit,
        f"--as={limits.memory_mb * mb}",
        f"--cpu={limits.cpu_s}:{limits.cpu_s + 1}",
        f"--fsize={limits.file_size_mb * mb}",
        f"--nofile={limits.open_files}",
        "--core=0",
    ]
    if nproc is not None:
        argv.append(f"--nproc={nproc}")
    return [*argv, "--"], True


def run_process(spec: ProcessSpec) -> ProcessOutcome:
    """Run ``spec`` to completion or until a limit stops it."""
    out, err = CappedStream(spec.limits.output_bytes), CappedStream(spec.limits.output_bytes)
    flooded = threading.Event()
    started = time.monotonic()
    proc = subprocess.Popen(
        spec.argv,
        cwd=spec.cwd,
        env=spec.env,
        stdin=subprocess.DEVNULL if spec.stdin_fd is None else spec.stdin_fd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        process_group=0,
        close_fds=True,
        pass_fds=spec.pass_fds,
    )
    assert proc.stdout is not None and proc.stderr is not None
    readers = [
        threading.Thread(
            target=_pump, args=(proc.stdout, out, (out, err), spec, flooded), daemon=True
        ),
        threading.Thread(
            target=_pump, args=(proc.stderr, err, (out, err), spec, flooded), daemon=True
        ),
    ]
    for reader in readers:
        reader.start()
    hit = _watch(proc, spec, started, flooded)
    returncode = proc.returncode
    _stop(proc.pid, spec.sweep_uid)  # leftovers that share the group or the uid
    for reader in readers:
        reader.join(timeout=2.0)
    duration_ms = int((time.monotonic() - started) * 1000)
    sig = _signal_of(returncode)
    if hit is None:
        hit = _classify(returncode, sig, err)
    return ProcessOutcome(returncode, out, err, duration_ms, hit, sig)


def _pump(
    pipe: IO[bytes],
    sink: CappedStream,
    both: tuple[CappedStream, CappedStream],
    spec: ProcessSpec,
    flooded: threading.Event,
) -> None:
    fd = pipe.fileno()
    try:
        while chunk := os.read(fd, 65536):
            sink.feed(chunk)
            if both[0].total + both[1].total > spec.limits.output_kill_bytes:
                flooded.set()
    except OSError:
        pass
    finally:
        pipe.close()


def _watch(
    proc: subprocess.Popen[bytes], spec: ProcessSpec, started: float, flooded: threading.Event
) -> LimitHit | None:
    deadline = started + spec.timeout_s
    next_count = started
    while True:
        try:
            proc.wait(timeout=POLL_S)
            return None
        except subprocess.TimeoutExpired:
            pass
        now = time.monotonic()
        hit: LimitHit | None = None
        if now >= deadline:
            hit = LimitHit.TIMEOUT
        elif spec.cancelled is not None and spec.cancelled.is_set():
            hit = LimitHit.CANCELLED
        elif flooded.is_set():
            hit = LimitHit.OUTPUT
        elif spec.watch_processes is not None and now >= next_count:
            next_count = now + PROCESS_COUNT_EVERY_S
            if _count_under(proc.pid, spec.sweep_uid) >= spec.watch_processes:
                hit = LimitHit.PROCESSES
        if hit is not None:
            _stop(proc.pid, spec.sweep_uid)
            proc.wait()
            return hit


def _count_under(pid: int, uid: int | None) -> int:
    """Processes under ``pid`` (or, with a sandbox uid, all processes of that uid)."""
    if uid is not None:
        return sum(1 for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid)
    try:
        return len(psutil.Process(pid).children(recursive=True))
    except psutil.Error:
        return 0


def _stop(pid: int, uid: int | None) -> None:
    """SIGKILL the process group, every descendant, and every process of ``uid``."""
    victims: list[psutil.Process] = []
    with contextlib.suppress(psutil.Error):
        victims = psutil.Process(pid).children(recursive=True)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)
    for victim in victims:
        with contextlib.suppress(psutil.Error):
            victim.kill()
    if uid is None:
        return
    for _ in range(5):  # a fork bomb may fork between the scan and the kill
        found = [p for p in psutil.process_iter(["uids"]) if p.info["uids"].real == uid]
        if not found:
            return
        for p in found:
            with contextlib.suppress(psutil.Error):
                p.kill()
        time.sleep(0.01)


def _signal_of(returncode: int | None) -> int | None:
    """The signal that ended the command: Popen's negative codes, or 128+N from a shell."""
    if returncode is None:
        return None
    if returncode < 0:
        return -returncode
    if 128 < returncode <= 128 + 64:
        return returncode - 128
    return None


def _classify(returncode: int | None, sig: int | None, err: CappedStream) -> LimitHit | None:
    if sig == signal.SIGXCPU:
        return LimitHit.CPU
    if sig == signal.SIGXFSZ:
        return LimitHit.FILE_SIZE
    if returncode not in (0, None) and _MEMORY_ERRORS.search(err.raw()):
        return LimitHit.MEMORY
    if returncode not in (0, None) and _DISK_FULL.search(err.raw()):
        return LimitHit.DISK
    if _FORK_ERRORS.search(err.raw()):  # forks refused at RLIMIT_NPROC, even if it exited 0
        return LimitHit.PROCESSES
    return None
