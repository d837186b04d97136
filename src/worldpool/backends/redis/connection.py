"""Connecting to Redis: URL forms, TLS, ACL users, and reconnecting with backoff.

Accepted URLs (redis-py's own parser does the work)::

    redis://localhost:6379/0
    redis://worker-eu:s3cret@redis.internal:6379/0          ACL user "worker-eu"
    rediss://worker-eu:s3cret@redis.example.com:6380/0      TLS, server cert verified
    rediss://...:6380/0?ssl_ca_certs=/etc/worldpool/ca.pem  TLS with a private CA
    unix:///run/redis/redis.sock?db=0

A lost connection is retried with exponential backoff (about a minute in all), so
workers and orchestrators carry on when Redis comes back, without a restart. Commands are
retried at least once: a retried XADD may be delivered twice; fencing by attempt and
idempotency keys make that harmless.

A connection that stalls (half-open: the peer or a middlebox drops its packets while new
connections still work) is found and replaced within seconds: every read on a pooled
connection has a :data:`SOCKET_TIMEOUT_S` timeout, the fast lanes' connections a watchdog
instead (see ``lane``: a per-read timer would cost a large share of a round trip),
blocking stream reads wait at most :data:`MAX_BLOCK_S` (callers asking longer get an empty
answer and ask again), TCP keepalive probes idle connections after a few seconds, the
kernel closes a socket whose sent bytes stay unacknowledged for 10 s, and an idle pooled
connection is pinged before reuse. A timed-out command is retried on a fresh connection
like a lost one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from worldpool.errors import ConfigError
from worldpool.redact import redact_url

try:
    from redis.asyncio import BlockingConnectionPool, Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import AuthenticationError, AuthorizationError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Redis backend needs redis-py with hiredis: pip install 'worldpool[redis]'"
    ) from exc

T = TypeVar("T")

SCHEMES = ("redis", "rediss", "unix")

RECONNECT_RETRIES = 30
"""Attempts after a lost connection before a call raises BackendError."""

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
"""Backoff doubles from 50 ms to at most 2 s: 30 retries span roughly a minute."""

CONNECT_TIMEOUT_S = 5.0

MAX_BLOCK_S = 1.0
"""The longest a blocking stream read (XREAD/XREADGROUP BLOCK) waits on the server."""

SOCKET_TIMEOUT_S = MAX_BLOCK_S + 2.0
"""Every reply must arrive within this: a blocking read's longest wait plus a margin."""

HEALTH_CHECK_INTERVAL_S = 5
"""A pooled connection idle this long is pinged before it is used again."""

KEEPALIVE_IDLE_S, KEEPALIVE_INTERVAL_S, KEEPALIVE_PROBES = 5, 2, 3
"""TCP keepalive: the kernel drops a silent peer after about 11 s idle (not two hours)."""

USER_TIMEOUT_MS = 10_000


def keepalive_options() -> dict[int, int]:
    """Linux's per-socket keepalive knobs (where the platform has them)."""
    names = {
        "TCP_KEEPIDLE": KEEPALIVE_IDLE_S,
        "TCP_KEEPINTVL": KEEPALIVE_INTERVAL_S,
        "TCP_KEEPCNT": KEEPALIVE_PROBES,
        # Sent bytes unacknowledged this long (ms): the peer is gone, close the socket.
        "TCP_USER_TIMEOUT": USER_TIMEOUT_MS,
    }
    return {getattr(socket, n): v for n, v in names.items() if hasattr(socket, n)}


MAX_CONNECTIONS = 128
"""Connections per client. Callers beyond it wait for a free one (a blocking pool) instead
of failing; blocked stream reads each hold one for at most their ``block_s``."""


class _Retry(Retry):
    """redis-py's Retry, except that a refused login is not retried.

    redis-py's AuthenticationError and AuthorizationError subclass ConnectionError, so the
    plain Retry would spend its whole backoff (a minute) on a wrong password.
    """

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        def retryable(error: Exception) -> bool:
            if isinstance(error, AuthenticationError | AuthorizationError):
                return False
            return is_retryable is None or is_retryable(error)

        return await super().call_with_retry(do, fail, retryable, with_failure_count)


redact = redact_url
"""The URL with its password replaced by ``***`` (:func:`worldpool.redact.redact_url`)."""


def connect(url: str, **overrides: Any) -> Redis:
    """A redis-py asyncio client for ``url`` with reconnect-with-backoff configured.

    ``overrides`` go to redis-py unchanged (for example ``ssl_ca_certs``, ``ssl_certfile``,
    ``ssl_keyfile`` for client certificates, or ``max_connections``).
    """
    scheme = urlsplit(url).scheme
    if scheme not in SCHEMES:
        raise ConfigError(
            f"Redis URL {redact(url)!r} has scheme {scheme!r}; use redis:// (plain), "
            "rediss:// (TLS) or unix:// (local socket)"
        )
    options: dict[str, Any] = {
        "retry": _Retry(
            ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S),
            RECONNECT_RETRIES,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        # Blocking reads are capped at MAX_BLOCK_S, so one timeout fits every command.
        "socket_timeout": SOCKET_TIMEOUT_S,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": HEALTH_CHECK_INTERVAL_S,
        "decode_responses": False,
    }
    if urlsplit(url).scheme != "unix":  # keepalive is a TCP matter
        options["socket_keepalive_options"] = keepalive_options()
    options.update(overrides)
    options.setdefault("max_connections", MAX_CONNECTIONS)
    try:
        pool = BlockingConnectionPool.from_url(url, timeout=None, **options)
    except ValueError as exc:
        raise ConfigError(f"cannot use Redis URL {redact(url)!r}: {exc}") from exc
    client = Redis(connection_pool=pool)
    client.auto_close_connection_pool = True  # aclose() closes the pool too
    return client


def unprotected_warning(url: str) -> str | None:
    """A warning when ``url`` reaches a non-loopback Redis as the default user without a
    password (anyone who reaches that port can act as the orchestrator)."""
    parts = urlsplit(url)
    if parts.scheme == "unix" or parts.password:
        return None
    host = parts.hostname or "localhost"
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if loopback or (parts.username not in (None, "", "default")):
        return None
    return (
        f"connected to Redis at {host} as the default user without a password: anyone who "
        "reaches it can forge work and results. Create users with `worldpool acl` and put "
        "one in the URL (redis://USER:PASSWORD@host:6379/0)."
    )
