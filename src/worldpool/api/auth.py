"""Bearer-token auth with two roles: ``read`` (GET everything but the dead letters) and
``admin`` (also submit, cancel, explain, and read the dead letters).

Auth is on whenever a token is configured, and always when the API is bound to anything
but loopback: binding ``0.0.0.0`` without tokens is refused at start-up (a ConfigError
that says which variable to set) unless ``ApiTokens(insecure_open=True)`` is passed on
purpose. Tokens come from ``WORLDPOOL_API_TOKEN_ADMIN`` / ``WORLDPOOL_API_TOKEN_READ``.
"""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from enum import Enum

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from worldpool.config import Settings
from worldpool.errors import ConfigError


class Role(str, Enum):
    READ = "read"
    ADMIN = "admin"


class AuthError(Exception):
    """401 (no or unknown token) or 403 (token lacks the role); turned into JSON."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


@dataclass(frozen=True, slots=True)
class ApiTokens:
    admin: str | None = None
    read: str | None = None
    insecure_open: bool = False  # explicit opt-out for a trusted network

    @classmethod
    def from_settings(cls, settings: Settings) -> ApiTokens:
        return cls(admin=settings.api_token_admin, read=settings.api_token_read)

    @property
    def configured(self) -> bool:
        return bool(self.admin or self.read)

    def role_of(self, token: str) -> Role | None:
        # compare_digest on both, always, so timing does not tell which one matched
        # as bytes: compare_digest refuses non-ASCII str, and a stranger's header must be
        # a 401 like any other wrong token, never a 500
        given = token.encode("utf-8", "surrogateescape")
        is_admin = self.admin is not None and hmac.compare_digest(given, self.admin.encode())
        is_read = self.read is not None and hmac.compare_digest(given, self.read.encode())
        if is_admin:
            return Role.ADMIN
        return Role.READ if is_read else None


def is_loopback(host: str) -> bool:
    if host in {"localhost", ""}:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def auth_enabled(tokens: ApiTokens, bind_host: str) -> bool:
    """Decide once, at app creation, whether requests need a token."""
    if tokens.configured:
        return True
    if is_loopback(bind_host) or tokens.insecure_open:
        return False
    raise ConfigError(
        f"the API is bound to {bind_host!r}, which is not loopback, and no API token is set: "
        "set WORLDPOOL_API_TOKEN_ADMIN (and optionally WORLDPOOL_API_TOKEN_READ) to a random "
        "string of 16+ characters, or bind to 127.0.0.1"
    )


READ_ONLY_POSTS = frozenset({"/api/v1/explain"})  # dry runs change nothing
ADMIN_GETS = frozenset({"/api/v1/dead-letters"})  # refused envelopes can hold payloads


def required_role(method: str, path: str) -> Role | None:
    """The role a request needs, decided from method and path before the body is read
    (so an unauthenticated caller learns nothing from body errors). None: public."""
    if not (path.startswith("/api/") or path == "/metrics"):
        return None  # dashboard files, /healthz, the OpenAPI schema
    if path in ADMIN_GETS:
        return Role.ADMIN
    if method in {"GET", "HEAD", "OPTIONS"} or path in READ_ONLY_POSTS:
        return Role.READ
    return Role.ADMIN


def check(authorization: str, tokens: ApiTokens, need: Role) -> Role:
    """The caller's role, or AuthError (401 no/unknown token, 403 read token on admin)."""
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise AuthError(
            401, "unauthorized", "missing bearer token: send 'Authorization: Bearer <token>'"
        )
    role = tokens.role_of(token.strip())
    if role is None:
        raise AuthError(
            401, "unauthorized", "unknown token: check WORLDPOOL_API_TOKEN_* on the server"
        )
    if need is Role.ADMIN and role is not Role.ADMIN:
        raise AuthError(
            403, "forbidden", "this token is read-only; this route needs the admin token"
        )
    return role


class AuthMiddleware:
    """Pure ASGI: checks the bearer token for every API request, first thing."""

    def __init__(self, app: ASGIApp, tokens: ApiTokens) -> None:
        self.app = app
        self.tokens = tokens

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            need = required_role(scope["method"], scope["path"])
            if need is not None:
                header = next(
                    (v.decode("latin-1") for k, v in scope["headers"] if k == b"authorization"), ""
                )
                try:
                    check(header, self.tokens, need)
                except AuthError as exc:
                    await _send_error(send, exc)
                    return
        await self.app(scope, receive, send)


async def _send_error(send: Send, exc: AuthError) -> None:
    body = orjson.dumps({"error": {"code": exc.code, "message": exc.message}})
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if exc.status == 401:
        headers.append((b"www-authenticate", b'Bearer realm="worldpool"'))
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
