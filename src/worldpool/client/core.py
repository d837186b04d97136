"""``worldpool.Client``: the one way to talk to a deployment from Python, the same class
in embedded mode (``EmbeddedPool.client``) and against ``worldpool serve`` over Redis."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
from typing import Any, TypeVar, overload

import pydantic

from worldpool.backends import backend_from_url, probe_backend
from worldpool.backends.base import Backend, DeadLetter
from worldpool.client.follow import Follower, Replies
from worldpool.client.handles import TaskHandle, WorkflowHandle
from worldpool.client.offered import OfferedHandlers
from worldpool.client.runs import RunFilter, RunSummary, select_runs
from worldpool.config import Settings
from worldpool.errors import BackendError, ValidationError
from worldpool.models import JSONValue, TaskSpec, TaskStatus, WorkflowSpec
from worldpool.orchestrator import Orchestrator
from worldpool.redact import redact_url
from worldpool.typed import TypedHandler

M = TypeVar("M", bound=pydantic.BaseModel)
O = TypeVar("O")  # noqa: E741  # a typed handler's output
SENT_HERE_MAX = 100_000  # tasks sent at submit whose end has not come back yet


class Client:
    """Submit tasks and workflows, await their results, cancel, retry, follow logs, list
    runs and dead letters. Build one with :meth:`connect` (a deployment) or take
    ``EmbeddedPool.client``; close it with :meth:`aclose` or ``async with``."""

    def __init__(
        self, backend: Backend, orchestrator: Orchestrator, *, owns_backend: bool = False
    ) -> None:
        self.backend = backend
        self.orchestrator = orchestrator  # started (embedded) or not (submit-side only)
        self.follower = Follower(backend)
        self.client_id = secrets.token_hex(8)
        self.replies = Replies(backend, self.client_id)
        self.replies.on_reply(self._slot_back)
        self._sent_here: dict[str, str] = {}  # task sent in its submit -> its worker
        self.offered = OfferedHandlers(backend)
        self._owns_backend = owns_backend
        self._pool_read: asyncio.Task[None] | None = None

    @classmethod
    async def connect(
        cls, url: str, *, namespace: str | None = None, settings: Settings | None = None
    ) -> Client:
        """A client of the deployment at ``url`` (``redis://`` or ``rediss://``). Fails fast,
        naming the URL without its password, if nothing answers there. ``namespace``:
        the deployment's (None: ``WORLDPOOL_NAMESPACE``, else ``default``)."""
        settings = settings or Settings.from_env(redis_url=url, namespace=namespace)
        return await cls.from_settings(settings.model_copy(update={"redis_url": url}))

    @classmethod
    async def from_settings(cls, settings: Settings) -> Client:
        """A client of the deployment ``settings`` name (``WORLDPOOL_REDIS_URL``, ...)."""
        if not settings.redis_url:
            raise ValidationError(
                "no backend URL: pass Client.connect('redis://host:6379/0') or set "
                "WORLDPOOL_REDIS_URL (embedded mode: use EmbeddedPool(...).client)"
            )
        probe_backend(settings.redis_url)
        backend = backend_from_url(settings.redis_url, settings)
        try:
            await backend.now()  # fail here, not at the first submit
        except (BackendError, ConnectionError, OSError) as exc:
            await backend.aclose()
            raise BackendError(
                f"{redact_url(settings.redis_url)} does not answer ({exc}); is Redis "
                "running and reachable from here?"
            ) from None
        orchestrator = Orchestrator(backend, settings, submit_only=True)
        client = cls(backend, orchestrator, owns_backend=True)
        # The pool is read now, in the background: at 10,000 workers the first read takes
        # most of a second, and submits made meanwhile are queued for serve to send.
        client._pool_read = asyncio.create_task(orchestrator.pool_view.refresh())
        return client

    async def aclose(self) -> None:
        if self._pool_read is not None:
            self._pool_read.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._pool_read  # a failed read was only an early start
        await self.follower.stop()
        await self.replies.stop()
        if self._owns_backend:
            await self.backend.aclose()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    # ------------------------------------------------------------------ submit
    @overload
    async def submit(
        self,
        handler: TypedHandler[Any, O],
        payload: Any = None,
        *,
        later: bool = False,
        **options: Any,
    ) -> TaskHandle[O]: ...
    @overload
    async def submit(
        self,
        handler: str,
        payload: dict[str, JSONValue] | None = None,
        *,
        later: bool = False,
        **options: Any,
    ) -> TaskHandle[JSONValue]: ...
    async def submit(
        self,
        handler: str | TypedHandler[Any, Any],
        payload: Any = None,
        *,
        later: bool = False,
        **options: Any,
    ) -> TaskHandle[Any]:
        """Queue a task: ``options`` are :class:`TaskSpec` fields (``requirements``,
        ``priority``, ``retry``, ``timeout_s``, ``id``, ``idempotency_key``, ...). A field
        that does not validate is refused here, naming the field and the reason.

        ``handler`` is a name, or a ``@worldpool.handler``: then ``payload`` is its input
        model (validated here), its declared requirements, retries and timeouts are the
        defaults of ``options``, and the handle's ``result()`` is its output model.

        A handler no worker has ever offered is refused (:class:`UnknownHandlerError`, with
        a did-you-mean) unless ``later=True``: then the task waits for such a worker."""
        if isinstance(handler, TypedHandler):
            fields = {"reply_to": self.client_id, **handler.task_defaults(), **options}
            fields.update(handler=handler.name, payload=handler.dump_input(payload))
            spec = _validated(TaskSpec, fields)
            sent = await self.submit_spec(spec, later=later)
            return TaskHandle(self, sent.task_id, decode=handler.load_output, pushed=sent.pushed)
        fields = {"handler": handler, "payload": payload or {}, "reply_to": self.client_id}
        spec = _validated(TaskSpec, {**fields, **options})
        return await self.submit_spec(spec, later=later)

    async def submit_spec(self, spec: TaskSpec, *, later: bool = False) -> TaskHandle[JSONValue]:
        """Queue a ready-made :class:`TaskSpec` (see :meth:`submit` for ``later``). Its
        final record is pushed to this client (``reply_to``) unless the spec names another."""
        if not later:
            await self.offered.check([spec.handler])
        if spec.reply_to is None:
            spec = spec.model_copy(update={"reply_to": self.client_id})
        self.replies.start()  # reading before the task can end
        record = await self.orchestrator.submit(spec)
        if record.status is TaskStatus.DISPATCHED and record.attempts:
            if len(self._sent_here) >= SENT_HERE_MAX:  # replies that never came: forget
                self._sent_here.clear()
            self._sent_here[record.id] = record.attempts[-1].worker_id
        return TaskHandle(self, record.id, pushed=record.spec.reply_to == self.client_id)

    def _slot_back(self, task_id: str) -> None:
        """A task this client sent in its submit ended: its slot is free again in the
        pool snapshot the client routes with (serve's results do that for the rest)."""
        worker_id = self._sent_here.pop(task_id, None)
        if worker_id is not None:
            self.orchestrator.pool_view.adjust_running(worker_id, -1)

    @overload
    async def run(
        self,
        handler: TypedHandler[Any, O],
        payload: Any = None,
        *,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> O: ...
    @overload
    async def run(
        self,
        handler: str,
        payload: dict[str, JSONValue] | None = None,
        *,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> JSONValue: ...
    async def run(
        self,
        handler: str | TypedHandler[Any, Any],
        payload: Any = None,
        *,
        timeout_s: float = 60.0,
        **options: Any,
    ) -> Any:
        """Submit and await the value (TaskFailedError if it failed): with a
        ``@worldpool.handler``, ``await client.run(plan, PlanInput(...))`` is a PlanOutput."""
        handle = await self.submit(handler, payload, **options)
        return await handle.result(timeout_s=timeout_s)

    async def submit_workflow(
        self, spec: WorkflowSpec | dict[str, Any], *, later: bool = False
    ) -> WorkflowHandle:
        """Validate the DAG, store it, queue its first steps. A step naming a handler no
        worker has ever offered is refused, unless ``later=True`` (see :meth:`submit`)."""
        if not isinstance(spec, WorkflowSpec):
            spec = _validated(WorkflowSpec, spec)
        if not later:
            await self.offered.check(step.task.handler for step in spec.steps)
        record = await self.orchestrator.submit_workflow(spec)
        return WorkflowHandle(self, record.id)

    # ------------------------------------------------------------------ look up
    def task(self, task_id: str) -> TaskHandle[JSONValue]:
        return TaskHandle(self, task_id)

    def workflow(self, workflow_id: str) -> WorkflowHandle:
        return WorkflowHandle(self, workflow_id)

    async def list_runs(self, where: RunFilter | None = None, limit: int = 100) -> list[RunSummary]:
        """Tasks and workflows, newest first, filtered (see :class:`RunFilter`)."""
        where = where or RunFilter()
        tasks = [] if where.kind == "workflow" else await self.backend.list_tasks()
        flows = [] if where.kind == "task" else await self.backend.list_workflows()
        return select_runs(tasks, flows, where)[:limit]

    async def dead_letters(self, limit: int = 100) -> list[DeadLetter]:
        return await self.backend.list_dead_letters(limit)


def _validated(model: type[M], data: dict[str, Any]) -> M:
    try:
        return model.model_validate(data)
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or model.__name__
        raise ValidationError(
            f"{where}: {first['msg']} ({exc.error_count()} problem(s); fix and resubmit)"
        ) from None
