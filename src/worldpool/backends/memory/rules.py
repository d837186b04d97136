"""The memory backend's storage rules, each written once: the slot check, compare-and-set
on versions, fencing, and the dispatch step built from them.

Every operation of :class:`~worldpool.backends.memory.MemoryBackend` that needs a rule
calls the function here (the Redis backend writes the same rules once, in the
Lua fragments ``redis/scripts/_<name>.lua``). The functions only mutate a
:class:`~worldpool.backends.memory.store.MemoryStore` and never await, so each caller's
step stays atomic on the event loop.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from worldpool.backends.base import Delivery, Dispatch, DispatchOutcome, EffectClaim, EpochMark
from worldpool.backends.memory.store import MemoryStore, ReplyBox, clone
from worldpool.lifecycle import timeout_deadline
from worldpool.models import TaskRecord, WorkerStatus, WorkflowRecord

R = TypeVar("R", TaskRecord, WorkflowRecord)


def slot_refusal(store: MemoryStore, worker_id: str, task_id: str) -> str:
    """The slot check: why the worker cannot take a slot for the task now ("" if it can).
    A task that already holds a slot on the worker needs no second one."""
    state = store.states.get(worker_id)
    if state is None:
        return "no such worker is registered"
    if state.status is not WorkerStatus.ONLINE:
        return f"the worker is {state.status.value}"
    slots = store.slots.get(worker_id, set())
    capacity = store.profiles[worker_id].max_concurrency
    if task_id not in slots and len(slots) >= capacity:
        return f"all {capacity} slots are taken"
    return ""


def owns(store: MemoryStore, task_id: str, worker_id: str, attempt: int) -> bool:
    """Fencing: the task's record names this worker and attempt and is not terminal."""
    record = store.tasks.get(task_id)
    return (
        record is not None
        and record.worker_id == worker_id
        and record.attempt == attempt
        and not record.status.terminal
    )


def version_matches(table: dict[str, R], key: str, expect_version: int | None) -> bool:
    """Compare-and-set's compare: the stored version is ``expect_version`` (a missing
    record has version 0; None: no compare)."""
    stored = table.get(key)
    return expect_version is None or expect_version == (0 if stored is None else stored.version)


def put_versioned(table: dict[str, R], key: str, record: R, expect_version: int | None) -> bool:
    """Compare-and-set: store a copy with the version bumped (``record`` gets it too)."""
    if not version_matches(table, key, expect_version):
        return False
    stored = table.get(key)
    version = (0 if stored is None else stored.version) + 1
    table[key] = clone(record.model_copy(update={"version": version}))
    record.version = version
    return True


def put_task(store: MemoryStore, record: TaskRecord, expect_version: int | None) -> bool:
    """Compare-and-set a task record and keep its timeout deadline indexed."""
    before = store.tasks.get(record.id)
    if not put_versioned(store.tasks, record.id, record, expect_version):
        return False
    if record.id not in store.ages:  # its first put: its age in the pending queue
        store.ages[record.id] = next(store.ids)
    deadline = timeout_deadline(record)
    if deadline is None:
        store.deadlines.pop(record.id, None)
    else:
        store.deadlines[record.id] = deadline
    client = record.spec.reply_to
    ended_now = record.status.terminal and (before is None or not before.status.terminal)
    if client and ended_now:  # the write that ends the task pushes it to its client
        box = store.replies.setdefault(client, ReplyBox())
        box.push(int(store.next_id()), store.tasks[record.id])
    return True


def send(store: MemoryStore, worker_id: str, task_id: str, envelope: bytes) -> str:
    """Take the slot (the check was made) and queue the envelope; the delivery id."""
    store.slots.setdefault(worker_id, set()).add(task_id)
    delivery = Delivery(id=store.next_id(), data=bytes(envelope), task_id=task_id)
    queue = store.queue(worker_id)
    queue.new.append(delivery)
    queue.signal.notify()
    return delivery.id


def dispatch(store: MemoryStore, item: Dispatch) -> DispatchOutcome:
    """One dispatch step: compare the stored record's version, check the slot, then store
    the routed record, send it, dequeue it and log its event; or change nothing."""
    task_id = item.record.id
    if task_id not in store.tasks or not version_matches(store.tasks, task_id, item.expect_version):
        return DispatchOutcome(sent=False, conflict=True)
    refused = slot_refusal(store, item.worker_id, task_id)
    if refused:
        return DispatchOutcome(sent=False, reason=refused)
    return dispatch_checked(store, item)


def dispatch_checked(store: MemoryStore, item: Dispatch) -> DispatchOutcome:
    """The writes of :func:`dispatch`, once its checks passed."""
    put_task(store, item.record, None)
    delivery_id = send(store, item.worker_id, item.record.id, item.envelope)
    store.pending.pop(item.record.id, None)
    store.events.append(item.event)
    return DispatchOutcome(sent=True, delivery_id=delivery_id)


def claim_effect(
    store: MemoryStore, key: str, task_id: str, worker_id: str, attempt: int
) -> EffectClaim:
    """The effect ledger's claim, fenced by the claiming attempt (see the contract)."""
    if not owns(store, task_id, worker_id, attempt):
        return EffectClaim("fenced")
    state, value = store.effects.get(key, ("", None))
    if state == "done":
        return EffectClaim("done", value)
    store.effects[key] = ("claimed", None)
    return EffectClaim("run")


def touch_epoch(store: MemoryStore, candidate: str, previous: str | None, now: float) -> EpochMark:
    """The deployment epoch, one more on its mark; made (recording ``previous`` as lost)
    if there is none."""
    if store.epoch is None:
        store.epoch = EpochMark(candidate, 1, True, previous or None, now if previous else None)
        return store.epoch
    store.epoch = replace(store.epoch, mark=store.epoch.mark + 1, created=False)
    return store.epoch
