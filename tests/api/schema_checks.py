"""What both schemathesis runs share (test_schema.py: every operation alone;
test_schema_stateful.py: call sequences along the schema's links): the schema as the
server publishes it, and the checks every response must pass."""

from __future__ import annotations

from typing import Any

from tests.api.support import ADMIN, ThreadedServer

AUTH = {"Authorization": f"Bearer {ADMIN}"}
# Endless by design (server-sent events): covered in test_sse.py.
STREAMING = {"/api/v1/events", "/api/v1/workflows/{workflow_id}/events"}


def load_schema(server: ThreadedServer) -> Any:
    import schemathesis

    return schemathesis.openapi.from_url(server.url + "/openapi.json", headers=AUTH)


def response_checks() -> list[Any]:
    """No 5xx; status code, content type and body as the schema says."""
    from schemathesis.checks import not_a_server_error
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    return [
        not_a_server_error,
        status_code_conformance,
        content_type_conformance,
        response_schema_conformance,
    ]
