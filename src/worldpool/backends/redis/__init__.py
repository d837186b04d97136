"""The Redis Streams backend (``pip install 'worldpool[redis]'``).

>>> backend = RedisBackend.from_url("redis://localhost:6379/0")  # doctest: +SKIP
"""

from __future__ import annotations

from worldpool.backends.redis.backend import RedisBackend
from worldpool.backends.redis.keys import Keys

__all__ = ["Keys", "RedisBackend"]
