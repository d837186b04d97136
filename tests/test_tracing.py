"""W3C traceparent helpers, spans with and without OpenTelemetry, ids on log lines."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from worldpool import tracing
from worldpool.tracing import (
    TraceContextFilter,
    bind,
    child_traceparent,
    new_traceparent,
    parse_traceparent,
    span,
    trace_id_of,
)


def test_new_traceparent_is_valid_and_unique() -> None:
    a, b = new_traceparent(), new_traceparent()
    assert a != b
    parsed = parse_traceparent(a)
    assert parsed is not None and parsed.sampled
    assert str(parsed) == a
    assert parse_traceparent(new_traceparent(sampled=False)).sampled is False  # type: ignore[union-attr]


def test_child_keeps_the_trace_and_makes_a_new_span() -> None:
    parent = new_traceparent()
    child = child_traceparent(parent)
    assert trace_id_of(child) == trace_id_of(parent)
    assert child.split("-")[2] != parent.split("-")[2]
    assert child.endswith("-01")


@pytest.mark.parametrize(
    "bad",
    [
        None,
        "",
        "garbage",
        "00-" + "0" * 32 + "-" + "1" * 16 + "-01",
        "00-" + "a" * 32 + "-" + "0" * 16 + "-01",
        "ff-" + "a" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "A" * 32 + "-" + "b" * 16 + "-01",
        "00-" + "a" * 32 + "-" + "b" * 16 + "-01-extra",
    ],
)
def test_invalid_traceparents_are_ignored(bad: str | None) -> None:
    assert parse_traceparent(bad) is None
    assert trace_id_of(child_traceparent(bad)) is not None  # a new trace starts instead


def test_span_continues_the_trace_with_or_without_otel(monkeypatch: pytest.MonkeyPatch) -> None:
    parent = new_traceparent()
    with span("run", parent, {"worldpool.task_id": "t1"}) as child:
        assert trace_id_of(child) == trace_id_of(parent)
        assert tracing.current_traceparent() == child
    monkeypatch.setattr(tracing, "_otel_trace", lambda: None)  # as if not installed
    with span("run", parent) as child:
        assert trace_id_of(child) == trace_id_of(parent)
    assert tracing.current_traceparent() is None


def test_log_lines_carry_workflow_task_and_trace_ids(caplog: pytest.LogCaptureFixture) -> None:
    logger = logging.getLogger("worldpool.test.tracing")
    caplog.handler.addFilter(TraceContextFilter())
    tp = new_traceparent()
    with caplog.at_level(logging.INFO, logger=logger.name):
        with bind(workflow_id="wf-1", task_id="task-1", traceparent=tp):
            logger.info("inside")
        logger.info("outside")
    inside, outside = caplog.records
    assert (inside.workflow_id, inside.task_id, inside.trace_id) == (  # type: ignore[attr-defined]
        "wf-1",
        "task-1",
        trace_id_of(tp),
    )
    assert outside.workflow_id == "-"  # type: ignore[attr-defined]
    formatted = logging.Formatter(tracing.LOG_FORMAT).format(inside)
    assert "wf=wf-1 task=task-1 trace=" in formatted


def test_exporter_needs_an_endpoint() -> None:
    assert tracing.configure_exporter({}) is False
    disabled = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1", "OTEL_SDK_DISABLED": "true"}
    assert tracing.configure_exporter(disabled) is False


def test_the_exporter_sends_to_the_endpoint_it_was_given(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("opentelemetry.sdk.trace", reason="the otel extra")
    from opentelemetry import trace

    installed: list[Any] = []  # never the process's global provider: tests share it
    monkeypatch.setattr(trace, "set_tracer_provider", installed.append)
    env = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:1/", "OTEL_SERVICE_NAME": "wp-x"}

    assert tracing.configure_exporter(env) is True
    [provider] = installed
    try:
        [processor] = provider._active_span_processor._span_processors
        assert processor.span_exporter._endpoint == "http://127.0.0.1:1/v1/traces"
        assert provider.resource.attributes["service.name"] == "wp-x"
    finally:
        provider.shutdown()
