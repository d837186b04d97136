"""What every model builds on: the strict :class:`Model` base, ``JSONValue``, ids and time."""

from __future__ import annotations

import time
import uuid
from typing import Any, TypeAlias

from pydantic import BaseModel, ConfigDict

JSONValue: TypeAlias = Any  # anything orjson can serialise; checked at the boundaries


def now_s() -> float:
    """Wall-clock seconds since the epoch (the unit of every timestamp in the model)."""
    return time.time()


def new_id(prefix: str) -> str:
    """A short, sortable-enough unique id such as ``task-3f9a1c2b7d4e``."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


class Model(BaseModel):
    """Base for every model: unknown fields are an error, values are validated on set."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)
