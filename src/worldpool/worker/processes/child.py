"""The child side of ``--sync-handlers process``: a process that runs its worker's sync
handlers one call at a time, and that the worker can kill.

Started by :mod:`.pool` (:mod:`.handle`) as a fresh interpreter (``sys.executable``; it
imports nothing of the worker's main module), it loads its handler table from the same
``--handlers`` specs the operator gave the worker (a call names a handler of that table;
nothing else is looked up or imported), says which sync handlers it has, then runs the
calls its parent sends. Everything on its socket is JSON (orjson, framed by
``multiprocessing.connection.Connection.send_bytes``; no pickle at all): the task in, the
outcome out, and between them the context's requests that the parent serves (progress,
live metadata, ``ctx.once``'s claim and record, asked of the parent's backend so that the
fencing check stays there) and the parent's ``cancel``, which sets ``ctx.cancelled``. The
child leaves its parent's process group (a Ctrl-C or a group SIGTERM is the parent's to
handle: it drains, then kills the child), and exits when its socket closes (the worker
died).
"""

from __future__ import annotations

import base64
import contextlib
import inspect
import itertools
import os
import queue
import signal
import sys
import threading
from collections.abc import Awaitable, Callable
from multiprocessing.connection import Connection
from typing import Any

import orjson

from worldpool.errors import HandlerError
from worldpool.models import ArtifactRef, JSONValue, WorkerProfile
from worldpool.worker.effects import FencedError
from worldpool.worker.handlers import HandlerTable, TaskContext, load_handlers

Message = dict[str, Any]


def main() -> None:
    """``python -c 'from worldpool.worker.processes.child import main; main()' FD``: serve
    the worker on the other end of the socket ``FD``. The first message names the handler
    specs to load (a JSON list); the child says which sync handlers it has (or why it could
    not load them), then serves calls until the socket closes."""
    _detach()
    conn = Connection(int(sys.argv[1]))
    try:
        specs = orjson.loads(conn.recv_bytes())["specs"]
    except (EOFError, OSError):
        os._exit(0)  # the worker stopped before it sent them
    try:
        table = HandlerTable()
        for spec in specs:
            table.update(load_handlers(str(spec)))
    except Exception as exc:
        conn.send_bytes(orjson.dumps({"op": "error", "error": f"{type(exc).__name__}: {exc}"}))
        return
    names = sorted(n for n in table.names() if not inspect.iscoroutinefunction(table.get(n)))
    conn.send_bytes(orjson.dumps({"op": "ready", "names": names}))
    _Child(conn, table).serve()


def _detach() -> None:
    """Leave the parent's process group and ignore Ctrl-C: stopping is the parent's call."""
    with contextlib.suppress(OSError):
        os.setpgid(0, 0)
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class _Reply:
    def __init__(self) -> None:
        self.done = threading.Event()
        self.message: Message = {}


class _Child:
    """The child's loop: a reader thread takes the parent's messages (calls, cancels,
    replies); the main thread runs one call at a time."""

    def __init__(self, conn: Connection, table: HandlerTable) -> None:
        self._conn = conn
        self._table = table
        self._send_lock = threading.Lock()
        self._calls: queue.SimpleQueue[Message] = queue.SimpleQueue()
        self._replies: dict[int, _Reply] = {}
        self._ids = itertools.count(1)
        self._current: tuple[int, TaskContext] | None = None
        self._cancelled: set[int] = set()  # calls the parent stopped (maybe not begun yet)
        self._worker: WorkerProfile | None = None

    def send(self, message: Message) -> None:
        data = orjson.dumps(message)
        with self._send_lock:
            self._conn.send_bytes(data)

    def ask(self, message: Message) -> Message:
        """Send a request to the parent and wait for its reply."""
        rid = next(self._ids)
        reply = self._replies[rid] = _Reply()
        self.send({**message, "rid": rid})
        reply.done.wait()
        return reply.message

    def serve(self) -> None:
        threading.Thread(target=self._read, name="worldpool-child-reader", daemon=True).start()
        while True:
            outcome = self._run(self._calls.get())
            with self._send_lock:  # a thread of the handler's may be reporting progress
                self._conn.send_bytes(outcome)

    def _read(self) -> None:
        while True:
            try:
                message = orjson.loads(self._conn.recv_bytes())
            except (EOFError, OSError):
                os._exit(0)  # the worker is gone: so is its child
            op = message.get("op")
            if op == "run":
                self._calls.put(message)
            elif op == "cancel":
                self._cancelled.add(int(message.get("call", 0)))
                current = self._current
                if current is not None and current[0] in self._cancelled:
                    current[1].cancelled.set()
            elif op == "reply":
                reply = self._replies.pop(int(message.get("rid", 0)), None)
                if reply is not None:
                    reply.message = message
                    reply.done.set()

    def _run(self, message: Message) -> bytes:
        """One call, to its outcome message (``done`` or ``failed``) as bytes."""
        call = int(message["call"])
        if "worker" in message:  # sent when it changed
            self._worker = WorkerProfile.model_validate(message["worker"])
        name = str(message["handler"])
        handler = self._table.get(name)
        if handler is None or inspect.iscoroutinefunction(handler) or self._worker is None:
            return orjson.dumps(
                {
                    "op": "failed",
                    "call": call,
                    "error": f"handler {name!r} is not a sync handler of this worker's "
                    "--handlers; check the worker's command line",
                    "retryable": False,
                }
            )
        ctx = self._context(call, name, message, self._worker)
        self._current = (call, ctx)
        if call in self._cancelled:  # the stop came before the call began
            ctx.cancelled.set()
        try:
            value = handler(ctx)
            outcome: Message = {"op": "done", "call": call, "value": value}
        except Exception as exc:  # the handler's failure becomes the attempt's
            from worldpool.worker.execution import describe_failure

            retryable = bool(getattr(exc, "retryable", True))
            outcome = {"op": "failed", "call": call, "error": describe_failure(exc)}
            outcome["retryable"] = retryable
        finally:
            self._current = None
            self._cancelled.discard(call)
            ctx.close_log()
        outcome["context"] = _context_out(ctx)
        try:
            return orjson.dumps(outcome)
        except TypeError as exc:  # a return value (or metadata) that is not JSON
            return orjson.dumps(
                {"op": "failed", "call": call, "error": f"TypeError: {exc}", "retryable": False}
            )

    def _context(
        self, call: int, name: str, message: Message, worker: WorkerProfile
    ) -> TaskContext:
        def on_progress(fraction: float, text: str) -> None:
            self.send({"op": "progress", "call": call, "fraction": fraction, "message": text})

        ctx = TaskContext(
            task_id=str(message["task_id"]),
            attempt=int(message["attempt"]),
            handler=name,
            payload=message["payload"],
            worker=worker,
            workflow_id=message.get("workflow_id"),
            step=message.get("step"),
            deadline=message.get("deadline"),
            inputs={k: ArtifactRef.model_validate(v) for k, v in message["inputs"].items()},
            upstream=message["upstream"],
            input_data={k: base64.b64decode(v) for k, v in message["input_data"].items()},
            on_progress=on_progress,
            secrets={str(k): str(v) for k, v in message["secrets"].items()},
        )
        ctx.effects = _ParentLedger(self, call, ctx.task_id, ctx.attempt)

        def on_meta(names: tuple[str, ...]) -> None:
            artifacts = {n: _staged_out(ctx, n) for n in names if n in ctx.staged}
            self.send({"op": "meta", "call": call, "meta": dict(ctx.meta), "artifacts": artifacts})

        ctx.on_meta = on_meta
        return ctx


class _ParentLedger:
    """``ctx.once`` in a child: the claim and the record are asked of the parent, whose
    backend checks the fencing token; the effect itself runs here."""

    def __init__(self, child: _Child, call: int, task_id: str, attempt: int) -> None:
        self._child = child
        self._call = call
        self._task_id = task_id
        self._attempt = attempt

    def run(self, name: str, effect: Callable[[int], Any]) -> JSONValue:
        reply = self._ask("claim", name)
        if reply.get("state") == "done":
            value: JSONValue = reply.get("value")
            return value
        value = effect(self._attempt)
        orjson.dumps(value)  # not JSON: the handler's bug, raised here as in a thread
        self._ask("finish", name, value)
        return value

    async def run_async(
        self, name: str, effect: Callable[[int], Awaitable[Any]] | Callable[[int], Any]
    ) -> JSONValue:
        raise HandlerError(
            "a child process runs sync handlers only: call ctx.once", retryable=False
        )

    def _ask(self, op: str, name: str, value: JSONValue = None) -> Message:
        reply = self._child.ask({"op": op, "call": self._call, "name": name, "value": value})
        state = reply.get("state")
        if state == "fenced":
            raise FencedError(self._task_id, self._attempt)
        if state == "error":
            raise HandlerError(f"ctx.once({name!r}): {reply.get('error')}", retryable=True)
        return reply


def _staged_out(ctx: TaskContext, name: str) -> Message:
    staged = ctx.staged[name]
    return {"media_type": staged.ref.media_type, "data": base64.b64encode(staged.data).decode()}


def _context_out(ctx: TaskContext) -> Message:
    """What the handler left in its context, for the parent's copy of it."""
    return {
        "logs": list(ctx.logs),
        "meta": dict(ctx.meta),
        "tokens_used": ctx.tokens_used,
        "cost_usd": ctx.cost_usd,
        "progress": ctx.progress,
        "holds": list(ctx.holds),
        "staged": {name: _staged_out(ctx, name) for name in list(ctx.staged)},
    }
