"""The docs' examples run (issue 18): every fenced block in docs/ marked ``<!-- runnable -->``
is executed, command by command, in a scratch directory, against a real redis-server; each
command must exit 0. Every shell block (``bash``, ``console``, ``sh``) is marked either
``<!-- runnable -->`` or ``<!-- not runnable: WHY -->`` (a GPU, a remote host, S3, an
install with sudo, a long benchmark), so none is left out silently, and :data:`EXPECTED`
counts the runnable blocks of each page: a block unmarked by mistake fails the count.
``python -m tests.test_docs_examples`` lists what runs and what does not, and why.

* ``redis://127.0.0.1:6379/0`` and the placeholder hosts ``redis://hub:6379/0`` and
  ``redis://localhost:6379/0`` become the test's Redis; ports 8600 and 8700 a free port;
* ``worldpool serve`` and ``worldpool worker`` lines (but ``--print-profile``) start in the
  background (waited for: the orchestrator's "running" line, the worker online); a block
  that sends requests (``curl``) and starts no ``serve`` gets one, with the API, and a
  shell worker, started for it;
* ``export NAME=VALUE`` lines set the variable for the block's later commands;
* a block marked ``<!-- file: NAME -->`` is written to ``NAME`` first (for the blocks after
  it on that page), and ``pool.json`` is the demo's pool;
* ``console`` blocks run their ``$`` lines, and every output line shown under one (but
  lines with ``...``) must be a line of what the command printed; ``bash`` and ``sh``
  blocks run every line (a trailing backslash joins lines); ``python`` blocks run as one
  script, top-level ``await`` allowed;
* every task a block submits must end succeeded.
"""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
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
NOT_RUNNABLE = re.compile(r"<!-- not runnable: (.+?) -->")
FILE_MARK = re.compile(r"<!-- file: (\S+) -->")
FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.S | re.M)
SHELL = frozenset({"bash", "console", "sh"})
BACKGROUND = re.compile(r"worldpool (serve|worker)(\s|$)")  # not `worldpool workers`
REDIS_URLS = ("redis://127.0.0.1:6379/0", "redis://hub:6379/0", "redis://localhost:6379/0")
UNSHOWN = ("...", "…")  # an output line that elides something is not compared
RUN_PY = (
    "import ast, asyncio, sys\n"
    "source = open(sys.argv[1]).read()\n"
    "code = compile(source, sys.argv[1], 'exec', flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)\n"
    "result = eval(code, {'__name__': '__main__'})\n"
    "if asyncio.iscoroutine(result):\n"
    "    asyncio.run(result)\n"
)

# The runnable blocks of each page. A page whose count drops (a mark removed, a block
# turned into prose) fails test_the_docs_have_runnable_examples: update it on purpose.
EXPECTED = {
    "api.md": 2,
    "backends.md": 2,
    "cli.md": 3,
    "client.md": 1,
    "deployment.md": 1,
    "embedded.md": 1,
    "observability.md": 1,
    "redis.md": 1,
    "simulation.md": 1,
    "workers.md": 4,
}


@dataclass
class Command:
    text: str
    shown: list[str] = field(default_factory=list)  # console: the output the docs show


@dataclass
class Block:
    page: str
    line: int
    lang: str
    text: str
    files: dict[str, str]
    runnable: bool
    why_not: str | None

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"

    def commands(self) -> list[Command]:
        if self.lang == "python":
            return [Command(self.text)]
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = [line.strip() for line in joined.splitlines()]
        if self.lang != "console":
            return [Command(line) for line in lines if line and not line.startswith("#")]
        commands: list[Command] = []
        for line in lines:
            if line.startswith("$ "):
                commands.append(Command(line[2:]))
            elif line and commands and not any(u in line for u in UNSHOWN):
                commands[-1].shown.append(line)
        return commands


def doc_blocks() -> list[Block]:
    """Every fenced block of docs/ with its marks (a file mark keeps it for later ones)."""
    blocks = []
    for page in DOCS:
        text = page.read_text()
        files: dict[str, str] = {}
        for match in FENCE.finditer(text):
            before = text[: match.start()].rstrip().rsplit("\n", 1)[-1].strip()
            if named := FILE_MARK.fullmatch(before):
                files[named.group(1)] = match.group(2)
                continue
            why = NOT_RUNNABLE.fullmatch(before)
            line = text[: match.start()].count("\n") + 1
            blocks.append(
                Block(
                    page.name,
                    line,
                    match.group(1),
                    match.group(2),
                    dict(files),
                    runnable=before == MARK,
                    why_not=why.group(1) if why else None,
                )
            )
    return blocks


ALL = doc_blocks()
BLOCKS = [b for b in ALL if b.runnable]


def describe() -> str:
    """What runs and what does not (and why), page by page."""
    out = []
    for block in ALL:
        if block.runnable:
            out.append(f"runs         {block.id}  {block.lang}  ({len(block.commands())} commands)")
        elif block.why_not:
            out.append(f"does not run {block.id}  {block.lang}  {block.why_not}")
    return "\n".join(out)


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
        for url in REDIS_URLS:
            command = command.replace(url, self.redis.url)
        return re.sub(r"\b(8600|8700)\b", str(self.port), command)

    def run(self, command: Command, lang: str) -> None:
        text = self.localize(command.text)
        if lang == "python":
            (self.directory / "block.py").write_text(text)
            (self.directory / "run_block.py").write_text(RUN_PY)
            self.check(text, [sys.executable, "run_block.py", "block.py"], command.shown)
        elif text.startswith("export "):
            self.export(text)
        elif BACKGROUND.match(text) and "--print-profile" not in text:
            self.start(text)
        else:
            self.check(text, ["bash", "-o", "pipefail", "-c", text], command.shown)

    def check(self, text: str, argv: list[str], shown: list[str]) -> None:
        done = subprocess.run(
            argv,
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, f"{text}\n{done.stdout}\n{done.stderr}\n{self.logs()}"
        printed = {line.strip() for line in done.stdout.splitlines()}
        for line in shown:  # what the docs say it prints, it prints
            assert self.localize(line) in printed, f"{text}\nshown: {line}\ngot:\n{done.stdout}"

    def export(self, text: str) -> None:
        """``export NAME=VALUE``: evaluated by bash (``$(...)`` included), kept for later."""
        done = subprocess.run(
            ["bash", "-c", f"{text} && env -0"],
            cwd=self.directory,
            env=self.env,
            capture_output=True,
            timeout=30,
            check=True,
        )
        names = re.findall(r"(\w+)=", text)
        for item in done.stdout.split(b"\0"):
            name, _, value = item.decode().partition("=")
            if name in names:
                self.env[name] = value

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
                if "orchestrator running" in log.read_text() and self.api_up(command):
                    return
            elif self.worker_online(shlex.split(command, comments=True)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{command} not ready in 60 s\n{log.read_text()}")

    def api_up(self, command: str) -> bool:
        """The API of a ``serve`` line answers (none to wait for with ``--port 0``)."""
        argv = shlex.split(command, comments=True)
        port = int(argv[argv.index("--port") + 1]) if "--port" in argv else 8700
        if port == 0:
            return True
        with socket.socket() as sock:
            sock.settimeout(1.0)
            return sock.connect_ex(("127.0.0.1", port)) == 0

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
    counts = {page: sum(b.page == page for b in BLOCKS) for page in {b.page for b in BLOCKS}}
    assert counts == EXPECTED, describe()


def test_every_shell_block_says_whether_it_runs() -> None:
    unmarked = [
        b.id
        for b in ALL
        if (b.lang in SHELL or b.text.startswith("$ ")) and not b.runnable and not b.why_not
    ]
    assert not unmarked, f"mark these <!-- runnable --> or <!-- not runnable: WHY -->: {unmarked}"


def test_a_console_block_shows_what_its_commands_print() -> None:
    block = Block("x.md", 1, "console", "$ echo a\\\n  b\na b\n$ true\n...\n", {}, True, None)
    assert [(c.text, c.shown) for c in block.commands()] == [("echo a b", ["a b"]), ("true", [])]


def test_output_the_docs_show_must_be_printed(redis: RedisServer, tmp_path: Path) -> None:
    scratch = Scratch(redis, tmp_path, "docs-self-test")
    scratch.run(Command("echo hello", ["hello"]), "console")
    with pytest.raises(AssertionError, match="shown: goodbye"):
        scratch.run(Command("echo hello", ["goodbye"]), "console")
    scratch.run(Command("export GREETING=$(echo hi)"), "console")
    scratch.run(Command('echo "$GREETING there"', ["hi there"]), "console")


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
        if any("curl" in c.text for c in commands) and not any(
            c.text.startswith("worldpool serve ") for c in commands
        ):
            scratch.run(Command("worldpool serve --port 8600"), "bash")
            scratch.run(
                Command(
                    "worldpool worker --id docs-shell-1 --region us-east-1 "
                    "--capabilities shell_operations,testing"
                ),
                "bash",
            )
        for command in commands:
            scratch.run(command, block.lang)
        scratch.tasks_end_succeeded()
    finally:
        scratch.close()


if __name__ == "__main__":
    print(describe())
