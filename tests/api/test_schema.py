"""Property-based run against the OpenAPI schema (schemathesis): no 5xx, responses match
the schema, on every operation. Kept short (few examples) for the 2-core CI box."""

from __future__ import annotations

import pytest

from tests.api.schema_checks import AUTH, STREAMING, load_schema, response_checks
from tests.api.support import ThreadedServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


def test_every_operation_holds_to_its_schema(schema_server: ThreadedServer) -> None:
    schema = load_schema(schema_server)
    checks = response_checks()
    ran = 0
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path in STREAMING:
            continue

        @hypothesis.settings(
            max_examples=8,
            deadline=None,
            database=None,
            suppress_health_check=list(hypothesis.HealthCheck),
            derandomize=True,
        )
        @hypothesis.given(case=operation.as_strategy())
        def run(case: object) -> None:
            case.call_and_validate(  # type: ignore[attr-defined]
                headers=AUTH, checks=checks, timeout=10
            )

        run()
        ran += 1
    assert ran >= 10
