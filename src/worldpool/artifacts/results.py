"""A task's value as its callers see it: inline in the record, or, when it was too large
for a record (over ``result_inline_max_bytes``), fetched from where the worker stored it
and checked against its digest before it is decoded."""

from __future__ import annotations

import orjson

from worldpool.artifacts.store import ArtifactStore
from worldpool.errors import ArtifactError
from worldpool.models import JSONValue, TaskRecord


async def task_value(artifacts: ArtifactStore, record: TaskRecord) -> JSONValue:
    """``record``'s value: ``record.result``, or the stored one its ``result_ref`` names
    (ArtifactError if it is gone, fails its digest check or is not JSON)."""
    ref = record.result_ref
    if ref is None:
        return record.result
    data = await artifacts.get(ref)  # verified: digest and size
    try:
        value: JSONValue = orjson.loads(data)
    except orjson.JSONDecodeError:
        raise ArtifactError(
            f"task {record.id}'s stored result ({ref.digest}) is not JSON; re-run the task"
        ) from None
    return value
