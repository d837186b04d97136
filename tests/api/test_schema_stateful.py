"""A bounded *stateful* schemathesis run (issue 13): sequences of calls that follow the
schema's links (submit a task, then read, explain, cancel or retry it; the same for
workflows), each response checked like the stateless run in test_schema.py: no 5xx,
status codes, content types and bodies as the schema says. Bounded for CI (a few dozen
steps, well under a minute on the 2-core box)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.support import ADMIN, ThreadedServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


@pytest.fixture(scope="module")
def server() -> Iterator[ThreadedServer]:
    with ThreadedServer() as s:
        yield s


def test_call_sequences_hold_to_the_schema(server: ThreadedServer) -> None:
    from hypothesis.stateful import run_state_machine_as_test
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    auth = {"Authorization": f"Bearer {ADMIN}"}
    schema = schemathesis.openapi.from_url(server.url + "/openapi.json", headers=auth)
    schema = schema.exclude(path_regex=r"/events$")  # endless streams: see test_sse.py
    checks = [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
    linked: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": auth, "timeout": 10}

        def step(self, input: Any) -> Any:
            if input.transition is not None and input.is_applied:
                linked.append(f"{input.case.method} {input.case.path}")
            return super().step(input)

        def validate_response(
            self, response: Any, case: Any, additional_checks: Any = None, **kwargs: Any
        ) -> None:
            case.validate_response(response, checks=checks, transport_kwargs=kwargs)

    run_state_machine_as_test(
        Machine,
        settings=hypothesis.settings(
            max_examples=12,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
    # The run followed links (a call using what an earlier response returned), so it was
    # stateful, not twelve unrelated calls.
    assert linked, "no step followed a link: the schema's links are missing"
