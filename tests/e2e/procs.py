"""Real ``worldpool serve`` / ``worldpool worker`` processes for end-to-end tests.

Every process is started with ``sys.executable -m worldpool`` (the same interpreter and
venv as the tests), logs to its own file under the test's tmp dir, and is SIGKILLed in
:meth:`Cluster.close` (the fixtures call it in teardown, whatever happened). Readiness is
checked by polling Redis (a worker is ready when its heartbeat is there) or the process's
own log, always in bounded loops that fail with the log's tail.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import orjson
import pytest

from tests.redis_server import RedisServer
from worldpool.backends import backend_from_url
from worldpool.backends.base import Backend
from worldpool.config import Settings
from worldpool.models import Event, EventKind, TaskRecord, WorkerStatus

__all__ = ["Cluster", "Proc", "client", "cluster", "wait_serve_routes_to"]

READY_TIMEOUT_S = 30.0
REPO = Path(__file__).resolve().parents[2]


@dataclass
class Proc:
    """One child process and the file its stdout + stderr go to."""

    name: str
    popen: subprocess.Popen[bytes]
    log_path: Path

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def alive(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def tail(self, chars: int = 3000) -> str:
        return f"--- {self.name} (pid {self.pid}) log tail ---\n{self.log()[-chars:]}"

    def signal(self, sig: signal.Signals) -> None:
        if self.alive:
            os.kill(self.pid, sig)

    def kill(self) -> None:
        """SIGKILL (SIGCONT first, so a stopped process dies too) and reap."""
        if self.alive:
            for sig in (signal.SIGCONT, signal.SIGKILL):
                try:
                    os.kill(self.pid, sig)
                except ProcessLookupError:
                    break
        with contextlib.suppress(subprocess.TimeoutExpired):  # SIGKILL always lands
            self.popen.wait(timeout=10)

    def terminate(self, timeout_s: float = 20.0) -> int | None:
        """SIGTERM and wait (the graceful path: drain); SIGKILL if it does not exit."""
        self.signal(signal.SIGTERM)
        try:
            return self.popen.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            self.kill()
            return None


@dataclass
class Cluster:
    """Starts and owns the processes of one test. Always call :meth:`close`."""

    redis_url: str
    directory: Path
    namespace: str = "e2e"
    env: dict[str, str] = field(default_factory=dict)
    procs: list[Proc] = field(default_factory=list)

    def _env(self, extra: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("WORLDPOOL_")}
        pythonpath = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        env.update({
            "PYTHONUNBUFFERED": "1", "PYTHONPATH": pythonpath,
            "WORLDPOOL_REDIS_URL": self.redis_url, "WORLDPOOL_NAMESPACE": self.namespace,
            "WORLDPOOL_HEARTBEAT_S": "0.5", "NO_COLOR": "1", "COLUMNS": "200",
        })  # fmt: skip
        env.update(self.env)
        env.update(extra or {})
        return env

    def spawn(self, name: str, args: Iterable[str], env: Mapping[str, str] | None = None) -> Proc:
        log_path = self.directory / f"{name}.log"
        with log_path.open("ab") as log:
            popen = subprocess.Popen(
                [sys.executable, "-m", "worldpool", *args], stdout=log,
                stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=self._env(env),
                cwd=self.directory,
            )  # fmt: skip
        proc = Proc(name, popen, log_path)
        self.procs.append(proc)
        return proc

    def serve(
        self, name: str = "serve", *args: str, env: Mapping[str, str] | None = None, port: int = 0
    ) -> Proc:
        """``worldpool serve --port PORT`` (0: no API); waits for its "running" line."""
        proc = self.spawn(name, ["serve", "--port", str(port), "--name", name, *args], env)
        wait_log(proc, "orchestrator running")
        return proc

    def worker(self, worker_id: str, *args: str, env: Mapping[str, str] | None = None) -> Proc:
        """``worldpool worker --id ID ...`` (call :func:`wait_workers` to wait for it)."""
        return self.spawn(worker_id, ["worker", "--id", worker_id, *args], env)

    def cli(self, *args: str, timeout_s: float = 60.0) -> subprocess.CompletedProcess[str]:
        """A short command (submit, status, workers) run to its end."""
        return subprocess.run(
            [sys.executable, "-m", "worldpool", *args], capture_output=True, text=True,
            env=self._env(), cwd=self.directory, timeout=timeout_s, check=False,
        )  # fmt: skip

    def logs(self) -> str:
        return "\n".join(p.tail() for p in self.procs)

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()


def wait_log(proc: Proc, text: str, timeout_s: float = READY_TIMEOUT_S) -> None:
    """Wait until ``text`` appears in the process's log (it must stay alive meanwhile)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if text in proc.log():
            return
        if not proc.alive:
            raise AssertionError(
                f"{proc.name} exited ({proc.popen.returncode}) before "
                f"logging {text!r}\n{proc.tail()}"
            )
        time.sleep(0.05)
    raise AssertionError(f"{proc.name} did not log {text!r} in {timeout_s:g}s\n{proc.tail()}")


async def wait_workers(
    backend: Backend, procs: Iterable[Proc], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Wait until every worker process is registered and online in Redis."""
    procs = list(procs)
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        online = {
            w.id for w in await backend.list_workers() if w.state.status is WorkerStatus.ONLINE
        }
        if all(p.name in online for p in procs):
            return
        dead = [p for p in procs if not p.alive]
        if dead:
            raise AssertionError("worker exited at start\n" + "\n".join(p.tail() for p in dead))
        await asyncio.sleep(0.05)
    raise AssertionError("workers not online in time\n" + "\n".join(p.tail() for p in procs))


async def wait_event(
    backend: Backend,
    match: EventKind,
    *,
    cursor: str | None = None,
    timeout_s: float = 30.0,
    **fields: object,
) -> Event:
    """The first event of kind ``match`` after ``cursor`` whose fields equal ``fields``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        for event in await backend.read_events(cursor, 500, block_s=0.2):
            cursor = event.seq
            if event.kind is match and all(getattr(event, k) == v for k, v in fields.items()):
                return event
    raise AssertionError(f"no {match.value} event with {fields} in {timeout_s:g}s")


async def wait_task(
    backend: Backend, task_id: str, timeout_s: float = 60.0, until: object = None
) -> TaskRecord:
    """Poll a task record until it is terminal (or ``until(record)`` is true)."""
    deadline = time.monotonic() + timeout_s
    record = None
    while time.monotonic() < deadline:
        record = await backend.get_task(task_id)
        if record is not None and (until(record) if callable(until) else record.status.terminal):
            return record
        await asyncio.sleep(0.1)
    raise AssertionError(f"task {task_id} not done in {timeout_s:g}s: {record}")


async def wait_serve_routes_to(
    api_url: str, handler: str, workers: Iterable[str], timeout_s: float = READY_TIMEOUT_S
) -> None:
    """Wait until serve's own pool view (its routing dry run, ``POST /api/v1/explain``)
    finds every one of ``workers`` feasible for ``handler``. A worker online in Redis is
    seen by serve at its next pool refresh, not at once."""
    import httpx

    want = set(workers)
    seen: set[str] = set()
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(base_url=api_url, timeout=10.0) as http:
        while time.monotonic() < deadline:
            try:
                reply = await http.post("/api/v1/explain", json={"handler": handler})
            except httpx.ConnectError:  # the API starts listening after the orchestrator
                await asyncio.sleep(0.05)
                continue
            reply.raise_for_status()
            seen = {c["worker_id"] for c in reply.json()["candidates"] if c["feasible"]}
            if want <= seen:
                return
            await asyncio.sleep(0.05)
    raise AssertionError(f"serve sees {sorted(seen)} of {sorted(want)} in {timeout_s:g}s")


def write_json(path: Path, data: object) -> Path:
    path.write_bytes(data if isinstance(data, bytes) else orjson.dumps(data))
    return path


@pytest.fixture
def cluster(redis_server: RedisServer, tmp_path: Path) -> Iterator[Cluster]:
    """A fresh redis-server and a :class:`Cluster` on it; every process killed at the end."""
    c = Cluster(redis_server.url, tmp_path)
    try:
        yield c
    finally:
        c.close()


@pytest.fixture
async def client(cluster: Cluster) -> AsyncIterator[Backend]:
    """A RedisBackend client in the cluster's namespace (heartbeat 0.5 s like the processes)."""
    settings = Settings(namespace=cluster.namespace, heartbeat_s=0.5)
    async with backend_from_url(cluster.redis_url, settings) as backend:
        yield backend
