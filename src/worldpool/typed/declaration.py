"""Handlers declared in Python: ``@worldpool.handler`` on a function that takes and returns
pydantic models, with the task's requirements, retries, timeouts and affinity.

A :class:`TypedHandler` is still the function (call it directly in tests); it also knows
how to turn its input into the JSON payload on the wire (validated at submit, naming the
field and the reason), how to read that payload back on the worker (validated again: the
wire is not trusted), and how to turn the value returned into JSON and back into the
output model for the caller. Workers load it from ``--handlers module:attr`` like any
handler table; the adapter to a ``TaskContext`` handler lives in ``worker/typed.py``.
"""

from __future__ import annotations

import inspect
import re
import typing
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, overload

import pydantic

from worldpool.errors import ConfigError, ValidationError
from worldpool.models import Affinity, JSONValue, Requirements, RetryPolicy, TaskSpec

I = TypeVar("I")  # noqa: E741  # the input model
O = TypeVar("O")  # noqa: E741  # the output model
F = TypeVar("F", bound=Callable[..., Any])

NAME_RE = r"^[A-Za-z0-9_.:-]{1,128}$"


@dataclass(frozen=True)
class TypedHandler(Generic[I, O]):
    """A handler with a name, typed input and output, and the task fields it implies."""

    fn: Callable[..., Any]
    name: str
    input_model: type[pydantic.BaseModel] | None
    output_model: type[pydantic.BaseModel] | None
    wants_context: bool  # fn(ctx, input) rather than fn(input)
    defaults: Mapping[str, Any] = field(default_factory=dict)  # TaskSpec fields

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    @property
    def is_async(self) -> bool:
        return inspect.iscoroutinefunction(self.fn)

    # ------------------------------------------------------------------ task fields
    def task_defaults(self) -> dict[str, Any]:
        """The :class:`TaskSpec` fields the declaration sets (requirements, capabilities,
        retry, timeouts, affinity, ...); a caller's own options win over these."""
        return {
            k: (v.model_copy() if isinstance(v, pydantic.BaseModel) else v)
            for k, v in self.defaults.items()
        }

    # ------------------------------------------------------------------ the wire
    def dump_input(self, value: Any) -> dict[str, JSONValue]:
        """The JSON payload of ``value`` (an instance of the input model, or a dict that
        validates as one). Refused with the field and the reason if it does not."""
        if self.input_model is None:
            if value is None:
                return {}
            if isinstance(value, dict):
                return value
            raise ValidationError(
                f"handler {self.name!r} takes no typed input; pass a dict or nothing"
            )
        model = self._validate(self.input_model, value, "input")
        dumped: dict[str, JSONValue] = model.model_dump(mode="json")
        return dumped

    def load_input(self, payload: Mapping[str, JSONValue]) -> pydantic.BaseModel | None:
        """The input model read back from a task's payload (on the worker)."""
        if self.input_model is None:
            return None
        model: pydantic.BaseModel = self._validate(self.input_model, dict(payload), "input")
        return model

    def dump_output(self, value: Any) -> JSONValue:
        """The JSON value of what the function returned (checked against the output model)."""
        if self.output_model is None:
            return value
        return self._validate(self.output_model, value, "output").model_dump(mode="json")

    def load_output(self, value: JSONValue) -> O:
        """The output model read back from a task's result (for the caller)."""
        if self.output_model is None:
            return typing.cast("O", value)
        return typing.cast("O", self._validate(self.output_model, value, "output"))

    def _validate(self, model: type[pydantic.BaseModel], value: Any, what: str) -> Any:
        if isinstance(value, model):
            value = value.model_dump(mode="json")  # re-check: a model can be built unchecked
        elif isinstance(value, pydantic.BaseModel):
            raise ValidationError(
                f"handler {self.name!r} {what}: expected {model.__name__}, got "
                f"{type(value).__name__}"
            )
        try:
            return model.model_validate(value)
        except pydantic.ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or model.__name__
            raise ValidationError(
                f"handler {self.name!r} {what} {model.__name__}.{where}: {first['msg']} "
                f"({exc.error_count()} problem(s))"
            ) from None


@overload
def handler(fn: F, /) -> TypedHandler[Any, Any]: ...
@overload
def handler(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    capabilities: Iterable[str] = (),
    gpu: bool | None = None,
    gpu_model: str | None = None,
    min_vram_gb: float | None = None,
    model: str | None = None,
    min_context_tokens: int | None = None,
    regions: Iterable[str] = (),
    interactive: bool = False,
    heavy: bool = False,
    retries: int | RetryPolicy | None = None,
    timeout_s: float | None = None,
    schedule_to_start_timeout_s: float | None = None,
    affinity: Affinity | str | None = None,
    requirements: Requirements | None = None,
) -> Callable[[F], TypedHandler[Any, Any]]: ...


def handler(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    capabilities: Iterable[str] = (),
    gpu: bool | None = None,
    gpu_model: str | None = None,
    min_vram_gb: float | None = None,
    model: str | None = None,
    min_context_tokens: int | None = None,
    regions: Iterable[str] = (),
    interactive: bool = False,
    heavy: bool = False,
    retries: int | RetryPolicy | None = None,
    timeout_s: float | None = None,
    schedule_to_start_timeout_s: float | None = None,
    affinity: Affinity | str | None = None,
    requirements: Requirements | None = None,
) -> TypedHandler[Any, Any] | Callable[[Callable[..., Any]], TypedHandler[Any, Any]]:
    """Declare a handler: ``@handler`` or ``@handler(name="plan", gpu=True, ...)``.

    The function takes its input model (or ``ctx, input``: a ``TaskContext`` first) and
    returns its output model; plain ``dict`` / no annotation means untyped JSON.
    ``retries`` is the retry budget (or a whole :class:`RetryPolicy`), ``timeout_s`` the
    execution timeout; ``affinity`` a key (soft) or an :class:`Affinity`.
    """
    reqs: dict[str, Any] = {} if requirements is None else requirements.model_dump()
    for key, value in (
        ("gpu", gpu),
        ("gpu_model", gpu_model),
        ("min_vram_gb", min_vram_gb),
        ("model", model),
        ("min_context_tokens", min_context_tokens),
    ):
        if value is not None:
            reqs[key] = value
    if min_vram_gb or gpu_model:
        reqs.setdefault("gpu", True)
    if regions:
        reqs["regions"] = list(regions)
    defaults: dict[str, Any] = {}
    try:
        if reqs:
            defaults["requirements"] = Requirements.model_validate(reqs)
        if isinstance(retries, RetryPolicy):
            defaults["retry"] = retries
        elif retries is not None:
            defaults["retry"] = RetryPolicy(max_retries=retries)
        if isinstance(affinity, str):
            defaults["affinity"] = Affinity(key=affinity)
        elif affinity is not None:
            defaults["affinity"] = affinity
    except pydantic.ValidationError as exc:
        raise ConfigError(
            f"@handler: {exc.errors()[0]['msg']} ({exc.errors()[0]['loc']})"
        ) from None
    if capabilities:
        defaults["capabilities"] = frozenset(capabilities)
    if interactive:
        defaults["interactive"] = True
    if heavy:
        defaults["heavy"] = True
    if timeout_s is not None:
        defaults["execution_timeout_s"] = timeout_s
    if schedule_to_start_timeout_s is not None:
        defaults["schedule_to_start_timeout_s"] = schedule_to_start_timeout_s

    def declare(f: Callable[..., Any]) -> TypedHandler[Any, Any]:
        return _declare(f, name or f.__name__, defaults)

    return declare if fn is None else declare(fn)


def _declare(fn: Callable[..., Any], name: str, defaults: dict[str, Any]) -> TypedHandler[Any, Any]:
    if not re.match(NAME_RE, name):
        raise ConfigError(f"@handler name {name!r}: use 1-128 letters, digits, '_', '.', ':', '-'")
    try:  # refuse a bad declaration at import, not at the first submit
        TaskSpec.model_validate({"handler": name, **defaults})
    except pydantic.ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise ConfigError(f"@handler {name!r}: {where}: {first['msg']}") from None
    params = [
        p
        for p in inspect.signature(fn).parameters.values()
        if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ]
    if len(params) not in (1, 2):
        raise ConfigError(
            f"@handler {name!r}: the function takes (input) or (ctx, input); it takes "
            f"{len(params)} positional parameters"
        )
    try:
        hints = typing.get_type_hints(fn)
    except Exception as exc:  # an annotation that does not resolve: say which
        raise ConfigError(f"@handler {name!r}: cannot read its annotations ({exc})") from None
    return TypedHandler(
        fn=fn,
        name=name,
        input_model=_model_of(hints.get(params[-1].name)),
        output_model=_model_of(hints.get("return")),
        wants_context=len(params) == 2,
        defaults=defaults,
    )


def _model_of(annotation: Any) -> type[pydantic.BaseModel] | None:
    if inspect.isclass(annotation) and issubclass(annotation, pydantic.BaseModel):
        return annotation
    return None  # dict, Any, no annotation: untyped JSON
