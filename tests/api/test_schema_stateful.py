"""A bounded *stateful* schemathesis run (issue 13): sequences of calls that follow the
schema's links (submit a task, then read, explain, cancel or retry it; the same for
workflows), each response checked like the stateless run in test_schema.py: no 5xx,
status codes, content types and bodies as the schema says. Bounded for CI (a few dozen
steps, well under a minute on the 2-core box)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.api.schema_checks import AUTH, load_schema, response_checks
from tests.api.support import ThreadedServer

schemathesis = pytest.importorskip("schemathesis")
hypothesis = pytest.importorskip("hypothesis")


@pytest.fixture
def fresh_server() -> Iterator[ThreadedServer]:
    """A server of its own: which links a run can follow depends on what the server holds
    (sharing the stateless run's server left this run following none, once, in CI)."""
    with ThreadedServer() as server:
        yield server


def test_call_sequences_hold_to_the_schema(fresh_server: ThreadedServer) -> None:
    from hypothesis.stateful import run_state_machine_as_test

    schema = load_schema(fresh_server).exclude(path_regex=r"/events$")  # see test_sse.py
    checks = response_checks()
    linked: list[str] = []

    class Machine(schema.as_state_machine()):  # type: ignore[misc]
        def get_call_kwargs(self, case: Any) -> dict[str, Any]:
            return {"headers": AUTH, "timeout": 10}

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
            max_examples=25,
            stateful_step_count=6,
            deadline=None,
            database=None,
            derandomize=True,
            suppress_health_check=list(hypothesis.HealthCheck),
        ),
    )
    # The run followed links (a call using what an earlier response returned), so it was
    # stateful, not unrelated calls. (With 12 examples, which sequences were drawn depended
    # on what else the run collected, and in the full run none followed a link.)
    assert linked, "no step followed a link: the schema's links are missing"
