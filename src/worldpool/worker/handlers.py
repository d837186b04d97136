"""What a handler sees: :class:`TaskContext`, and the name -> handler table of a worker.

Handlers are plain sync or async functions taking one ``TaskContext``; what they return
(JSON-serialisable) becomes the step's result value. Sync handlers run in a thread, so
every context method here is synchronous and thread-safe: input artifacts are fetched
before the handler starts, and stored artifacts are uploaded after it returns.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from worldpool.artifacts.store import digest_of
from worldpool.errors import ArtifactError, ConfigError, HandlerError
from worldpool.models import ArtifactRef, JSONValue, WorkerProfile
from worldpool.plugins import import_object
from worldpool.typed import TypedHandler
from worldpool.worker.secrets import scrub_text

Handler = Callable[["TaskContext"], Any | Awaitable[Any]]


class Effects(Protocol):
    """What ``ctx.once`` applies effects through: the backend's ledger
    (:class:`~worldpool.worker.effects.EffectLedger`), or in a child process
    (``--sync-handlers process``) the same ledger asked through the parent."""

    def run(self, name: str, effect: Callable[[int], Any]) -> JSONValue: ...

    async def run_async(
        self, name: str, effect: Callable[[int], Awaitable[Any]] | Callable[[int], Any]
    ) -> JSONValue: ...


MAX_LOG_LINES = 500


@dataclass
class StagedArtifact:
    ref: ArtifactRef
    data: bytes


class _StepLogHandler(logging.Handler):
    def __init__(self, sink: list[str]) -> None:
        super().__init__()
        self.sink = sink

    def emit(self, record: logging.LogRecord) -> None:
        if len(self.sink) < MAX_LOG_LINES:
            self.sink.append(f"{record.levelname} {record.getMessage()}")
        elif len(self.sink) == MAX_LOG_LINES:
            self.sink.append("... log truncated")


class _SecretMask(logging.Filter):
    """On a task's logger: its resolved secret values masked in each line (and traceback)
    before any handler sees it, so neither the step's log nor the worker's own log (where
    the lines propagate) ever holds one."""

    def __init__(self, values: Iterable[str]) -> None:
        super().__init__()
        self.values = list(values)

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):  # a bad format string: its raw text, masked
            message = str(record.msg)
        clean = scrub_text(message, self.values)
        if clean != message:
            record.msg, record.args = clean, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = scrub_text(record.exc_text, self.values)
        if record.stack_info:
            record.stack_info = scrub_text(record.stack_info, self.values)
        return True


@dataclass
class TaskContext:
    """The one argument every handler gets."""

    task_id: str
    attempt: int
    handler: str
    payload: dict[str, JSONValue]
    worker: WorkerProfile
    workflow_id: str | None = None
    step: str | None = None
    deadline: float | None = None
    inputs: dict[str, ArtifactRef] = field(default_factory=dict)
    upstream: dict[str, JSONValue] = field(default_factory=dict)
    input_data: dict[str, bytes] = field(default_factory=dict, repr=False)
    # filled by the handler
    staged: dict[str, StagedArtifact] = field(default_factory=dict, repr=False)
    logs: list[str] = field(default_factory=list)
    meta: dict[str, JSONValue] = field(default_factory=dict)
    holds: list[str] = field(default_factory=list, repr=False)  # see advertise()
    tokens_used: int = 0
    cost_usd: float = 0.0
    progress: float | None = None
    on_progress: Callable[[float, str], None] | None = field(default=None, repr=False)
    # Sends the metadata (and the artifacts named) now, not only with the step's end.
    on_meta: Callable[[tuple[str, ...]], None] | None = field(default=None, repr=False)
    cancelled: threading.Event = field(default_factory=threading.Event, repr=False)
    effects: Effects | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _logger: logging.Logger | None = field(default=None, init=False, repr=False, compare=False)
    secrets: dict[str, str] = field(default_factory=dict, repr=False, compare=False)
    """The task's secrets by name, resolved on this worker (``worker/secrets.py``)."""

    # ------------------------------------------------------------------ inputs
    def read(self, name: str) -> bytes:
        """Bytes of input artifact ``name`` (for a join step, ``"<step>/<name>"``)."""
        try:
            return self.input_data[name]
        except KeyError:
            have = ", ".join(sorted(self.input_data)) or "none"
            raise ArtifactError(f"task has no input artifact {name!r} (inputs: {have})") from None

    def read_text(self, name: str) -> str:
        return self.read(name).decode("utf-8")

    # ------------------------------------------------------------------ outputs
    def store(
        self, name: str, data: bytes | str, media_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Stage an output artifact; it is uploaded when the handler returns."""
        raw = data.encode("utf-8") if isinstance(data, str) else bytes(data)
        ref = ArtifactRef(
            digest=digest_of(raw),
            name=name,
            size=len(raw),
            media_type=media_type,
            producer=self.worker.id,
        )
        with self._lock:
            self.staged[name] = StagedArtifact(ref, raw)
        return ref

    # ------------------------------------------------------------------ effects, once
    @property
    def fencing_token(self) -> int:
        """Grows with every attempt of this task; the backend refuses an older one's word."""
        return self.attempt

    @property
    def idempotency_key(self) -> str:
        """The same for every attempt (and every resubmit with the same idempotency key,
        which names the same task): the key effects are applied once under."""
        return self.task_id

    def once(self, name: str, effect: Callable[[int], Any]) -> JSONValue:
        """Apply ``effect(fencing_token)`` at most once for this task, whatever the number
        of attempts, and return its (JSON) value; later attempts get the value back without
        applying it. Raises (not retried) if this attempt no longer owns the task. From
        sync handlers; async ones ``await ctx.once_async``."""
        if self.effects is None:
            raise HandlerError("this context has no effect ledger", retryable=False)
        return self.effects.run(name, effect)

    async def once_async(
        self, name: str, effect: Callable[[int], Awaitable[Any]] | Callable[[int], Any]
    ) -> JSONValue:
        """:meth:`once` for async handlers (``effect`` may be a coroutine function)."""
        if self.effects is None:
            raise HandlerError("this context has no effect ledger", retryable=False)
        return await self.effects.run_async(name, effect)

    # ------------------------------------------------------------------ reporting
    @property
    def log(self) -> logging.Logger:
        """A logger whose lines are kept with the step (and go to the worker's log)."""
        logger = self._logger
        if logger is None:  # made on first use: most handlers never log
            logger = self._logger = logging.getLogger(f"worldpool.task.{self.task_id}")
        if not any(isinstance(h, _StepLogHandler) for h in logger.handlers):
            logger.addHandler(_StepLogHandler(self.logs))
            logger.setLevel(logging.INFO)
        if self.secrets and not any(isinstance(f, _SecretMask) for f in logger.filters):
            logger.addFilter(_SecretMask(self.secrets.values()))
        return logger

    def report_progress(self, fraction: float, message: str = "") -> None:
        """Report progress in ``[0, 1]``; also counts as a task heartbeat."""
        self.progress = min(1.0, max(0.0, fraction))
        if self.on_progress is not None:
            self.on_progress(self.progress, message)

    def add_usage(self, tokens: int = 0, cost_usd: float = 0.0) -> None:
        """Add LLM tokens and dollars spent to this step's totals."""
        if tokens < 0 or cost_usd < 0:
            raise ValueError("tokens and cost_usd must be >= 0")
        with self._lock:
            self.tokens_used += tokens
            self.cost_usd += cost_usd

    def advertise(self, *keys: str) -> None:
        """Say this worker now holds ``keys`` (a workspace it cloned, ``workspace:<commit>``;
        a blob it fetched, by digest): from its next heartbeat the data-locality scorer
        prefers it for later steps that need them."""
        with self._lock:
            self.holds.extend(k for k in keys if k not in self.holds)

    def set_meta(self, key: str, value: JSONValue) -> None:
        """Executor details shown in the status document: vm_id, sandbox_id, vnc_url, ..."""
        self.meta[key] = value

    def publish_meta(self, **values: JSONValue) -> None:
        """Set metadata and send it at once, while the step runs (a live ``vnc_url``, the
        ``vm_id`` of the VM just booted). None clears a key: it is sent as null, so the
        status document drops it now and the step's final report keeps it cleared."""
        with self._lock:
            self.meta.update(values)
        if self.on_meta is not None:
            self.on_meta(())

    def publish_artifact(
        self, name: str, data: bytes | str, media_type: str = "application/octet-stream"
    ) -> ArtifactRef:
        """Store an artifact and upload it at once, while the step runs (a browser's
        last screenshot): the status document shows it before the step ends. Publishing
        the same name again replaces it."""
        ref = self.store(name, data, media_type)
        if self.on_meta is not None:
            self.on_meta((name,))
        return ref

    def check_cancelled(self) -> None:
        """Raise if the task was cancelled or re-routed; long handlers call this often."""
        if self.cancelled.is_set():
            raise HandlerError("task was cancelled or re-routed", retryable=False)

    @property
    def time_left_s(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.time()

    def close_log(self) -> None:
        """Detach the step's log handler and forget the per-task logger (``logging`` keeps
        every logger it ever made: one per task would grow without bound)."""
        logger, self._logger = self._logger, None
        if logger is None:
            return
        for h in list(logger.handlers):
            if isinstance(h, _StepLogHandler):
                logger.removeHandler(h)
        for f in list(logger.filters):
            if isinstance(f, _SecretMask):
                logger.removeFilter(f)
        if not logger.handlers:
            logging.Logger.manager.loggerDict.pop(logger.name, None)

    def secret(self, name: str) -> str:
        """The value of the secret the task named ``name`` (``TaskSpec.secrets``),
        resolved from this worker's environment; never stored with the step."""
        try:
            return self.secrets[name]
        except KeyError:
            have = ", ".join(sorted(self.secrets)) or "none"
            raise HandlerError(
                f"the task names no secret {name!r} (it names: {have}); add it to the "
                'task\'s secrets, e.g. {"NAME": "env:NAME"}',
                retryable=False,
            ) from None


class HandlerTable:
    """Handlers registered by name on a worker. Names never come from messages' imports."""

    def __init__(
        self, handlers: Mapping[str, Handler] | Iterable[TypedHandler[Any, Any]] | None = None
    ) -> None:
        self._handlers: dict[str, Handler] = {}
        if isinstance(handlers, Mapping):
            for name, fn in handlers.items():
                self.add(name, fn)
        else:  # declared handlers (@worldpool.handler) register under their own names
            for typed in handlers or ():
                if not isinstance(typed, TypedHandler):
                    raise ConfigError(
                        f"{typed!r} is not a @worldpool.handler; give a dict name -> handler "
                        "or a list of declared handlers"
                    )
                self.add(typed.name, typed)

    def add(self, name: str, fn: Handler) -> None:
        if name in self._handlers:
            raise ConfigError(f"handler {name!r} is registered twice; pick another name")
        if not callable(fn):
            raise ConfigError(f"handler {name!r} is not callable")
        if isinstance(fn, TypedHandler):
            if fn.name != name:
                raise ConfigError(
                    f"handler {fn.name!r} is declared with that name but registered as "
                    f"{name!r}; clients submit it by its declared name, so register it so"
                )
            from worldpool.worker.typed import as_handler  # that module imports this one

            fn = as_handler(fn)
        self._handlers[name] = fn

    def get(self, name: str) -> Handler | None:
        return self._handlers.get(name)

    def names(self) -> frozenset[str]:
        return frozenset(self._handlers)

    def update(self, other: HandlerTable | Mapping[str, Handler]) -> None:
        items: Iterable[tuple[str, Handler]] = (
            other._handlers.items() if isinstance(other, HandlerTable) else other.items()
        )
        for name, fn in items:
            self.add(name, fn)

    def __contains__(self, name: object) -> bool:
        return name in self._handlers

    def __len__(self) -> int:
        return len(self._handlers)


def load_handlers(spec: str) -> HandlerTable:
    """Import ``module:object`` given by the operator (``--handlers``, never a message): a
    mapping of name -> handler, a HandlerTable, a ``@worldpool.handler`` or a list of
    them, or a function returning one of those."""
    obj = import_object(spec, "--handlers", "package.module:HANDLERS")
    if isinstance(obj, TypedHandler):  # one declared handler
        return HandlerTable([obj])
    if isinstance(obj, list | tuple):  # declared handlers
        return HandlerTable(obj)
    if callable(obj) and not isinstance(obj, dict | HandlerTable):
        obj = obj()
    if isinstance(obj, HandlerTable):
        return obj
    if isinstance(obj, dict):
        return HandlerTable(obj)
    raise ConfigError(f"--handlers {spec!r} is a {type(obj).__name__}, not a dict of handlers")
