"""Fixtures of the attack suite: real redis-server, real processes (see tests/e2e/procs.py)."""

from tests.e2e.procs import client, cluster
from tests.redis_server import redis_server, redis_server_session

__all__ = ["client", "cluster", "redis_server", "redis_server_session"]
