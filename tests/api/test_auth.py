"""Bearer tokens: two roles; on by default off loopback; checked before the body is read."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api.support import ADMIN, READ, build_app
from worldpool.api import ApiTokens
from worldpool.errors import ConfigError
from worldpool.testing import EmbeddedPool


@pytest.fixture
async def anon(pool: EmbeddedPool) -> AsyncIterator[httpx.AsyncClient]:
    app = build_app(pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as c:
        yield c


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/api/v1/workflows"),
        ("GET", "/api/v1/workers"),
        ("GET", "/api/v1/tasks/x"),
        ("GET", "/api/v1/events"),
        ("GET", "/metrics"),
        ("POST", "/api/v1/tasks"),
        ("POST", "/api/v1/workflows/x/cancel"),
    ],
)
async def test_missing_or_wrong_token_is_401(
    anon: httpx.AsyncClient, method: str, path: str
) -> None:
    for headers in ({}, bearer("not-a-token"), {"Authorization": f"Basic {ADMIN}"}):
        response = await anon.request(method, path, headers=headers)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")
        assert response.json()["error"]["code"] == "unauthorized"


async def test_read_token_reads_but_cannot_change(
    anon: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    assert (await anon.get("/api/v1/workers", headers=bearer(READ))).status_code == 200
    explain = await anon.post("/api/v1/explain", json={"handler": "echo"}, headers=bearer(READ))
    assert explain.status_code == 200  # a dry run changes nothing: read role is enough
    for path, body in [
        ("/api/v1/tasks", {"handler": "echo"}),
        ("/api/v1/workflows", {"steps": []}),
        ("/api/v1/tasks/x/cancel", None),
    ]:
        response = await anon.post(path, json=body, headers=bearer(READ))
        assert response.status_code == 403
        assert response.json()["error"]["code"] == "forbidden"
    assert await pool.backend.list_tasks() == []


async def test_auth_comes_before_body_errors(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/api/v1/tasks", content=b"{nope")
    assert response.status_code == 401  # not 400: strangers learn nothing from the body


async def test_public_routes_need_no_token(anon: httpx.AsyncClient) -> None:
    for path in ["/healthz", "/", "/openapi.json"]:
        assert (await anon.get(path)).status_code == 200


async def test_admin_token_does_everything(anon: httpx.AsyncClient) -> None:
    response = await anon.post("/api/v1/tasks", json={"handler": "echo"}, headers=bearer(ADMIN))
    assert response.status_code == 201


def test_auth_is_required_off_loopback(pool: EmbeddedPool) -> None:
    with pytest.raises(ConfigError, match="WORLDPOOL_API_TOKEN_ADMIN"):
        build_app(pool, tokens=ApiTokens(), bind_host="0.0.0.0")
    build_app(pool, tokens=ApiTokens(insecure_open=True), bind_host="0.0.0.0")  # on purpose
    build_app(pool, tokens=ApiTokens(admin=ADMIN), bind_host="0.0.0.0")


async def test_loopback_without_tokens_is_open(pool: EmbeddedPool) -> None:
    app = build_app(pool, tokens=ApiTokens(), bind_host="127.0.0.1")
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as c:
        assert (await c.post("/api/v1/tasks", json={"handler": "echo"})).status_code == 201


def test_tokens_come_from_the_environment(pool: EmbeddedPool) -> None:
    from worldpool.config import Settings

    settings = Settings.from_env(
        {"WORLDPOOL_API_TOKEN_ADMIN": ADMIN, "WORLDPOOL_API_TOKEN_READ": READ}
    )
    tokens = ApiTokens.from_settings(settings)
    assert tokens.role_of(ADMIN) is not None and tokens.role_of(READ) is not None
    assert tokens.role_of("x" * 20) is None
    with pytest.raises(ConfigError):
        Settings.from_env({"WORLDPOOL_API_TOKEN_ADMIN": "short"})
