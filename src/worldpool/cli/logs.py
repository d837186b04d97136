"""Logs and traces of the long-running commands (``serve``, ``worker``).

* ``--log-format text`` (the default): one readable line per record, with the workflow,
  task and trace ids the record was written under;
* ``--log-format json``: one JSON object per line (``ts``, ``level``, ``logger``,
  ``message``, ``workflow_id``, ``task_id``, ``worker_id``, ``trace_id``, ``span_id`` and
  ``exc`` for a traceback), for Loki, Elasticsearch, CloudWatch and friends;
* spans over OTLP when the standard ``OTEL_*`` variables ask for them
  (:func:`worldpool.tracing.configure_exporter`; ``pip install 'worldpool[otel]'``).

The ids come from :func:`worldpool.tracing.bind` (contextvars) through
:class:`~worldpool.tracing.TraceContextFilter`; a worker's id is the process's own
(:func:`set_worker_id`).
"""

from __future__ import annotations

import logging
import os
import sys
import time
from enum import StrEnum
from typing import Annotated

import orjson
import typer

from worldpool.tracing import LOG_FORMAT, TraceContextFilter, configure_exporter


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"


LogFormatOpt = Annotated[
    LogFormat,
    typer.Option(
        "--log-format",
        envvar="WORLDPOOL_LOG_FORMAT",
        help="text lines, or json: one object per line with task, workflow, worker, trace ids",
    ),
]

_IDS = ("workflow_id", "task_id", "worker_id", "trace_id", "span_id")
_worker_id: str | None = None


def set_worker_id(worker_id: str | None) -> None:
    """Stamp this process's log lines with its worker id (a worker runs one)."""
    global _worker_id
    _worker_id = worker_id


class JsonFormatter(logging.Formatter):
    """One JSON object per record; ids are ``null`` when the record was written outside
    any task (``-`` in the text format)."""

    def format(self, record: logging.LogRecord) -> str:
        doc: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in _IDS:
            value = getattr(record, name, None)
            doc[name] = None if value in (None, "-") else value
        if record.exc_info:
            doc["exc"] = self.formatException(record.exc_info)
        return orjson.dumps(doc, default=str).decode()


class _WorkerIdFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "worker_id", None) in (None, "-"):
            record.worker_id = _worker_id or "-"
        return True


def configure(log_format: LogFormat = LogFormat.TEXT) -> bool:
    """Log to stderr in ``log_format`` at ``WORLDPOOL_LOG_LEVEL`` (INFO), with the ids on
    every line, and export spans if ``OTEL_*`` says so. Returns True when spans export."""
    root = logging.getLogger()
    if not root.handlers:  # as logging.basicConfig: a host (pytest, an app) keeps its own
        handler = logging.StreamHandler(sys.stderr)
        handler.addFilter(TraceContextFilter())
        handler.addFilter(_WorkerIdFilter())
        handler.setFormatter(
            JsonFormatter() if log_format is LogFormat.JSON else logging.Formatter(LOG_FORMAT)
        )
        root.addHandler(handler)
        root.setLevel(os.environ.get("WORLDPOOL_LOG_LEVEL", "INFO").upper())
    exporting = configure_exporter()
    if exporting:
        logging.getLogger("worldpool.tracing").info(
            "exporting spans over OTLP to %s",
            os.environ.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            or os.environ.get("OTEL_EXPORTER_OTLP_ENDPOINT"),
        )
    return exporting
