"""Shared test helpers."""

from __future__ import annotations

import os
import shutil
import socket

import pytest

REQUIRE_SYSTEM = os.environ.get("WORLDPOOL_REQUIRE_SYSTEM") == "1"
THOROUGH = os.environ.get("HYPOTHESIS_PROFILE") == "thorough"


def examples(ci: int) -> int:
    """``max_examples`` of a slow property test: ``ci`` in the CI run (each run draws new
    ones), ten times more with ``HYPOTHESIS_PROFILE=thorough`` (after a router change)."""
    return ci * 10 if THOROUGH else ci


def require_binary(binary: str, package: str) -> str:
    """Path of ``binary``; skip (or, in CI with WORLDPOOL_REQUIRE_SYSTEM=1, fail) if missing."""
    path = shutil.which(binary)
    if path is None:
        message = f"{binary} not found: install the Debian package {package!r}"
        if REQUIRE_SYSTEM:
            pytest.fail(message + " (WORLDPOOL_REQUIRE_SYSTEM=1 forbids skipping)")
        pytest.skip(message)
    return path


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])
