"""The HTTP API refuses malformed input with a 4xx and a message, never a 500 or a dead
stream (docs/security.md, "The HTTP API")."""

from __future__ import annotations

import httpx
import pytest

from tests.api.support import ADMIN, build_app
from worldpool.testing import EmbeddedPool


async def test_a_token_with_non_ascii_bytes_is_401_not_500(pool: EmbeddedPool) -> None:
    # Given an API with tokens, and a stranger's header carrying bytes above 0x7f
    app = build_app(pool)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://api.test") as c:
        for raw in ("Bearer \u00e9t\u00e9-token-0123456789".encode("latin-1"), b"Bearer \xff\xfe"):
            # When it asks for the pool
            response = await c.get("/api/v1/workers", headers=[(b"authorization", raw)])
            # Then it gets the same 401 as any unknown token
            assert response.status_code == 401, response.text
            assert response.json()["error"]["code"] == "unauthorized"


@pytest.mark.parametrize(
    "cursor",
    [
        "99999999999999999999999999",
        "18446744073709551616-0",
        "1-18446744073709551616",
        "1-2-3",
        "1--",
        "18446744073709551615-0",  # a Redis id, which the memory backend cannot read after
    ],
)
async def test_an_out_of_range_sse_cursor_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get("/api/v1/events", headers={"Last-Event-ID": cursor})
    assert response.status_code == 400, response.text
    assert "out of range" in response.json()["error"]["message"]
    response = await client.get("/api/v1/events", params={"after": cursor})
    assert response.status_code == 400


async def test_duplicate_json_keys_are_refused(client: httpx.AsyncClient) -> None:
    # Given a body whose "handler" is given twice: which one would a reader believe?
    body = b'{"handler": "echo", "payload": {"x": 1, "x": 2}, "handler": "boom"}'
    response = await client.post(
        "/api/v1/tasks", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400, response.text
    assert "more than once" in response.json()["error"]["message"]
    # ... a nested duplicate too, and the same body without duplicates is accepted
    nested = b'{"handler": "echo", "payload": {"x": 1, "x": 2}}'
    response = await client.post(
        "/api/v1/tasks", content=nested, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    fine = b'{"handler": "echo", "payload": {"x": 1}}'
    response = await client.post(
        "/api/v1/tasks", content=fine, headers={"content-type": "application/json"}
    )
    assert response.status_code in (200, 201, 202), response.text


async def test_absurdly_deep_json_is_a_4xx(client: httpx.AsyncClient) -> None:
    deep = b"[" * 50_000 + b"]" * 50_000
    response = await client.post(
        "/api/v1/tasks", content=deep, headers={"content-type": "application/json"}
    )
    assert 400 <= response.status_code < 500, response.text


def test_tokens_are_compared_as_bytes() -> None:
    from worldpool.api import ApiTokens

    tokens = ApiTokens(admin=ADMIN)
    assert tokens.role_of(ADMIN) is not None
    assert tokens.role_of("\u00e9" * 20) is None
