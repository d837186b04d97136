"""The backend contract suite's fixtures: every test runs once per entry of BACKEND_FACTORIES.

To run the suite against another backend, add one entry: a coroutine function that takes
the pytest request (to reach fixtures such as a redis-server) and the test's
:class:`Settings` and returns a *new client*. ``settings.namespace`` is unique per test;
clients opened with the same namespace must share state, like two processes on one Redis,
which is how the suite tests restarts (see ``connect``).

Contract tests never fake time: the Redis backend uses the server clock. Tests that need
time to pass use short real waits (<= 0.3 s) or compare against ``await backend.now()``.
"""

from __future__ import annotations

import uuid
import weakref
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from tests.redis_server import redis_server_session  # noqa: F401 - fixture for _redis
from worldpool.backends import Backend, MemoryBackend
from worldpool.config import Settings

BackendFactory = Callable[[pytest.FixtureRequest, Settings], Awaitable[Backend]]
Connect = Callable[[], Awaitable[Backend]]

# Small so the event-log cap is cheap to test; backends must trim to it exactly.
CONTRACT_EVENT_LOG_MAX = 50
# Short, so claiming a dead replica's results is quick to test (longer than other waits).
CONTRACT_CLAIM_AFTER_S = 1.0

_memory_clients: weakref.WeakValueDictionary[str, MemoryBackend] = weakref.WeakValueDictionary()


async def _memory(request: pytest.FixtureRequest, settings: Settings) -> Backend:
    first = _memory_clients.get(settings.namespace)
    if first is not None:
        return first.reconnect()
    backend = MemoryBackend(settings)
    _memory_clients[settings.namespace] = backend
    return backend


async def _redis(request: pytest.FixtureRequest, settings: Settings) -> Backend:
    """A new client of the session's redis-server (``tests/redis_server.py``)."""
    from worldpool.backends.redis import RedisBackend

    server = request.getfixturevalue("redis_server_session")
    return RedisBackend.from_url(server.url, settings)


BACKEND_FACTORIES: dict[str, BackendFactory] = {"memory": _memory, "redis": _redis}


@pytest.fixture(params=sorted(BACKEND_FACTORIES))
async def connect(request: pytest.FixtureRequest) -> AsyncIterator[Connect]:
    """Opens clients of one fresh namespace on the backend under test; closes them after."""
    factory = BACKEND_FACTORIES[request.param]
    settings = Settings(
        namespace=f"t-{uuid.uuid4().hex[:12]}",
        event_log_max=CONTRACT_EVENT_LOG_MAX,
        results_claim_after_s=CONTRACT_CLAIM_AFTER_S,
    )
    opened: list[Backend] = []

    async def open_client() -> Backend:
        client = await factory(request, settings)
        opened.append(client)
        return client

    yield open_client
    for client in reversed(opened):
        await client.aclose()


@pytest.fixture
async def backend(connect: Connect) -> Backend:
    """A fresh, empty backend (one client)."""
    return await connect()
