"""Fixtures: a private redis-server and the processes of one test."""

from tests.e2e.procs import cluster
from tests.redis_server import redis_server

__all__ = ["cluster", "redis_server"]
