"""worldpool: route AI-agent work to the right worker anywhere in the world.

The public API is re-exported here; everything else is reachable from its module.
"""

from worldpool.client import (
    Client,
    ResultTimeout,
    RunFilter,
    SyncClient,
    TaskHandle,
    WorkflowHandle,
)
from worldpool.config import Settings
from worldpool.embedded import EmbeddedPool
from worldpool.errors import (
    ConfigError,
    HandlerError,
    NotFoundError,
    TaskFailedError,
    ValidationError,
    WorkflowError,
    WorldpoolError,
)
from worldpool.models import (
    GPU,
    Affinity,
    AffinityMode,
    ArtifactRef,
    Capability,
    Event,
    EventKind,
    Hardware,
    Location,
    Requirements,
    RetryPolicy,
    RoutingDecision,
    ServedModel,
    TaskRecord,
    TaskSpec,
    TaskStatus,
    WorkerProfile,
    WorkflowSpec,
    WorkflowStatus,
)
from worldpool.orchestrator.core import Orchestrator
from worldpool.typed import TypedHandler, handler
from worldpool.worker.handlers import HandlerTable, TaskContext
from worldpool.worker.runtime import WorkerRuntime
from worldpool.workflow.builder import Workflow

__version__ = "0.1.0"

__all__ = [
    "GPU",
    "Affinity",
    "AffinityMode",
    "ArtifactRef",
    "Capability",
    "Client",
    "ConfigError",
    "EmbeddedPool",
    "Event",
    "EventKind",
    "HandlerError",
    "HandlerTable",
    "Hardware",
    "Location",
    "NotFoundError",
    "Orchestrator",
    "Requirements",
    "ResultTimeout",
    "RetryPolicy",
    "RoutingDecision",
    "RunFilter",
    "ServedModel",
    "Settings",
    "SyncClient",
    "TaskContext",
    "TaskFailedError",
    "TaskHandle",
    "TaskRecord",
    "TaskSpec",
    "TaskStatus",
    "TypedHandler",
    "ValidationError",
    "WorkerProfile",
    "WorkerRuntime",
    "Workflow",
    "WorkflowError",
    "WorkflowHandle",
    "WorkflowSpec",
    "WorkflowStatus",
    "WorldpoolError",
    "__version__",
    "handler",
]
