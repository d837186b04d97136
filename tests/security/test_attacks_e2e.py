"""The attack suite with real processes: ``worldpool serve`` and ``worldpool worker`` run
as the ACL users ``worldpool acl`` generates, with ``WORLDPOOL_SECRET`` on the
orchestrator and each worker holding only its own key. A hostile worker (its own Redis
user and key) forges, replays and poisons; none of it gets through, and the normal flow
still runs end to end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis

from tests.e2e.handlers import executions
from tests.e2e.procs import Cluster, Proc, wait_event, wait_task, wait_workers
from worldpool.backends.base import Backend
from worldpool.backends.redis.keys import Keys
from worldpool.cli.security import acl_rules, setuser_args
from worldpool.config import Settings
from worldpool.envelope import encode_envelope
from worldpool.identity import sign_result, worker_key
from worldpool.models import Envelope, EventKind, ResultStatus, TaskResult, TaskSpec, TaskStatus
from worldpool.orchestrator.core import Orchestrator

SECRET = "attack-suite-deployment-secret"
COUNTING = "tests.e2e.handlers:COUNTING"


async def _make_user(cluster: Cluster, name: str, rules: list[str]) -> str:
    admin = aioredis.Redis.from_url(cluster.redis_url)
    await admin.execute_command(*setuser_args(name, "pw-" + name, rules))
    await admin.aclose()
    return cluster.redis_url.replace("redis://", f"redis://{name}:pw-{name}@")


async def _start(cluster: Cluster, *workers: str) -> dict[str, Any]:
    ns = cluster.namespace
    cluster.env["WP_E2E_COUNT_FILE"] = str(cluster.directory / "count.log")
    orch_url = await _make_user(cluster, "orch", acl_rules("orchestrator", ns))
    cluster.serve(env={"WORLDPOOL_REDIS_URL": orch_url, "WORLDPOOL_SECRET": SECRET})
    urls = {}
    procs = []
    for worker_id in workers:
        urls[worker_id] = await _make_user(
            cluster, "wk-" + worker_id, acl_rules("worker", ns, worker_id)
        )
        procs.append(_worker(cluster, worker_id, urls[worker_id], worker_key(SECRET, worker_id)))
    api_url = await _make_user(cluster, "api", acl_rules("api", ns))
    return {"urls": urls, "procs": procs, "api_url": api_url}


def _worker(cluster: Cluster, worker_id: str, url: str, key: str) -> Proc:
    return cluster.worker(
        worker_id, "--region", "eu-west-1", "--handlers", COUNTING, "--no-builtin",
        "--max-concurrency", "2",
        env={"WORLDPOOL_REDIS_URL": url, "WORLDPOOL_WORKER_KEY": key},
    )  # fmt: skip


def _settings(cluster: Cluster) -> Settings:
    return Settings(namespace=cluster.namespace, heartbeat_s=0.5, secret=SECRET)


async def _submit(client: Backend, cluster: Cluster, spec: TaskSpec) -> None:
    await Orchestrator(client, _settings(cluster)).submit(spec)


async def test_forged_reports_are_rejected_and_the_real_one_applies(
    cluster: Cluster, client: Backend
) -> None:
    """Finding 1: a worker's user adds a SUCCEEDED report for a task running elsewhere."""
    started = await _start(cluster, "w1", "w2")
    await wait_workers(client, started["procs"])
    spec = TaskSpec(id="victim", handler="count", payload={"sleep_s": 2.0})
    await _submit(client, cluster, spec)
    record = await wait_task(client, "victim", 20, until=lambda r: r.status is TaskStatus.RUNNING)
    holder = record.worker_id
    attacker = "w1" if holder == "w2" else "w2"
    hostile = aioredis.Redis.from_url(started["urls"][attacker])
    keys = Keys.for_namespace(cluster.namespace)
    forged = TaskResult(task_id="victim", attempt=record.attempt, worker_id=holder,
                        status=ResultStatus.SUCCEEDED, value="forged")  # fmt: skip
    # Unsigned, claiming the holder; then signed with the attacker's own (real) key.
    await hostile.xadd(keys.results, {"r": forged.model_dump_json()})
    as_self = forged.model_copy(update={"worker_id": attacker})
    as_self = as_self.model_copy(
        update={"signature": sign_result(as_self, worker_key(SECRET, attacker))}
    )
    await hostile.xadd(keys.results, {"r": as_self.model_dump_json()})
    await hostile.xadd(keys.results, {"r": b"{not json"})  # poison in the same batch
    await hostile.aclose()
    final = await wait_task(client, "victim", 30)
    assert final.status is TaskStatus.SUCCEEDED, cluster.logs()
    assert final.result == {"task": "victim", "worker": holder}
    letters = {d.code for d in await client.list_dead_letters()}
    assert {"bad_report_signature", "not_attempt_holder", "bad_report"} <= letters
    await wait_event(client, EventKind.SECURITY_REJECTED, task_id="victim")
    # The stream did not stall: a later task completes too.
    await _submit(client, cluster, TaskSpec(id="after", handler="count"))
    assert (await wait_task(client, "after", 30)).status is TaskStatus.SUCCEEDED


async def test_replayed_expired_misrouted_and_poison_envelopes_never_start(
    cluster: Cluster, client: Backend
) -> None:
    """Findings 3 and 4: replay on the same and another worker, an expired envelope, an
    entry without an envelope; the neighbours still run, each attempt runs once."""
    started = await _start(cluster, "w1")
    await wait_workers(client, started["procs"])
    await _submit(client, cluster, TaskSpec(id="once", handler="count"))
    done = await wait_task(client, "once", 30)
    assert done.status is TaskStatus.SUCCEEDED, cluster.logs()
    keys = Keys.for_namespace(cluster.namespace)
    admin = aioredis.Redis.from_url(cluster.redis_url)
    key = worker_key(SECRET, "w1")

    def env(task_id: str, **extra: Any) -> bytes:
        fields = {"task_id": task_id, "attempt": 1, "handler": "count", "worker_id": "w1",
                  "expires_at": time.time() + 60, "nonce": "n-" + task_id, **extra}  # fmt: skip
        return encode_envelope(Envelope(**fields), key)

    await admin.xadd(keys.queue("w1"), {"d": env("once"), "t": "once"})  # a replay
    await admin.xadd(keys.queue("w1"), {"t": "poison"})  # no envelope at all
    await admin.xadd(keys.queue("w1"), {"d": env("late", expires_at=time.time() - 1)})
    other = encode_envelope(
        Envelope(task_id="misrouted", attempt=1, handler="count", worker_id="w2",
                 expires_at=time.time() + 60, nonce="x"), worker_key(SECRET, "w2"),
    )  # fmt: skip
    await admin.xadd(keys.queue("w1"), {"d": other})
    await admin.aclose()
    await _submit(client, cluster, TaskSpec(id="neighbour", handler="count"))
    assert (await wait_task(client, "neighbour", 30)).status is TaskStatus.SUCCEEDED
    codes: set[str] = set()
    for _ in range(100):
        codes = {d.code for d in await client.list_dead_letters()}
        if {"replayed", "bad_entry", "expired", "bad_signature"} <= codes:
            break
        await asyncio.sleep(0.1)
    assert {"replayed", "bad_entry", "expired", "bad_signature"} <= codes, cluster.logs()
    # The worker wrote those into its own stream (its user cannot write `dead`), and the
    # listing names it by that stream.
    admin = aioredis.Redis.from_url(cluster.redis_url)
    own = {f[b"c"].decode() for _, f in await admin.xrange(keys.worker_dead("w1"))}
    shared = {f[b"c"].decode() for _, f in await admin.xrange(keys.dead)}
    await admin.aclose()
    assert {"replayed", "bad_entry", "expired", "bad_signature"} <= own
    assert not {"replayed", "bad_entry", "expired", "bad_signature"} & shared
    runs = [e for e in executions(cluster.directory / "count.log") if e[3] == "start"]
    assert [r[0] for r in runs].count("once") == 1
    assert not {"late", "misrouted"} & {r[0] for r in runs}


async def test_a_worker_with_a_wrong_credential_is_refused_and_exits(
    cluster: Cluster, client: Backend
) -> None:
    """Finding 9 / item 8: refused at registration, never routed to, exits non-zero."""
    started = await _start(cluster)
    url = await _make_user(cluster, "wk-bad", acl_rules("worker", cluster.namespace, "bad"))
    proc = _worker(cluster, "bad", url, worker_key("not-the-secret", "bad"))
    for _ in range(300):  # it exits within a few heartbeats; 30 s at most
        if not proc.alive:
            break
        await asyncio.sleep(0.1)
    assert not proc.alive, proc.tail()
    assert proc.popen.returncode == 5, proc.tail()
    assert "refused" in proc.log() and "worldpool credential bad" in proc.log()
    event = await wait_event(client, EventKind.SECURITY_REJECTED, worker_id="bad")
    assert event.data["code"] == "bad_credential"
    assert started["procs"] == []
    spec = TaskSpec(id="nobody", handler="count")
    await _submit(client, cluster, spec)
    await asyncio.sleep(1.0)
    record = await client.get_task("nobody")
    assert record is not None and record.worker_id is None  # never routed to "bad"


async def test_the_api_user_submits_and_reads(cluster: Cluster) -> None:
    """The API-only user can do an API's work (submit, read records and events)."""
    started = await _start(cluster, "w1")
    from worldpool.backends import backend_from_url

    async with backend_from_url(started["api_url"], _settings(cluster)) as api:
        await wait_workers(api, started["procs"])
        await _submit(api, cluster, TaskSpec(id="via-api", handler="count"))
        record = await wait_task(api, "via-api", 30)
        assert record.status is TaskStatus.SUCCEEDED, cluster.logs()
        assert await api.read_events(None, 10)
    assert orjson.loads(orjson.dumps(record.result))["worker"] == "w1"


async def test_a_forged_heartbeat_score_does_not_keep_a_dead_worker_alive(
    cluster: Cluster, client: Backend
) -> None:
    """A worker's user may ZADD any member of `heartbeats` (an ACL cannot limit members):
    w1 keeps writing fresh (and future) scores for a dead w2; the pool hears w2 at the
    time of its own hash, so w2 is still declared offline and its task re-routed."""
    started = await _start(cluster, "w1", "w2")
    await wait_workers(client, started["procs"])
    payload = {"sleep_s": 30, "first_attempt_only": True}
    await _submit(client, cluster, TaskSpec(id="held", handler="count", payload=payload))
    record = await wait_task(client, "held", 20, until=lambda r: r.status is TaskStatus.RUNNING)
    dead = record.worker_id
    assert dead is not None
    attacker = "w1" if dead == "w2" else "w2"
    victim = next(p for p in started["procs"] if p.name == dead)
    victim.kill()
    hostile = aioredis.Redis.from_url(started["urls"][attacker])
    keys = Keys.for_namespace(cluster.namespace)

    async def forge() -> None:
        while True:
            seconds, micros = await hostile.time()
            now = seconds + micros / 1_000_000
            await hostile.zadd(keys.heartbeats, {dead: now, "ghost": now + 1e6})
            await asyncio.sleep(0.1)

    forging = asyncio.create_task(forge())
    try:
        await wait_event(client, EventKind.WORKER_OFFLINE, worker_id=dead)
        final = await wait_task(client, "held", 30)
    finally:
        forging.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await forging
        await hostile.aclose()
    assert final.status is TaskStatus.SUCCEEDED and final.worker_id == attacker, cluster.logs()
