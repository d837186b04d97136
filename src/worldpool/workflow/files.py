"""Load a workflow from a TOML or JSON file (what ``worldpool submit`` reads).

The file is a table with ``name``, optional ``id``, ``user_location``, ``labels``, and
``steps``: a list of step tables (or a table of them keyed by step name). A step table
takes the :meth:`worldpool.workflow.builder.Workflow.step` arguments (``handler``, ``after``,
``sticky_to``, ``sticky_mode``, ``sticky_wait_s`` and any task field), or is the
canonical ``{"name", "task", "after", "sticky_to"}`` shape that
``WorkflowSpec.model_dump_json()`` writes. Every error names the file and where in it.
"""

from __future__ import annotations

import difflib
import json
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pydantic

from worldpool.errors import WorkflowError
from worldpool.models import StepSpec, WorkflowSpec
from worldpool.workflow.builder import Workflow
from worldpool.workflow.naming import format_pydantic_error

_TOP_LEVEL = frozenset({"id", "name", "user_location", "labels", "steps"})


def load_workflow_file(path: str | Path, known_handlers: set[str] | None = None) -> WorkflowSpec:
    """Read, build and validate the workflow in ``path`` (``.toml`` or ``.json``)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as err:
        raise WorkflowError(f"cannot read workflow file {path}: {err}") from None
    data = _parse(path, text)
    try:
        return workflow_from_dict(data, default_name=path.stem, known_handlers=known_handlers)
    except WorkflowError as err:
        raise WorkflowError(f"{path}: {err}") from None


def _parse(path: Path, text: str) -> Any:
    suffix = path.suffix.lower()
    if suffix == ".toml":
        try:
            return tomllib.loads(text)
        except tomllib.TOMLDecodeError as err:
            raise WorkflowError(f"{path} is not valid TOML: {err}") from None
    if suffix == ".json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as err:
            raise WorkflowError(
                f"{path} is not valid JSON: {err.msg} (line {err.lineno}, column {err.colno})"
            ) from None
    raise WorkflowError(
        f"{path}: unknown workflow file type {suffix or '(none)'!r}; use .toml or .json"
    )


def workflow_from_dict(
    data: Any, *, default_name: str = "workflow", known_handlers: set[str] | None = None
) -> WorkflowSpec:
    """Build and validate a workflow from parsed file contents (no I/O)."""
    if not isinstance(data, Mapping):
        raise WorkflowError(
            f"the top level must be a table with a 'steps' list, not {type(data).__name__}"
        )
    for key in data:
        if key not in _TOP_LEVEL:
            close = difflib.get_close_matches(str(key), sorted(_TOP_LEVEL), n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise WorkflowError(
                f"unknown top-level field {key!r}.{hint} Allowed: {', '.join(sorted(_TOP_LEVEL))}"
            )
    for key in ("id", "name", "user_location"):
        if key in data and not isinstance(data[key], str):
            raise WorkflowError(f"{key}: must be a string, not {type(data[key]).__name__}")
    labels = data.get("labels", {})
    if not isinstance(labels, Mapping):
        raise WorkflowError("labels: must be a table of strings")
    wf = Workflow(
        data.get("name", default_name),
        id=data.get("id"),
        user_location=data.get("user_location"),
        labels={str(k): str(v) for k, v in labels.items()},
    )
    for where, step in _steps(data.get("steps")):
        try:
            _add_step(wf, step)
        except WorkflowError as err:
            raise WorkflowError(f"{where}: {err}") from None
    return wf.build(known_handlers)


def _steps(raw: Any) -> list[tuple[str, dict[str, Any]]]:
    """(location in the file, step table) pairs from a list or a name-keyed table."""
    if isinstance(raw, Mapping):
        pairs = [
            (f"steps.{name}", {"name": name, **_table(step, f"steps.{name}")})
            for name, step in raw.items()
        ]
    elif isinstance(raw, list):
        pairs = [(f"steps[{i}]", _table(step, f"steps[{i}]")) for i, step in enumerate(raw)]
    else:
        raise WorkflowError(
            "steps: missing or not a list; add at least one [[steps]] table with a name "
            "and a handler"
        )
    if not pairs:
        raise WorkflowError("steps: is empty; add at least one step")
    return pairs


def _table(value: Any, where: str) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise WorkflowError(f"{where}: must be a table, not {type(value).__name__}")
    return dict(value)


def _add_step(wf: Workflow, step: dict[str, Any]) -> None:
    if "task" in step:  # the canonical shape written by WorkflowSpec.model_dump_json()
        try:
            wf.add_step(StepSpec.model_validate(step))
        except pydantic.ValidationError as err:
            raise WorkflowError(format_pydantic_error(err)) from None
        return
    name = step.pop("name", None)
    handler = step.pop("handler", None)
    if not isinstance(name, str):
        raise WorkflowError("name: every step needs a name (a string)")
    if not isinstance(handler, str):
        raise WorkflowError(f"handler: step {name!r} needs a handler name (a string)")
    after = step.pop("after", [])
    if isinstance(after, str):
        after = [after]
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise WorkflowError(f"after: step {name!r} needs a list of step names")
    wf.step(name, handler=handler, after=after, **step)
