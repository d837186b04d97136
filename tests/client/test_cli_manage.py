"""``submit``'s task ids and unknown-handler refusal, steps' results, a Redis that is down:
the CLI against a real ``worldpool serve`` and worker process on a private redis-server."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.e2e.procs import Cluster
from tests.helpers import free_port
from worldpool.cli.app import Exit, app

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
def deployment(sync_deployment: Cluster) -> Cluster:
    return sync_deployment


def cli(cluster: Cluster, *args: str) -> tuple[int, str]:
    result = runner.invoke(
        app,
        [*args, "--redis", cluster.redis_url, "--namespace", cluster.namespace],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )
    return result.exit_code, result.output


def test_submit_prints_every_task_id_and_steps_carry_their_result(
    deployment: Cluster, tmp_path: Path
) -> None:
    flow = tmp_path / "flow.toml"
    flow.write_bytes(FLOW)
    code, out = cli(deployment, "submit", str(flow))
    assert code == Exit.OK, out
    for step in "abc":
        assert f"task wf-cli.{step}" in out  # every task id it created

    code, out = cli(deployment, "result", "wf-cli", "--wait-s", "30")
    assert code == Exit.FAILED, out
    steps = {s["step"]: s for s in orjson.loads(out)["steps"]}
    assert steps["a"]["result"] == {"n": 1}  # results are in the status document
    assert steps["b"]["result"] is None and "boom on purpose" in steps["b"]["error"]

    code, out = cli(deployment, "retry", "wf-cli")
    assert code == Exit.OK and "retrying b" in out, out
    code, out = cli(deployment, "result", "wf-cli.b", "--wait-s", "30")
    assert code == Exit.FAILED and "boom on purpose" in out, out
    code, out = cli(deployment, "status", "wf-cli.b", "--json")
    assert [a["attempt"] for a in orjson.loads(out)["attempts"]] == [1, 2], out  # ran again


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
