"""``--log-format json``: one object per line with the ids the record was written under
(the processes' own lines are checked in tests/e2e/test_otlp.py)."""

from __future__ import annotations

import io
import logging

import orjson

from worldpool.cli import logs
from worldpool.tracing import TraceContextFilter, bind, new_traceparent, parse_traceparent


def test_json_lines_carry_task_workflow_worker_and_trace_ids() -> None:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(TraceContextFilter())
    handler.addFilter(logs._WorkerIdFilter())
    handler.setFormatter(logs.JsonFormatter())
    log = logging.getLogger("test.json-logs")
    log.addHandler(handler)
    log.propagate = False
    logs.set_worker_id("gpu-tokyo-1")
    tp = new_traceparent()
    try:
        log.warning("outside")
        with bind(workflow_id="wf-1", task_id="wf-1.plan", traceparent=tp):
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("inside %s", "the task")
    finally:
        log.removeHandler(handler)
        logs.set_worker_id(None)
    outside, inside = (orjson.loads(line) for line in out.getvalue().splitlines())
    assert outside["task_id"] is None and outside["trace_id"] is None
    assert outside["worker_id"] == "gpu-tokyo-1" and outside["level"] == "WARNING"
    parsed = parse_traceparent(tp)
    assert parsed is not None
    assert inside["message"] == "inside the task" and inside["task_id"] == "wf-1.plan"
    assert inside["workflow_id"] == "wf-1" and inside["trace_id"] == parsed.trace_id
    assert inside["span_id"] == parsed.span_id and "ValueError: boom" in inside["exc"]
    assert inside["ts"].endswith("Z")
