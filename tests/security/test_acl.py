"""The generated ACL users (``worldpool acl``) against a real redis-server: every hostile
command each user might try is denied; what worldpool itself needs still works (the end
to end run is in test_attacks_e2e.py)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
import redis.asyncio as aioredis
from redis.exceptions import NoPermissionError, ResponseError

from tests.redis_server import RedisServer
from worldpool.backends.redis.connection import unprotected_warning
from worldpool.backends.redis.keys import Keys
from worldpool.cli.security import acl_rules, setuser_args

NS = "acl"
K = Keys.for_namespace(NS)


async def _user(server: RedisServer, name: str, rules: list[str]) -> aioredis.Redis:
    admin = aioredis.Redis.from_url(server.url)
    await admin.execute_command(*setuser_args(name, "pw-" + name, rules))
    await admin.aclose()
    return aioredis.Redis.from_url(server.url.replace("redis://", f"redis://{name}:pw-{name}@"))


@pytest.fixture
async def users(redis_server_session: RedisServer) -> AsyncIterator[dict[str, Any]]:
    server = redis_server_session
    admin = aioredis.Redis.from_url(server.url)
    # Something to steal or break: a task record, a dead letter, results, another worker.
    await admin.hset(K.task("t1"), mapping={"data": '{"spec":"secret"}', "version": "2"})
    await admin.hset(K.fence("t1"), mapping={"attempt": "1", "worker": "w2", "terminal": "0"})
    await admin.xadd(K.dead, {"w": "w2", "d": "envelope of w2"})
    await admin.xadd(K.results, {"r": "{}"})
    await admin.xadd(K.queue("w2"), {"d": "{}", "t": "t1"})
    await admin.hset(K.worker("w2"), "status", "online")
    await admin.sadd(K.workers, "w2")
    await admin.zadd(K.heartbeats, {"w2": 1.0})
    await admin.set(K.lease("orchestrator"), "o1")
    made = {
        "worker": await _user(server, "acl-w1", acl_rules("worker", NS, "w1")),
        "api": await _user(server, "acl-api", acl_rules("api", NS)),
        "orchestrator": await _user(server, "acl-orch", acl_rules("orchestrator", NS)),
    }
    yield made
    for conn in made.values():
        await conn.aclose()
    await admin.aclose()


def _denied(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, NoPermissionError) or "NOPERM" in text or "can't run this" in text


async def _assert_denied(conn: aioredis.Redis, *command: Any) -> None:
    with pytest.raises((NoPermissionError, ResponseError)) as caught:
        await conn.execute_command(*command)
    assert _denied(caught.value), f"{command} failed but not with NOPERM: {caught.value}"


WORKER_HOSTILE: list[tuple[str, tuple[Any, ...]]] = [
    ("read a full task record", ("HGETALL", K.task("t1"))),
    ("read a task's data field", ("HGET", K.task("t1"), "data")),
    ("rewrite a task record", ("HSET", K.task("t1"), "worker", "w1")),
    ("read dead letters", ("XRANGE", K.dead, "-", "+")),
    ("delete dead letters", ("DEL", K.dead)),
    ("append to the shared dead letters", ("XADD", K.dead, "*", "w", "w2", "c", "failed")),
    ("write another worker's dead letter", ("XADD", K.worker_dead("w2"), "*", "c", "x")),
    ("read another worker's dead letters", ("XRANGE", K.worker_dead("w2"), "-", "+")),
    ("read reports", ("XRANGE", K.results, "-", "+")),
    ("take reports", ("XREADGROUP", "GROUP", "orchestrators", "w1", "STREAMS", K.results, ">")),
    ("ack reports", ("XACK", K.results, "orchestrators", "0-1")),
    ("delete reports", ("XDEL", K.results, "0-1")),
    ("trim reports", ("XTRIM", K.results, "MAXLEN", "0")),
    ("drop the results stream", ("DEL", K.results)),
    ("remove a pool member", ("SREM", K.workers, "w2")),
    ("list pool members", ("SMEMBERS", K.workers)),
    ("remove a heartbeat", ("ZREM", K.heartbeats, "w2")),
    ("rewrite another worker's hash", ("HSET", K.worker("w2"), "status", "offline")),
    ("read another worker's deliveries", ("XRANGE", K.queue("w2"), "-", "+")),
    (
        "take another worker's deliveries",
        ("XREADGROUP", "GROUP", "workers", "w1", "STREAMS", K.queue("w2"), ">"),
    ),
    ("send to another worker", ("XADD", K.queue("w2"), "*", "d", "{}")),
    ("free another worker's slots", ("SREM", K.slots("w2"), "t1")),
    ("claim for another worker", ("SET", f"{K.prefix}seen:w2/t1:1", "1")),
    ("read another worker's refusal", ("GET", K.refused("w2"))),
    ("take the lease", ("SET", K.lease("orchestrator"), "w1")),
    ("read the lease", ("GET", K.lease("orchestrator"))),
    ("read the event log", ("XRANGE", K.events, "-", "+")),
    ("append a forged event", ("XADD", K.events, "*", "e", '{"kind":"task_succeeded"}')),
    ("rewrite a fencing copy", ("HSET", K.fence("t1"), "worker", "w1")),
    ("read the pending queue", ("ZRANGE", K.pending, "0", "-1")),
    ("run arbitrary Lua", ("EVAL", "return 1", "0")),
    ("CONFIG", ("CONFIG", "GET", "*")),
    ("FLUSHALL", ("FLUSHALL",)),
    ("FLUSHDB", ("FLUSHDB",)),
    ("KEYS", ("KEYS", "*")),
    ("SCAN the keyspace", ("SCAN", "0")),
    ("make itself an admin", ("ACL", "SETUSER", "acl-w1", "+@all")),
    ("another deployment's keys", ("GET", "wp:{other}:t:t1")),
]


@pytest.mark.parametrize(("what", "command"), WORKER_HOSTILE, ids=[w for w, _ in WORKER_HOSTILE])
async def test_worker_user_is_denied(users: dict[str, Any], what: str, command: tuple) -> None:
    await _assert_denied(users["worker"], *command)


async def test_a_loaded_script_cannot_do_more_than_the_user(users: dict[str, Any]) -> None:
    worker = users["worker"]
    sha = await worker.script_load("return redis.call('HGETALL', KEYS[1])")
    await _assert_denied(worker, "EVALSHA", sha, 1, K.task("t1"))


async def test_worker_user_can_do_its_own_work(users: dict[str, Any]) -> None:
    worker = users["worker"]
    await worker.xgroup_create(K.queue("w1"), "workers", id="0", mkstream=True)
    assert await worker.xreadgroup("workers", "w1", {K.queue("w1"): ">"}) == []
    assert await worker.set(f"{K.prefix}seen:w1/t9:1", "1", nx=True, px=1000)
    assert await worker.xadd(K.results, {"r": "{}"})  # append-only
    assert await worker.xadd(K.worker_dead("w1"), {"w": "w1"})  # its own letters only
    assert await worker.set(K.blob("ab"), b"x", px=1000)


async def test_worker_cannot_read_task_data_with_hmget(users: dict[str, Any]) -> None:
    """The fencing copy its scripts check lives in ``f:{task}``: no access to ``t:*`` is
    left to a worker, whatever the command or field."""
    worker = users["worker"]
    for command in (("HMGET", K.task("t1"), "data"), ("HMGET", K.task("t1"), "attempt"),
                    ("HGET", K.task("t1"), "version"), ("HLEN", K.task("t1")),
                    ("EXISTS", K.task("t1")), ("DUMP", K.task("t1")),
                    ("GET", K.task("t1"))):  # fmt: skip
        await _assert_denied(worker, *command)
    # The fencing copy: read-only, nothing of the record in it.
    assert await worker.hmget(K.fence("t1"), ["attempt", "worker", "data"]) == [b"1", b"w2", None]
    await _assert_denied(worker, "HSET", K.fence("t1"), "worker", "w1")


@pytest.mark.xfail(
    strict=True,
    reason="known gap (docs/security.md): the ZADD is allowed; the pool ignores the score "
    "(test_a_forged_heartbeat_score_does_not_keep_a_dead_worker_alive)",
)
async def test_gap_worker_rewrites_another_heartbeat_score(users: dict[str, Any]) -> None:
    await _assert_denied(users["worker"], "ZADD", K.heartbeats, "5", "w2")


@pytest.mark.parametrize("role", ["api", "orchestrator"])
@pytest.mark.parametrize(
    "command",
    [("CONFIG", "GET", "*"), ("FLUSHALL",), ("FLUSHDB",), ("KEYS", "*"), ("EVAL", "return 1", "0"),
     ("GET", "wp:{other}:t:t1"), ("ACL", "SETUSER", "evil", "on"), ("ACL", "LIST"), ("SHUTDOWN",)],
    ids=lambda c: c[0],
)  # fmt: skip
async def test_server_commands_are_denied(users: dict[str, Any], role: str, command: tuple) -> None:
    await _assert_denied(users[role], *command)


async def test_api_user_cannot_take_the_lease(users: dict[str, Any]) -> None:
    await _assert_denied(users["api"], "SET", K.lease("orchestrator"), "api")
    await _assert_denied(users["api"], "SET", f"{K.prefix}seen:w1/t1:1", "1")
    assert await users["api"].hget(K.task("t1"), "version") == b"2"  # it reads records
    assert await users["api"].hget(K.fence("t1"), "attempt") == b"1"


def test_the_unprotected_redis_warning() -> None:
    assert unprotected_warning("redis://10.0.0.5:6379/0")
    assert unprotected_warning("redis://default@redis.example:6379/0")
    assert unprotected_warning("redis://127.0.0.1:6379/0") is None
    assert unprotected_warning("redis://localhost:6379/0") is None
    assert unprotected_warning("redis://:pw@10.0.0.5:6379/0") is None
    assert unprotected_warning("redis://wp-worker-1:pw@10.0.0.5:6379/0") is None
    assert "pw" not in (unprotected_warning("redis://10.0.0.5:6379/0") or "")


def test_docs_show_what_the_generator_prints() -> None:
    from pathlib import Path

    from worldpool.cli.security import setuser_line

    docs = (Path(__file__).parents[2] / "docs" / "redis.md").read_text()
    for role, user, password, worker in [
        ("orchestrator", "orchestrator", "ORCH-PASSWORD", None),
        ("api", "api", "API-PASSWORD", None),
        ("worker", "worker-gpu-1", "GPU1-PASSWORD", "gpu-1"),
    ]:
        line = setuser_line(user, password, acl_rules(role, "prod", worker))
        assert line in docs, f"docs/redis.md is out of date for {role}: run `worldpool acl`"


async def test_a_blob_a_worker_overwrites_is_refused_on_read(
    users: dict[str, Any], redis_server_session: RedisServer
) -> None:
    """Workers must write artifacts, so a worker can overwrite one; every reader re-hashes
    it, so the change is refused (a step fails), never passed on as the real bytes."""
    from worldpool.artifacts.store import ArtifactStore
    from worldpool.backends.redis import RedisBackend
    from worldpool.config import Settings
    from worldpool.errors import ArtifactError

    async with RedisBackend.from_url(redis_server_session.url, Settings(namespace=NS)) as be:
        store = ArtifactStore(be, be.settings)
        ref = await store.put("out.txt", b"the real output")
        await users["worker"].set(K.blob(ref.digest), b"a forged output", px=60_000)
        with pytest.raises(ArtifactError, match="corrupt"):
            await store.get(ref)
