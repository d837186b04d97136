"""Traces reach a collector (issue 18): real ``worldpool serve``, ``worldpool worker`` and
``worldpool submit`` processes export their spans over OTLP/HTTP, as the standard
``OTEL_*`` variables say, to a small receiver in this test that decodes the protobuf; the
four hops of one task (submit -> dispatch -> run -> result) are one trace, each span the
child of the one before, and each process names itself."""

from __future__ import annotations

import asyncio
import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import orjson
import pytest

from tests.e2e.procs import Cluster, wait_workers, write_json
from tests.helpers import free_port
from worldpool.backends.base import Backend

pytest.importorskip("opentelemetry.sdk", reason="the otel extra: pip install 'worldpool[otel]'")
pytest.importorskip("opentelemetry.exporter.otlp.proto.http")
trace_service = pytest.importorskip("opentelemetry.proto.collector.trace.v1.trace_service_pb2")

HOPS = ("worldpool.submit", "worldpool.dispatch", "worldpool.run", "worldpool.result")


class Collector(ThreadingHTTPServer):
    """An OTLP/HTTP trace receiver: every span it is sent, with its service name."""

    def __init__(self, port: int) -> None:
        super().__init__(("127.0.0.1", port), _Receive)
        self.spans: list[dict[str, Any]] = []
        self.lock = threading.Lock()


class _Receive(BaseHTTPRequestHandler):
    server: Collector

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        request = trace_service.ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource_spans in request.resource_spans:
            attrs = {a.key: a.value.string_value for a in resource_spans.resource.attributes}
            for scope in resource_spans.scope_spans:
                with self.server.lock:
                    self.server.spans.extend(
                        {
                            "service": attrs.get("service.name"),
                            "name": s.name,
                            "trace_id": s.trace_id.hex(),
                            "span_id": s.span_id.hex(),
                            "parent": s.parent_span_id.hex(),
                            "attributes": {a.key: a.value for a in s.attributes},
                        }
                        for s in scope.spans
                    )
        reply = trace_service.ExportTraceServiceResponse().SerializeToString()
        self.send_response(200)
        self.send_header("Content-Type", "application/x-protobuf")
        self.send_header("Content-Length", str(len(reply)))
        self.end_headers()
        self.wfile.write(reply)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


@pytest.fixture
def collector() -> Iterator[Collector]:
    server = Collector(free_port())
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def otel_env(collector: Collector, service: str) -> dict[str, str]:
    return {
        "OTEL_EXPORTER_OTLP_ENDPOINT": f"http://127.0.0.1:{collector.server_port}",
        "OTEL_SERVICE_NAME": service,
        "OTEL_BSP_SCHEDULE_DELAY": "100",  # ms: export soon, not every 5 s
    }


async def test_one_task_is_one_trace_across_processes(
    cluster: Cluster, client: Backend, collector: Collector
) -> None:
    cluster.serve(env=otel_env(collector, "wp-serve"))
    worker = cluster.worker(
        "otel-worker-1",
        "--region",
        "eu-west-1",
        "--handlers",
        "tests.e2e.otel_handlers:HANDLERS",
        "--no-builtin",
        "--no-verify-claims",
        "--log-format",
        "json",
        env=otel_env(collector, "wp-worker"),
    )
    await wait_workers(client, [worker])
    task = write_json(cluster.directory / "task.json", {"id": "otel-task-1", "handler": "hello"})
    cluster.env.update(otel_env(collector, "wp-submit"))
    done = cluster.cli("submit", str(task), "--wait", "--timeout-s", "30")
    assert done.returncode == 0, done.stdout + done.stderr + cluster.logs()

    spans: dict[str, dict[str, Any]] = {}
    for _ in range(100):  # the batch processors export within ~0.1 s of each span
        with collector.lock:
            spans = {
                s["name"]: s
                for s in collector.spans
                if s["attributes"].get("worldpool.task_id") is not None
                and s["attributes"]["worldpool.task_id"].string_value == "otel-task-1"
            }
        if all(h in spans for h in HOPS):
            break
        await asyncio.sleep(0.1)
    assert set(HOPS) <= set(spans), (collector.spans, cluster.logs())
    submit, dispatch, run, result = (spans[h] for h in HOPS)
    assert len({s["trace_id"] for s in (submit, dispatch, run, result)}) == 1
    assert dispatch["parent"] == submit["span_id"]
    assert run["parent"] == dispatch["span_id"]
    assert result["parent"] == run["span_id"]
    # The submitting process routes and sends the task itself (nothing else is queued),
    # the worker runs it, serve applies the result.
    assert (submit["service"], dispatch["service"], run["service"], result["service"]) == (
        "wp-submit",
        "wp-submit",
        "wp-worker",
        "wp-serve",
    )
    # the worker's JSON log lines carry the ids of the task they were written under
    lines = [orjson.loads(line) for line in worker.log().splitlines() if line.startswith("{")]
    said = [line for line in lines if line["message"] == "hello from the task"]
    assert len(said) == 1, lines
    assert said[0]["task_id"] == "otel-task-1" and said[0]["worker_id"] == "otel-worker-1"
    assert said[0]["trace_id"] == run["trace_id"] and said[0]["level"] == "INFO"
