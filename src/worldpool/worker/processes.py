"""``--sync-handlers process``: sync handlers run in child processes, which can be killed.

A thread cannot be stopped from outside: in the default mode a sync handler deaf to
``ctx.cancelled`` runs on in its thread until it returns. In this mode the sync handlers of
the ``--handlers`` specs run in child processes (:mod:`.child`: fresh interpreters of the
same Python, at most one per slot, each started on first use and reused call after call),
and the slot's thread serves the call: it sends the task (JSON over a socket), answers the context's requests (progress, live
metadata, ``ctx.once`` through this worker's backend), passes ``ctx.cancelled`` on, and
takes the outcome back. A call stopped (cancelled, timed out, its worker declared offline)
whose child has not returned ``cancel_grace_s`` later, or one whose task a drain hands
back, has its child killed (SIGTERM, then SIGKILL): its slot is free again, and nothing the
child would still have reported or applied reaches the backend (after the stop the parent
refuses its effects and drops its reports). A child that dies during a call fails the
attempt (retryable), saying how it ended.
"""

from __future__ import annotations

import base64
import contextlib
import itertools
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any

import orjson

from worldpool.errors import ConfigError, HandlerError
from worldpool.models import JSONValue, WorkerProfile
from worldpool.worker.child import Message
from worldpool.worker.effects import EffectLedger, FencedError
from worldpool.worker.handlers import TaskContext

log = logging.getLogger("worldpool.worker.processes")

POLL_S = 0.05
"""How often a call's thread looks at ``ctx.cancelled`` while its child works."""
TERM_WAIT_S = 0.5
"""After SIGTERM, how long a child gets before SIGKILL."""
CHILD_MAIN = "from worldpool.worker.child import main; main()"


@dataclass(frozen=True)
class SyncProcesses:
    """Run the sync handlers of ``specs`` (``--handlers module:object``, as the operator
    gave them) in child processes. ``cancel_grace_s``: how long a stopped call's child
    gets to return before it is killed (a drain's hand-back kills at once: the drain
    timeout was its grace)."""

    specs: tuple[str, ...]
    cancel_grace_s: float = 2.0
    start_timeout_s: float = 60.0


class _Child:
    """One child process and the parent's end of its socket."""

    def __init__(self, process: subprocess.Popen[bytes], conn: Connection) -> None:
        self.process = process
        self.conn = conn
        self.names: frozenset[str] = frozenset()
        self.worker: WorkerProfile | None = None  # the profile this child was last sent

    def send(self, message: Message) -> None:
        self.conn.send_bytes(orjson.dumps(message))

    def recv(self) -> Message:
        message = orjson.loads(self.conn.recv_bytes())
        if not isinstance(message, dict):
            raise ValueError("not an object")
        return message

    def alive(self) -> bool:
        return self.process.poll() is None

    def ended(self) -> str:
        """How the child ended, in words (after it did)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(1.0)
        code = self.process.returncode
        if code is None:
            return "stopped answering"
        if code < 0:
            with contextlib.suppress(ValueError):
                return f"was killed by {signal.Signals(-code).name}"
            return f"was killed by signal {-code}"
        return f"exited with code {code}"

    def terminate(self) -> None:
        if self.alive():
            with contextlib.suppress(ProcessLookupError):
                self.process.terminate()

    def reap(self, until: float) -> None:
        """Wait for the child until ``until`` (monotonic), then SIGKILL it; close the socket."""
        try:
            self.process.wait(max(0.0, until - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                self.process.kill()
            with contextlib.suppress(subprocess.TimeoutExpired):
                self.process.wait(2.0)
        with contextlib.suppress(OSError):
            self.conn.close()

    def kill(self) -> None:
        self.terminate()
        self.reap(time.monotonic() + TERM_WAIT_S)


class ChildPool:
    """A worker's child processes for its sync handlers (at most one per busy slot)."""

    def __init__(self, mode: SyncProcesses, worker_id: str, slots: int = 1) -> None:
        self.mode = mode
        self._worker_id = worker_id
        self._slots = slots  # never more children than slots
        self._specs = list(mode.specs)
        self._lock = threading.Condition()  # notified when a child becomes idle
        self._starting = 0  # children started in the background, not ready yet
        self._idle: list[_Child] = []
        self._all: set[_Child] = set()
        self._calls = itertools.count(1)
        self._closed = False
        self.names: frozenset[str] = frozenset()
        """The sync handlers the children run (what the first child said it has)."""

    def warm(self) -> frozenset[str]:
        """Start one child now (at the worker's start: a spec that does not load is said
        then, not at the first task) and learn which sync handlers the children run."""
        self._closed = False
        child = self._spawn()
        self.names = child.names
        self._put_back(child)
        if self.names:
            log.info("worker %s runs %s in child processes", self._worker_id, sorted(self.names))
        else:
            log.warning(
                "worker %s: no sync handler in --handlers to run in a child", self._worker_id
            )
        return self.names

    def close(self) -> None:
        """Kill every child (the worker is stopping; drains have handed their tasks back)."""
        self._closed = True
        with self._lock:
            children, self._idle = list(self._all), []
            self._lock.notify_all()
        for child in children:
            child.terminate()
        until = time.monotonic() + TERM_WAIT_S
        for child in children:
            child.reap(until)
            self._forget(child)

    # ------------------------------------------------------------------ one call
    def call(self, name: str, ctx: TaskContext, kill: threading.Event) -> JSONValue:
        """Run handler ``name`` on ``ctx`` in a child, from a slot's thread. ``kill``: set
        when the task is handed back (the child is killed at once)."""
        child = self._take()
        call = next(self._calls)
        try:
            child.send(self._task(call, name, ctx, child))
            outcome = self._serve(child, call, name, ctx, kill)
        except BaseException:
            child.kill()  # stopped, crashed or confused: never reused
            self._forget(child)
            self._replace()
            raise
        self._put_back(child)
        _merge(ctx, outcome.get("context") or {})
        if outcome["op"] == "failed":
            retryable = bool(outcome.get("retryable", True))
            raise HandlerError(str(outcome.get("error")), retryable=retryable)
        value: JSONValue = outcome.get("value")
        return value

    def _serve(
        self, child: _Child, call: int, name: str, ctx: TaskContext, kill: threading.Event
    ) -> Message:
        """Serve the call's requests until its outcome (``done`` or ``failed``) comes."""
        give_up: float | None = None  # when a stopped call's child is killed
        while True:
            if kill.is_set():
                log.warning(
                    "worker %s: %s for task %s was handed back; killing its process",
                    self._worker_id,
                    name,
                    ctx.task_id,
                )
                raise HandlerError("the task was handed back; its process was killed")
            if give_up is None and ctx.cancelled.is_set():
                give_up = time.monotonic() + self.mode.cancel_grace_s
                with contextlib.suppress(OSError):
                    child.send({"op": "cancel", "call": call})
            if give_up is not None and time.monotonic() >= give_up:
                log.warning(
                    "worker %s: %s for task %s ignored its stop for %gs; killing its process",
                    self._worker_id,
                    name,
                    ctx.task_id,
                    self.mode.cancel_grace_s,
                )
                raise HandlerError("the task was stopped; its process was killed")
            try:
                if not child.conn.poll(POLL_S):
                    continue
                message = child.recv()
                if message.get("call") != call:
                    continue
                if message.get("op") in ("done", "failed"):
                    return message
                self._request(child, ctx, message, stopped=give_up is not None)
            except (EOFError, OSError):
                how = child.ended()
                raise HandlerError(
                    f"the process running {name} for task {ctx.task_id} {how} before it "
                    "returned; this attempt failed (it may be retried)"
                ) from None
            except (KeyError, TypeError, ValueError) as exc:  # not our protocol
                raise HandlerError(
                    f"the process running {name} sent a message this worker cannot read "
                    f"({type(exc).__name__}: {exc}); this attempt failed"
                ) from None

    def _request(self, child: _Child, ctx: TaskContext, message: Message, stopped: bool) -> None:
        """Serve one of the context's requests. After the stop, new effects are refused and
        progress and metadata dropped: a stopped call starts nothing any more."""
        op = message["op"]
        if op == "progress":
            if not stopped:
                ctx.report_progress(float(message["fraction"]), str(message["message"]))
        elif op == "meta":
            if not stopped:
                _publish(ctx, message)
        elif op in ("claim", "finish"):
            reply: Message = {"op": "reply", "rid": message["rid"]}
            reply.update(_effect(ctx, op, str(message["name"]), message.get("value"), stopped))
            child.send(reply)
        else:
            raise ValueError(f"unknown request {op!r}")

    def _task(self, call: int, name: str, ctx: TaskContext, child: _Child) -> Message:
        task: Message = {
            "op": "run",
            "call": call,
            "handler": name,
            "task_id": ctx.task_id,
            "attempt": ctx.attempt,
            "payload": ctx.payload,
            "workflow_id": ctx.workflow_id,
            "step": ctx.step,
            "deadline": ctx.deadline,
            "inputs": {k: ref.model_dump(mode="json") for k, ref in ctx.inputs.items()},
            "upstream": ctx.upstream,
            "input_data": {k: base64.b64encode(v).decode() for k, v in ctx.input_data.items()},
            "secrets": ctx.secrets,  # to our own child, over its private pipe; never logged
        }
        if child.worker is not ctx.worker:
            task["worker"] = ctx.worker.model_dump(mode="json")
            child.worker = ctx.worker
        return task

    # ------------------------------------------------------------------ children
    def _take(self) -> _Child:
        """An idle child, or the one being started for a slot (waited for), or a new one."""
        with self._lock:
            while True:
                while self._idle:
                    child = self._idle.pop()
                    if child.alive():
                        return child
                    self._all.discard(child)
                if not self._starting or self._closed:
                    break
                self._lock.wait(self.mode.start_timeout_s)
        return self._spawn()

    def _put_back(self, child: _Child) -> None:
        with self._lock:
            if not self._closed and len(self._all) <= self._slots:
                self._idle.append(child)
                self._lock.notify()
                return
        child.kill()  # stopping, or one too many
        self._forget(child)

    def _replace(self) -> None:
        """Start a child in the background for a slot whose child was killed or died, so
        that the slot's next task finds one ready (or on its way) instead of starting one."""
        with self._lock:
            if self._closed or len(self._all) + self._starting >= self._slots:
                return
            self._starting += 1

        def start() -> None:
            try:
                self._put_back(self._spawn())
            except Exception as exc:  # the next call starts its own, and says why
                if not self._closed:
                    log.warning(
                        "worker %s: a handler process did not start: %s", self._worker_id, exc
                    )
            finally:
                with self._lock:
                    self._starting -= 1
                    self._lock.notify_all()

        threading.Thread(
            target=start, name=f"worldpool-{self._worker_id}-respawn", daemon=True
        ).start()

    def _forget(self, child: _Child) -> None:
        with self._lock:
            self._all.discard(child)

    def _spawn(self) -> _Child:
        """Start a child (a fresh interpreter, its socket passed as a file descriptor) and
        wait for it to have loaded the handler specs."""
        if self._closed:
            raise HandlerError("the worker is stopping; the handler was not started")
        ours, theirs = socket.socketpair()
        env = dict(os.environ)  # the same imports as this process
        env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
        with ours, theirs:
            process = subprocess.Popen(
                [sys.executable, "-c", CHILD_MAIN, str(theirs.fileno())],
                pass_fds=[theirs.fileno()],
                stdin=subprocess.DEVNULL,
                env=env,
            )
            child = _Child(process, Connection(ours.detach()))
        with self._lock:
            self._all.add(child)
            closed = self._closed  # close() began meanwhile: it may not have seen this one
        if closed:
            child.kill()
            self._forget(child)
            raise HandlerError("the worker is stopping; the handler was not started")
        try:
            child.send({"op": "load", "specs": self._specs})
            if not child.conn.poll(self.mode.start_timeout_s):
                raise ConfigError(
                    f"a sync handler process did not start in {self.mode.start_timeout_s:g}s"
                )
            hello = child.recv()
            if hello.get("op") != "ready":
                raise ConfigError(
                    f"a sync handler process could not load --handlers: {hello.get('error')}"
                )
        except (EOFError, OSError):
            child.kill()
            self._forget(child)
            raise ConfigError(f"a sync handler process {child.ended()} at its start") from None
        except BaseException:
            child.kill()
            self._forget(child)
            raise
        child.names = frozenset(str(n) for n in hello.get("names", []))
        return child


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
