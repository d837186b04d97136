"""A pure-ASGI guard that refuses JSON request bodies with a key given twice (400).

Python's JSON parsers keep the last of two equal keys, so ``{"handler": "a", "handler":
"b"}`` means whatever the reader's parser picks: a proxy that checked the first value and
a server that uses the second disagree about what was submitted. The body (already capped
by the body-limit guard outside this one) is read once, checked, and replayed to the
route unchanged. Bodies that are not JSON objects or arrays, or not JSON at all, pass on:
the route's own parsing answers those.
"""

from __future__ import annotations

import json
from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

_METHODS = frozenset({"POST", "PUT", "PATCH"})


class DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    seen: dict[str, Any] = {}
    for key, value in pairs:
        if key in seen:
            raise DuplicateKey(key)
        seen[key] = value
    return seen


def duplicate_key(body: bytes) -> str | None:
    """The first key given twice in one object of ``body``, or None."""
    if body.lstrip()[:1] not in (b"{", b"["):
        return None
    try:
        json.loads(body, object_pairs_hook=_pairs)
    except DuplicateKey as exc:
        return exc.key
    except (ValueError, RecursionError):  # not JSON (or absurdly deep): the route answers
        return None
    return None


class StrictJsonMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] not in _METHODS or not _is_json(scope):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                await self.app(scope, _replay([message]), send)
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        key = duplicate_key(body)
        if key is not None:
            await _reject(send, key)
            return
        await self.app(scope, _replay([{"type": "http.request", "body": body}], receive), send)


def _is_json(scope: Scope) -> bool:
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            media = value.split(b";", 1)[0].strip().lower()
            return bool(media == b"application/json" or media.endswith(b"+json"))
    return False


def _replay(messages: list[Message], then: Receive | None = None) -> Receive:
    queue = list(messages)

    async def receive() -> Message:
        if queue:
            return queue.pop(0)
        if then is not None:
            return await then()
        return {"type": "http.disconnect"}

    return receive


async def _reject(send: Send, key: str) -> None:
    body = orjson.dumps(
        {
            "error": {
                "code": "bad_request",
                "message": f"the JSON body gives the key {key[:100]!r} more than once in one "
                "object; send each key once",
            }
        }
    )
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 400, "headers": headers})
    await send({"type": "http.response.body", "body": body})
