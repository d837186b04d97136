"""Names and ids a workflow derives for its steps, and the wording of its errors.

Shared by the builder (:mod:`.builder`), validation (:mod:`.validation`), the step tasks
(:mod:`.steps`) and the file loader (:mod:`.files`). Pure, no I/O.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

import pydantic

TASK_ID_MAX = 128
DEFAULT_STICKY_WAIT_S = 5.0


def step_task_id(workflow_id: str, step: str) -> str:
    """The deterministic task id of a step, so re-submitting a step is idempotent."""
    return f"{workflow_id}.{step}"


def affinity_key(workflow_id: str, step: str) -> str:
    """The affinity key held by the worker that ran ``step`` (what ``sticky_to`` follows)."""
    return f"{workflow_id}:{step}"


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A "Did you mean 'x'?" hint (with a leading space) for the closest choice, or ""."""
    close = difflib.get_close_matches(name, sorted(choices), n=1)
    return f" Did you mean {close[0]!r}?" if close else ""


def format_pydantic_error(err: pydantic.ValidationError, prefix: str = "") -> str:
    """One ``path: message`` per problem, e.g. ``requirements.min_vram_gb: ...``."""
    lines = []
    for e in err.errors():
        path = ".".join(str(p) for p in e["loc"])
        where = ".".join(p for p in (prefix, path) if p)
        message = str(e["msg"]).removeprefix("Value error, ")  # pydantic's wrapper, not news
        lines.append(f"{where or '(top level)'}: {message}")
    return "; ".join(lines)
