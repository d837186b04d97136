"""The data model every part of worldpool speaks: pydantic v2, JSON-safe, no I/O.

Workers advertise a :class:`WorkerProfile` once and a :class:`WorkerState` on every
heartbeat. A :class:`TaskSpec` says what a task needs; the orchestrator keeps a
:class:`TaskRecord` per task and a :class:`WorkflowRecord` per workflow. The router's
explanation is a :class:`RoutingDecision`. Everything that happens is an :class:`Event`.
"""

from __future__ import annotations

import difflib
import re
import time
import uuid
from enum import Enum
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

JSONValue: TypeAlias = Any  # anything orjson can serialise; checked at the boundaries

# --------------------------------------------------------------------------- helpers


def now_s() -> float:
    """Wall-clock seconds since the epoch (the unit of every timestamp in the model)."""
    return time.time()


def new_id(prefix: str) -> str:
    """A short, sortable-enough unique id such as ``task-3f9a1c2b7d4e``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Model(BaseModel):
    """Base for every model: unknown fields are an error, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# --------------------------------------------------------------------------- capabilities


class Capability(str, Enum):
    """The seed's capability set. Custom capabilities are strings starting with ``x-``."""

    CODING = "coding"
    PLANNING = "planning"
    REVIEWING = "reviewing"
    RESEARCH = "research"
    DEBUGGING = "debugging"
    TESTING = "testing"
    FILE_OPERATIONS = "file_operations"
    SHELL_OPERATIONS = "shell_operations"
    BROWSER_OPERATIONS = "browser_operations"


KNOWN_CAPABILITIES: frozenset[str] = frozenset(c.value for c in Capability)
CUSTOM_CAPABILITY_PREFIX = "x-"
_CUSTOM_RE = re.compile(r"^x-[a-z0-9][a-z0-9_.-]{0,62}$")


def normalize_capability(value: str) -> str:
    """Validate one capability name; unknown names get a did-you-mean hint.

    >>> normalize_capability("Browser_Operations")
    'browser_operations'
    """
    name = value.strip().lower().replace("-", "_") if not value.startswith("x-") else value
    name = name.strip()
    if name in KNOWN_CAPABILITIES:
        return name
    if _CUSTOM_RE.match(name):
        return name
    close = difflib.get_close_matches(name, sorted(KNOWN_CAPABILITIES), n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(
        f"unknown capability {value!r}.{hint} Known: {', '.join(sorted(KNOWN_CAPABILITIES))}; "
        "custom capabilities must start with 'x-' (for example 'x-gpu-render')."
    )


def _capability_set(values: Any) -> frozenset[str]:
    if isinstance(values, str):
        values = [values]
    return frozenset(
        normalize_capability(str(v.value if isinstance(v, Enum) else v)) for v in values
    )


# --------------------------------------------------------------------------- hardware


class GPU(Model):
    model: str = Field(description="marketing name, e.g. 'A100-80GB', 'H100'")
    vram_gb: float = Field(gt=0)
    count: int = Field(default=1, ge=1)


class ServedModel(Model):
    """An LLM a worker serves (for example through vLLM)."""

    name: str
    context_tokens: int = Field(default=8192, gt=0)
    tokens_per_s: float = Field(default=0.0, ge=0)
    concurrent_requests: int = Field(default=1, ge=1)


class Hardware(Model):
    cpus: int = Field(default=1, ge=1)
    memory_gb: float = Field(default=1.0, gt=0)
    disk_gb: float = Field(default=0.0, ge=0)
    gpus: list[GPU] = Field(default_factory=list)
    tools: list[str] = Field(default_factory=list, description="e.g. chromium, bwrap, git, kvm")
    models: list[ServedModel] = Field(default_factory=list)
    virtualization: str | None = Field(default=None, description="firecracker, bubblewrap, kvm")
    browser: str | None = Field(default=None, description="e.g. 'chromium'")

    @property
    def gpu_count(self) -> int:
        return sum(g.count for g in self.gpus)

    @property
    def max_vram_gb(self) -> float:
        return max((g.vram_gb for g in self.gpus), default=0.0)


class Location(Model):
    """Where a worker (or a user) is. Build one from a region code with ``geo.location_for``."""

    region: str = Field(description="cloud region or city code, e.g. 'ap-northeast-1', 'tokyo'")
    city: str = ""
    lat: float = Field(default=0.0, ge=-90, le=90)
    lon: float = Field(default=0.0, ge=-180, le=180)
    macro_region: str = Field(default="", description="americas, europe, asia-pacific, ...")
    timezone: str = Field(default="UTC", description="IANA name, e.g. 'Asia/Tokyo'")


# --------------------------------------------------------------------------- workers


class WorkerStatus(str, Enum):
    ONLINE = "online"
    DRAINING = "draining"
    OFFLINE = "offline"


class WorkerProfile(Model):
    """What a worker is and has. Sent once at registration (and again if it changes)."""

    id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:-]*$")
    capabilities: frozenset[str] = Field(default_factory=frozenset)
    handlers: frozenset[str] = Field(
        default_factory=frozenset, description="handler names this worker can run"
    )
    hardware: Hardware = Field(default_factory=Hardware)
    location: Location
    cost_per_hour: float = Field(default=0.0, ge=0, description="USD per hour")
    max_concurrency: int = Field(default=1, ge=1, description="task slots")
    latency_to_orchestrator_ms: float = Field(default=0.0, ge=0)
    labels: dict[str, str] = Field(default_factory=dict)

    @field_validator("capabilities", mode="before")
    @classmethod
    def _normalize_capabilities(cls, v: Any) -> frozenset[str]:
        return _capability_set(v)


class WorkerState(Model):
    """A worker's live state: what every heartbeat carries."""

    worker_id: str
    status: WorkerStatus = WorkerStatus.ONLINE
    running: int = Field(default=0, ge=0, description="tasks running or reserved now")
    last_heartbeat: float = Field(default_factory=now_s)
    latency_ms: float | None = Field(default=None, ge=0, description="measured RTT to backend")
    cached: list[str] = Field(
        default_factory=list, description="artifact digests / workspace keys held locally"
    )
    sticky_keys: list[str] = Field(
        default_factory=list, description="affinity keys whose context is warm here"
    )


class Worker(Model):
    """A profile and its latest state, as the router sees it."""

    profile: WorkerProfile
    state: WorkerState

    @property
    def id(self) -> str:
        return self.profile.id

    @property
    def free_slots(self) -> int:
        return max(0, self.profile.max_concurrency - self.state.running)


# --------------------------------------------------------------------------- tasks


class Requirements(Model):
    """Hard hardware / placement requirements of a task (all must hold)."""

    gpu: bool = False
    gpu_count: int = Field(default=0, ge=0)
    gpu_model: str | None = Field(default=None, description="substring match, e.g. 'H100'")
    min_vram_gb: float = Field(default=0.0, ge=0)
    min_memory_gb: float = Field(default=0.0, ge=0)
    min_cpus: int = Field(default=0, ge=0)
    model: str | None = Field(default=None, description="LLM model the worker must serve")
    tools: list[str] = Field(default_factory=list)
    regions: list[str] = Field(
        default_factory=list,
        description="allowed regions: codes, glob patterns ('eu-*') or macro-regions ('europe')",
    )
    exclude_regions: list[str] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict, description="labels that must match")


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

    @field_validator("capabilities", mode="before")
    @classmethod
    def _normalize_capabilities(cls, v: Any) -> frozenset[str]:
        return _capability_set(v)


class AttemptRecord(Model):
    attempt: int = Field(ge=1)
    worker_id: str
    region: str = ""
    dispatched_at: float = Field(default_factory=now_s)
    started_at: float | None = None
    ended_at: float | None = None
    status: TaskStatus = TaskStatus.DISPATCHED
    error: str | None = None


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
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    error: str | None = None
    pending_reason: str | None = Field(default=None, description="why no worker can take it")
    decision: RoutingDecision | None = None
    tokens_used: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    progress: float | None = Field(default=None, ge=0, le=1)
    logs: list[str] = Field(default_factory=list)
    meta: dict[str, JSONValue] = Field(
        default_factory=dict, description="executor details: vm_id, sandbox_id, vnc_url, ..."
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
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    error: str | None = None
    retryable: bool = True
    started_at: float | None = None
    ended_at: float = Field(default_factory=now_s)
    tokens_used: int = Field(default=0, ge=0)
    cost_usd: float = Field(default=0.0, ge=0)
    progress: float | None = Field(default=None, ge=0, le=1)
    logs: list[str] = Field(default_factory=list)
    meta: dict[str, JSONValue] = Field(default_factory=dict)


class HeartbeatReply(Model):
    """What the backend answers a heartbeat with."""

    status: WorkerStatus = Field(description="OFFLINE means: you were declared dead, re-register")
    revoked: list[str] = Field(
        default_factory=list,
        description="in-flight task ids that are no longer yours (cancelled or re-routed): stop",
    )
    server_time: float


# --------------------------------------------------------------------------- routing


class Verdict(Model):
    """A filter's answer for one worker: ``ok`` or excluded with a code and a reason."""

    plugin: str
    ok: bool
    code: str = "ok"
    reason: str = ""


class CandidateReport(Model):
    worker_id: str
    region: str = ""
    feasible: bool
    verdicts: list[Verdict] = Field(default_factory=list, description="failing verdicts first")
    scores: dict[str, float] = Field(default_factory=dict, description="scorer -> 0..1")
    total: float = 0.0


class RoutingDecision(Model):
    """Why a task went where it went (or why it could not go anywhere)."""

    task_id: str
    winner: str | None = None
    runner_up: str | None = None
    weights: dict[str, float] = Field(default_factory=dict)
    candidates: list[CandidateReport] = Field(
        default_factory=list, description="ranked feasible first; capped for big pools"
    )
    pool_size: int = 0
    feasible_count: int = 0
    excluded_by: dict[str, int] = Field(
        default_factory=dict, description="'plugin:code' -> number of workers it excluded"
    )
    omitted_candidates: int = Field(
        default=0, description="candidates evaluated but not listed (report cap)"
    )
    sampled: bool = Field(default=False, description="True if not every feasible worker scored")
    reasons: list[str] = Field(default_factory=list, description="why unschedulable")
    suggestion: str | None = Field(default=None, description="smallest change to make it fit")
    waiting_for_affinity: bool = False
    decided_at: float = Field(default_factory=now_s)
    duration_us: float = 0.0

    @property
    def placeable(self) -> bool:
        return self.winner is not None


# --------------------------------------------------------------------------- workflows


class StepSpec(Model):
    """One step of a workflow: a task template plus its dependencies."""

    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.-]+$")
    task: TaskSpec
    after: list[str] = Field(default_factory=list)
    sticky_to: str | None = Field(
        default=None, description="run on the same worker as this earlier step (soft affinity)"
    )


class WorkflowSpec(Model):
    id: str = Field(default_factory=lambda: new_id("wf"), pattern=r"^[A-Za-z0-9_.:-]{1,128}$")
    name: str = Field(default="workflow", min_length=1, max_length=128)
    steps: list[StepSpec] = Field(min_length=1)
    user_location: str | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _unique_steps(self) -> WorkflowSpec:
        seen: set[str] = set()
        for step in self.steps:
            if step.name in seen:
                raise ValueError(
                    f"step name {step.name!r} is used twice; step names must be unique"
                )
            seen.add(step.name)
        return self


class WorkflowState(str, Enum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def terminal(self) -> bool:
        return self in {WorkflowState.SUCCEEDED, WorkflowState.FAILED, WorkflowState.CANCELLED}


class WorkflowRecord(Model):
    """The orchestrator's view of a workflow: its spec and one task id per step."""

    spec: WorkflowSpec
    version: int = Field(default=0, ge=0, description="bumped by every successful put (CAS)")
    status: WorkflowState = WorkflowState.PENDING
    task_ids: dict[str, str] = Field(default_factory=dict, description="step -> task id")
    submitted_at: float = Field(default_factory=now_s)
    ended_at: float | None = None
    error: str | None = None

    @property
    def id(self) -> str:
        return self.spec.id


class StepStatus(Model):
    """One step in the status document (the seed's shape, and more)."""

    step: str
    task_id: str | None = None
    handler: str = ""
    after: list[str] = Field(default_factory=list)
    worker: str | None = None
    region: str | None = None
    gpu: str | None = None
    status: str = TaskStatus.PENDING.value
    attempts: int = 0
    queued_at: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    queue_wait_ms: int | None = None
    duration_ms: int | None = None
    tokens_used: int = 0
    cost_usd: float = 0.0
    vm_id: str | None = None
    sandbox_id: str | None = None
    vnc_url: str | None = None
    screenshot: ArtifactRef | None = None
    outputs: dict[str, ArtifactRef] = Field(default_factory=dict)
    reason: str | None = Field(default=None, description="one line: why this worker won")
    pending_reason: str | None = None
    error: str | None = None


class WorkflowStatus(Model):
    """The status document pushed to watchers."""

    id: str
    name: str
    status: WorkflowState
    steps: list[StepStatus]
    submitted_at: float
    ended_at: float | None = None
    total_cost_usd: float = 0.0
    total_tokens: int = 0
    estimated_completion_sec: float | None = None
    error: str | None = None


# --------------------------------------------------------------------------- events


class EventKind(str, Enum):
    WORKER_REGISTERED = "worker.registered"
    WORKER_ONLINE = "worker.online"
    WORKER_DRAINING = "worker.draining"
    WORKER_OFFLINE = "worker.offline"
    TASK_SUBMITTED = "task.submitted"
    TASK_ROUTED = "task.routed"
    TASK_UNSCHEDULABLE = "task.unschedulable"
    TASK_DISPATCHED = "task.dispatched"
    TASK_STARTED = "task.started"
    TASK_PROGRESS = "task.progress"
    TASK_SUCCEEDED = "task.succeeded"
    TASK_FAILED = "task.failed"
    TASK_RETRYING = "task.retrying"
    TASK_FAILOVER = "task.failover"
    TASK_TIMED_OUT = "task.timed_out"
    TASK_CANCELLED = "task.cancelled"
    TASK_DEAD_LETTERED = "task.dead_lettered"
    WORKFLOW_SUBMITTED = "workflow.submitted"
    WORKFLOW_SUCCEEDED = "workflow.succeeded"
    WORKFLOW_FAILED = "workflow.failed"
    WORKFLOW_CANCELLED = "workflow.cancelled"


class Event(Model):
    """Something that happened. ``seq`` is assigned by the backend's event log."""

    kind: EventKind
    at: float = Field(default_factory=now_s)
    seq: str | None = Field(default=None, description="backend-assigned, monotonically ordered")
    task_id: str | None = None
    workflow_id: str | None = None
    step: str | None = None
    worker_id: str | None = None
    attempt: int | None = None
    message: str = ""
    data: dict[str, JSONValue] = Field(default_factory=dict)


TaskRecord.model_rebuild()
