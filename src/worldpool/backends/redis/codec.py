"""How models become Redis values and back: JSON only (never pickle), versions kept apart.

A record's ``version`` lives in its own hash field (the compare-and-set reads it in Lua
without decoding JSON), so the JSON is stored without it and the field is put back on
read. Event ``seq`` values are Redis stream ids written with a zero-padded sequence part,
so they sort in append order as plain strings.
"""

from __future__ import annotations

import re
from typing import Any, TypeVar

import orjson

from worldpool.errors import ValidationError
from worldpool.lifecycle import timeout_deadline
from worldpool.models import (
    TaskRecord,
    Worker,
    WorkerProfile,
    WorkerState,
    WorkerStatus,
    WorkflowRecord,
)

R = TypeVar("R", TaskRecord, WorkflowRecord)

_STATE_FIELDS = {"worker_id", "latency_ms", "cached", "sticky_keys", "heartbeat_seq", "consuming"}
"""What a worker hash stores in ``state``; status, heartbeat and slots have their own fields."""

_SEQ_RE = re.compile(r"^(\d{1,20})-(\d{1,20})$")


def text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def dump_record(record: TaskRecord | WorkflowRecord) -> bytes:
    # Straight to JSON in pydantic's core: about twice as fast as model_dump + orjson.
    return record.model_dump_json(exclude={"version"}).encode()


def load_record(model: type[R], data: bytes | None, version: bytes | None) -> R | None:
    if data is None:
        return None
    # Parsing and validating in pydantic's core straight from JSON is about twice as fast
    # as orjson.loads + model_validate(dict) (the hottest call of the orchestrator).
    record = model.model_validate_json(data)
    record.version = int(version or 0)
    return record


def deadline_arg(record: TaskRecord) -> str:
    """``put_record.lua``/``dispatch.lua``'s deadline argument ("" = no timeout can fire)."""
    deadline = timeout_deadline(record)
    return "" if deadline is None else repr(deadline)


def fencing_fields(record: TaskRecord) -> list[str]:
    """The copy of attempt / worker / terminal (key ``f:{task}``) that the worker's scripts
    (``complete.lua``, ``heartbeat.lua``, the effect ledger's) fence on."""
    return [
        "attempt",
        str(record.attempt),
        "worker",
        record.worker_id or "",
        "terminal",
        "1" if record.status.terminal else "0",
    ]


def dump_state(state: WorkerState) -> bytes:
    return orjson.dumps(state.model_dump(mode="json", include=_STATE_FIELDS))


def load_worker(
    profile: bytes, state: bytes, status: bytes, heartbeat: bytes, running: int
) -> Worker:
    values: dict[str, Any] = orjson.loads(state)
    values.update(
        status=WorkerStatus(text(status)), last_heartbeat=float(heartbeat), running=running
    )
    return Worker(
        profile=WorkerProfile.model_validate_json(profile),
        state=WorkerState.model_validate(values),
    )


def seq_from_stream_id(stream_id: bytes | str) -> str:
    """``"1764282904953-7"`` -> ``"1764282904953-0000000007"`` (sorts as a string)."""
    ms, _, n = text(stream_id).partition("-")
    return f"{int(ms):013d}-{int(n):010d}"


def stream_id_from_seq(seq: str) -> str:
    """The inverse of :func:`seq_from_stream_id`; a bad cursor is a ValidationError."""
    match = _SEQ_RE.match(seq)
    if match is None:
        raise ValidationError(
            f"event cursor {seq!r} is not a seq of the Redis backend; pass the seq of an "
            "event read from it, or None to read from the oldest kept"
        )
    return f"{int(match[1])}-{int(match[2])}"
