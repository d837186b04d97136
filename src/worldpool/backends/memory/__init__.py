"""The in-process backend: the embedded default and the test double.

Everything lives in one :class:`MemoryStore` in this process and runs on one event loop.
No method awaits inside a state change, so every step of the contract is atomic without
locks. The package, one module per part:

* :mod:`.store`: the state (plain containers, the wake-up :class:`~.store.Signal`,
  :func:`~.store.clone`);
* :mod:`.rules`: the storage rules (slot check, compare-and-set, fencing), each written
  once and called by every operation that needs it;
* :mod:`.backend`: :class:`MemoryBackend`, the contract's operations;
* :mod:`.results`: the results stream's consumers (redelivery after a restart, claims
  of results a dead consumer left);
* :mod:`.pool`: the pool's change feed and the worker views routing reads.

Blocking reads (:meth:`MemoryBackend.receive`, ``receive_results``, ``read_events``)
wait on a :class:`~.store.Signal`, never in a polling loop.

Stored models are copies made through JSON (:func:`clone`), on the way in and on the way
out, so a caller mutating a record it passed or got back cannot change the stored state,
and a value Redis could not store fails here too.

A :class:`MemoryBackend` is a *client* of a store; :meth:`MemoryBackend.reconnect` opens
another client on the same store, the in-process equivalent of a process restarting
against the same Redis (it is how unacked results get redelivered, see
:meth:`MemoryBackend.receive_results`).
"""

from worldpool.backends.memory.backend import MemoryBackend
from worldpool.backends.memory.store import MemoryStore, clone

__all__ = ["MemoryBackend", "MemoryStore", "clone"]
