"""Name → factory registry of the sandbox providers the ``shell`` and ``run_tests``
executors run commands in.

A factory takes the :class:`SandboxOptions` the worker was started with and returns a
provider whose ``name`` is the registered name. Registering a name twice is an error
unless ``replace=True``: a typo must not silently shadow a built-in. Built-ins:
``bubblewrap`` (the default), ``locale2b`` (Firecracker microVMs of a locale2b service)
and ``local`` (no isolation; refuses to run unless ``--unsafe-local-shell``). Each is
imported only when asked for.

    from worldpool.executors import register_sandbox_provider

    register_sandbox_provider("nsjail", lambda options: NsjailProvider(options.ro_paths))
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from worldpool.errors import ConfigError
from worldpool.executors.sandbox.base import SandboxProvider


@dataclass(frozen=True)
class SandboxOptions:
    """What a worker says about its sandbox; each provider uses the parts it understands."""

    allow_network: bool = False
    unsafe_local_shell: bool = False
    ro_paths: list[Path] = field(default_factory=list)
    locale2b_url: str | None = None


SandboxFactory = Callable[[SandboxOptions], SandboxProvider]


class SandboxRegistry:
    """Sandbox provider factories by name."""

    def __init__(self) -> None:
        self._factories: dict[str, SandboxFactory] = {}

    def register(self, name: str, factory: SandboxFactory, *, replace: bool = False) -> None:
        if not name or not name.replace("_", "").replace("-", "").isalnum():
            raise ConfigError(f"sandbox provider name {name!r} must be letters, digits, '_' or '-'")
        if name in self._factories and not replace:
            raise ConfigError(
                f"a sandbox provider named {name!r} is already registered; pick another "
                "name or pass replace=True to override it on purpose"
            )
        self._factories[name] = factory

    def unregister(self, name: str) -> None:
        if self._factories.pop(name, None) is None:
            raise ConfigError(f"no sandbox provider named {name!r} is registered")

    def names(self) -> tuple[str, ...]:
        return tuple(self._factories)

    def __contains__(self, name: object) -> bool:
        return name in self._factories

    def check(self, name: str) -> None:
        """Raise ConfigError naming the known providers if ``name`` is not registered."""
        if name in self._factories:
            return
        close = difflib.get_close_matches(name, list(self._factories), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(
            f"unknown sandbox provider {name!r}.{hint} Known sandbox providers: "
            f"{', '.join(sorted(self._factories))} (register your own with "
            "register_sandbox_provider())"
        )

    def create(self, name: str, options: SandboxOptions) -> SandboxProvider:
        self.check(name)
        provider = self._factories[name](options)
        if provider.name != name:
            raise ConfigError(
                f"the sandbox provider factory registered as {name!r} built a provider "
                f"named {provider.name!r}; the provider's name must equal its registered name"
            )
        return provider


SANDBOX_PROVIDERS = SandboxRegistry()


def register_sandbox_provider(name: str, factory: SandboxFactory, *, replace: bool = False) -> None:
    """Make a sandbox provider available to :func:`make_provider` (and ``--sandbox``)."""
    SANDBOX_PROVIDERS.register(name, factory, replace=replace)


def make_provider(
    name: str = "bubblewrap",
    *,
    allow_network: bool = False,
    unsafe_local_shell: bool = False,
    ro_paths: list[Path] | None = None,
    locale2b_url: str | None = None,
) -> SandboxProvider:
    """The registered sandbox provider ``name``, built with these options."""
    options = SandboxOptions(
        allow_network=allow_network,
        unsafe_local_shell=unsafe_local_shell,
        ro_paths=list(ro_paths or []),
        locale2b_url=locale2b_url,
    )
    return SANDBOX_PROVIDERS.create(name, options)


def _bubblewrap(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.bubblewrap import BubblewrapProvider

    return BubblewrapProvider(allow_network=options.allow_network, ro_paths=options.ro_paths)


def _locale2b(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.locale2b import Locale2bProvider

    return Locale2bProvider(options.locale2b_url)


def _local(options: SandboxOptions) -> SandboxProvider:
    from worldpool.executors.sandbox.local import LocalProvider

    return LocalProvider(allow=options.unsafe_local_shell)


register_sandbox_provider("bubblewrap", _bubblewrap)
register_sandbox_provider("locale2b", _locale2b)
register_sandbox_provider("local", _local)

BUILTIN_SANDBOX_PROVIDERS: tuple[str, ...] = SANDBOX_PROVIDERS.names()
