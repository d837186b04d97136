"""Fixtures of the multi-process tests (see ``procs.py``)."""

from tests.e2e.procs import client, cluster
from tests.redis_server import redis_server

__all__ = ["client", "cluster", "redis_server"]
