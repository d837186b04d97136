"""Every worldpool metric: the Prometheus counters, histograms and gauges, in one registry.

Names follow Prometheus conventions (``worldpool_`` prefix, ``_total`` counters, base
units in seconds and USD); LLM token usage follows the OpenTelemetry GenAI semantic
conventions (``gen_ai.client.token.usage`` exported as ``gen_ai_client_token_usage``).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600)
_TOKEN_BUCKETS = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304)
DEAD_LETTER_SCAN = 10_000
"""The dead-letter gauge counts at most this many of the newest letters."""


class Instruments:
    """The metrics, registered in ``registry`` (one per app, never the global one)."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry
        r = self.registry
        hw = ["handler", "worker"]
        self.submitted = Counter(
            "worldpool_tasks_submitted", "Tasks submitted.", ["handler"], registry=r
        )
        self.started = Counter("worldpool_tasks_started", "Task attempts started.", hw, registry=r)
        self.succeeded = Counter("worldpool_tasks_succeeded", "Tasks succeeded.", hw, registry=r)
        self.failed = Counter("worldpool_tasks_failed", "Tasks failed for good.", hw, registry=r)
        self.retried = Counter("worldpool_tasks_retried", "Task retries scheduled.", hw, registry=r)
        self.cancelled = Counter(
            "worldpool_tasks_cancelled", "Tasks cancelled.", ["handler"], registry=r
        )
        self.timed_out = Counter("worldpool_tasks_timed_out", "Task timeouts.", hw, registry=r)
        self.dead_lettered = Counter(
            "worldpool_tasks_dead_lettered", "Tasks dead-lettered.", ["handler"], registry=r
        )
        self.failovers = Counter(
            "worldpool_failovers", "Tasks moved off a dead or drained worker.", hw, registry=r
        )
        self.decisions = Counter(
            "worldpool_routing_decisions",
            "Routing decisions by outcome (placed, unschedulable).",
            ["handler", "outcome"],
            registry=r,
        )
        self.workflows = Counter(
            "worldpool_workflows",
            "Workflows by event (submitted, succeeded, ...).",
            ["event"],
            registry=r,
        )
        self.schedule_to_start = Histogram(
            "worldpool_task_schedule_to_start_seconds",
            "From queued (submit or retry) to started on a worker.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.run_time = Histogram(
            "worldpool_task_run_seconds",
            "From started to finished, per attempt.",
            ["handler"],
            buckets=_LATENCY_BUCKETS,
            registry=r,
        )
        self.token_usage = Histogram(
            "gen_ai_client_token_usage",
            "Tokens used per LLM call (OpenTelemetry GenAI gen_ai.client.token.usage).",
            ["gen_ai_operation_name", "gen_ai_request_model", "gen_ai_token_type"],
            buckets=_TOKEN_BUCKETS,
            registry=r,
        )
        self.tokens = Counter("worldpool_llm_tokens", "LLM tokens used.", hw, registry=r)
        self.cost = Counter("worldpool_cost_usd", "Cost of task attempts in USD.", hw, registry=r)
        self.cost_parts = Counter(
            "worldpool_cost_part_usd",
            "Cost of task attempts in USD by part: compute (worker time) or tokens.",
            [*hw, "part"],
            registry=r,
        )
        self.worker_up = Gauge(
            "worldpool_worker_up", "1 if the worker is online.", ["worker", "region"], registry=r
        )
        self.slots_used = Gauge(
            "worldpool_worker_slots_used", "Task slots in use.", ["worker", "region"], registry=r
        )
        self.slots_total = Gauge(
            "worldpool_worker_slots",
            "Task slots (max concurrency).",
            ["worker", "region"],
            registry=r,
        )
        self.queue_length = Gauge(
            "worldpool_queue_length", "Tasks waiting to be routed.", registry=r
        )
        self.unschedulable = Gauge(
            "worldpool_tasks_pending_unschedulable",
            "Pending tasks no worker can take right now.",
            registry=r,
        )
        self.events = Counter("worldpool_events", "Events consumed, by kind.", ["kind"], registry=r)
        self.heartbeat_age = Gauge(
            "worldpool_worker_heartbeat_age_seconds",
            "Seconds since the worker's last heartbeat (alert when it grows).",
            ["worker", "region"],
            registry=r,
        )
        self.queue_depth = Gauge(
            "worldpool_queue_depth",
            "Tasks waiting to be routed, per capability they require ('none': no capability).",
            ["capability"],
            registry=r,
        )
        self.dead_letters = Gauge(
            "worldpool_dead_letters",
            f"Dead letters stored, by code (the newest {DEAD_LETTER_SCAN} counted).",
            ["code"],
            registry=r,
        )
