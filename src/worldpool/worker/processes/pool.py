"""A worker's child processes for ``--sync-handlers process``: at most one per slot,
each started on first use and reused call after call; one that was killed or died is
replaced in the background, so that the slot's next task finds one ready.
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from dataclasses import dataclass

from worldpool.errors import ConfigError, HandlerError
from worldpool.models import JSONValue
from worldpool.worker.handlers import TaskContext
from worldpool.worker.processes.calls import Call
from worldpool.worker.processes.handle import TERM_WAIT_S, ChildProcess

log = logging.getLogger("worldpool.worker.processes")


@dataclass(frozen=True)
class SyncProcesses:
    """Run the sync handlers of ``specs`` (``--handlers module:object``, as the operator
    gave them) in child processes. ``cancel_grace_s``: how long a stopped call's child
    gets to return before it is killed (a drain's hand-back kills at once: the drain
    timeout was its grace)."""

    specs: tuple[str, ...]
    cancel_grace_s: float = 2.0
    start_timeout_s: float = 60.0


class ChildPool:
    """A worker's child processes for its sync handlers (at most one per busy slot)."""

    def __init__(self, mode: SyncProcesses, worker_id: str, slots: int = 1) -> None:
        self.mode = mode
        self._worker_id = worker_id
        self._slots = slots  # never more children than slots
        self._specs = list(mode.specs)
        self._lock = threading.Condition()  # notified when a child becomes idle
        self._starting = 0  # children started in the background, not ready yet
        self._idle: list[ChildProcess] = []
        self._all: set[ChildProcess] = set()
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
        call = Call(
            child, next(self._calls), name, ctx, kill, self.mode.cancel_grace_s, self._worker_id
        )
        try:
            outcome = call.run()
        except BaseException:
            child.kill()  # stopped, crashed or confused: never reused
            self._forget(child)
            self._replace()
            raise
        self._put_back(child)
        return call.result(outcome)

    # ------------------------------------------------------------------ children
    def _take(self) -> ChildProcess:
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

    def _put_back(self, child: ChildProcess) -> None:
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

    def _forget(self, child: ChildProcess) -> None:
        with self._lock:
            self._all.discard(child)

    def _spawn(self) -> ChildProcess:
        """Start a child and wait for it to have loaded the handler specs."""
        if self._closed:
            raise HandlerError("the worker is stopping; the handler was not started")
        child = ChildProcess.start()
        with self._lock:
            self._all.add(child)
            closed = self._closed  # close() began meanwhile: it may not have seen this one
        if closed:
            child.kill()
            self._forget(child)
            raise HandlerError("the worker is stopping; the handler was not started")
        try:
            child.load(self._specs, self.mode.start_timeout_s)
        except (EOFError, OSError):
            child.kill()
            self._forget(child)
            raise ConfigError(f"a sync handler process {child.ended()} at its start") from None
        except BaseException:
            child.kill()
            self._forget(child)
            raise
        return child
