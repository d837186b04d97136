"""Fixtures shared by every test module."""

from tests.local_llm import local_llm  # noqa: F401  # one real model server per run
