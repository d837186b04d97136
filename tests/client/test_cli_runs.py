"""``worldpool list / result / cancel / retry / logs`` and ``submit``'s task ids, against a
real ``worldpool serve`` and worker process on a private redis-server."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.e2e.procs import Cluster, wait_workers
from tests.helpers import free_port
from worldpool.backends.redis import RedisBackend
from worldpool.cli.app import Exit, app
from worldpool.config import Settings

runner = CliRunner()

FLOW = b"""
name = "cli-runs"
id = "wf-cli"

[[steps]]
name = "a"
task = { handler = "echo", payload = { n = 1 } }

[[steps]]
name = "b"
after = ["a"]
task = { handler = "boom", payload = {}, retry = { max_retries = 0 } }

[[steps]]
name = "c"
after = ["b"]
task = { handler = "echo", payload = { n = 3 } }
"""


@pytest.fixture
def deployment(cluster: Cluster) -> Cluster:
    cluster.serve()
    worker = cluster.worker(
        "w1",
        "--region",
        "us-east-1",
        "--handlers",
        "tests.client.handlers:HANDLERS",
        "--no-builtin",
    )

    async def ready() -> None:
        settings = Settings(namespace=cluster.namespace)
        async with RedisBackend.from_url(cluster.redis_url, settings) as backend:
            await wait_workers(backend, [worker])

    asyncio.run(ready())
    return cluster


def cli(cluster: Cluster, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [*args, "--redis", cluster.redis_url, "--namespace", cluster.namespace],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    return result.exit_code, result.output


def test_runs_managed_from_the_cli(deployment: Cluster, tmp_path: Path) -> None:
    flow = tmp_path / "flow.toml"
    flow.write_bytes(FLOW)
    code, out = cli(deployment, "submit", str(flow))
    assert code == Exit.OK, out
    for step in "abc":
        assert f"task wf-cli.{step}" in out  # every task id it created

    code, out = cli(deployment, "result", "wf-cli", "--timeout-s", "30")
    assert code == Exit.FAILED, out
    assert '"a": {' in out and '"n": 1' in out and "boom on purpose" in out

    code, out = cli(deployment, "list", "--kind", "task", "--status", "failed", "--json")
    assert code == Exit.OK, out
    assert [r["id"] for r in orjson.loads(out)] == ["wf-cli.b"]
    code, out = cli(deployment, "list", "--q", "wf-cli")
    assert code == Exit.OK and "3 runs" in out and "echo" in out, out  # c never ran

    code, out = cli(deployment, "logs", "wf-cli.a")
    assert code == Exit.OK and "echoing 1 keys" in out, out
    code, out = cli(deployment, "logs", "wf-cli")
    assert code == Exit.USAGE and "wf-cli.STEP" in out, out

    code, out = cli(deployment, "retry", "wf-cli")
    assert code == Exit.OK and "from b" in out, out
    code, out = cli(deployment, "result", "wf-cli.b", "--timeout-s", "30")
    assert code == Exit.FAILED and "boom on purpose" in out, out
    code, out = cli(deployment, "status", "wf-cli.b", "--json")
    assert [a["attempt"] for a in orjson.loads(out)["attempts"]] == [1, 2], out  # ran again
    code, out = cli(deployment, "retry", "wf-cli.a")
    assert code == Exit.FAILED and "succeeded" in out, out

    code, out = cli(deployment, "result", "wf-cli.a")
    assert code == Exit.OK and orjson.loads(out) == {"n": 1}, out


def test_result_timeout_cancel_and_unknown_ids(deployment: Cluster, tmp_path: Path) -> None:
    task = tmp_path / "nap.json"
    task.write_bytes(orjson.dumps({"id": "t-nap", "handler": "nap", "payload": {"s": 30}}))
    code, out = cli(deployment, "submit", str(task))
    assert code == Exit.OK and "t-nap" in out, out
    code, out = cli(deployment, "result", "t-nap", "--timeout-s", "0.2")
    assert code == Exit.TIMEOUT and "timed out" in out and "cannot reach" not in out, out
    code, out = cli(deployment, "cancel", "t-nap")
    assert code == Exit.OK and "cancelled t-nap" in out, out
    code, out = cli(deployment, "cancel", "t-nap")
    assert code == Exit.FAILED and "nothing to cancel" in out, out
    code, out = cli(deployment, "result", "t-nap")
    assert code == Exit.FAILED and "cancelled" in out, out
    for command in ("result", "cancel", "retry", "logs"):
        code, out = cli(deployment, command, "no-such-run")
        assert code == Exit.NOT_FOUND, (command, out)
    code, out = cli(deployment, "list", "--since", "yesterday")
    assert code == Exit.USAGE and "ISO time" in out, out


def test_a_redis_that_is_down_exits_4_without_the_password() -> None:
    url = f"redis://:hunter2-secret@127.0.0.1:{free_port()}/0"
    result = runner.invoke(app, ["list", "--redis", url], env={"NO_COLOR": "1"})
    assert result.exit_code == Exit.UNAVAILABLE, result.output
    assert "hunter2-secret" not in result.output and "127.0.0.1" in result.output


def test_submit_refuses_an_unknown_handler_unless_later(
    deployment: Cluster, tmp_path: Path
) -> None:
    task = tmp_path / "typo.json"
    task.write_bytes(orjson.dumps({"id": "t-typo", "handler": "ecoh", "payload": {}}))
    code, out = cli(deployment, "submit", str(task))
    assert code == Exit.USAGE and "did you mean 'echo'" in out and "--later" in out, out
    code, out = cli(deployment, "status", "t-typo")
    assert code == Exit.NOT_FOUND, out  # refused: nothing stored
    code, out = cli(deployment, "submit", str(task), "--later")
    assert code == Exit.OK, out
    for _ in range(100):
        code, out = cli(deployment, "status", "t-typo", "--json")
        if orjson.loads(out)["pending_reason"]:
            break
    assert "no worker offers handler 'ecoh'" in orjson.loads(out)["pending_reason"], out
