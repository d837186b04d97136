"""The docs' examples run (issue 18): every fenced block in docs/ marked ``<!-- runnable -->``
is executed, command by command, with bash in a scratch directory, against a real
redis-server; each command must exit 0.

* ``redis://127.0.0.1:6379/0`` becomes the test's Redis; ports 8600 and 8700 a free port;
* ``worldpool serve`` and ``worldpool worker`` lines (but ``--print-profile``) start in the background (waited for:
  the orchestrator's "running" line, the worker online); a block that starts no ``serve``
  gets one, with the API, and a shell worker, started for it;
* a block marked ``<!-- file: NAME -->`` is written to ``NAME`` first, and ``pool.json`` is
  the demo's pool;
* every task a block submits must end succeeded;
* ``console`` blocks run their ``$ `` lines; ``bash`` blocks every line (``\\`` joins).
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson
import pytest

from tests.helpers import free_port, require_binary
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.redis import RedisBackend
from worldpool.config import Settings
from worldpool.demo.scenario import demo_pool
from worldpool.models import WorkerStatus

ROOT = Path(__file__).resolve().parents[1]
DOCS = sorted((ROOT / "docs").glob("*.md"))
MARK = "<!-- runnable -->"
FILE_MARK = re.compile(r"<!-- file: (\S+) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
BACKGROUND = ("worldpool serve", "worldpool worker")


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    files: dict[str, str]

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[str]:
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = [line.strip() for line in joined.splitlines()]
        if self.lang == "console":
            return [line[2:] for line in lines if line.startswith("$ ")]
        return [line for line in lines if line and not line.startswith("#")]


def runnable_blocks() -> list[Block]:
    blocks = []
    for page in DOCS:
        text = page.read_text()
        files: dict[str, str] = {}
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1]
            if named := FILE_MARK.fullmatch(before.strip()):
                files[named.group(1)] = match.group(2)
            elif before.strip() == MARK:
                line = text[: match.start()].count("\n") + 1
                blocks.append(Block(page.name, line, match.group(1), match.group(2), dict(files)))
    return blocks


BLOCKS = runnable_blocks()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


class Scratch:
    """One block's run: its directory, namespace, port and background processes."""

    def __init__(self, redis: RedisServer, directory: Path, namespace: str) -> None:
        self.redis, self.directory, self.namespace = redis, directory, namespace
        self.port = free_port()
        self.procs: list[tuple[str, subprocess.Popen[bytes], Path]] = []
        bindir = str(Path(sys.executable).parent)
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("WORLDPOOL_")},
            "PATH": bindir + os.pathsep + os.environ.get("PATH", ""),
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(ROOT / "src"), str(ROOT), os.environ.get("PYTHONPATH")])
            ),
            "WORLDPOOL_NAMESPACE": namespace,
            "WORLDPOOL_HEARTBEAT_S": "0.5",
            "NO_COLOR": "1",
            "PYTHONUNBUFFERED": "1",
        }

    def localize(self, command: str) -> str:
        command = command.replace("redis://127.0.0.1:6379/0", self.redis.url)
        return re.sub(r"\b(8600|8700)\b", str(self.port), command)

    def run(self, command: str) -> None:
        command = self.localize(command)
        if command.startswith(BACKGROUND) and "--print-profile" not in command:
            self.start(command)
            return
        done = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}\n{self.logs()}"

    def start(self, command: str) -> None:
        if "--redis" not in command:
            command += f" --redis {self.redis.url}"
        name = f"bg{len(self.procs)}"
        log = self.directory / f"{name}.log"
        with log.open("wb") as out:
            proc = subprocess.Popen(
                ["bash", "-c", f"exec {command}"],
                cwd=self.directory,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        self.procs.append((command, proc, log))
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            assert proc.poll() is None, f"{command} exited\n{log.read_text()}"
            if command.startswith("worldpool serve"):
                if "orchestrator running" in log.read_text():
                    return
            elif self.worker_online(shlex.split(command)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{command} not ready in 60 s\n{log.read_text()}")

    def worker_online(self, argv: list[str]) -> bool:
        worker_id = argv[argv.index("--id") + 1] if "--id" in argv else None

        async def online() -> set[str]:
            settings = Settings(namespace=self.namespace)
            async with RedisBackend.from_url(self.redis.url, settings) as backend:
                workers = await backend.list_workers()
            return {w.id for w in workers if w.state.status is WorkerStatus.ONLINE}

        ids = asyncio.run(online())
        return worker_id in ids if worker_id else bool(ids)

    def tasks_end_succeeded(self, timeout_s: float = 60.0) -> None:
        """Every task the block submitted ends, and succeeds (not retried into failure)."""

        async def states() -> dict[str, str]:
            async with RedisBackend.from_url(
                self.redis.url, Settings(namespace=self.namespace)
            ) as b:
                return {t.spec.id: t.status.value for t in await b.list_tasks()}

        deadline = time.monotonic() + timeout_s
        while True:
            found = asyncio.run(states())
            ended = all(s in ("succeeded", "failed", "cancelled") for s in found.values())
            if ended or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert all(s == "succeeded" for s in found.values()), (found, self.logs())

    def logs(self) -> str:
        return "\n".join(f"--- {c}\n{log.read_text()[-3000:]}" for c, _, log in self.procs)

    def close(self) -> None:
        for _, proc, _ in self.procs:
            proc.kill()
            proc.wait(timeout=10)


def test_the_docs_have_runnable_examples() -> None:
    assert {b.page for b in BLOCKS} >= {"api.md", "cli.md", "workers.md"}


@pytest.mark.slow
@pytest.mark.parametrize("block", BLOCKS, ids=[b.id for b in BLOCKS])
def test_docs_example_runs(block: Block, redis: RedisServer, tmp_path: Path) -> None:
    require_binary("bwrap", "bubblewrap")  # the shell worker's sandbox
    scratch = Scratch(redis, tmp_path, "docs-" + re.sub(r"\W", "-", block.id))
    (tmp_path / "pool.json").write_bytes(
        orjson.dumps([p.model_dump(mode="json") for p in demo_pool()])
    )
    for name, content in block.files.items():
        (tmp_path / name).write_text(content)
    commands = block.commands()
    try:
        if any("curl" in c for c in commands) and not any(
            c.startswith("worldpool serve") for c in commands
        ):
            scratch.run("worldpool serve --port 8600")
            scratch.run(
                "worldpool worker --id docs-shell-1 --region us-east-1 "
                "--capabilities shell_operations,testing"
            )
        for command in commands:
            scratch.run(command)
        scratch.tasks_end_succeeded()
    finally:
        scratch.close()
