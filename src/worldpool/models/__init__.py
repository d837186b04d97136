"""The data model every part of worldpool speaks: pydantic v2, JSON-safe, no I/O.

Workers advertise a :class:`WorkerProfile` once and a :class:`WorkerState` on every
heartbeat (:mod:`.workers`). A :class:`TaskSpec` says what a task needs; the orchestrator
keeps a :class:`TaskRecord` per task (:mod:`.tasks`) and a :class:`WorkflowRecord` per
workflow (:mod:`.workflows`). The router's explanation is a :class:`RoutingDecision`
(:mod:`.routing`). Everything that happens is an :class:`Event` (:mod:`.events`). Import
from here: the submodules are how the model is laid out, not an API.
"""

from worldpool.models.base import (
    JSONValue,
    Model,
    new_id,
    now_s,
)
from worldpool.models.events import (
    Event,
    EventKind,
)
from worldpool.models.hardware import (
    GPU,
    GROUPS,
    BrowserAutomation,
    CodeAnalysis,
    FeatureValue,
    Hardware,
    Isolation,
    Network,
    ResourceLimits,
    Virtualization,
    feature_problem,
)
from worldpool.models.inference import ServedModel, VisionModel
from worldpool.models.routing import (
    CandidateReport,
    RoutingDecision,
    Verdict,
)
from worldpool.models.tasks import (
    TERMINAL_TASK_STATUSES,
    Affinity,
    AffinityMode,
    ArtifactRef,
    AttemptOutcome,
    AttemptRecord,
    Envelope,
    HeartbeatReply,
    Requirements,
    ResultStatus,
    RetryPolicy,
    TaskRecord,
    TaskResult,
    TaskSpec,
    TaskStatus,
)
from worldpool.models.workers import (
    CUSTOM_CAPABILITY_PREFIX,
    KNOWN_CAPABILITIES,
    Capability,
    Location,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
    normalize_capability,
)
from worldpool.models.workflows import (
    AttemptCost,
    StepSpec,
    StepStatus,
    WorkflowRecord,
    WorkflowSpec,
    WorkflowState,
    WorkflowStatus,
)

__all__ = [
    "CUSTOM_CAPABILITY_PREFIX",
    "GPU",
    "GROUPS",
    "KNOWN_CAPABILITIES",
    "TERMINAL_TASK_STATUSES",
    "Affinity",
    "AffinityMode",
    "ArtifactRef",
    "AttemptCost",
    "AttemptOutcome",
    "AttemptRecord",
    "BrowserAutomation",
    "CandidateReport",
    "Capability",
    "CodeAnalysis",
    "Envelope",
    "Event",
    "EventKind",
    "FeatureValue",
    "Hardware",
    "HeartbeatReply",
    "Isolation",
    "JSONValue",
    "Location",
    "Model",
    "Network",
    "Requirements",
    "ResourceLimits",
    "ResultStatus",
    "RetryPolicy",
    "RoutingDecision",
    "ServedModel",
    "StepSpec",
    "StepStatus",
    "TaskRecord",
    "TaskResult",
    "TaskSpec",
    "TaskStatus",
    "Verdict",
    "Virtualization",
    "VisionModel",
    "Worker",
    "WorkerProfile",
    "WorkerState",
    "WorkerStatus",
    "WorkflowRecord",
    "WorkflowSpec",
    "WorkflowState",
    "WorkflowStatus",
    "feature_problem",
    "new_id",
    "normalize_capability",
    "now_s",
]
