"""worldpool's exceptions: one root, each message says what to do next.

WorldpoolError
├── ConfigError              bad settings, pool file or policy weights
├── ValidationError          bad task / workflow / payload at a boundary
│   └── WorkflowError        cycles, unknown step names, unknown handlers
├── NotFoundError            unknown task, workflow, worker or artifact id
├── BackendError             storage / transport trouble (retryable)
│   └── ReservationError     worker full or offline at reserve time
├── ArtifactError            missing, corrupt (hash mismatch) or unsafe artifact
├── EnvelopeError            unsigned, badly signed, oversized or malformed envelope
├── HandlerError             a handler failed (``retryable`` says if a retry may help)
│   └── TaskTimeoutError     a limit (schedule-to-start, execution, heartbeat) passed
├── TaskFailedError          a task ended failed (``testing`` re-raises it)
└── CancelledError           the task or workflow was cancelled
"""

from __future__ import annotations


class WorldpoolError(Exception):
    """Root of every error worldpool raises on purpose."""


class ConfigError(WorldpoolError):
    """Settings, a pool file or routing weights are wrong."""


class ValidationError(WorldpoolError):
    """Input at a boundary (CLI, API, file) does not fit the model."""


class WorkflowError(ValidationError):
    """A workflow definition is invalid (cycle, unknown step or handler)."""


class NotFoundError(WorldpoolError):
    """An id names nothing the backend knows."""

    def __init__(self, kind: str, ident: str) -> None:
        super().__init__(f"no {kind} with id {ident!r}; list them to see the valid ids")
        self.kind = kind
        self.ident = ident


class BackendError(WorldpoolError):
    """The backend failed (connection lost, script error). Usually worth retrying."""


class ReservationError(BackendError):
    """A slot could not be reserved on a worker: it is full, draining or offline."""

    def __init__(self, worker_id: str, reason: str) -> None:
        super().__init__(f"cannot reserve a slot on {worker_id!r}: {reason}")
        self.worker_id = worker_id
        self.reason = reason


class ArtifactError(WorldpoolError):
    """An artifact is missing, fails its hash check, or has an unsafe name."""


class EnvelopeError(WorldpoolError):
    """An envelope was refused; ``code`` is the dead-letter reason code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code


class HandlerError(WorldpoolError):
    """A handler failed. Raise it with ``retryable=False`` to skip remaining retries."""

    def __init__(self, message: str, *, retryable: bool = True) -> None:
        super().__init__(message)
        self.retryable = retryable


class TaskTimeoutError(HandlerError):
    """A task ran past one of its limits."""

    def __init__(self, limit: str, seconds: float) -> None:
        super().__init__(f"{limit} timeout of {seconds:g}s passed", retryable=True)
        self.limit = limit
        self.seconds = seconds


class TaskFailedError(WorldpoolError):
    """A task ended in the failed state; carries its last error and how many attempts
    it had."""

    def __init__(self, task_id: str, error: str | None, attempts: int = 0) -> None:
        tried = f" after {attempts} attempt{'s' if attempts != 1 else ''}" if attempts else ""
        super().__init__(f"task {task_id} failed{tried}: {error or 'no error recorded'}")
        self.task_id = task_id
        self.error = error
        self.attempts = attempts


class CancelledError(WorldpoolError):
    """The task or workflow was cancelled."""
