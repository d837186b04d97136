"""``worldpool list``: every filter (status, handler, worker, region, time, search, kind,
limit) and ``--json``, against real serve and worker processes on a private redis-server."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.e2e.procs import Cluster, wait_workers
from tests.redis_server import start_redis
from worldpool import Client, SyncClient
from worldpool.cli.app import app

runner = CliRunner()
HANDLERS = "tests.client.handlers:HANDLERS"


def in_region(region: str) -> dict[str, Any]:
    return {"requirements": {"regions": [region]}}


US = in_region("us-east-1")


@pytest.fixture(scope="module")  # the tests only read what it made
def runs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """Runs on two workers in two regions, some succeeded, one failed, one workflow;
    ``cut``: a time between the first run and the others."""
    with contextlib.contextmanager(start_redis)() as server:
        cluster = Cluster(server.url, tmp_path_factory.mktemp("list"))
        try:
            yield make_runs(cluster)
        finally:
            cluster.close()


def make_runs(cluster: Cluster) -> dict[str, Any]:
    cluster.serve()
    workers = [
        cluster.worker(wid, "--region", region, "--handlers", HANDLERS, "--no-builtin")
        for wid, region in (("w-eu", "eu-west-1"), ("w-us", "us-east-1"))
    ]

    async def ready() -> None:
        async with await Client.connect(cluster.redis_url, namespace=cluster.namespace) as c:
            await wait_workers(c.backend, workers)

    asyncio.run(ready())
    with SyncClient.connect(cluster.redis_url, namespace=cluster.namespace) as client:
        eu = client.submit("echo", {"n": 1}, **in_region("eu-west-1"))
        eu.wait(timeout_s=30)
        time.sleep(0.3)
        cut = time.time()
        time.sleep(0.3)
        us = client.submit("echo", {"n": 2}, **US)
        boom = client.submit("boom", {}, retry={"max_retries": 0}, **US)
        flow = client.submit_workflow(
            {"name": "listed", "steps": [{"name": "s", "task": {"handler": "nap", **US}}]}
        )
        for handle in (us, boom):
            handle.wait(timeout_s=30)
        flow.result(timeout_s=30)
    return {
        "cluster": cluster,
        "eu": eu.task_id,
        "us": us.task_id,
        "boom": boom.task_id,
        "flow": flow.workflow_id,
        "step": f"{flow.workflow_id}.s",
        "cut": cut,
    }


def listed(cluster: Cluster, *args: str) -> list[dict[str, Any]]:
    result = invoke(cluster, "list", *args, "--json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.output)
    return rows


def invoke(cluster: Cluster, *args: str) -> Any:
    return runner.invoke(
        app,
        [*args, "--redis", cluster.redis_url, "--namespace", cluster.namespace],
        env={"COLUMNS": "200", "NO_COLOR": "1"},
    )


def ids(rows: list[dict[str, Any]]) -> set[str]:
    return {row["id"] for row in rows}


def test_every_filter_of_list(runs: dict[str, Any]) -> None:
    cluster = runs["cluster"]
    every = listed(cluster)
    assert ids(every) == {runs[k] for k in ("eu", "us", "boom", "flow", "step")}
    assert set(every[0]) == {"id", "kind", "status", "handler", "worker", "region", "created"}
    created = [row["created"] for row in every]
    assert created == sorted(created, reverse=True)  # newest first

    failed = listed(cluster, "--status", "failed")
    assert ids(failed) == {runs["boom"]}
    assert ids(listed(cluster, "--handler", "ech*")) == {runs["eu"], runs["us"]}
    assert ids(listed(cluster, "--worker", "w-eu")) == {runs["eu"]}
    assert ids(listed(cluster, "--region", "eu-*")) == {runs["eu"]}
    us_ok = listed(cluster, "--region", "us-east-1", "--status", "succeeded", "--kind", "task")
    assert {(r["id"], r["worker"]) for r in us_ok} == {(runs["us"], "w-us"), (runs["step"], "w-us")}
    assert ids(listed(cluster, "--kind", "workflow")) == {runs["flow"]}
    assert ids(listed(cluster, "--search", runs["flow"])) == {runs["flow"], runs["step"]}
    recent = listed(cluster, "--since-s", f"{time.time() - runs['cut']:.3f}")
    assert runs["eu"] not in ids(recent) and runs["us"] in ids(recent)
    older = listed(cluster, "--before-s", f"{time.time() - runs['cut']:.3f}")
    assert ids(older) == {runs["eu"]}
    assert len(listed(cluster, "--limit", "2")) == 2
    assert listed(cluster, "--status", "running") == []


def test_list_prints_a_table_and_refuses_a_bad_kind(runs: dict[str, Any]) -> None:
    cluster = runs["cluster"]
    table = invoke(cluster, "list", "--status", "failed")
    assert table.exit_code == 0, table.output
    assert "1 runs" in table.output and runs["boom"] in table.output and "boom" in table.output
    bad = invoke(cluster, "list", "--kind", "job")
    assert bad.exit_code == 2 and "task" in bad.output
    empty = invoke(cluster, "list", "--since-s", "10", "--before-s", "20")
    assert empty.exit_code == 2 and "window is empty" in empty.output
