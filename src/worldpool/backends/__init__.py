"""Storage and transport backends; pick one with :func:`backend_from_url`.

``memory://`` (or no URL) is the in-process backend used by embedded mode and tests;
``redis://`` / ``rediss://`` is the distributed one (needs ``pip install 'worldpool[redis]'``).
"""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

from worldpool.backends.base import Backend, DeadLetter, Delivery, ResultMessage
from worldpool.backends.memory import MemoryBackend
from worldpool.config import Settings, check_backend_url
from worldpool.errors import BackendError, ConfigError
from worldpool.redact import redact_url

__all__ = [
    "Backend",
    "DeadLetter",
    "Delivery",
    "MemoryBackend",
    "ResultMessage",
    "backend_from_url",
    "probe_backend",
]

REDIS_SCHEMES = frozenset({"redis", "rediss"})


def backend_from_url(url: str | None, settings: Settings | None = None) -> Backend:
    """The backend a URL names: None or ``memory://`` -> :class:`MemoryBackend`,
    ``redis://host:6379/0`` or ``rediss://...`` (TLS) -> the Redis backend."""
    settings = settings or Settings()
    scheme = urlsplit(url).scheme.lower() if url else "memory"
    if scheme == "memory":
        return MemoryBackend(settings)
    if scheme in REDIS_SCHEMES:
        assert url is not None  # a scheme was parsed from it
        check_backend_url(url)  # redis:/host is an error, not a connection to localhost
        return _redis_backend(url, settings)
    raise ConfigError(
        f"backend URL {url!r} has an unknown scheme {scheme!r}: use memory:// for the "
        "embedded backend or redis://host:6379/0 (rediss:// for TLS)"
    )


def _redis_backend(url: str, settings: Settings) -> Backend:
    # Imported lazily so that the memory backend works without redis-py installed.
    try:
        from worldpool.backends.redis import RedisBackend
    except ImportError as exc:
        if exc.name is not None and exc.name.split(".")[0] == "redis":
            raise ConfigError(
                f"{url!r} needs the Redis client: pip install 'worldpool[redis]'"
            ) from exc
        raise
    return RedisBackend.from_url(url, settings)


PROBE_TIMEOUT_S = 3.0


def probe_backend(url: str) -> None:
    """Fail fast (BackendError naming the URL without its password) when nothing answers
    at a Redis URL, instead of spending the reconnect backoff (about a minute) that
    long-running processes rightly use. Other URLs pass."""
    parts = urlsplit(url)
    if not (parts.scheme.lower() in REDIS_SCHEMES and parts.hostname):
        return
    try:
        socket.create_connection((parts.hostname, parts.port or 6379), PROBE_TIMEOUT_S).close()
    except OSError as exc:
        raise BackendError(
            f"{redact_url(url)} does not answer ({exc}); is Redis running and reachable from here?"
        ) from None
