"""The API fixtures of tests/api, reused by the attack suite."""

from tests.api.conftest import client, pool

__all__ = ["client", "pool"]
