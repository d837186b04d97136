"""``worldpool list/result/cancel/retry/logs`` against real serve and worker processes."""

from __future__ import annotations

import json

from tests.e2e.procs import Cluster
from worldpool import Client


async def test_runs_from_the_command_line(deployment: Client, cluster: Cluster) -> None:
    ok = await deployment.submit("echo", {"x": 1})
    await ok.result(timeout_s=30)
    bad = await deployment.submit("boom", {}, retry={"max_retries": 0})
    slow = await deployment.submit("nap", {"s": 60})

    listed = cluster.cli("list", "--kind", "task", "--json")
    assert listed.returncode == 0, listed.stderr
    rows = {row["id"]: row for row in json.loads(listed.stdout)}
    assert rows[ok.task_id]["status"] == "succeeded" and rows[ok.task_id]["worker"] == "w1"

    shown = cluster.cli("result", ok.task_id)
    assert shown.returncode == 0 and json.loads(shown.stdout) == {"x": 1}
    waited = cluster.cli("result", bad.task_id, "--wait-s", "30")
    assert waited.returncode == 1 and "boom on purpose" in waited.stdout
    pending = cluster.cli("result", slow.task_id)
    assert pending.returncode == 6, pending.stdout + pending.stderr  # a timeout, not exit 4
    assert "timed out" in pending.stderr

    assert cluster.cli("cancel", slow.task_id).returncode == 0
    again = cluster.cli("cancel", slow.task_id)
    assert again.returncode == 1 and "already ended" in again.stdout

    retried = cluster.cli("retry", bad.task_id)
    assert retried.returncode == 0 and bad.task_id in retried.stdout
    assert cluster.cli("retry", ok.task_id).returncode == 1

    logged = cluster.cli("logs", ok.task_id)
    assert logged.returncode == 0 and "echoing 1 keys" in logged.stdout
    missing = cluster.cli("logs", "no-such-task")
    assert missing.returncode == 3, missing.stderr
