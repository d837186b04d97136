"""Tasks: what one needs (:class:`TaskSpec`), the orchestrator's record of it
(:class:`TaskRecord`, with its :class:`AttemptRecord` per attempt and how each ended, an
:class:`AttemptOutcome`), what travels to a worker (:class:`Envelope`) and what comes back
(:class:`TaskResult`).
"""

from __future__ import annotations

from enum import Enum
from typing import Annotated, Any

from pydantic import Field, StringConstraints, field_validator

from worldpool.models.base import JSONValue, Model, new_id, now_s
from worldpool.models.hardware import FeatureValue, check_feature_key
from worldpool.models.routing import RoutingDecision
from worldpool.models.workers import WorkerStatus, _capability_set

SecretName = Annotated[str, StringConstraints(pattern=r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")]
"""A secret's name: what the handler asks ``ctx.secret()`` for, and the shell's variable."""
SecretRef = Annotated[
    str, StringConstraints(pattern=r"^(env:[A-Za-z_][A-Za-z0-9_]{0,127}|file:/[^\s]{1,4095})$")
]
"""Where the worker finds a secret's value: ``env:VAR`` (its environment) or ``file:/path``."""


class Requirements(Model):
    """Hard hardware / placement requirements of a task (all must hold)."""

    gpu: bool = False
    gpu_count: int = Field(default=0, ge=0)
    gpu_model: str | None = Field(default=None, description="substring match, e.g. 'H100'")
    min_vram_gb: float = Field(default=0.0, ge=0)
    min_memory_gb: float = Field(default=0.0, ge=0)
    min_cpus: int = Field(default=0, ge=0)
    model: str | None = Field(default=None, description="LLM model the worker must serve")
    min_context_tokens: int = Field(
        default=0, ge=0, description="a served model (the one named by 'model') with this context"
    )
    min_tokens_per_s: float = Field(
        default=0.0, ge=0, description="a served model (the one named by 'model') this fast"
    )
    tools: list[str] = Field(default_factory=list)
    regions: list[str] = Field(
        default_factory=list,
        description="allowed regions: codes, glob patterns ('eu-*') or macro-regions ('europe')",
    )
    exclude_regions: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict, description="labels that must match")
    features: dict[str, FeatureValue] = Field(
        default_factory=dict,
        description="the seed's hardware groups, 'group.field' -> wanted: a bool must match, "
        "a number is a minimum, a string matches, a list must be contained; e.g. "
        "{'virtualization.snapshot_support': true, 'browser_automation.concurrent_sessions': 4}",
    )

    @field_validator("features")
    @classmethod
    def _known_features(cls, v: dict[str, FeatureValue]) -> dict[str, FeatureValue]:
        for key in v:
            check_feature_key(key)
        return v


class AffinityMode(str, Enum):
    SOFT = "soft"
    HARD = "hard"


class Affinity(Model):
    """Keep tasks sharing ``key`` on the same worker (warm context).

    ``soft``: prefer the worker that holds the key, waiting at most ``wait_s`` for it to
    have a free slot, then take the best equivalent. ``hard``: only that worker.
    """

    key: str = Field(min_length=1)
    mode: AffinityMode = AffinityMode.SOFT
    wait_s: float = Field(default=5.0, ge=0)


class RetryPolicy(Model):
    max_retries: int = Field(default=3, ge=0, le=100)
    backoff_initial_s: float = Field(default=0.5, ge=0)
    backoff_max_s: float = Field(default=30.0, ge=0)
    backoff_multiplier: float = Field(default=2.0, ge=1)
    jitter: bool = True
    prefer_different_worker: bool = True


class ArtifactRef(Model):
    """A content-addressed artifact, passed by reference."""

    digest: str = Field(pattern=r"^sha256:[0-9a-f]{64}$")
    name: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=0)
    media_type: str = "application/octet-stream"
    producer: str | None = Field(default=None, description="worker id that stored it")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, v: str) -> str:
        if "/" in v or "\\" in v or v in {".", ".."} or "\x00" in v:
            raise ValueError(f"artifact name {v!r} must be a plain file name (no '/', '..')")
        return v


class TaskStatus(str, Enum):
    PENDING = "pending"  # waiting for a worker (possibly unschedulable, see record.pending_reason)
    DISPATCHED = "dispatched"  # reserved on a worker and sent
    RUNNING = "running"  # the worker started it
    RETRYING = "retrying"  # failed, waiting out its backoff before going pending again
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # out of retries; dead-lettered with its last error
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in TERMINAL_TASK_STATUSES


TERMINAL_TASK_STATUSES = frozenset({TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED})


class TaskSpec(Model):
    """What a task is and needs. Immutable once submitted."""

    id: str = Field(default_factory=lambda: new_id("task"), pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    handler: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.:-]+$")
    payload: dict[str, JSONValue] = Field(default_factory=dict)
    capabilities: frozenset[str] = Field(default_factory=frozenset)
    requirements: Requirements = Field(default_factory=Requirements)
    user_location: str | None = Field(default=None, description="region or city code of the user")
    interactive: bool = False
    heavy: bool = Field(default=False, description="heavy batch inference (follow-the-sun)")
    priority: int = Field(default=0, ge=-100, le=100, description="higher runs first")
    weights: dict[str, float] = Field(
        default_factory=dict,
        description="per-task scorer weight overrides, e.g. {'cost': 1.0} for 'cheapest idle'",
    )
    affinity: Affinity | None = None
    retry: RetryPolicy = Field(default_factory=RetryPolicy)

    @field_validator("weights")
    @classmethod
    def _weights_non_negative(cls, v: dict[str, float]) -> dict[str, float]:
        bad = {k: w for k, w in v.items() if not 0 <= w < float("inf")}
        if bad:
            raise ValueError(f"weights must be finite and >= 0, got {bad}")
        return v

    schedule_to_start_timeout_s: float | None = Field(default=None, gt=0)
    execution_timeout_s: float | None = Field(default=None, gt=0)
    heartbeat_timeout_s: float | None = Field(default=None, gt=0)
    idempotency_key: str | None = Field(default=None, max_length=256)
    inputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    workflow_id: str | None = None
    step: str | None = None
    secrets: dict[SecretName, SecretRef] = Field(
        default_factory=dict,
        description="name -> reference ('env:VAR' or 'file:/path'), resolved on the worker; "
        "the value is never stored (docs/security.md#secrets)",
    )
    reply_to: str | None = Field(
        default=None,
        pattern=r"^[A-Za-z0-9_-]{1,64}$",
        description="the client pushed the task's final record (set by worldpool.Client)",
    )

    @field_validator("capabilities", mode="before")
    @classmethod
    def _normalize_capabilities(cls, v: Any) -> frozenset[str]:
        return _capability_set(v)


class AttemptOutcome(str, Enum):
    """How an attempt ended: the lifecycle decides on this (retry budget, failover), never
    on the error text, which is for people."""

    SUCCEEDED = "succeeded"
    HANDLER_ERROR = "handler_error"  # the handler raised (or reported a failure)
    REJECTED = "rejected"  # the worker refused the envelope (bad signature, unknown handler)
    TIMED_OUT = "timed_out"  # an execution, heartbeat or schedule-to-start timeout passed
    WORKER_LOST = "worker_lost"  # its worker died or was declared offline
    DISPATCH_INTERRUPTED = "dispatch_interrupted"  # written as dispatched, never sent
    HANDED_BACK = "handed_back"  # the worker gave it back (drain): re-routed, no penalty
    CANCELLED = "cancelled"  # by a user, or because its workflow ended


class AttemptRecord(Model):
    attempt: int = Field(ge=1)
    worker_id: str
    region: str = ""
    dispatched_at: float = Field(default_factory=now_s)
    started_at: float | None = None
    ended_at: float | None = None
    status: TaskStatus = TaskStatus.DISPATCHED
    error: str | None = None
    outcome: AttemptOutcome | None = Field(default=None, description="None while it runs")
    # Cost: the worker's rate, taken from the pool snapshot at dispatch (so a lost worker's
    # attempt is still charged), times the time it held the slot, plus what it reported.
    cost_per_hour: float = Field(default=0.0, ge=0, description="the worker's USD/h at dispatch")
    compute_cost_usd: float = Field(default=0.0, ge=0, description="cost_per_hour x slot time")
    token_cost_usd: float = Field(default=0.0, ge=0, description="token/API cost it reported")
    tokens_used: int = Field(default=0, ge=0)

    @property
    def cost_usd(self) -> float:
        return self.compute_cost_usd + self.token_cost_usd


class TaskRecord(Model):
    """The orchestrator's view of one task. Stored in the backend."""

    spec: TaskSpec
    version: int = Field(default=0, ge=0, description="bumped by every successful put (CAS)")
    status: TaskStatus = TaskStatus.PENDING
    attempt: int = Field(default=0, ge=0, description="current attempt; 0 before first dispatch")
    worker_id: str | None = None
    attempts: list[AttemptRecord] = Field(default_factory=list)
    submitted_at: float = Field(default_factory=now_s)
    not_before: float = Field(default=0.0, description="retry backoff: not dispatched before")
    started_at: float | None = None
    ended_at: float | None = None
    result: JSONValue = None
    result_ref: ArtifactRef | None = Field(
        default=None,
        description="the value, stored as an artifact (JSON) because it was over "
        "result_inline_max_bytes; ``result`` is None then",
    )
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    error: str | None = None
    pending_reason: str | None = Field(default=None, description="why no worker can take it")
    decision: RoutingDecision | None = None
    tokens_used: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0, description="every attempt's compute + tokens")
    compute_cost_usd: float = Field(
        default=0.0, ge=0, description="every attempt's worker cost_per_hour x slot time"
    )
    token_cost_usd: float = Field(
        default=0.0, ge=0, description="token and API costs the handlers reported"
    )
    progress: float | None = Field(default=None, ge=0, le=1)
    logs: list[str] = Field(default_factory=list)
    meta: dict[str, JSONValue] = Field(
        default_factory=dict,
        description="handler metadata (executor details: vm_id, sandbox_id, vnc_url, ...)",
    )
    # System fields: written by worldpool only; a handler's metadata cannot reach them.
    traceparent: str | None = Field(
        default=None, description="W3C trace context: the submit span, then the last run span"
    )
    upstream: dict[str, JSONValue] = Field(
        default_factory=dict, description="result values of the workflow steps it depends on"
    )
    last_progress_at: float | None = Field(
        default=None, description="when the running attempt last reported (heartbeat timeout)"
    )
    retry_base: int = Field(
        default=0, ge=0, description="attempts before the last manual retry (not counted)"
    )

    @property
    def id(self) -> str:
        return self.spec.id


# --------------------------------------------------------------------------- delivery


class Envelope(Model):
    """What travels to a worker. JSON only; signed with HMAC-SHA256 when a secret is set."""

    task_id: str
    attempt: int = Field(ge=1)
    handler: str
    payload: dict[str, JSONValue] = Field(default_factory=dict)
    inputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    deadline: float | None = Field(default=None, description="epoch seconds; None = no limit")
    traceparent: str | None = None
    workflow_id: str | None = None
    step: str | None = None
    upstream: dict[str, JSONValue] = Field(
        default_factory=dict, description="result values of the steps this one depends on"
    )
    heartbeat_timeout_s: float | None = None
    signature: str | None = None
    secrets: dict[str, str] = Field(
        default_factory=dict, description="the task's secret references (never values)"
    )
    worker_id: str | None = Field(
        default=None, description="the worker the envelope is for (signed with its key)"
    )
    expires_at: float | None = Field(
        default=None, description="epoch seconds after which it must never start"
    )
    nonce: str | None = Field(default=None, description="random; makes every envelope unique")


class ResultStatus(str, Enum):
    STARTED = "started"  # not terminal: the handler began (keeps the slot)
    PROGRESS = "progress"  # not terminal: progress / heartbeat from a long task
    SUCCEEDED = "succeeded"
    FAILED = "failed"  # handler raised; retryable unless ``retryable`` is False
    REJECTED = "rejected"  # envelope refused (bad signature, unknown handler, ...): dead letter
    REVOKED = "revoked"  # the worker gave it back (drain, cancel): re-route without penalty

    @property
    def terminal(self) -> bool:
        return self not in {ResultStatus.STARTED, ResultStatus.PROGRESS}


class TaskResult(Model):
    """What a worker reports for one attempt. Ignored unless ``attempt`` is current."""

    task_id: str
    attempt: int = Field(ge=1)
    worker_id: str
    status: ResultStatus
    value: JSONValue = None
    value_ref: ArtifactRef | None = Field(
        default=None, description="the value stored as an artifact (too large to inline)"
    )
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    error: str | None = None
    retryable: bool = True
    started_at: float | None = None
    ended_at: float = Field(default_factory=now_s)
    tokens_used: int = Field(default=0, ge=0)
    cost_usd: float = Field(
        default=0.0, ge=0, description="token/API cost (worker time is charged by worldpool)"
    )
    progress: float | None = Field(default=None, ge=0, le=1)
    logs: list[str] = Field(default_factory=list)
    meta: dict[str, JSONValue] = Field(default_factory=dict, description="handler metadata")
    traceparent: str | None = Field(
        default=None, description="the attempt's run span, set by the worker runtime"
    )
    signature: str | None = Field(
        default=None, description="HMAC-SHA256 by the sending worker's key (identity.py)"
    )


class HeartbeatReply(Model):
    """What the backend answers a heartbeat with."""

    status: WorkerStatus = Field(description="OFFLINE means: you were declared dead, re-register")
    revoked: list[str] = Field(
        default_factory=list,
        description="in-flight task ids that are no longer yours (cancelled or re-routed): stop",
    )
    server_time: float
