"""Name -> factory registries: the one mechanism behind routing plugins (filters, scorers)
and sandbox providers.

A factory takes the options of whoever builds the plugin (the routing policy, the
worker's sandbox options) and returns an object whose ``name`` is the registered name.
Registering a name twice is an error unless ``replace=True``: a typo must not silently
shadow a built-in. An unknown name is answered with a did-you-mean and the known names.
"""

from __future__ import annotations

import difflib
import importlib
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from worldpool.errors import ConfigError

Opts = TypeVar("Opts")  # what a factory is given
T = TypeVar("T")  # what it builds


class NamedRegistry(Generic[Opts, T]):
    """Factories of one kind of plugin, by name.

    ``kind`` names the kind in messages ("scorer", "sandbox provider"), ``noun`` what a
    factory builds ("plugin", "provider"), ``register_with`` the public function users
    call to add their own, ``example`` a valid name shown when a name is malformed."""

    def __init__(self, kind: str, *, noun: str, register_with: str, example: str = "") -> None:
        self.kind = kind
        self._noun = noun
        self._register_with = register_with
        self._example = example
        self._factories: dict[str, Callable[[Opts], T]] = {}

    def register(self, name: str, factory: Callable[[Opts], T], *, replace: bool = False) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            example = f" (e.g. {self._example!r})" if self._example else ""
            raise ConfigError(
                f"{self.kind} name {name!r} must be letters, digits, '_' or '-'{example}"
            )
        if name in self._factories and not replace:
            raise ConfigError(
                f"a {self.kind} named {name!r} is already registered; pick another name "
                "or pass replace=True to override it on purpose"
            )
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        if self._factories.pop(name, None) is None:
            raise ConfigError(f"no {self.kind} named {name!r} is registered")

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def check(self, name: str) -> None:
        """Raise ConfigError naming the known names if ``name`` is not registered."""
        if name in self._factories:
            return
        close = difflib.get_close_matches(name, list(self._factories), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown {self.kind} {name!r}.{hint} Known {self.kind}s: "
            f"{', '.join(sorted(self._factories))} (register your own with "
            f"{self._register_with}())"
        )

    def create(self, name: str, options: Opts) -> T:
        self.check(name)
        built = self._factories[name](options)
        built_name = getattr(built, "name", None)
        if built_name != name:
            raise ConfigError(
                f"the {self.kind} factory registered as {name!r} built a {self._noun} named "
                f"{built_name!r}; the {self._noun}'s name must equal its registered name"
            )
        return built


def import_object(spec: str, option: str, example: str) -> Any:
    """The object ``module:attribute`` names (dots in the attribute walk into it), for the
    specs an operator gives on the command line (``--handlers``, ``--celery-app``); never
    for names that come from messages. ``option`` and ``example`` word the errors."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigError(f"{option} {spec!r} must look like {example}")
    try:
        obj: Any = importlib.import_module(module_name)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"{option} {spec!r}: {exc}") from None
    return obj
