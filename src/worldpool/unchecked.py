"""Pydantic models built or changed without validation: every hot-path bypass, in one place.

Validation is where untrusted values enter (an API body, a worker's report, a stored
record read back). Past that point the hot path (submit, dispatch, results, routing, the
simulator) rebuilds and updates models from values that were already validated or that
it computed itself, and validating them again would cost more than the work around it:

* :func:`construct` builds a model from a complete set of values. ``model_construct``
  already skips validation but still walks every field, looks up defaults and (for
  ``default_factory`` fields) inspects the factory's signature: about 7.5 µs for a
  :class:`~worldpool.models.CandidateReport`, and a routing decision lists up to 25 of
  them. :func:`construct` sets the instance state directly (what ``model_construct``
  does once it has the values) in about 2 µs.
* :func:`assign` sets fields of an existing model, as ``model_copy(update=...)`` does
  for its copy, where ``validate_assignment`` would re-validate each field (~5 µs each).

The contract, which the caller keeps and nothing checks at run time: values have the
field's type, already in the form validation would give (validators would change
nothing), and :func:`construct` is given *every* field. ``tests/test_unchecked.py``
finds every :func:`construct` call in ``src/`` and checks, on representative inputs for
each model, that the result equals validated construction (same ``model_dump``, same
``model_fields_set``), so a new field, a changed default or a new validator fails a test
instead of producing objects that drift from validated ones; and a pydantic upgrade that
changes the instance layout fails the same test.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__  # BaseModel.__setattr__ would validate (validate_assignment)


def construct(cls: type[M], fields_set: Set[str], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (every field, typed), with ``fields_set``
    as the fields the caller "set" (what ``model_dump(exclude_unset=True)`` keeps).

    ``values`` becomes the instance's state: the caller must not reuse the dict."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(fields_set))  # own copy: assignment adds to it
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj


def assign(model: BaseModel, **changes: object) -> None:
    """Set fields of ``model`` in place without validating them, and mark them set.

    For transitions whose values come from models validated where they entered; each
    value must have the field's type."""
    model.__dict__.update(changes)
    model.__pydantic_fields_set__.update(changes)
