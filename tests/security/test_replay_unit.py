"""Unit checks of the replay and expiry rules (the e2e attacks are in test_attacks_e2e.py)."""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import pytest

from worldpool.backends.memory import MemoryBackend
from worldpool.envelope import decode_envelope, encode_envelope
from worldpool.errors import EnvelopeError
from worldpool.identity import (
    registration_proof,
    registration_valid,
    result_signed_by,
    sign_result,
    worker_key,
)
from worldpool.models import Envelope, ResultStatus, TaskResult
from worldpool.worker.execution import EnvelopeExpiredError, TaskExecutor


def test_a_sync_handler_queued_past_its_expiry_never_runs() -> None:
    ran: list[str] = []
    executor = TaskExecutor.__new__(TaskExecutor)  # only the thread entry is exercised
    executor.busy_threads = 0
    import threading

    executor._busy_lock = threading.Lock()  # type: ignore[attr-defined]

    executor.children = None  # type: ignore[attr-defined]

    class Ctx:
        cancelled = threading.Event()

    def run(expires_at: float) -> Any:
        envelope = Envelope(task_id="t", attempt=1, handler="h", expires_at=expires_at)
        return SimpleNamespace(envelope=envelope)

    with pytest.raises(EnvelopeExpiredError):
        executor._in_thread(lambda ctx: ran.append("ran"), Ctx(), run(time.time() - 0.001))  # type: ignore[arg-type]
    assert ran == []
    assert executor._in_thread(lambda ctx: "ok", Ctx(), run(time.time() + 60)) == "ok"  # type: ignore[arg-type]


def test_envelopes_are_bound_to_their_worker_and_expire() -> None:
    key = worker_key("s", "w1")
    env = Envelope(task_id="t", attempt=1, handler="h", worker_id="w1",
                   expires_at=time.time() + 60, nonce="n")  # fmt: skip
    data = encode_envelope(env, key)
    assert decode_envelope(data, secret=key, max_bytes=10_000, worker_id="w1").task_id == "t"
    with pytest.raises(EnvelopeError) as other:
        decode_envelope(data, secret=worker_key("s", "w2"), max_bytes=10_000, worker_id="w2")
    assert other.value.code == "bad_signature"
    with pytest.raises(EnvelopeError) as wrong:  # even a worker that knows the key
        decode_envelope(data, secret=key, max_bytes=10_000, worker_id="w2")
    assert wrong.value.code == "wrong_worker"
    late = encode_envelope(env.model_copy(update={"expires_at": time.time() - 1}), key)
    with pytest.raises(EnvelopeError) as expired:
        decode_envelope(late, secret=key, max_bytes=10_000, worker_id="w1")
    assert expired.value.code == "expired"


def test_reports_and_registrations_verify_only_with_the_named_workers_key() -> None:
    report = TaskResult(task_id="t", attempt=1, worker_id="w1", status=ResultStatus.SUCCEEDED)
    signed = report.model_copy(update={"signature": sign_result(report, worker_key("s", "w1"))})
    assert result_signed_by(signed, "s")
    assert not result_signed_by(signed.model_copy(update={"value": "changed"}), "s")
    assert not result_signed_by(signed.model_copy(update={"worker_id": "w2"}), "s")
    assert not result_signed_by(report, "s")
    assert registration_valid("w1", registration_proof("w1", worker_key("s", "w1")), "s")
    assert not registration_valid("w1", registration_proof("w1", worker_key("x", "w1")), "s")
    assert not registration_valid("w1", None, "s")


async def test_start_claims_are_first_come_only() -> None:
    backend = MemoryBackend()
    assert await backend.claim_starts("w1", [("t", 1, 60), ("t", 2, 60)]) == [True, True]
    assert await backend.claim_starts("w1", [("t", 1, 60), ("u", 1, 60)]) == [False, True]
    assert await backend.claim_starts("w2", [("t", 1, 60)]) == [True]  # its own namespace


async def test_start_claims_survive_a_worker_restart_on_redis(redis_server_session) -> None:  # type: ignore[no-untyped-def]
    from worldpool.backends.redis import RedisBackend
    from worldpool.config import Settings

    settings = Settings(namespace="claims")
    async with RedisBackend.from_url(redis_server_session.url, settings) as first:
        assert await first.claim_starts("w1", [("t", 1, 30)]) == [True]
    async with RedisBackend.from_url(redis_server_session.url, settings) as restarted:
        assert await restarted.claim_starts("w1", [("t", 1, 30), ("t", 2, 30)]) == [False, True]


async def test_poison_records_and_events_never_fail_their_neighbours(redis_server_session) -> None:  # type: ignore[no-untyped-def]
    from worldpool.backends.redis import RedisBackend
    from worldpool.config import Settings
    from worldpool.models import Event, EventKind, TaskRecord, TaskSpec

    settings = Settings(namespace="poison")
    async with RedisBackend.from_url(redis_server_session.url, settings) as backend:
        good = TaskRecord(spec=TaskSpec(id="good", handler="h"))
        await backend.put_task(good)
        await backend._r.hset(backend.keys.task("bad"), mapping={"data": b"{oops", "version": 1})
        assert [r and r.id for r in await backend.get_tasks(["good", "bad"])] == ["good", None]
        await backend.append_events([Event(kind=EventKind.TASK_SUBMITTED, task_id="a")])
        await backend._r.xadd(backend.keys.events, {"e": b"not an event"})
        await backend._r.xadd(backend.keys.events, {"x": b"no field"})
        await backend.append_events([Event(kind=EventKind.TASK_SUBMITTED, task_id="b")])
        assert [e.task_id for e in await backend.read_events(None, 100)] == ["a", "b"]
        page = await backend.read_events_of(frozenset({EventKind.TASK_SUBMITTED}), None, 100)
        assert [e.task_id for e in page.events] == ["a", "b"]
        # results: a malformed report between two real ones
        await backend._r.xadd(backend.keys.results, {"r": b"{bad"})
        await backend._r.xadd(backend.keys.results, {"zz": b"no field"})
        assert await backend.receive_results("o1", 10) == []
        letters = {d.code for d in await backend.list_dead_letters()}
        assert letters == {"bad_report"}
        assert await backend._r.xlen(backend.keys.results) == 0  # acknowledged and deleted
