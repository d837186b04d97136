"""Build pydantic models from values the router computed itself, without validation.

``Model.model_construct`` already skips validation but still walks every field, looks up
defaults and (for ``default_factory`` fields) inspects the factory's signature: about
7.5 µs for a :class:`~worldpool.models.CandidateReport`, and a decision lists up to 25
of them. :func:`construct` sets the instance state directly (what ``model_construct``
does once it has the values) in about 2 µs. The caller passes *every* field, already of
the right type; ``tests/routing/test_construct.py`` checks the result equals
``model_construct``'s, so a pydantic upgrade that changes the instance layout fails a
test instead of producing broken objects.
"""

from __future__ import annotations

from collections.abc import Set
from typing import Any, TypeVar

from pydantic import BaseModel

M = TypeVar("M", bound=BaseModel)
_set = object.__setattr__


def construct(cls: type[M], fields_set: Set[str], values: dict[str, Any]) -> M:
    """An instance of ``cls`` holding ``values`` (every field), with ``fields_set`` as
    the fields the caller "set" (what ``model_dump(exclude_unset=True)`` keeps)."""
    obj = cls.__new__(cls)
    _set(obj, "__dict__", values)
    _set(obj, "__pydantic_fields_set__", set(fields_set))  # own copy: assignment adds to it
    _set(obj, "__pydantic_extra__", None)
    _set(obj, "__pydantic_private__", None)
    return obj
