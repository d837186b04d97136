"""``worldpool.Client``: submit, await pushed results, cancel, retry, logs, list runs; the
same class against a deployment (``Client.connect``) and an embedded pool
(``EmbeddedPool.client``). ``SyncClient`` for scripts."""

from worldpool.client.core import Client
from worldpool.client.handles import ResultTimeout, TaskHandle, WorkflowHandle
from worldpool.client.offered import UnknownHandlerError
from worldpool.client.runs import RunFilter, RunSummary
from worldpool.client.sync import SyncClient, SyncTaskHandle, SyncWorkflowHandle

__all__ = [
    "Client",
    "ResultTimeout",
    "RunFilter",
    "RunSummary",
    "SyncClient",
    "SyncTaskHandle",
    "SyncWorkflowHandle",
    "TaskHandle",
    "UnknownHandlerError",
    "WorkflowHandle",
]
