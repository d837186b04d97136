"""One call of ``--sync-handlers process``: a task run in a child, served from a slot's
thread.

:class:`Call` sends the task (JSON over the child's socket), answers the context's
requests (progress, live metadata, ``ctx.once`` through this worker's backend), passes
``ctx.cancelled`` on, and takes the outcome back. A stopped call's child that has not
returned ``cancel_grace_s`` later, or one whose task was handed back (``kill``), fails the
call: the caller kills the child. After the stop, new effects are refused and reports
dropped.
"""

from __future__ import annotations

import base64
import contextlib
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from worldpool.errors import HandlerError
from worldpool.models import JSONValue
from worldpool.worker.effects import EffectLedger, FencedError
from worldpool.worker.handlers import TaskContext
from worldpool.worker.processes.child import Message
from worldpool.worker.processes.handle import ChildProcess

log = logging.getLogger("worldpool.worker.processes")

POLL_S = 0.05
"""How often a call's thread looks at ``ctx.cancelled`` while its child works."""


@dataclass
class Call:
    """Handler ``name`` run on ``ctx`` in ``child``; ``number`` tells this call's messages
    from those of an earlier one."""

    child: ChildProcess
    number: int
    name: str
    ctx: TaskContext
    kill: threading.Event
    cancel_grace_s: float
    worker_id: str

    def run(self) -> Message:
        """Send the task and serve it until its outcome (``done`` or ``failed``) comes."""
        self.child.send(self._task())
        return self._serve()

    def result(self, outcome: Message) -> JSONValue:
        """The outcome's value, its context merged into ours; a failure raised."""
        _merge(self.ctx, outcome.get("context") or {})
        if outcome["op"] == "failed":
            retryable = bool(outcome.get("retryable", True))
            raise HandlerError(str(outcome.get("error")), retryable=retryable)
        value: JSONValue = outcome.get("value")
        return value

    def _serve(self) -> Message:
        """Serve the call's requests until its outcome (``done`` or ``failed``) comes."""
        give_up: float | None = None  # when a stopped call's child is killed
        while True:
            if self.kill.is_set():
                log.warning(
                    "worker %s: %s for task %s was handed back; killing its process",
                    self.worker_id,
                    self.name,
                    self.ctx.task_id,
                )
                raise HandlerError("the task was handed back; its process was killed")
            if give_up is None and self.ctx.cancelled.is_set():
                give_up = time.monotonic() + self.cancel_grace_s
                with contextlib.suppress(OSError):
                    self.child.send({"op": "cancel", "call": self.number})
            if give_up is not None and time.monotonic() >= give_up:
                log.warning(
                    "worker %s: %s for task %s ignored its stop for %gs; killing its process",
                    self.worker_id,
                    self.name,
                    self.ctx.task_id,
                    self.cancel_grace_s,
                )
                raise HandlerError("the task was stopped; its process was killed")
            try:
                if not self.child.conn.poll(POLL_S):
                    continue
                message = self.child.recv()
                if message.get("call") != self.number:
                    continue
                if message.get("op") in ("done", "failed"):
                    return message
                self._request(message, stopped=give_up is not None)
            except (EOFError, OSError):
                how = self.child.ended()
                raise HandlerError(
                    f"the process running {self.name} for task {self.ctx.task_id} {how} before it "
                    "returned; this attempt failed (it may be retried)"
                ) from None
            except (KeyError, TypeError, ValueError) as exc:  # not our protocol
                raise HandlerError(
                    f"the process running {self.name} sent a message this worker cannot read "
                    f"({type(exc).__name__}: {exc}); this attempt failed"
                ) from None

    def _request(self, message: Message, stopped: bool) -> None:
        """Serve one of the context's requests. After the stop, new effects are refused and
        progress and metadata dropped: a stopped call starts nothing any more."""
        op = message["op"]
        if op == "progress":
            if not stopped:
                self.ctx.report_progress(float(message["fraction"]), str(message["message"]))
        elif op == "meta":
            if not stopped:
                _publish(self.ctx, message)
        elif op in ("claim", "finish"):
            reply: Message = {"op": "reply", "rid": message["rid"]}
            reply.update(_effect(self.ctx, op, str(message["name"]), message.get("value"), stopped))
            self.child.send(reply)
        else:
            raise ValueError(f"unknown request {op!r}")

    def _task(self) -> Message:
        task: Message = {
            "op": "run",
            "call": self.number,
            "handler": self.name,
            "task_id": self.ctx.task_id,
            "attempt": self.ctx.attempt,
            "payload": self.ctx.payload,
            "workflow_id": self.ctx.workflow_id,
            "step": self.ctx.step,
            "deadline": self.ctx.deadline,
            "inputs": {k: ref.model_dump(mode="json") for k, ref in self.ctx.inputs.items()},
            "upstream": self.ctx.upstream,
            "input_data": {k: base64.b64encode(v).decode() for k, v in self.ctx.input_data.items()},
            "secrets": self.ctx.secrets,  # to our own child, over its private pipe; never logged
        }
        if self.child.worker is not self.ctx.worker:
            task["worker"] = self.ctx.worker.model_dump(mode="json")
            self.child.worker = self.ctx.worker
        return task


def _effect(
    ctx: TaskContext, op: str, name: str, value: JSONValue, stopped: bool
) -> dict[str, Any]:
    """``ctx.once`` for a child: claim or record ``name`` in the backend's ledger. After
    the stop no claim is granted; a record still is (its effect happened: no later attempt
    may apply it again)."""
    ledger = ctx.effects
    if stopped and op == "claim":
        return {"state": "fenced"}
    if not isinstance(ledger, EffectLedger):
        return {"state": "error", "error": "this worker has no effect ledger"}
    try:
        if op == "claim":
            state, done = ledger.claim(name)
            return {"state": state, "value": done}
        ledger.finish(name, value)
        return {"state": "recorded"}
    except FencedError:
        return {"state": "fenced"}
    except Exception as exc:  # the backend out of reach: the child's handler sees it
        return {"state": "error", "error": f"{type(exc).__name__}: {exc}"}


def _publish(ctx: TaskContext, message: Message) -> None:
    """Live metadata and artifacts a child's handler published: send them now."""
    names = []
    for name, staged in dict(message.get("artifacts") or {}).items():
        ctx.store(str(name), base64.b64decode(staged["data"]), str(staged["media_type"]))
        names.append(str(name))
    ctx.meta.update(dict(message.get("meta") or {}))
    if ctx.on_meta is not None:
        ctx.on_meta(tuple(names))


def _merge(ctx: TaskContext, out: Message) -> None:
    """What the child's handler left in its context, into the parent's (for the report)."""
    ctx.logs.extend(str(line) for line in out.get("logs") or [])
    ctx.meta.update(dict(out.get("meta") or {}))
    ctx.add_usage(int(out.get("tokens_used") or 0), float(out.get("cost_usd") or 0.0))
    if out.get("progress") is not None:
        ctx.progress = float(out["progress"])
    ctx.advertise(*(str(key) for key in out.get("holds") or []))
    for name, staged in dict(out.get("staged") or {}).items():
        ctx.store(str(name), base64.b64decode(staged["data"]), str(staged["media_type"]))
