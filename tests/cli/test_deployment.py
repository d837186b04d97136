"""``worldpool dead-letters`` against a real redis-server: the letters written through the
backend (a rejected delivery, a failed task) come back newest first, as a table or JSON."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Iterator

import orjson
import pytest
from typer.testing import CliRunner

from tests.helpers import free_port
from tests.redis_server import RedisServer, start_redis
from worldpool.backends.redis import RedisBackend
from worldpool.cli.app import Exit, app
from worldpool.config import Settings

runner = CliRunner()
NAMESPACE = "cli-dead"
BINARY = b"\xff\xfe not utf-8"


@pytest.fixture(scope="module")
def redis() -> Iterator[RedisServer]:
    yield from start_redis()


@pytest.fixture(scope="module")
def letters(redis: RedisServer) -> RedisServer:
    async def write() -> None:
        settings = Settings(namespace=NAMESPACE)
        async with RedisBackend.from_url(redis.url, settings) as backend:
            await backend.dead_letter(
                "worker-a", "bad_signature", "signature does not match", b'{"task_id":"t-1"}'
            )
            await backend.dead_letter("worker-b", "malformed_json", "not valid JSON", BINARY)
            await backend.dead_letter(
                "orchestrator", "failed", "handler raised", orjson.dumps({"task_id": "t-3"})
            )

    asyncio.run(write())
    return redis


def invoke(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", "NO_COLOR": "1"})
    return result.exit_code, result.output


def test_json_lists_every_field_newest_first(letters: RedisServer) -> None:
    code, out = invoke("dead-letters", "--redis", letters.url, "--namespace", NAMESPACE, "--json")
    assert code == Exit.OK, out
    rows = orjson.loads(out)
    assert [r["worker_id"] for r in rows] == ["orchestrator", "worker-b", "worker-a"]
    failed, binary, rejected = rows
    assert failed["code"] == "failed" and failed["reason"] == "handler raised"
    assert failed["task_id"] == "t-3" and failed["data_encoding"] == "utf-8"
    assert orjson.loads(failed["data"]) == {"task_id": "t-3"}
    assert binary["task_id"] is None and binary["data_encoding"] == "base64"
    assert base64.b64decode(binary["data"]) == BINARY
    assert rejected["code"] == "bad_signature" and rejected["task_id"] == "t-1"
    assert all(isinstance(r["at"], float) and r["at"] > 0 for r in rows)
    assert rows[0]["at"] >= rows[1]["at"] >= rows[2]["at"]


def test_table_and_limit(letters: RedisServer) -> None:
    code, out = invoke("dead-letters", "--redis", letters.url, "--namespace", NAMESPACE)
    assert code == Exit.OK, out
    assert "3 dead letters" in out
    assert "bad_signature" in out and "signature does not match" in out and "t-3" in out
    code, out = invoke(
        "dead-letters", "--redis", letters.url, "--namespace", NAMESPACE, "--limit", "1", "--json"
    )
    assert code == Exit.OK, out
    assert [r["worker_id"] for r in orjson.loads(out)] == ["orchestrator"]


def test_an_empty_namespace_has_none(redis: RedisServer) -> None:
    code, out = invoke("dead-letters", "--redis", redis.url, "--namespace", "cli-no-dead", "--json")
    assert code == Exit.OK and orjson.loads(out) == []


def test_exit_codes_as_the_other_deployment_commands() -> None:
    code, out = invoke("dead-letters")
    assert code == Exit.USAGE and "--redis" in out
    code, out = invoke("dead-letters", "--redis", f"redis://127.0.0.1:{free_port()}/0")
    assert code == Exit.UNAVAILABLE and "cannot reach" in out
    code, out = invoke("dead-letters", "--redis", "redis://127.0.0.1:1/0", "--limit", "0")
    assert code == Exit.USAGE, out
