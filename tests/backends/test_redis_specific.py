"""What only the Redis backend has: key layout, Lua atomicity, URLs (TLS, ACL), reconnects,
server time. The shared semantics are in the contract suite (``test_contract_*``)."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from tests.backends.builders import dispatched, profile, result, send, task, worker_of
from tests.redis_server import RedisServer, redis_server, redis_server_session, start_redis
from worldpool.backends.redis import Keys, RedisBackend
from worldpool.backends.redis.connection import connect, redact
from worldpool.config import Settings
from worldpool.errors import BackendError, ConfigError
from worldpool.models import Event, EventKind, WorkerState

__all__ = ["redis_server", "redis_server_session"]  # fixtures used below


def settings() -> Settings:
    return Settings(namespace=f"t-{uuid.uuid4().hex[:12]}")


@pytest.fixture
async def backend(redis_server_session: RedisServer) -> AsyncIterator[RedisBackend]:
    backend = RedisBackend.from_url(redis_server_session.url, settings())
    yield backend
    await backend.aclose()


# --------------------------------------------------------------------------- key layout


async def test_every_key_lives_under_the_namespace_prefix(backend: RedisBackend) -> None:
    # Given a worker with a dispatched task, a pending task, an event, a blob and a lease
    await backend.register(profile("w1"))
    await dispatched(backend, "t1", "w1", attempt=1)
    await backend.put_task(task("t2", workflow_id="wf1"))
    await backend.add_pending("t2", priority=5)
    await backend.append_event(Event(kind=EventKind.TASK_SUBMITTED, task_id="t2"))
    await backend.put_blob("sha256:" + "a" * 64, b"x", ttl_s=60)
    await backend.acquire_lease("sweep", "orch-1", 5)
    assert await backend.complete(result("t1", "w1", 1)) is True

    # Then every key has the deployment's hash-tagged prefix and the documented type
    ns = backend.settings.namespace
    prefix = f"wp:{{{ns}}}:"
    assert backend.keys == Keys(prefix)
    keys = {k.decode(): (await backend.client.type(k)).decode()
            for k in await backend.client.keys(prefix + "*")}  # fmt: skip
    assert keys == {
        prefix + "workers": "set",
        prefix + "w:w1": "hash",
        prefix + "heartbeats": "zset",
        prefix + "pool:changed": "zset",
        prefix + "q:w1": "stream",
        prefix + "results": "stream",
        prefix + "t:t1": "hash",
        prefix + "t:t2": "hash",
        prefix + "f:t1": "hash",
        prefix + "f:t2": "hash",
        prefix + "tasks": "zset",
        prefix + "active": "set",
        prefix + "wft:wf1": "zset",
        prefix + "order": "string",
        prefix + "pending": "zset",
        prefix + "events": "stream",
        prefix + "blob:sha256:" + "a" * 64: "string",
        prefix + "lease:sweep": "string",
        prefix + "queued": "stream",  # t1's create queued it (``dispatched``)
    }  # slots:w1 is gone: the terminal result freed the only slot
    # The fencing copy lives apart from the record (a worker's user reads only it).
    fencing = await backend.client.hmget(prefix + "f:t1", ["attempt", "worker", "terminal"])
    assert fencing == [b"1", b"w1", b"0"]
    assert sorted(await backend.client.hkeys(prefix + "t:t1")) == [b"data", b"version"]
    assert await backend.client.hmget(prefix + "f:t2", ["attempt", "terminal"]) == [b"0", b"0"]
    assert 0 < await backend.client.pttl(prefix + "blob:sha256:" + "a" * 64) <= 60_000


async def test_acked_deliveries_leave_the_worker_stream(backend: RedisBackend) -> None:
    await backend.register(profile("w1", slots=2))
    await dispatched(backend, "t1", "w1")
    await dispatched(backend, "t2", "w1")
    [first, _] = await backend.receive("w1", max_count=2)

    await backend.ack("w1", first.id)

    # The stream is exactly "sent and not acknowledged", which is what reclaim returns.
    assert await backend.client.xlen(backend.keys.queue("w1")) == 1
    assert [d.data for d in await backend.reclaim("w1")] == [b"t2#1"]
    assert await backend.client.xlen(backend.keys.queue("w1")) == 0


# --------------------------------------------------------------------------- atomicity


async def test_fifty_concurrent_dispatches_take_exactly_three_slots(
    redis_server_session: RedisServer,
) -> None:
    # Given a 3-slot worker and five clients (five connection pools, like five replicas)
    config = settings()
    clients = [RedisBackend.from_url(redis_server_session.url, config) for _ in range(5)]
    try:
        await clients[0].register(profile("w1", slots=3))

        # When 50 different tasks race for its slots
        outcomes = await asyncio.gather(
            *(send(clients[i % 5], "w1", f"t{i}", b"env") for i in range(50))
        )

        # Then exactly three won, the rest were refused, and nothing half-happened
        assert sum(o.sent for o in outcomes) == 3
        assert [o.reason for o in outcomes if not o.sent] == ["all 3 slots are taken"] * 47
        r = clients[0].client
        assert await r.scard(clients[0].keys.slots("w1")) == 3
        assert await r.xlen(clients[0].keys.queue("w1")) == 3
    finally:
        for client in clients:
            await client.aclose()


async def test_concurrent_compare_and_set_has_one_winner(backend: RedisBackend) -> None:
    record = task("t1")
    assert await backend.put_task(record)
    copies = [record.model_copy(deep=True) for _ in range(20)]
    wins = await asyncio.gather(*(backend.put_task(c, expect_version=1) for c in copies))
    assert wins.count(True) == 1
    stored = await backend.get_task("t1")
    assert stored is not None and stored.version == 2


# --------------------------------------------------------------------------- server time


async def test_heartbeat_times_come_from_the_redis_server(
    backend: RedisBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Given a local clock that is a day behind
    monkeypatch.setattr(time, "time", lambda: 1_700_000_000.0 - 86_400)
    await backend.register(profile("w1"))

    seconds, micros = await backend.client.time()
    reply = await backend.heartbeat(WorkerState(worker_id="w1"))
    after = await backend.now()

    # Then the heartbeat is stamped with Redis TIME, in the worker hash and the sorted set
    assert seconds + micros / 1e6 <= reply.server_time <= after
    worker = await worker_of(backend, "w1")
    assert worker is not None and worker.state.last_heartbeat == reply.server_time
    score = await backend.client.zscore(backend.keys.heartbeats, "w1")
    assert score == pytest.approx(reply.server_time, abs=1e-6)


# --------------------------------------------------------------------------- URLs


def test_urls_with_other_schemes_are_refused() -> None:
    with pytest.raises(ConfigError, match="rediss://"):
        connect("http://127.0.0.1:6379/0")
    with pytest.raises(ConfigError, match="WORLDPOOL_REDIS_URL"):
        RedisBackend.from_url(None, Settings())


def test_url_parsing_keeps_user_password_db_and_tls() -> None:
    client = connect("rediss://worker-eu:s3cret@redis.example.com:6380/2?ssl_ca_certs=/ca.pem")
    kwargs = client.connection_pool.connection_kwargs
    assert (kwargs["username"], kwargs["password"], kwargs["db"]) == ("worker-eu", "s3cret", 2)
    assert (kwargs["host"], kwargs["port"], kwargs["ssl_ca_certs"]) == (
        "redis.example.com",
        6380,
        "/ca.pem",
    )
    assert client.connection_pool.connection_class.__name__ == "SSLConnection"
    assert redact("rediss://worker-eu:s3cret@h:6380/2") == "rediss://worker-eu:***@h:6380/2"


async def test_tls_connection_with_a_private_ca() -> None:
    for server in start_redis(tls=True):
        url = f"{server.url}?ssl_ca_certs={server.ca_file}"
        async with RedisBackend.from_url(url, settings()) as backend:
            await backend.register(profile("w1"))
            assert [w.id for w in await backend.list_workers()] == ["w1"]


WORKER_ACL = [
    # docs/redis.md: worker w1 in namespace "ns". Its own keys, read/write:
    "resetkeys", "resetchannels", "-@all", "+ping", "+time", "+get", "+set", "+exists",
    "+hset", "+hget", "+hmget", "+sadd", "+scard", "+srem", "+zadd", "+xadd", "+xreadgroup",
    "+xack", "+xdel", "+xgroup|create", "+zrevrange",
    "~wp:{ns}:w:w1", "~wp:{ns}:q:w1", "~wp:{ns}:slots:w1", "~wp:{ns}:workers",
    "~wp:{ns}:heartbeats", "~wp:{ns}:pool:changed", "~wp:{ns}:results", "~wp:{ns}:dead:w1", "~wp:{ns}:blob:*",
    # scripts may name any key of the namespace; each command inside is checked again
    "(~wp:{ns}:* +evalsha +eval +script|load)",
    # the fencing copies of task records (f:*, never t:*): HMGET only
    "(%R~wp:{ns}:f:* +hmget)",
]  # fmt: skip


@pytest.fixture
def acl_server() -> Iterator[RedisServer]:
    """A server whose default user is off: an orchestrator user, and worker w1's ACL from
    docs/redis.md."""
    acl = [
        "--user", "orchestrator", "on", ">orch-pw", "~wp:{ns}:*", "&*", "+@all",
        "--user", "worker-w1", "on", ">w1-pw", *WORKER_ACL,
        "--user", "default", "off",
    ]  # fmt: skip
    yield from start_redis(extra_args=acl)


async def test_acl_users_work_and_a_worker_gets_least_privilege(acl_server: RedisServer) -> None:
    config = Settings(namespace="ns")
    base = f"127.0.0.1:{acl_server.port}/0"
    async with (
        RedisBackend.from_url(f"redis://orchestrator:orch-pw@{base}", config) as orch,
        RedisBackend.from_url(f"redis://worker-w1:w1-pw@{base}", config) as worker,
    ):
        # The worker does everything a worker does...
        await worker.register(profile("w1"))
        await dispatched(orch, "t1", "w1", attempt=1)
        [delivery] = await worker.receive("w1", block_s=1)
        reply = await worker.heartbeat(WorkerState(worker_id="w1"), {"t1": 1})
        assert reply.revoked == []
        await worker.put_blob("sha256:" + "b" * 64, b"out", ttl_s=60)
        assert await worker.complete(result("t1", "w1", 1)) is True
        await worker.ack("w1", delivery.id)
        await worker.dead_letter("w1", "bad_signature", "test", b"{}")
        assert [m.result.task_id for m in await orch.receive_results("orch")] == ["t1"]

        # ...but cannot write task records or touch another worker's queue
        with pytest.raises(BackendError, match="can't access"):
            await worker.put_task(task("t2"))
        with pytest.raises(BackendError, match="permission"):
            await worker.receive("w2")

    async with RedisBackend.from_url(f"redis://worker-w1:wrong@{base}", config) as bad:
        with pytest.raises(BackendError, match="username-password"):
            await bad.now()


# --------------------------------------------------------------------------- reconnect


async def test_backend_carries_on_after_redis_is_killed_and_restarted(
    redis_server: RedisServer,
) -> None:
    async with RedisBackend.from_url(redis_server.url, settings()) as backend:
        await backend.register(profile("w1"))
        # A worker is blocked on its stream when Redis dies (no persistence: all is lost).
        receiving = asyncio.create_task(backend.receive("w1", block_s=20))
        await asyncio.sleep(0.1)
        await asyncio.to_thread(redis_server.restart)

        # The same backend object re-registers and dispatches; the blocked read gets it.
        await backend.register(profile("w1"))
        await dispatched(backend, "t1", "w1")
        deliveries = await asyncio.wait_for(receiving, 20)
        assert [d.data for d in deliveries] == [b"t1#1"]
        assert await backend.complete(result("t1", "w1", 1)) is True
        assert [m.result.task_id for m in await backend.receive_results("orch")] == ["t1"]


async def test_a_worker_writes_dead_letters_only_into_its_own_stream(
    redis_server_session: RedisServer,
) -> None:
    config = settings()
    async with (
        RedisBackend.from_url(redis_server_session.url, config) as orch,
        RedisBackend.from_url(redis_server_session.url, config) as worker,
    ):
        k = orch.keys
        await worker.register(profile("w1"))
        await worker.register(profile("w2"))
        # Given letters the worker's process wrote (it registered w1) and the orchestrator's
        await worker.dead_letter("w1", "bad_signature", "refused", b"env")
        await orch.dead_letter("w2", "failed", "task t9 failed", b"{}")
        await orch.dead_letter("", "bad_report", "no r field", b"")
        # and what a hostile w1 appends by hand to its stream: a letter claiming w2, junk
        await orch.client.xadd(k.worker_dead("w1"), {"w": "w2", "c": "x", "r": "forged",
                                                     "d": "", "at": "1"})  # fmt: skip
        await orch.client.xadd(k.worker_dead("w1"), {"junk": "1"})

        # Then each went to its stream, and the list merges them, newest first
        assert await orch.client.xlen(k.worker_dead("w1")) == 3
        assert await orch.client.xlen(k.dead) == 2
        letters = await orch.list_dead_letters()
        assert [(d.worker_id, d.code) for d in letters] == [
            ("", "bad_report"),
            ("w2", "failed"),
            ("w1", "bad_signature"),
            ("w1", "x"),
        ]  # fmt: skip  (the forged one is w1's: the stream names the worker, not the field)
        assert [d.code for d in await orch.list_dead_letters(2)] == ["bad_report", "failed"]


async def test_a_heartbeat_score_set_for_another_worker_changes_nothing(
    backend: RedisBackend,
) -> None:
    # Given two workers, w2 silent since it registered
    await backend.register(profile("w1"))
    w2 = await backend.register(profile("w2"))
    cursor = (await backend.pool_changes(None)).cursor
    k = backend.keys
    # When w1's user (it may ZADD any member of `heartbeats`) makes w2 look fresh, and
    # puts a score far in the future to freeze every reader's cursor
    now = await backend.now()
    await backend.client.zadd(k.heartbeats, {"w2": now, "ghost": 1e12})
    await backend.heartbeat(WorkerState(worker_id="w1"))
    changes = await backend.pool_changes(cursor)

    # Then w2 is heard at the time of its own hash (its registration), not the forged one,
    # the made-up id is not heard at all, and the cursor stays at real time
    heard = dict(changes.heartbeats)
    assert heard["w2"] == w2.last_heartbeat < now
    assert "ghost" not in heard and heard["w1"] >= now
    assert changes.cursor.heard <= await backend.now()
    # and w1's next real heartbeat is still heard
    beat = await backend.heartbeat(WorkerState(worker_id="w1"))
    later = await backend.pool_changes(changes.cursor)
    assert ("w1", beat.server_time) in later.heartbeats
