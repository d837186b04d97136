"""W3C trace context for worldpool: ids on every envelope, spans when OpenTelemetry is there.

Every envelope carries a ``traceparent`` (https://www.w3.org/TR/trace-context/). The
orchestrator makes one per submitted task (:func:`new_traceparent`, or continues the
caller's); each hop (route, dispatch, run on a worker) makes a child with the same trace
id and a new span id (:func:`child_traceparent`), so one trace spans every process.

OpenTelemetry is optional and imported lazily. :func:`span` opens a real OTel span
(exported by whatever ``TracerProvider`` is installed, for example by
:func:`configure_exporter`) when ``opentelemetry`` is importable, and otherwise only
computes the child id. Nothing here raises because OTel is missing or misconfigured.

Log lines get the ids through :class:`TraceContextFilter` and :func:`bind`::

    logging.getLogger("worldpool").addFilter(TraceContextFilter())
    with bind(workflow_id=wf, task_id=task, traceparent=tp):
        log.info("running")   # record.workflow_id / task_id / trace_id are set
"""

from __future__ import annotations

import contextvars
import importlib
import logging
import os
import random
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Protocol

_TRACEPARENT_RE = re.compile(r"^([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})$")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class TraceParent:
    """A parsed ``traceparent`` header value."""

    trace_id: str
    span_id: str
    flags: int = 1
    version: str = "00"

    @property
    def sampled(self) -> bool:
        return bool(self.flags & 1)

    def __str__(self) -> str:
        return f"{self.version}-{self.trace_id}-{self.span_id}-{self.flags:02x}"


def parse_traceparent(value: str | None) -> TraceParent | None:
    """Parse a ``traceparent``; None if absent or invalid (invalid ones must be ignored)."""
    if not value:
        return None
    match = _TRACEPARENT_RE.match(value.strip())
    if match is None:
        return None
    version, trace_id, span_id, flags = match.groups()
    if version == "ff" or trace_id == _ZERO_TRACE or span_id == _ZERO_SPAN:
        return None
    if version == "00" and len(value.strip()) != 55:
        return None
    return TraceParent(trace_id=trace_id, span_id=span_id, flags=int(flags, 16), version="00")


def is_valid_traceparent(value: str | None) -> bool:
    return parse_traceparent(value) is not None


def new_traceparent(*, sampled: bool = True) -> str:
    """A fresh root ``traceparent`` (new trace id, new span id)."""
    return str(TraceParent(_nonzero_hex(16), _nonzero_hex(8), 1 if sampled else 0))


def child_traceparent(parent: str | None) -> str:
    """Same trace, new span id; a missing or invalid parent starts a new trace."""
    parsed = parse_traceparent(parent)
    if parsed is None:
        return new_traceparent()
    return str(TraceParent(parsed.trace_id, _nonzero_hex(8), parsed.flags))


def trace_id_of(traceparent: str | None) -> str | None:
    parsed = parse_traceparent(traceparent)
    return parsed.trace_id if parsed else None


def _nonzero_hex(nbytes: int) -> str:
    # Ids need to be unique, not secret: the PRNG, as OpenTelemetry's own id generator
    # does (os.urandom is a system call per id).
    while True:
        value = random.getrandbits(nbytes * 8)
        if value:
            return f"{value:0{nbytes * 2}x}"


# --------------------------------------------------------------------------- spans


@contextmanager
def span(
    name: str,
    traceparent: str | None,
    attributes: Mapping[str, str | int | float | bool] | None = None,
) -> Iterator[str]:
    """Run a block as a child span of ``traceparent``; yields the child's ``traceparent``.

    Pass the yielded value on (in the envelope, the result) so the next hop continues the
    trace. With OpenTelemetry importable, the span is a real OTel span (exported only if a
    ``TracerProvider`` with an exporter is installed); without it, only the ids are made.
    """
    otel = _otel_trace()
    if otel is None or not exporting():
        # No OTel, or the API without a configured SDK: its spans would record nothing,
        # and entering one costs ~25 us per task (context extract, tracer, span objects).
        with bind(traceparent=child_traceparent(traceparent)) as child:
            yield child or ""
        return
    ctx = _extract_context(traceparent)
    tracer = otel.get_tracer("worldpool")
    with tracer.start_as_current_span(name, context=ctx, attributes=dict(attributes or {})) as sp:
        sc = sp.get_span_context()
        if sc.is_valid:
            child = f"00-{sc.trace_id:032x}-{sc.span_id:016x}-{int(sc.trace_flags):02x}"
        else:  # no SDK installed: the API's non-recording span has no ids of its own
            child = child_traceparent(traceparent)
        with bind(traceparent=child):
            yield child


def hop(
    name: str,
    parent: str | None,
    attributes: Mapping[str, str | int | float | None] | None = None,
) -> str:
    """Record one hop of a task (submit, dispatch, result) as a span that ends at once, a
    child of ``parent`` (a new trace when None); returns its ``traceparent`` for the next
    hop. Without an installed SDK this only computes the ids, as :func:`child_traceparent`."""
    if not exporting():  # the fast path of every task: ids only, no context to bind
        return child_traceparent(parent)
    attrs = {k: v for k, v in (attributes or {}).items() if v is not None}
    with span(name, parent, attrs) as child:
        return child


class _Task(Protocol):
    id: str
    handler: str
    workflow_id: str | None
    step: str | None


def hop_attributes(spec: _Task, attempt: int | None = None) -> dict[str, str | int | None]:
    """The span attributes of a task's hop (``worldpool.*``; None values are dropped)."""
    return {
        "worldpool.task_id": spec.id,
        "worldpool.handler": spec.handler,
        "worldpool.workflow_id": spec.workflow_id,
        "worldpool.step": spec.step,
        "worldpool.attempt": attempt,
    }


def exporting() -> bool:
    """True when spans are being exported (a configured SDK provider is installed).

    Asked on every hop of every task: ``get_tracer_provider()`` reads the environment on
    each call while no provider is set (tens of microseconds), so the API's own "none set
    yet" (its module's provider slot still empty, no provider named by the environment) is
    read first, and a real provider, once seen, is remembered (OTel sets one only once)."""
    global _EXPORTING
    if _EXPORTING:
        return True
    otel = _otel_trace()
    if otel is None:
        return False
    if getattr(otel, "_TRACER_PROVIDER", _UNSET) is None and not _provider_from_env():
        return False
    _EXPORTING = not isinstance(otel.get_tracer_provider(), otel.ProxyTracerProvider)
    return _EXPORTING


def _provider_from_env() -> bool:
    global _ENV_PROVIDER
    if _ENV_PROVIDER is None:  # read once: the environment names it at start-up
        _ENV_PROVIDER = bool(os.environ.get("OTEL_PYTHON_TRACER_PROVIDER"))
    return _ENV_PROVIDER


def _otel_trace() -> Any | None:
    global _OTEL
    if _OTEL is _UNSET:  # imported once: a failed import is not cached by Python
        try:
            from opentelemetry import trace
        except ImportError:
            _OTEL = None
        else:
            _OTEL = trace
    return _OTEL


_UNSET: Any = object()
_OTEL: Any = _UNSET
_EXPORTING = False
_ENV_PROVIDER: bool | None = None


def _extract_context(traceparent: str | None) -> Any | None:
    if not is_valid_traceparent(traceparent):
        return None
    try:
        from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
    except ImportError:  # pragma: no cover - api present without propagators is unusual
        return None
    return TraceContextTextMapPropagator().extract({"traceparent": traceparent or ""})


def configure_exporter(env: Mapping[str, str] | None = None) -> bool:
    """Install an OTLP span exporter if ``OTEL_EXPORTER_OTLP_ENDPOINT`` is set.

    Needs ``opentelemetry-sdk`` and ``opentelemetry-exporter-otlp``; returns True if
    spans will be exported. Missing packages are logged with an install hint, not raised.
    """
    env = os.environ if env is None else env
    if not env.get("OTEL_EXPORTER_OTLP_ENDPOINT") and not env.get(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"
    ):
        return False
    if env.get("OTEL_SDK_DISABLED", "").lower() == "true" or env.get(
        "OTEL_TRACES_EXPORTER", "otlp"
    ).lower() in ("none", ""):
        return False
    try:  # imported by name: optional packages, absent from the type-checked environment
        from opentelemetry import trace

        otlp = importlib.import_module("opentelemetry.exporter.otlp.proto.http.trace_exporter")
        resources = importlib.import_module("opentelemetry.sdk.resources")
        sdk_trace = importlib.import_module("opentelemetry.sdk.trace")
        export = importlib.import_module("opentelemetry.sdk.trace.export")
    except ImportError:
        log.warning(
            "OTEL_EXPORTER_OTLP_ENDPOINT is set but the exporter is not installed: "
            "pip install 'worldpool[otel]'"
        )
        return False
    service = env.get("OTEL_SERVICE_NAME", "worldpool")
    provider = sdk_trace.TracerProvider(
        resource=resources.Resource.create({"service.name": service})
    )
    # The endpoint of ``env`` (the exporter alone would read os.environ's).
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    if not endpoint:
        endpoint = env["OTEL_EXPORTER_OTLP_ENDPOINT"].rstrip("/") + "/v1/traces"
    exporter = otlp.OTLPSpanExporter(endpoint=endpoint)
    provider.add_span_processor(export.BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    return True


# --------------------------------------------------------------------------- logging

_workflow_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "wp_workflow", default=None
)
_task_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("wp_task", default=None)
_traceparent: contextvars.ContextVar[str | None] = contextvars.ContextVar("wp_trace", default=None)


@contextmanager
def bind(
    *, workflow_id: str | None = None, task_id: str | None = None, traceparent: str | None = None
) -> Iterator[str | None]:
    """Put ids on every log line written inside the block (asyncio- and thread-safe via
    contextvars; a ``None`` argument keeps the outer value). Yields the active traceparent."""
    tokens: list[tuple[contextvars.ContextVar[str | None], contextvars.Token[str | None]]] = []
    for var, value in (
        (_workflow_id, workflow_id),
        (_task_id, task_id),
        (_traceparent, traceparent),
    ):
        if value is not None:
            tokens.append((var, var.set(value)))
    try:
        yield _traceparent.get()
    finally:
        for var, token in reversed(tokens):
            var.reset(token)


def current_traceparent() -> str | None:
    return _traceparent.get()


class TraceContextFilter(logging.Filter):
    """Adds ``workflow_id``, ``task_id``, ``trace_id`` and ``span_id`` to every record
    (``-`` when unset), so a format string can always use them::

        "%(asctime)s %(levelname)s [wf=%(workflow_id)s task=%(task_id)s trace=%(trace_id)s] %(message)s"
    """

    def filter(self, record: logging.LogRecord) -> bool:
        parsed = parse_traceparent(_traceparent.get())
        for attr, value in (
            ("workflow_id", _workflow_id.get()),
            ("task_id", _task_id.get()),
            ("trace_id", parsed.trace_id if parsed else None),
            ("span_id", parsed.span_id if parsed else None),
        ):
            if getattr(record, attr, None) in (None, "-"):
                setattr(record, attr, value or "-")
        return True


LOG_FORMAT = (
    "%(asctime)s %(levelname)s %(name)s [wf=%(workflow_id)s task=%(task_id)s "
    "trace=%(trace_id)s] %(message)s"
)
