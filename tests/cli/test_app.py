"""The CLI's exit codes (docs/cli.md): 0 ok, 1 failed, 2 usage, 3 not found, 4 backend
unreachable, 5 worker refused. Run in-process with typer's runner."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from typer.testing import CliRunner

from tests.helpers import free_port
from tests.redis_server import RedisServer, start_redis
from worldpool.cli.app import Exit, app
from worldpool.demo.scenario import demo_pool

runner = CliRunner()


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def pool_file(tmp_path: Path) -> Path:
    path = tmp_path / "pool.json"
    path.write_bytes(orjson.dumps([p.model_dump(mode="json") for p in demo_pool()]))
    return path


def test_help_shows_examples_and_exit_codes() -> None:
    code, out = invoke("--help")
    assert code == Exit.OK
    assert "Examples:" in out and "worldpool worker --redis" in out and "Exit codes" in out


def test_explain_prints_the_table_for_a_pool_file(tmp_path: Path) -> None:
    code, out = invoke(
        "explain",
        "--pool",
        str(pool_file(tmp_path)),
        "--handler",
        "analyze",
        "--capabilities",
        "coding",
        "--gpu",
        "--user-location",
        "tokyo",
    )
    assert code == Exit.OK, out
    assert "dgx-tokyo-01" in out and "sandbox-onprem-01" in out


def test_bad_pool_file_is_a_usage_error(tmp_path: Path) -> None:
    bad = tmp_path / "pool.json"
    bad.write_text('[{"id": 3}')
    code, out = invoke("explain", "--pool", str(bad))
    assert code == Exit.USAGE, out


def test_missing_redis_url_is_a_usage_error() -> None:
    code, out = invoke("workers")
    assert code == Exit.USAGE and "--redis" in out


def test_unknown_id_is_not_found(redis: RedisServer) -> None:
    code, out = invoke(
        "status", "no-such-workflow", "--redis", redis.url, "--namespace", "cli-test"
    )
    assert code == Exit.NOT_FOUND, out


def test_unreachable_redis_is_unavailable() -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    code, out = invoke("status", "anything", "--redis", url)
    assert code == Exit.UNAVAILABLE, out
    assert "cannot reach" in out


def test_worker_claiming_what_it_lacks_is_refused(redis: RedisServer) -> None:
    code, out = invoke(
        "worker",
        "--redis",
        redis.url,
        "--id",
        "greedy",
        "--region",
        "on-prem",
        "--capabilities",
        "browser_operations",
        "--handlers",
        "worldpool.demo.handlers:HANDLERS",
        "--no-builtin",
        "--label",
        "gpu=required",
    )
    assert code == Exit.REFUSED, out
    assert "refusing to start" in out


def test_workers_table_lists_the_pool(redis: RedisServer) -> None:
    code, out = invoke("workers", "--redis", redis.url, "--namespace", "cli-empty")
    assert code == Exit.OK and "0 workers" in out


def test_events_dump_replays_in_the_simulator(redis: RedisServer, tmp_path: Path) -> None:
    import asyncio

    from worldpool.backends.redis import RedisBackend
    from worldpool.config import Settings
    from worldpool.models import TaskSpec
    from worldpool.orchestrator.core import Orchestrator
    from worldpool.sim.traces import load_event_log

    async def submit() -> None:
        settings = Settings(namespace="cli-events")
        async with RedisBackend.from_url(redis.url, settings) as backend:
            await Orchestrator(backend, settings).submit(
                TaskSpec(handler="analyze", capabilities={"coding"}, user_location="tokyo")
            )

    asyncio.run(submit())
    code, out = invoke("events", "--redis", redis.url, "--namespace", "cli-events")
    assert code == Exit.OK
    lines = [orjson.loads(line) for line in out.splitlines() if line.strip()]
    assert [e["kind"] for e in lines][:1] == ["task.submitted"]
    path = tmp_path / "events.jsonl"
    path.write_text(out)
    workload = load_event_log(path)
    assert len(workload) >= 1


def test_a_wait_that_runs_out_is_a_timeout_not_an_unreachable_backend() -> None:
    import typer

    from worldpool.cli.app import Exit, run_async

    async def slow() -> None:
        raise TimeoutError("workflow w1 did not end within 5s")

    try:
        run_async(slow())
    except typer.Exit as exit_:
        assert exit_.exit_code == Exit.TIMEOUT == 6
    else:
        raise AssertionError("run_async did not exit")
