"""GET /api/v1/dead-letters: what workers refused and what failed for good (admin only)."""

from __future__ import annotations

import base64

import httpx

from tests.api.support import READ, build_app
from worldpool.testing import EmbeddedPool


async def test_dead_letters_newest_first_with_their_bytes(
    client: httpx.AsyncClient, pool: EmbeddedPool
) -> None:
    # Given two refused envelopes, one of them not UTF-8
    before = await pool.backend.now()
    await pool.backend.dead_letter("w1", "malformed_json", "not JSON", b"{not json")
    await pool.backend.dead_letter("w2", "bad_signature", "signature does not match", b"\xff{}")

    # When an admin lists them
    response = await client.get("/api/v1/dead-letters")

    # Then both come back newest first, the bytes exact in base64 and readable as text
    assert response.status_code == 200
    newest, oldest = response.json()
    assert before <= oldest["at"] <= newest["at"] <= await pool.backend.now()
    assert {k: v for k, v in newest.items() if k != "at"} == {
        "worker_id": "w2",
        "code": "bad_signature",
        "reason": "signature does not match",
        "data": "\ufffd{}",
        "data_base64": base64.b64encode(b"\xff{}").decode(),
    }
    assert (oldest["worker_id"], oldest["data"]) == ("w1", "{not json")
    limited = await client.get("/api/v1/dead-letters", params={"limit": 1})
    assert [letter["worker_id"] for letter in limited.json()] == ["w2"]
    assert (await client.get("/api/v1/dead-letters", params={"limit": 0})).status_code == 422


async def test_dead_letters_need_the_admin_token(pool: EmbeddedPool) -> None:
    await pool.backend.dead_letter("w1", "unsigned", "no signature", b"{}")
    app = build_app(pool)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://api.test"
    ) as anon:
        assert (await anon.get("/api/v1/dead-letters")).status_code == 401
        read = await anon.get("/api/v1/dead-letters", headers={"Authorization": f"Bearer {READ}"})
    assert read.status_code == 403
    assert read.json()["error"]["code"] == "forbidden"
