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
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

from worldpool.errors import ConfigError

try:
    from redis.asyncio import Redis
    from redis.asyncio.retry import Retry
    from redis.backoff import ExponentialBackoff
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import TimeoutError as RedisTimeoutError
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "the Redis backend needs redis-py with hiredis: pip install 'worldpool[redis]'"
    ) from exc

SCHEMES = ("redis", "rediss", "unix")

RECONNECT_RETRIES = 30
"""Attempts after a lost connection before a call raises BackendError."""

BACKOFF_BASE_S = 0.05
BACKOFF_CAP_S = 2.0
"""Backoff doubles from 50 ms to at most 2 s: 30 retries span roughly a minute."""

CONNECT_TIMEOUT_S = 5.0


def redact(url: str) -> str:
    """The URL with its password replaced by ``***`` (safe for logs and errors)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)[1]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{netloc}"))


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
        "retry": Retry(
            ExponentialBackoff(cap=BACKOFF_CAP_S, base=BACKOFF_BASE_S),
            RECONNECT_RETRIES,
            supported_errors=(RedisConnectionError, RedisTimeoutError),
        ),
        "retry_on_error": [RedisConnectionError, RedisTimeoutError],
        # Blocking stream reads (XREADGROUP BLOCK) may wait longer than any fixed socket
        # timeout; keepalive and the health check catch dead peers instead.
        "socket_timeout": None,
        "socket_connect_timeout": CONNECT_TIMEOUT_S,
        "socket_keepalive": True,
        "health_check_interval": 15,
        "decode_responses": False,
    }
    options.update(overrides)
    try:
        client: Redis = Redis.from_url(url, **options)
    except ValueError as exc:
        raise ConfigError(f"cannot use Redis URL {redact(url)!r}: {exc}") from exc
    return client
