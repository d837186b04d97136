"""One child process of ``--sync-handlers process``, seen from its parent.

A :class:`ChildProcess` is the process and the parent's end of its socket: messages are
JSON (orjson, framed by ``Connection.send_bytes``; no pickle), and a stop is SIGTERM, then
SIGKILL ``TERM_WAIT_S`` later.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from multiprocessing.connection import Connection

import orjson

from worldpool.errors import ConfigError
from worldpool.models import WorkerProfile
from worldpool.worker.processes.child import Message

TERM_WAIT_S = 0.5
"""After SIGTERM, how long a child gets before SIGKILL."""
CHILD_MAIN = "from worldpool.worker.processes.child import main; main()"


class ChildProcess:
    """One child process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.names: frozenset[str] = frozenset()
        self.worker: WorkerProfile | None = None  # the profile this child was last sent

    @classmethod
    def start(cls) -> ChildProcess:
        """Start a child: a fresh interpreter, its socket passed as a file descriptor."""
        ours, theirs = socket.socketpair()
        env = dict(os.environ)  # the same imports as this process
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with ours, theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD_MAIN, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=env,
            )
            return cls(process, Connection(ours.detach()))

    def load(self, specs: list[str], timeout_s: float) -> None:
        """Have the child load the handler specs; learn which sync handlers it has."""
        self.send({"op": "load", "specs": specs})
        if not self.conn.poll(timeout_s):
            raise ConfigError(f"a sync handler process did not start in {timeout_s:g}s")
        hello = self.recv()
        if hello.get("op") != "ready":
            raise ConfigError(
                f"a sync handler process could not load --handlers: {hello.get('error')}"
            )
        self.names = frozenset(str(n) for n in hello.get("names", []))

    def send(self, message: Message) -> None:
        self.conn.send_bytes(orjson.dumps(message))

    def recv(self) -> Message:
        message = orjson.loads(self.conn.recv_bytes())
        if not isinstance(message, dict):
            raise ValueError("not an object")
        return message

    def alive(self) -> bool:
        return self.process.poll() is None

    def ended(self) -> str:
        """How the child ended, in words (after it did)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1.0)
        code = self.process.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def terminate(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def reap(self, until: float) -> None:
        """Wait for the child until ``until`` (monotonic), then SIGKILL it; close the socket."""
        try:
            self.process.wait(max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2.0)
        with contextlib.suppress(OSError):
            self.conn.close()

    def kill(self) -> None:
        self.terminate()
        self.reap(time.monotonic() + TERM_WAIT_S)
