"""``--sync-handlers process``: sync handlers run in child processes, which can be killed.

A thread cannot be stopped from outside: in the default mode a sync handler deaf to
``ctx.cancelled`` runs on in its thread until it returns. In this mode the sync handlers of
the ``--handlers`` specs run in child processes (:mod:`.child`: fresh interpreters of the
same Python, at most one per slot, each started on first use and reused call after call),
and the slot's thread serves the call: it sends the task (JSON over a socket), answers
the context's requests (progress, live metadata, ``ctx.once`` through this worker's
backend), passes ``ctx.cancelled`` on, and takes the outcome back. A call stopped
(cancelled, timed out, its worker declared offline) whose child has not returned
``cancel_grace_s`` later, or one whose task a drain hands back, has its child killed
(SIGTERM, then SIGKILL): its slot is free again, and nothing the child would still have
reported or applied reaches the backend (after the stop the parent refuses its effects
and drops its reports). A child that dies during a call fails the attempt (retryable),
saying how it ended.

The package, one module per part: :mod:`.pool` (:class:`SyncProcesses`, the mode, and
:class:`ChildPool`, a worker's children: started, reused, replaced, killed),
:mod:`.handle` (one child process: its socket, how it ended, SIGTERM then SIGKILL),
:mod:`.calls` (one call: the task sent, the context's requests served, the outcome
taken back) and :mod:`.child` (the child's side).
"""

from worldpool.worker.processes.handle import CHILD_MAIN
from worldpool.worker.processes.pool import ChildPool, SyncProcesses

__all__ = ["CHILD_MAIN", "ChildPool", "SyncProcesses"]
