"""``--json`` on every command that prints data (issue 18): each command's JSON parses and
says what the command said, against a real redis-server with a real ``worldpool serve`` and
``worldpool worker``; and a bad input reads the same way on every command: one line on
stderr, ``error: ...``, exit 2."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.procs import Cluster, wait_task, wait_workers
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.redis import RedisBackend
from worldpool.cli.app import Exit
from worldpool.config import Settings

NAMESPACE = "cli-json"
WORKER = "json-worker-1"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


@pytest.fixture(scope="module")
def deployment(redis: RedisServer, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(redis.url, tmp_path_factory.mktemp("json"), namespace=NAMESPACE)
    try:
        cluster.serve()
        worker = cluster.worker(
            WORKER, "--region", "us-east-1", "--no-builtin", "--no-verify-claims",
            "--handlers", "tests.cli.json_handlers:HANDLERS",
        )  # fmt: skip

        async def ready() -> None:
            async with RedisBackend.from_url(redis.url, Settings(namespace=NAMESPACE)) as b:
                await wait_workers(b, [worker])

        asyncio.run(ready())
        yield cluster
    finally:
        cluster.close()


def run(cluster: Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    return cluster.cli(*args)


def as_json(done: subprocess.CompletedProcess[str]) -> Any:
    assert "error" not in done.stderr, done.stderr
    return orjson.loads(done.stdout)


def lines(done: subprocess.CompletedProcess[str]) -> list[Any]:
    return [orjson.loads(line) for line in done.stdout.splitlines() if line.strip()]


def write(cluster: Cluster, name: str, doc: dict[str, Any]) -> str:
    (cluster.directory / name).write_bytes(orjson.dumps(doc))
    return name


def wait_ended(cluster: Cluster, task_id: str) -> None:
    async def go() -> None:
        async with RedisBackend.from_url(cluster.redis_url, Settings(namespace=NAMESPACE)) as b:
            await wait_task(b, task_id)

    asyncio.run(go())


def test_submit_json_without_wait_gives_the_ids(deployment: Cluster) -> None:
    task = write(deployment, "t1.json", {"id": "json-t1", "handler": "echo", "payload": {"a": 1}})
    done = run(deployment, "submit", task, "--json")
    assert done.returncode == Exit.OK, done.stderr
    assert as_json(done) == {"kind": "task", "id": "json-t1"}
    wf = write(
        deployment,
        "wf1.json",
        {"id": "json-wf1", "name": "j", "steps": [
            {"name": "a", "handler": "echo", "payload": {"x": 1}},
            {"name": "b", "handler": "echo", "after": ["a"]},
        ]},
    )  # fmt: skip
    done = run(deployment, "submit", wf, "--json")
    assert as_json(done) == {
        "kind": "workflow",
        "id": "json-wf1",
        "tasks": {"a": "json-wf1.a", "b": "json-wf1.b"},
    }


def test_submit_json_wait_is_one_document_the_end(deployment: Cluster) -> None:
    wf = write(
        deployment,
        "wf2.json",
        {"id": "json-wf2", "name": "j", "steps": [{"name": "a", "handler": "echo"}]},
    )
    done = run(deployment, "submit", wf, "--json", "--wait", "--timeout-s", "60")
    assert done.returncode == Exit.OK, done.stdout + done.stderr
    status = as_json(done)  # the whole stdout is one document: no live view, no "submitted"
    assert status["id"] == "json-wf2" and status["status"] == "succeeded"
    task = write(deployment, "t2.json", {"id": "json-t2", "handler": "boom"})
    done = run(deployment, "submit", task, "--json", "--wait", "--timeout-s", "60")
    assert done.returncode == Exit.FAILED
    record = as_json(done)
    assert record["spec"]["id"] == "json-t2" and record["status"] == "failed"
    assert "boom" in record["error"]


def test_watch_json_is_a_status_document_per_line(deployment: Cluster) -> None:
    wf = write(
        deployment,
        "wf3.json",
        {"id": "json-wf3", "name": "j", "steps": [{"name": "a", "handler": "echo"}]},
    )
    assert run(deployment, "submit", wf).returncode == Exit.OK
    done = run(deployment, "watch", "json-wf3", "--json")
    assert done.returncode == Exit.OK, done.stderr
    docs = lines(done)
    assert docs and all(d["id"] == "json-wf3" for d in docs)
    assert docs[-1]["status"] == "succeeded"  # it follows until the end, then exits


def test_status_list_result_logs_json(deployment: Cluster) -> None:
    task = write(deployment, "t3.json", {"id": "json-t3", "handler": "echo", "payload": {"k": 2}})
    assert run(deployment, "submit", task, "--wait").returncode == Exit.OK
    record = as_json(run(deployment, "status", "json-t3", "--json"))
    assert record["status"] == "succeeded" and record["result"] == {"echo": {"k": 2}}
    assert as_json(run(deployment, "result", "json-t3", "--json")) == {"echo": {"k": 2}}
    runs = as_json(run(deployment, "list", "--kind", "task", "-q", "json-t3", "--json"))
    assert [(r["id"], r["status"], r["worker"]) for r in runs] == [("json-t3", "succeeded", WORKER)]
    logged = lines(run(deployment, "logs", "json-t3", "--json"))
    assert logged and logged[0]["task_id"] == "json-t3"
    assert any("echoing ['k']" in entry["line"] for entry in logged)


def test_cancel_and_retry_json(deployment: Cluster) -> None:
    task = write(deployment, "t4.json", {"id": "json-t4", "handler": "boom"})
    assert run(deployment, "submit", task, "--wait").returncode == Exit.FAILED
    done = run(deployment, "cancel", "json-t4", "--json")
    assert done.returncode == Exit.FAILED  # it had ended: nothing to cancel
    assert as_json(done) == {"id": "json-t4", "cancelled": False}
    done = run(deployment, "retry", "json-t4", "--json")
    assert done.returncode == Exit.OK, done.stderr
    assert as_json(done) == {"id": "json-t4", "retried": ["json-t4"]}
    wait_ended(deployment, "json-t4")
    ok = write(deployment, "t5.json", {"id": "json-t5", "handler": "echo"})
    assert run(deployment, "submit", ok, "--wait").returncode == Exit.OK
    done = run(deployment, "retry", "json-t5", "--json")  # it succeeded: nothing to retry
    assert done.returncode == Exit.FAILED and as_json(done) == {"id": "json-t5", "retried": []}


def test_workers_dead_letters_and_events_json(deployment: Cluster) -> None:
    workers = as_json(run(deployment, "workers", "--json"))
    assert [w["profile"]["id"] for w in workers] == [WORKER]
    letters = as_json(run(deployment, "dead-letters", "--json"))
    assert any(d["code"] == "failed" and d["task_id"] == "json-t2" for d in letters)
    kinds = {e["kind"] for e in lines(run(deployment, "events", "--json"))}
    assert {"task.submitted", "task.succeeded"} <= kinds


def test_explain_and_worker_profile_json(tmp_path: Path) -> None:
    from worldpool.demo.scenario import demo_pool

    pool = tmp_path / "pool.json"
    pool.write_bytes(orjson.dumps([p.model_dump(mode="json") for p in demo_pool()]))
    done = cli("explain", "--pool", str(pool), "--handler", "analyze", "--gpu", "--json")
    assert done.returncode == Exit.OK, done.stderr
    assert as_json(done)["winner"]
    # A claim this machine cannot back: the warning goes to stderr, stdout stays JSON.
    done = cli(
        "worker", "--id", "p1", "--region", "tokyo", "--capabilities", "browser_operations",
        "--no-builtin", "--handlers", "tests.cli.json_handlers:HANDLERS", "--label", "a=b",
        "--print-profile",
    )  # fmt: skip
    assert done.returncode == Exit.OK, done.stderr
    assert orjson.loads(done.stdout)["id"] == "p1"


@pytest.mark.slow
def test_demo_json_is_the_status_document_alone() -> None:
    from tests.fake_openai import FakeOpenAI
    from tests.helpers import require_binary

    for binary, package in (("bwrap", "bubblewrap"), ("chromium", "chromium"), ("git", "git")):
        require_binary(binary, package)
    # A configured endpoint answers the GPU steps: no local model to load (the local
    # model's run of the demo is tests/test_demo.py's), and its answers stay off stdout.
    with FakeOpenAI() as server:
        done = cli("demo", "--json", env={"WORLDPOOL_DEMO_LLM_URL": server.base_url})
        asked = len(server.requests)
    assert asked >= 4  # planning, understanding, fix, review
    assert done.returncode == Exit.OK, done.stderr[-2000:]
    status = orjson.loads(done.stdout)  # nothing else on stdout: no banner, no hop log
    assert status["status"] == "succeeded" and len(status["steps"]) == 7


def test_credential_and_acl_json() -> None:
    done = cli("credential", "gpu-1", "--json", env={"WORLDPOOL_SECRET": "s" * 32})
    doc = as_json(done)
    assert doc["worker_id"] == "gpu-1" and len(doc["key"]) >= 32
    plain = cli("credential", "gpu-1", env={"WORLDPOOL_SECRET": "s" * 32}).stdout.strip()
    assert plain == doc["key"]
    done = cli("acl", "worker", "--worker", "gpu-1", "--password", "pw", "--json")
    doc = as_json(done)
    assert doc["user"] == "wp-worker-gpu-1" and doc["password"] == "pw"
    assert doc["args"][:6] == ["ACL", "SETUSER", "wp-worker-gpu-1", "reset", "on", ">pw"]
    assert doc["args"][6:] == doc["rules"]


# -- one way to say what is wrong, on every command --------------------------------------

BAD_INPUTS = [
    ("list", "--kind", "nope", "--redis", "redis://127.0.0.1:1/0"),
    ("list", "--limit", "many", "--redis", "redis://127.0.0.1:1/0"),
    ("status",),  # no id
    ("workers", "--redis", "redis:/host"),
    ("submit", "no-such-file.json", "--redis", "redis://127.0.0.1:1/0"),
    ("explain", "--pool", "no-such-pool.toml"),
    ("watch", "wf-1", "--url", "http:/pool:8700"),
    ("worker", "--region", "tokyo", "--capabilities", "gpu!", "--print-profile"),
    ("worker", "--region", "tokyo", "--llm-url", "localhost:8000/v1", "--print-profile"),
    ("simulate", "--pool", "seed", "--outage", "dublin"),
    ("acl", "wizard"),
    ("no-such-command",),
]


@pytest.mark.parametrize("args", BAD_INPUTS, ids=[" ".join(a[:2]) for a in BAD_INPUTS])
def test_a_bad_input_is_one_error_line_on_every_command(args: tuple[str, ...]) -> None:
    done = cli(*args)
    assert done.returncode == Exit.USAGE, (done.stdout, done.stderr)
    err = done.stderr.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: "), done.stderr
    assert "Traceback" not in done.stderr and "Usage:" not in done.stderr
    assert done.stdout == ""


def test_a_usage_error_says_where_to_look() -> None:
    done = cli("list", "--kind", "nope", "--redis", "redis://127.0.0.1:1/0")
    assert "--kind is 'task' or 'workflow'" in done.stderr
    assert done.stderr.strip().endswith("list --help`")


def cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    root = Path(__file__).resolve().parents[2]
    base = {k: v for k, v in os.environ.items() if not k.startswith("WORLDPOOL_")}
    return subprocess.run(
        [sys.executable, "-m", "worldpool", *args],
        capture_output=True,
        text=True,
        env={**base, "PYTHONPATH": f"{root / 'src'}{os.pathsep}{root}", **(env or {})},
        timeout=180,
        check=False,
        cwd=root,
    )
