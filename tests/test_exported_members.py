"""The public API is curated: adding or removing a name is a deliberate change."""

import worldpool

EXPECTED = {
    "Client",
    "ResultTimeout",
    "RunFilter",
    "SyncClient",
    "TaskHandle",
    "WorkflowHandle",
    "TypedHandler",
    "handler",
    "GPU",
    "Affinity",
    "AffinityMode",
    "ArtifactRef",
    "Capability",
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
    "RetryPolicy",
    "RoutingDecision",
    "ServedModel",
    "Settings",
    "TaskContext",
    "TaskFailedError",
    "TaskRecord",
    "TaskSpec",
    "TaskStatus",
    "ValidationError",
    "WorkerProfile",
    "WorkerRuntime",
    "Workflow",
    "WorkflowError",
    "WorkflowSpec",
    "WorkflowStatus",
    "WorldpoolError",
    "__version__",
}


def test_exported_members() -> None:
    assert set(worldpool.__all__) == EXPECTED
    for name in worldpool.__all__:
        assert hasattr(worldpool, name), name
