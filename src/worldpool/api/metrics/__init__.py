"""Prometheus metrics derived from the event log, so they mean the same on every backend.

A :class:`Metrics` owns its own ``CollectorRegistry`` (one per app, never the global one).
The package, one module per part: :mod:`.instruments` (every metric, its name and help),
:mod:`.events` (events into counters and histograms, and the event data they read),
:mod:`.pool` (the pool, queue and dead-letter gauges), :mod:`.core` (:class:`Metrics`,
and the consumer loop that follows a backend).

Names follow Prometheus conventions (``worldpool_`` prefix, ``_total`` counters, base
units in seconds and USD); LLM token usage follows the OpenTelemetry GenAI semantic
conventions (``gen_ai.client.token.usage`` exported as ``gen_ai_client_token_usage``).
"""

from prometheus_client.exposition import CONTENT_TYPE_LATEST

from worldpool.api.metrics.core import DEAD_LETTER_EVERY_POLLS, READ_PACE_S, Metrics
from worldpool.api.metrics.events import UNKNOWN
from worldpool.api.metrics.instruments import DEAD_LETTER_SCAN
from worldpool.api.metrics.pool import CAPABILITY_READS_MAX

CONTENT_TYPE = CONTENT_TYPE_LATEST

__all__ = [
    "CAPABILITY_READS_MAX",
    "CONTENT_TYPE",
    "DEAD_LETTER_EVERY_POLLS",
    "DEAD_LETTER_SCAN",
    "READ_PACE_S",
    "UNKNOWN",
    "Metrics",
]
