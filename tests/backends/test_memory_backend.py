"""Memory-backend specifics: the injectable clock, reconnect, and backend_from_url."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.backends.builders import profile, task, worker_of
from worldpool.backends import MemoryBackend, backend_from_url
from worldpool.config import Settings
from worldpool.errors import ConfigError, ValidationError
from worldpool.models import Event, EventKind, WorkerState


class FakeClock:
    def __init__(self, start: float = 1_000.0) -> None:
        self.t = start

    def __call__(self) -> float:
        return self.t


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def backend(clock: FakeClock) -> MemoryBackend:
    return MemoryBackend(clock=clock)


async def test_timestamps_come_from_the_injected_clock(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    assert await backend.now() == 1_000.0
    state = await backend.register(profile("w1"))
    assert state.last_heartbeat == 1_000.0

    clock.t = 1_042.5
    reply = await backend.heartbeat(WorkerState(worker_id="w1", last_heartbeat=5.0))

    assert reply.server_time == 1_042.5
    worker = await worker_of(backend, "w1")
    assert worker is not None and worker.state.last_heartbeat == 1_042.5


async def test_lease_ttl_follows_the_clock(backend: MemoryBackend, clock: FakeClock) -> None:
    assert await backend.acquire_lease("sweep", "a", ttl_s=10)
    clock.t += 9.9
    assert not await backend.acquire_lease("sweep", "b", ttl_s=10)
    clock.t += 0.1
    assert await backend.acquire_lease("sweep", "b", ttl_s=10)


async def test_blob_ttl_follows_the_clock(backend: MemoryBackend, clock: FakeClock) -> None:
    await backend.put_blob("sha256:" + "0" * 64, b"x", ttl_s=5)
    clock.t += 4.9
    assert await backend.has_blob("sha256:" + "0" * 64)
    clock.t += 0.1
    assert not await backend.has_blob("sha256:" + "0" * 64)


async def test_reconnect_shares_state(backend: MemoryBackend) -> None:
    other = backend.reconnect()
    await backend.register(profile("w1"))
    assert await worker_of(other, "w1") is not None
    assert other.settings is backend.settings


async def test_event_seqs_are_zero_padded(backend: MemoryBackend) -> None:
    first = await backend.append_event(Event(kind=EventKind.TASK_SUBMITTED))
    assert first.seq == "00000000000000000001"


async def test_foreign_event_cursor_is_refused(backend: MemoryBackend) -> None:
    with pytest.raises(ValidationError, match="not a seq of the memory backend"):
        await backend.read_events(after="1700000000000-0")


async def test_event_log_trims_in_batches_but_shows_exactly_the_cap() -> None:
    backend = MemoryBackend(Settings(event_log_max=8))
    for i in range(30):
        await backend.append_event(Event(kind=EventKind.TASK_PROGRESS, message=str(i)))
        kept = await backend.read_events()
        assert [e.message for e in kept] == [str(n) for n in range(max(0, i - 7), i + 1)]


def test_backend_from_url_memory() -> None:
    settings = Settings(event_log_max=7)
    for url in (None, "memory://", "MEMORY://anything"):
        backend = backend_from_url(url, settings)
        assert isinstance(backend, MemoryBackend)
        assert backend.settings is settings


def test_backend_from_url_unknown_scheme() -> None:
    with pytest.raises(ConfigError, match="unknown scheme 'postgres'"):
        backend_from_url("postgres://localhost/db")


async def test_backend_from_url_redis() -> None:
    pytest.importorskip("redis")
    backend = backend_from_url("redis://127.0.0.1:1/0", Settings(namespace="lazy"))
    assert backend.name == "redis"
    await backend.aclose()


def test_backend_from_url_without_redis_py_gives_an_install_hint(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in list(sys.modules):
        if name.split(".")[0] == "redis" or name.startswith("worldpool.backends.redis"):
            monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "redis", None)  # makes `import redis` fail

    with pytest.raises(ConfigError, match=r"pip install 'worldpool\[redis\]'"):
        backend_from_url("rediss://cache.example:6380/0")


async def test_expired_blobs_are_purged_on_later_puts(
    backend: MemoryBackend, clock: FakeClock
) -> None:
    await backend.put_blob("sha256:" + "1" * 64, b"old", ttl_s=1)
    await backend.put_blob("sha256:" + "2" * 64, b"renewed", ttl_s=1)
    await backend.put_blob("sha256:" + "2" * 64, b"renewed", ttl_s=100)
    clock.t += 2

    await backend.put_blob("sha256:" + "3" * 64, b"new", ttl_s=1)

    assert set(backend._s.blobs) == {"sha256:" + "2" * 64, "sha256:" + "3" * 64}


def test_a_backend_survives_two_event_loops() -> None:
    backend = MemoryBackend()
    asyncio.run(backend.read_events(block_s=0.01))

    async def second_loop() -> list[str]:
        reader = asyncio.create_task(backend.read_events(block_s=5.0))
        await asyncio.sleep(0.01)
        await backend.append_event(Event(kind=EventKind.TASK_SUBMITTED, message="hi"))
        return [e.message for e in await reader]

    assert asyncio.run(second_loop()) == ["hi"]


async def test_values_that_do_not_survive_json_are_refused(backend: MemoryBackend) -> None:
    record = task("t1", payload={"handle": object()})

    with pytest.raises(ValidationError, match="does not survive JSON"):
        await backend.put_task(record)

    assert record.version == 0
    assert await backend.get_task("t1") is None


async def test_values_come_back_as_json_would_return_them(backend: MemoryBackend) -> None:
    await backend.put_task(task("t1", payload={"pair": (1, 2)}))
    stored = await backend.get_task("t1")
    assert stored is not None and stored.spec.payload == {"pair": [1, 2]}
