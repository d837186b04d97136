"""A real ``redis-server`` for tests: own process, free loopback port, temp dir, no persistence.

Fixtures:

* ``redis_server_session`` - one server for the whole test session (the contract suite;
  each test uses its own key namespace).
* ``redis_server`` - a fresh server for one test, free to be killed and restarted
  (chaos tests).

``RedisServer`` can also be used directly (``start`` / ``kill`` / ``restart`` / ``stop``),
with extra config directives (ACL users) and TLS (``tls=True`` makes a self-signed
certificate with the ``openssl`` binary and serves TLS only).
"""

from __future__ import annotations

import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import free_port, require_binary

START_TIMEOUT_S = 10.0


class RedisServer:
    """One ``redis-server`` process on 127.0.0.1. ``url`` is what clients should dial."""

    def __init__(
        self,
        binary: str,
        directory: Path,
        *,
        extra_args: list[str] | None = None,
        tls: bool = False,
    ) -> None:
        self.binary = binary
        self.dir = directory
        self.port = free_port()
        self.extra_args = list(extra_args or [])
        self.tls = tls
        self.process: subprocess.Popen[bytes] | None = None
        if tls:
            self._make_certificate()

    @property
    def url(self) -> str:
        if self.tls:
            return f"rediss://127.0.0.1:{self.port}/0"
        return f"redis://127.0.0.1:{self.port}/0"

    @property
    def ca_file(self) -> Path:
        """The self-signed certificate that a TLS client must trust."""
        return self.dir / "cert.pem"

    def _make_certificate(self) -> None:
        openssl = require_binary("openssl", "openssl")
        subprocess.run(
            [openssl, "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
             "-keyout", str(self.dir / "key.pem"), "-out", str(self.ca_file),
             "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            check=True, capture_output=True, timeout=30,
        )  # fmt: skip

    def _args(self) -> list[str]:
        args = [
            self.binary, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
            "--dir", str(self.dir), "--daemonize", "no", "--loglevel", "warning",
        ]  # fmt: skip
        if self.tls:
            args += [
                "--port", "0", "--tls-port", str(self.port),
                "--tls-cert-file", str(self.ca_file), "--tls-key-file", str(self.dir / "key.pem"),
                "--tls-ca-cert-file", str(self.ca_file), "--tls-auth-clients", "no",
            ]  # fmt: skip
        else:
            args += ["--port", str(self.port)]
        return args + self.extra_args

    def start(self) -> None:
        log = (self.dir / "redis.log").open("ab")
        self.process = subprocess.Popen(self._args(), stdout=log, stderr=log)
        log.close()
        self._wait_ready()

    def _wait_ready(self) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                log = (self.dir / "redis.log").read_text(errors="replace")
                raise RuntimeError(f"redis-server exited at start: {log[-2000:]}")
            if self._answers():
                return
            time.sleep(0.02)
        raise RuntimeError(f"redis-server did not answer on port {self.port} in time")

    def _answers(self) -> bool:
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as raw:
                if not self.tls:
                    return True
                context = ssl.create_default_context(cafile=str(self.ca_file))
                with context.wrap_socket(raw, server_hostname="127.0.0.1"):
                    return True
        except OSError:
            return False

    def kill(self) -> None:
        """SIGKILL: no shutdown, no save; what was in memory is gone."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait(timeout=10)

    def restart(self) -> None:
        """Kill (if running) and start again on the same port."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.kill()
        self.process = None


def start_redis(*, extra_args: list[str] | None = None, tls: bool = False) -> Iterator[RedisServer]:
    """Start a server in a fresh temp dir; yield it; stop it and remove the dir."""
    binary = require_binary("redis-server", "redis-server")
    directory = Path(tempfile.mkdtemp(prefix="wp-redis-"))
    server = RedisServer(binary, directory, extra_args=extra_args, tls=tls)
    try:
        server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def redis_server_session() -> Iterator[RedisServer]:
    yield from start_redis()


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    yield from start_redis()
